"""Send-backs racing approvals, resubmissions and withdrawals from many threads, each on its own
connection, never break the workflow.

Per expense, Frank approves step 1 twice and sends it back twice, Eve approves step 2, and
Grace resubmits twice and withdraws once, all at once. Whatever wins: the expense is approved
exactly when every required approval of its current round is approved, a returned expense waits
on nobody, send-backs and resubmissions alternate in the history, and every winner's events are
in it, each decision's together, in the order the decisions were made.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from adapters.sql import SqlDatabase
from expense_core.errors import DomainError, Unavailable
from expense_core.model import (
    ApprovalStatus,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    UserId,
)
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.workflow import Decision
from tests.clocks import TickingClock
from tests.contract.support import Org, money, tech_corp
from tests.sql.support import opened

ATTEMPTS = (
    (6, "approve"),
    (6, "approve"),
    (6, "send back"),
    (6, "send back"),
    (5, "approve"),
    (7, "resubmit"),
    (7, "resubmit"),
    (7, "withdraw"),
)


@attrs.frozen
class Attempt:
    expense_id: ExpenseId
    actor: UserId
    kind: str


@attrs.frozen
class Outcome:
    attempt: Attempt
    decision: Decision | None  # None for a resubmission, whose events the history shows
    won: bool
    refusal: DomainError | None


@pytest.fixture(
    params=[
        pytest.param(("postgres", 80, 12), marks=pytest.mark.postgres, id="postgres"),
        pytest.param(("sqlite", 30, 6), id="sqlite"),
    ]
)
def race(request: pytest.FixtureRequest) -> Iterator[tuple[SqlDatabase, int, int]]:
    dialect, expenses, threads = request.param
    url = request.getfixturevalue("postgres_url" if dialect == "postgres" else "sqlite_url")
    with opened(url, pool_size=threads) as db:
        yield db, expenses, threads


def test_racing_send_backs_and_resubmissions_keep_every_expense_consistent(
    race: tuple[SqlDatabase, int, int],
) -> None:
    db, how_many, threads = race
    org = tech_corp(db.unit_of_work)
    service = ExpenseService(db.unit_of_work, TickingClock())
    ids = [
        service.submit(
            SubmitExpense(user_id=org.person(7), policy_id=org.travel.id, amount=money("90.00"))
        ).expense.id
        for _ in range(how_many)
    ]
    shuffle = random.Random(20261204).shuffle  # noqa: S311 -- test data, not secrets
    attempts: list[Attempt] = []
    for expense_id in ids:
        mine = [Attempt(expense_id, org.person(who), kind) for who, kind in ATTEMPTS]
        shuffle(mine)
        attempts += mine

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(_attempt(service), attempts))

    assert [o.refusal for o in outcomes if isinstance(o.refusal, Unavailable)] == []
    by_expense: dict[ExpenseId, list[Outcome]] = {}
    for outcome in outcomes:
        by_expense.setdefault(outcome.attempt.expense_id, []).append(outcome)
    with db.unit_of_work() as uow:
        for expense_id in ids:
            expense = uow.expenses.get(org.id, expense_id)
            history = uow.expenses.history(org.id, expense_id)
            _check(org, expense, history, by_expense[expense_id])
    assert any(o.won and o.attempt.kind == "resubmit" for o in outcomes)


def _attempt(service: ExpenseService) -> Callable[[Attempt], Outcome]:
    def run(attempt: Attempt) -> Outcome:
        expense_id, actor = attempt.expense_id, attempt.actor
        decision: Decision | None = None
        try:
            if attempt.kind == "approve":
                decision = service.approve(ApproveStep(expense_id=expense_id, user_id=actor))
            elif attempt.kind == "send back":
                decision = service.send_back(
                    SendBack(expense_id=expense_id, user_id=actor, reason="receipts?")
                )
            elif attempt.kind == "resubmit":
                service.resubmit(ResubmitExpense(expense_id=expense_id, user_id=actor))
            else:
                decision = service.withdraw(WithdrawExpense(expense_id=expense_id, user_id=actor))
        except DomainError as refusal:
            return Outcome(attempt, None, won=False, refusal=refusal)
        return Outcome(attempt, decision, won=True, refusal=None)

    return run


def _check(
    org: Org, expense: Expense, history: tuple[ExpenseEvent, ...], outcomes: list[Outcome]
) -> None:
    required = [a for a in expense.approvals if a.required]
    assert (expense.status is ExpenseStatus.APPROVED) == all(
        a.status is ApprovalStatus.APPROVED for a in required
    )
    if expense.status in (ExpenseStatus.PENDING, ExpenseStatus.RETURNED):
        assert expense.completed_at is None
    else:
        assert expense.completed_at is not None
    if expense.status is ExpenseStatus.PENDING:
        assert any(a.is_pending for a in required)
    else:
        assert not any(a.is_pending for a in expense.approvals)
    assert [a.approver_id for a in expense.approvals] == [org.person(6), org.person(5)]

    # Rounds alternate; each winner left its events, and nobody else did.
    won = [o for o in outcomes if o.won]
    turns = [e.kind for e in history if e.kind in (EventKind.RETURNED, EventKind.RESUBMITTED)]
    assert turns == [
        EventKind.RETURNED if i % 2 == 0 else EventKind.RESUBMITTED for i in range(len(turns))
    ]
    assert turns.count(EventKind.RETURNED) == sum(o.attempt.kind == "send back" for o in won)
    assert turns.count(EventKind.RESUBMITTED) == sum(o.attempt.kind == "resubmit" for o in won)
    assert history[0].kind is EventKind.SUBMITTED
    assert [e.at for e in history] == sorted(e.at for e in history)
    decisions = sorted((o.decision for o in won if o.decision), key=lambda d: d.events[0].at)
    assert tuple(e for e in history if e.kind is not EventKind.RESUBMITTED)[1:] == tuple(
        e for d in decisions for e in d.events
    )
    last = max((e for e in history if e.kind is not EventKind.SKIPPED), key=lambda e: e.at)
    if decisions and decisions[-1].events[0] == last:
        assert decisions[-1].expense == expense
