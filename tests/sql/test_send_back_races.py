"""Send-backs racing approvals, resubmissions and withdrawals from many threads, each on its own
connection, never break the workflow.

Per expense, Frank approves step 1 twice and sends it back twice, Eve approves step 2, and
Grace resubmits twice and withdraws once, all at once. Whatever wins: the expense is approved
exactly when every required approval of its current round is approved, a returned expense waits
on nobody, send-backs and resubmissions alternate in the history, and every winner's events are
in it, each decision's together, in the order the decisions were made.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from adapters.sql import SqlDatabase
from expense_core.model import (
    ApprovalStatus,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseStatus,
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
from tests.sql.support import (
    Attempt,
    Outcome,
    check_each,
    race_database,
    race_params,
    run_race,
    side_by_side,
)

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


@pytest.fixture(params=race_params(postgres=(80, 12), sqlite=(30, 6)))
def race(request: pytest.FixtureRequest) -> Iterator[tuple[SqlDatabase, int, int]]:
    with race_database(request) as opened:
        yield opened


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
    attempts = side_by_side(
        ids,
        lambda expense_id: [Attempt(expense_id, org.person(who), kind) for who, kind in ATTEMPTS],
        seed=20261204,
    )

    outcomes = run_race(threads, attempts, functools.partial(_decide, service))

    check_each(db, org.id, ids, outcomes, functools.partial(_check, org))
    assert any(o.won and o.attempt.kind == "resubmit" for o in outcomes)


def _decide(service: ExpenseService, attempt: Attempt) -> Decision | None:
    """The attempt's decision; None for a resubmission, whose events the history shows."""
    expense_id, actor = attempt.expense_id, attempt.actor
    if attempt.kind == "approve":
        return service.approve(ApproveStep(expense_id=expense_id, user_id=actor))
    if attempt.kind == "send back":
        return service.send_back(SendBack(expense_id=expense_id, user_id=actor, reason="receipts?"))
    if attempt.kind == "resubmit":
        service.resubmit(ResubmitExpense(expense_id=expense_id, user_id=actor))
        return None
    return service.withdraw(WithdrawExpense(expense_id=expense_id, user_id=actor))


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
