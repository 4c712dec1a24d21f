"""Generated organisations for the visibility properties, and a brute-force oracle to hold the
use cases to: reporting chains, delegations (in force or not), role and manager changes, and
expenses routed through one- and two-step policies.

The oracle reads the organisation as stored (users, delegations, each expense's approvers) and
decides from the rule's words alone; the use cases decide in the adapters' own reads.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import attrs
from hypothesis import strategies as st

from expense_core.delegation import Delegation
from expense_core.errors import DomainError, FallbackApproverAuditor, UnknownExpense
from expense_core.model import (
    COMPANY_SCOPE,
    ApprovalStep,
    CompanyId,
    ExpenseId,
    Money,
    Role,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ChangeUser,
    ExpenseService,
    NewPolicy,
    NewUser,
    OrgService,
    SubmitExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START, SettableClock

ROLES = tuple(Role)
DAY = timedelta(days=1)
_companies = itertools.count(1)


@attrs.frozen
class Plan:
    """People (level, manager: an earlier person or None, role), delegations (absent,
    delegate, in force now?), submissions (who, which policy), then changes (who, new role,
    new manager or None)."""

    people: tuple[tuple[int, int | None, Role], ...]
    delegations: tuple[tuple[int, int, bool], ...]
    submissions: tuple[tuple[int, int], ...]
    changes: tuple[tuple[int, Role, int | None], ...]


@st.composite
def plans(draw: st.DrawFn, most_people: int = 8) -> Plan:
    n = draw(st.integers(2, most_people))
    people = tuple(
        (
            draw(st.integers(1, 5)),
            draw(st.none() | st.integers(0, i - 1)) if i else None,
            draw(st.sampled_from(ROLES)),
        )
        for i in range(n)
    )
    person = st.integers(0, n - 1)
    delegations = tuple(
        (a, d, now)
        for a, d, now in draw(st.lists(st.tuples(person, person, st.booleans()), max_size=4))
        if a != d
    )
    submissions = tuple(draw(st.lists(st.tuples(person, st.integers(0, 1)), max_size=6)))
    changes = tuple(
        draw(st.lists(st.tuples(person, st.sampled_from(ROLES), st.none() | person), max_size=3))
    )
    return Plan(people, delegations, submissions, changes)


@attrs.frozen
class Built:
    company: CompanyId
    users: tuple[UserId, ...]
    expenses: ExpenseService
    clock: SettableClock


def build(plan: Plan, new_uow: Callable[[], UnitOfWork]) -> Built:
    """Make the plan's organisation in a fresh company; refused changes are left out."""
    org = OrgService(new_uow)
    company = org.create_company(f"Visibility {next(_companies)}").id
    team = org.create_team(company, "All")
    levels = {n: org.create_level(company, team.id, n, f"L{n}").id for n in range(1, 6)}
    users: list[UserId] = []
    for i, (level, manager, role) in enumerate(plan.people):
        users.append(
            org.create_user(
                NewUser(
                    company_id=company,
                    team_id=team.id,
                    email=f"p{i}@visibility.example",
                    name=f"Person {i}",
                    hierarchy_level_id=levels[level],
                    manager_id=None if manager is None else users[manager],
                    role=role,
                )
            ).id
        )
    with contextlib.suppress(FallbackApproverAuditor):  # auditors approve nothing
        org.set_fallback_approver(company, users[0])
    policies = [
        org.create_policy(
            NewPolicy(
                company_id=company,
                category=f"c{k}",
                name=f"Policy {k}",
                min_amount=Money(Decimal("0.00")),
                max_amount=Money(Decimal("100.00")),
                steps=tuple(
                    ApprovalStep(step_order=s, required_level=5, team_scope=COMPANY_SCOPE)
                    for s in range(1, k + 2)
                ),
            )
        ).id
        for k in (0, 1)
    ]
    clock = SettableClock(START)
    expenses = ExpenseService(new_uow, clock)
    with new_uow() as uow:
        for absent, delegate, now in plan.delegations:
            starts = START - DAY if now else START + DAY
            uow.delegations.put(
                Delegation(
                    company_id=company,
                    user_id=users[absent],
                    delegate_id=users[delegate],
                    starts_at=starts,
                    ends_at=starts + 2 * DAY,
                )
            )
        uow.commit()
    for who, policy in plan.submissions:
        try:
            expenses.submit(
                SubmitExpense(
                    user_id=users[who],
                    policy_id=policies[policy],
                    amount=Money(Decimal("10.00")),
                )
            )
        except DomainError:
            continue  # nobody eligible for a step: nothing stored
    for who, role, manager in plan.changes:
        try:
            org.change_user(
                ChangeUser(
                    user_id=users[who],
                    role=role,
                    manager_id=None if manager is None else users[manager],
                )
            )
        except DomainError:
            continue  # a cycle, or oneself as manager
    return Built(company, tuple(users), expenses, clock)


def oracle(built: Built, new_uow: Callable[[], UnitOfWork], viewer: UserId) -> set[ExpenseId]:
    """The expenses the rule's words let `viewer` see, read from the store one by one."""
    everything = built.expenses.list_expenses(Viewer.whole_company(built.company), limit=100)
    with new_uow() as uow:
        people = {u: uow.org.member(u).user for u in built.users}
        in_force = {
            u
            for u in built.users
            if (d := uow.delegations.get(built.company, u)) is not None
            and d.delegate_id == viewer
            and d.starts_at <= built.clock.now() < d.ends_at
        }
    if people[viewer].role in (Role.FINANCE, Role.AUDITOR, Role.ADMIN):
        return {s.id for s in everything.items}

    def above(user: UserId) -> set[UserId]:
        found: set[UserId] = set()
        boss = people[user].manager_id
        while boss is not None and boss not in found:
            found.add(boss)
            boss = people[boss].manager_id
        return found

    seen = set()
    for summary in everything.items:
        status = built.expenses.status(summary.id)
        approvers = {a.approver_id for a in status.approvals}
        if (
            summary.user_id == viewer
            or viewer in approvers
            or approvers & in_force
            or viewer in above(summary.user_id)
        ):
            seen.add(summary.id)
    return seen


def check(built: Built, new_uow: Callable[[], UnitOfWork]) -> None:
    """Every person's list, status, history and explanation agree with the oracle."""
    with new_uow() as uow:
        members = [uow.org.member(u) for u in built.users]
    every = [s.id for s in built.expenses.list_expenses(Viewer.whole_company(built.company)).items]
    for member in members:
        viewer = Viewer.of(member)
        expected = oracle(built, new_uow, member.id)
        listed: list[ExpenseId] = []
        cursor = None
        while True:
            page = built.expenses.list_expenses(viewer, cursor=cursor, limit=2)
            listed += [s.id for s in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert set(listed) == expected, (member.id, member.user.role)
        assert len(listed) == len(expected)
        for expense_id in every:
            try:
                built.expenses.status(expense_id, viewer)
                built.expenses.history(expense_id, viewer)
                shown = True
            except UnknownExpense:
                shown = False
            assert shown == (expense_id in expected), (member.id, expense_id)
