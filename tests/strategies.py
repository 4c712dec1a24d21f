"""Hypothesis strategies for the engine: amounts, policy sets and whole organisations.

An organisation is drawn as a plan (companies, teams with ladders that may have vacancies,
people who may be inactive or report to someone) and built through `OrgService`, so every
generated organisation obeys the rules a real one does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs
from hypothesis import strategies as st

from expense_core.model import (
    COMPANY_SCOPE,
    SUBMITTER_SCOPE,
    ApprovalStep,
    CompanyId,
    LevelId,
    Money,
    Policy,
    PolicyId,
    ScopeKind,
    TeamId,
    TeamScope,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import NewUser, OrgService

LIMIT_CENTS = 999_999_999_999  # 9,999,999,999.99
CATEGORIES = ("equipment", "travel")


def money(min_cents: int = 0, max_cents: int = LIMIT_CENTS) -> st.SearchStrategy[Money]:
    """Amounts in exact cents, drawn from small and large magnitudes alike."""
    small = st.integers(min_cents, min(max_cents, 1_000_000))
    return st.one_of(small, st.integers(min_cents, max_cents)).map(Money.cents)


# --- policies --------------------------------------------------------------------------------


def _disjoint_ranges(draw: st.DrawFn, most: int) -> list[tuple[int, int]]:
    """Inclusive cent ranges in increasing order, none sharing a cent; adjacent ones allowed."""
    ranges: list[tuple[int, int]] = []
    previous_high = -1
    for _ in range(draw(st.integers(0, most))):
        low = previous_high + draw(st.integers(1, 300_000))
        high = low + draw(st.integers(0, 300_000))
        if high > LIMIT_CENTS:
            break
        ranges.append((low, high))
        previous_high = high
    return ranges


@st.composite
def policy_sets(draw: st.DrawFn, company_id: int = 1) -> tuple[Policy, ...]:
    """Policies of one company: active ones never overlap within a category, inactive ones may."""
    policies: list[Policy] = []

    def add(category: str, low: int, high: int, *, active: bool) -> None:
        policies.append(
            Policy(
                id=PolicyId(len(policies) + 1),
                company_id=CompanyId(company_id),
                category=category,
                name=f"{category} {low}-{high}",
                min_amount=Money.cents(low),
                max_amount=Money.cents(high),
                steps=(ApprovalStep(step_order=1, required_level=6),),
                active=active,
            )
        )

    for category in CATEGORIES:
        for low, high in _disjoint_ranges(draw, 4):
            add(category, low, high, active=True)
    for _ in range(draw(st.integers(0, 3))):
        low = draw(st.integers(0, 1_500_000))
        high = draw(st.integers(low, 1_500_000))
        add(draw(st.sampled_from(CATEGORIES)), low, high, active=False)
    return tuple(draw(st.permutations(policies)))


# --- organisations ---------------------------------------------------------------------------


@attrs.frozen
class TeamPlan:
    company: int
    name: str
    levels: tuple[int, ...]
    is_company_wide: bool = False


@attrs.frozen
class UserPlan:
    company: int
    team: int  # index into OrgPlan.teams
    level: int  # a level number of that team's ladder
    active: bool = True
    manager: int | None = None  # index of an earlier user of the same company


@attrs.frozen
class OrgPlan:
    companies: int
    teams: tuple[TeamPlan, ...]
    users: tuple[UserPlan, ...]


@attrs.frozen
class StepPlan:
    required_level: int
    scope: ScopeKind
    team: int = 0  # index into OrgPlan.teams, for a team scope
    is_required: bool = True


@attrs.frozen
class BuiltOrg:
    """Ids the store gave to a plan's companies, teams, levels and users, in plan order."""

    companies: tuple[CompanyId, ...]
    teams: tuple[TeamId, ...]
    levels: dict[tuple[int, int], LevelId]
    users: tuple[UserId, ...]

    def steps(self, plans: tuple[StepPlan, ...]) -> tuple[ApprovalStep, ...]:
        return tuple(
            ApprovalStep(
                step_order=order,
                required_level=plan.required_level,
                team_scope=(
                    TeamScope(ScopeKind.TEAM, self.teams[plan.team])
                    if plan.scope is ScopeKind.TEAM
                    else SUBMITTER_SCOPE
                    if plan.scope is ScopeKind.SUBMITTER
                    else COMPANY_SCOPE
                ),
                is_required=plan.is_required,
            )
            for order, plan in enumerate(plans, start=1)
        )


