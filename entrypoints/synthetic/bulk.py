"""Synthetic data stored in bulk: a million expenses in minutes on PostgreSQL.

What `seed` stores through the services, worked out here with the same pure functions the
services call (`resolve_approvers`, `workflow.submit`, `approve`, `reject`) and handed to the
store's `BulkLoader` a batch at a time: the store decides how to write it (see
`entrypoints.ports`). The organisation is numbered here, from where the store says its ids
start; the expenses are numbered by the store, in order.
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

from entrypoints.ports import BulkLoad, BulkLoader
from entrypoints.synthetic.draw import (
    APPROVE_COMMENT,
    LADDER,
    REJECT_REASON,
    Advance,
    CompanyShape,
    SyntheticCompany,
    SyntheticOrgs,
    Ticker,
    check_counts,
    draw_company,
    fate,
    policy_specs,
    quiet,
    random_amount,
)
from expense_core import workflow
from expense_core.approvers import ApproverPool, RoutedStep, resolve_approvers
from expense_core.model import (
    ApprovalStep,
    Company,
    CompanyId,
    Expense,
    ExpenseEvent,
    HierarchyLevel,
    LevelId,
    Member,
    Policy,
    PolicyId,
    Team,
    TeamId,
    User,
    UserId,
)
from expense_core.policies import match_policy
from expense_core.ports import Clock

if TYPE_CHECKING:
    from entrypoints.container import Database

BATCH: Final = 20_000  # expenses handed to the store at a time


@attrs.frozen
class _Ids:
    """The next id of each kind, counting on from where the store's end."""

    companies: Iterator[int]
    teams: Iterator[int]
    levels: Iterator[int]
    users: Iterator[int]
    policies: Iterator[int]
    steps: Iterator[int]

    @classmethod
    def past_those_of(cls, load: BulkLoad) -> _Ids:
        return cls(
            companies=itertools.count(load.first_id(Company)),
            teams=itertools.count(load.first_id(Team)),
            levels=itertools.count(load.first_id(HierarchyLevel)),
            users=itertools.count(load.first_id(User)),
            policies=itertools.count(load.first_id(Policy)),
            steps=itertools.count(load.first_id(ApprovalStep)),
        )


@attrs.frozen
class _Org:
    """Organisations numbered and waiting to be stored."""

    companies: list[Company] = attrs.Factory(list)
    teams: list[Team] = attrs.Factory(list)
    levels: list[HierarchyLevel] = attrs.Factory(list)
    users: list[User] = attrs.Factory(list)
    policies: list[Policy] = attrs.Factory(list)


@attrs.define
class _Company:
    """A company numbered and ready to route: its people as the engine sees them."""

    seen: SyntheticCompany
    members: dict[UserId, Member]
    policies: dict[str, tuple[Policy, ...]]
    _routes: dict[tuple[UserId, PolicyId], tuple[RoutedStep, ...]] = attrs.Factory(dict)

    def route(self, submitter: Member, policy: Policy) -> tuple[RoutedStep, ...]:
        """What `resolve_approvers` makes of the submitter and policy, asked once per pair."""
        key = (submitter.id, policy.id)
        found = self._routes.get(key)
        if found is None:
            chain = []
            manager_id = submitter.user.manager_id
            while manager_id is not None:
                manager = self.members[manager_id]
                chain.append(manager)
                manager_id = manager.user.manager_id
            # Everyone in the company is a candidate: more than a store gathers, which
            # resolution allows ("more is harmless"), and the same choices come out.
            pool = ApproverPool(tuple(chain), tuple(self.members.values()))
            found = self._routes[key] = resolve_approvers(submitter, policy.steps, pool)
        return found


