"""Builders for the contract suite: organisations made through the services, with fresh ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs

from expense_core.model import (
    SUBMITTER_SCOPE,
    ApprovalStep,
    Company,
    CompanyId,
    HierarchyLevel,
    Money,
    Policy,
    Team,
    TeamScope,
    User,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import NewPolicy, NewUser, OrgService

LADDER = (
    (1, "CTO", "Alice Chen"),
    (2, "VP", "Bob Smith"),
    (3, "Director", "Carol Johnson"),
    (4, "AD", "David Wilson"),
    (5, "SEM", "Eve Davis"),
    (6, "Manager", "Frank Miller"),
    (7, "SDE3", "Grace Taylor"),
)
UNBOUNDED = Money(Decimal("999999999.99"))
_names = itertools.count(1)


def money(text: str) -> Money:
    return Money(Decimal(text))


@attrs.frozen
class Org:
    """A company, its main team and ladder (people by level number) and its policies."""

    company: Company
    team: Team
    levels: dict[int, HierarchyLevel]
    people: dict[int, User]
    small: Policy
    large: Policy
    travel: Policy

    @property
    def id(self) -> CompanyId:
        return self.company.id

    def person(self, level_number: int) -> UserId:
        return self.people[level_number].id


def steps(*levels: int, scope: TeamScope | None = None) -> tuple[ApprovalStep, ...]:
    """Required steps asking for these levels, in order."""
    return tuple(
        ApprovalStep(step_order=i, required_level=level, team_scope=scope or SUBMITTER_SCOPE)
        for i, level in enumerate(levels, start=1)
    )


def add_policy(
    new_uow: Callable[[], UnitOfWork],
    company: CompanyId,
    category: str,
    policy_steps: Sequence[ApprovalStep],
    *,
    low: str = "0.00",
    high: Money = UNBOUNDED,
    name: str | None = None,
) -> Policy:
    return OrgService(new_uow).create_policy(
        NewPolicy(
            company_id=company,
            category=category,
            name=name or f"{category} policy",
            min_amount=money(low),
            max_amount=high,
            steps=tuple(policy_steps),
        )
    )


def tech_corp(new_uow: Callable[[], UnitOfWork], *, managers: bool = False) -> Org:
    """The seed's TechCorp with fresh ids; `managers` makes each person report to the next up."""
    org = OrgService(new_uow)
    company = org.create_company(f"TechCorp {next(_names)}")
    team = org.create_team(company.id, "Technology")
    levels: dict[int, HierarchyLevel] = {}
    people: dict[int, User] = {}
    for number, level_name, name in LADDER:
        levels[number] = org.create_level(company.id, team.id, number, level_name)
        people[number] = org.create_user(
            NewUser(
                company_id=company.id,
                team_id=team.id,
                email=f"{name.split()[0].lower()}@techcorp.example",
                name=name,
                hierarchy_level_id=levels[number].id,
                manager_id=people[number - 1].id if managers and number > 1 else None,
            )
        )
    return Org(
        company=company,
        team=team,
        levels=levels,
        people=people,
        small=add_policy(
            new_uow,
            company.id,
            "equipment",
            steps(6),
            high=money("1999.99"),
            name="Small Equipment",
        ),
        large=add_policy(
            new_uow, company.id, "equipment", steps(6, 5, 4), low="2000.00", name="Large Equipment"
        ),
        travel=add_policy(new_uow, company.id, "travel", steps(6, 5), name="Business Travel"),
    )