# Strategies are built once: building one per draw costs more than the draw.
_COMPANIES = st.integers(1, 2)
_TEAMS = st.integers(1, 3)
_LADDER = st.sets(st.integers(1, 10), min_size=2, max_size=7)
_SEATS = st.sampled_from((1, 0, 2))  # most rungs hold one person; some are vacant, some two
_ACTIVE = st.integers(0, 6).map(lambda n: n < 6)  # shrinks towards active
_MANAGER = st.sampled_from(("none", "senior", "anyone"))
_PICK = st.integers(0, 1 << 16)


@st.composite
def org_plans(draw: st.DrawFn) -> OrgPlan:
    """One or two companies of 1-3 teams each, with ladders of 2-7 rungs, some vacant, some held
    by two people; senior people first, some inactive, some reporting to an earlier colleague."""
    companies = draw(_COMPANIES)
    teams: list[TeamPlan] = []
    for company in range(companies):
        for index in range(draw(_TEAMS)):
            teams.append(
                TeamPlan(
                    company=company,
                    name=f"team-{index}",
                    levels=tuple(sorted(draw(_LADDER))),
                    is_company_wide=draw(st.booleans()),
                )
            )
    users: list[UserPlan] = []
    for team_index, team in enumerate(teams):
        rungs = [n for n in team.levels for _ in range(draw(_SEATS))] or [team.levels[-1]]
        for level in rungs:
            colleagues = [i for i, u in enumerate(users) if u.company == team.company]
            seniors = [i for i in colleagues if users[i].level < level] or colleagues
            manager = None
            kind = draw(_MANAGER) if colleagues else "none"
            if kind != "none":
                pool = seniors if kind == "senior" else colleagues
                manager = pool[draw(_PICK) % len(pool)]
            users.append(
                UserPlan(
                    company=team.company,
                    team=team_index,
                    level=level,
                    active=draw(_ACTIVE),
                    manager=manager,
                )
            )
    return OrgPlan(companies, tuple(teams), tuple(users))


def step_plans(
    plan: OrgPlan, near_level: int = 10, max_steps: int = 4
) -> st.SearchStrategy[tuple[StepPlan, ...]]:
    """1..max_steps steps in any scope (a team scope may name another company's team), their
    levels mostly around `near_level` (the submitter's), where routing is most often possible."""
    return _step_plans(len(plan.teams), near_level, max_steps)


@functools.cache
def _step_plans(
    teams: int, near_level: int, max_steps: int
) -> st.SearchStrategy[tuple[StepPlan, ...]]:
    level = st.integers(max(1, near_level - 2), 10) | st.integers(1, 10)
    scope = st.sampled_from(
        (ScopeKind.SUBMITTER, ScopeKind.SUBMITTER, ScopeKind.COMPANY_WIDE, ScopeKind.TEAM)
    )
    step = st.builds(
        StepPlan,
        required_level=level,
        scope=scope,
        team=st.integers(0, teams - 1),
        is_required=st.booleans(),
    )
    return st.lists(step, min_size=1, max_size=max_steps).map(tuple)


def build_org(plan: OrgPlan, new_uow: Callable[[], UnitOfWork]) -> BuiltOrg:
    """Create a plan's organisation through `OrgService` and say which ids it got."""
    org = OrgService(new_uow)
    companies = tuple(org.create_company(f"company-{i}").id for i in range(plan.companies))
    teams: list[TeamId] = []
    levels: dict[tuple[int, int], LevelId] = {}
    for index, team_plan in enumerate(plan.teams):
        team = org.create_team(
            companies[team_plan.company], team_plan.name, is_company_wide=team_plan.is_company_wide
        )
        teams.append(team.id)
        for number in team_plan.levels:
            level = org.create_level(team.company_id, team.id, number, f"rung {number}")
            levels[(index, number)] = level.id
    users: list[UserId] = []
    for index, user_plan in enumerate(plan.users):
        user = org.create_user(
            NewUser(
                company_id=companies[user_plan.company],
                team_id=teams[user_plan.team],
                email=f"person{index}@example.com",
                name=f"Person {index}",
                hierarchy_level_id=levels[(user_plan.team, user_plan.level)],
                manager_id=None if user_plan.manager is None else users[user_plan.manager],
                active=user_plan.active,
            )
        )
        users.append(user.id)
    return BuiltOrg(companies, tuple(teams), levels, tuple(users))