def _number_company(shape: CompanyShape, ids: _Ids, created: datetime, org: _Org) -> _Company:
    """Give a company, its teams, levels, people and policies their ids, as `seed` would
    store them one by one, and add them to `org`."""
    company = Company(CompanyId(next(ids.companies)), shape.name)
    org.companies.append(company)
    teams: list[TeamId] = []
    levels: list[list[HierarchyLevel]] = []
    for name, wide, _ in shape.teams:
        team = Team(TeamId(next(ids.teams)), company.id, name, wide)
        org.teams.append(team)
        teams.append(team.id)
        ladder = [
            HierarchyLevel(LevelId(next(ids.levels)), company.id, team.id, number, title)
            for number, title, _ in LADDER
        ]
        org.levels.extend(ladder)
        levels.append(ladder)
    by_category: dict[str, list[Policy]] = {}
    policy_ids: dict[str, int] = {}
    for category, name, low, high, specs in policy_specs(teams[0]):
        policy = Policy(
            id=PolicyId(next(ids.policies)),
            company_id=company.id,
            category=category,
            name=name,
            description=f"{name}, synthetic",
            min_amount=low,
            max_amount=high,
            steps=tuple(attrs.evolve(s, id=next(ids.steps)) for s in specs),
            created_at=created,
        )
        org.policies.append(policy)
        by_category.setdefault(category, []).append(policy)
        policy_ids[name] = policy.id
    members: dict[UserId, Member] = {}
    people: list[UserId] = []
    for person in shape.people:
        level = levels[person.team][person.rung]
        user = User(
            id=UserId(next(ids.users)),
            company_id=company.id,
            team_id=teams[person.team],
            email=person.email,
            name=person.name,
            hierarchy_level_id=level.id,
            manager_id=None if person.manager is None else people[person.manager],
            role=person.role,
        )
        org.users.append(user)
        people.append(user.id)
        members[user.id] = Member(user, level)
    seen = SyntheticCompany(
        company_id=company.id,
        name=shape.name,
        users=len(people),
        submitters=tuple(
            i for i, p in zip(people, shape.people, strict=True) if shape.is_submitter(p)
        ),
        policies=policy_ids,
    )
    return _Company(
        seen, members, {category: tuple(found) for category, found in by_category.items()}
    )


def _decide(
    company: _Company, chooser: random.Random, ticker: Ticker
) -> tuple[Expense, list[ExpenseEvent]]:
    """Submit one expense and decide on it as `seed` does: the expense and its history."""
    category, amount = random_amount(chooser)
    submitter = company.members[chooser.choice(company.seen.submitters)]
    policy = match_policy(company.policies[category], category, amount)
    decision = workflow.submit(
        submitter=submitter,
        policy=policy,
        amount=amount,
        description=f"{category} for the quarter",
        routing=company.route(submitter, policy),
        at=ticker.now(),
    )
    expense = decision.expense
    events: list[ExpenseEvent] = list(decision.events)
    for approver, approves in fate([a for a in expense.approvals if a.required], chooser):
        if approves:
            decision = workflow.approve(expense, approver, APPROVE_COMMENT, ticker.now())
        else:
            decision = workflow.reject(expense, approver, REJECT_REASON, ticker.now())
        expense = decision.expense
        events.extend(decision.events)
    return expense, events


def seed_bulk(
    loader: BulkLoader,
    clock: Clock,
    *,
    companies: int,
    users_per_company: int,
    expenses: int,
    random_seed: int = 1,
    advance: Advance = quiet,
) -> SyntheticOrgs:
    """What `seed` stores, loaded in bulk: the same rows for the same seed and clock (but for
    when the policies were created, which `seed` takes from the wall clock), all of them or
    none. Expenses are worked out a batch at a time while the store writes the one before.

    Raises:
        ValueError: as `seed`.
    """
    check_counts(companies, users_per_company, expenses)
    chooser = random.Random(random_seed)  # noqa: S311 -- made-up data, not secrets
    ticker = Ticker.before(clock.now(), expenses)
    with loader.begin() as load:
        ids, org = _Ids.past_those_of(load), _Org()
        made = [
            _number_company(draw_company(users_per_company, chooser), ids, ticker.origin, org)
            for _ in range(companies)
        ]
        load.add_org(
            companies=org.companies,
            teams=org.teams,
            levels=org.levels,
            users=org.users,
            policies=org.policies,
            done=functools.partial(advance, len(org.users)),
        )
        for start in range(0, expenses, BATCH):
            count = min(BATCH, expenses - start)
            load.add_expenses(
                (
                    _decide(made[i % companies], chooser, ticker)
                    for i in range(start, start + count)
                ),
                done=functools.partial(advance, count),
            )
    return SyntheticOrgs(companies=tuple(c.seen for c in made), expenses=expenses)


def seed_database(
    database: Database,
    clock: Clock,
    *,
    companies: int,
    users_per_company: int,
    expenses: int,
    random_seed: int = 1,
    advance: Advance = quiet,
) -> SyntheticOrgs:
    """`seed_bulk` with the database's own bulk loader.

    Raises:
        ValueError: as `seed`.
    """
    return seed_bulk(
        database.bulk_loader(),
        clock,
        companies=companies,
        users_per_company=users_per_company,
        expenses=expenses,
        random_seed=random_seed,
        advance=advance,
    )
