"""Keyed decisions on every adapter: the record keeps the decision exactly, commits with it, and
shares its key space with submissions; retries and racing twins answer the first decision."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from expense_core.errors import IdempotencyKeyRace, IdempotencyKeyReused, ReasonRequired
from expense_core.model import ApprovalStatus, EventKind, ExpenseId, ExpenseStatus
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    RejectExpense,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from expense_core.workflow import Decision
from tests.contract.support import Org, money


def _submit(expenses: ExpenseService, org: Org, policy: str = "large") -> ExpenseId:
    amount = "2500.00" if policy == "large" else "25.00"
    command = SubmitExpense(
        user_id=org.person(7), policy_id=getattr(org, policy).id, amount=money(amount)
    )
    return expenses.submit(command).expense.id


def _rejected(expenses: ExpenseService, org: Org) -> Decision:
    """A decision with every part filled: a closed expense, a comment, skipped steps."""
    expense_id = _submit(expenses, org)
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(6), comments="fine"))
    return expenses.reject(
        RejectExpense(expense_id=expense_id, user_id=org.person(5), reason='ünïcode "quoted"')
    )


def test_a_decision_is_kept_exactly_under_its_key(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    decision = _rejected(expenses, org)
    assert decision.expense.completed_at is not None
    assert [e.kind for e in decision.events] == [EventKind.REJECTED, EventKind.SKIPPED]
    grace, frank = org.person(7), org.person(6)
    with new_uow() as uow:
        assert uow.idempotency.recall_decision(grace, "d-1") is None
        uow.idempotency.remember_decision(grace, "d-1", "a" * 64, decision)
        uow.idempotency.remember_decision(frank, "d-1", "b" * 64, decision)  # keys are per user
        uow.commit()
    with new_uow() as uow:
        assert uow.idempotency.recall_decision(grace, "d-1") == ("a" * 64, decision)
        assert uow.idempotency.recall_decision(frank, "d-1") == ("b" * 64, decision)
        assert uow.idempotency.recall(grace, "d-1") == ("a" * 64, decision.expense.id)
        assert uow.idempotency.recall_decision(grace, "d-2") is None


def test_submissions_and_decisions_share_one_key_space(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    decision = _rejected(expenses, org)
    grace = org.person(7)
    with new_uow() as uow:
        uow.idempotency.remember(grace, "submitted", "s" * 64, decision.expense.id)
        uow.idempotency.remember_decision(grace, "decided", "d" * 64, decision)
        uow.commit()
    with new_uow() as uow:
        assert uow.idempotency.recall_decision(grace, "submitted") == ("s" * 64, None)
        with pytest.raises(IdempotencyKeyRace):
            uow.idempotency.remember_decision(grace, "submitted", "d" * 64, decision)
    with new_uow() as uow, pytest.raises(IdempotencyKeyRace):
        uow.idempotency.remember(grace, "decided", "s" * 64, decision.expense.id)


def test_a_kept_decision_commits_with_its_unit_of_work_only(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    decision = _rejected(expenses, org)
    with new_uow() as uow:
        uow.idempotency.remember_decision(org.person(7), "ghost", "g" * 64, decision)
    with new_uow() as uow:
        assert uow.idempotency.recall_decision(org.person(7), "ghost") is None


def test_a_retry_answers_the_first_decision_whatever_happened_since(
    expenses: ExpenseService, org: Org
) -> None:
    expense_id = _submit(expenses, org)
    command = ApproveStep(
        expense_id=expense_id, user_id=org.person(6), comments="ok", idempotency_key="retry-me"
    )
    first = expenses.approve(command)
    for who in (5, 4):
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(who)))
    history = expenses.history(expense_id, Viewer.whole_company(org.id))

    again = expenses.approve(command)

    assert (first.replayed, again.replayed) == (False, True)
    assert attrs.evolve(again, replayed=False) == first
    assert expenses.history(expense_id, Viewer.whole_company(org.id)) == history
    with pytest.raises(IdempotencyKeyReused):
        expenses.approve(attrs.evolve(command, comments="other"))


def test_a_retry_in_a_later_round_answers_the_first_round_and_decides_nothing(
    expenses: ExpenseService, org: Org
) -> None:
    """After a send-back and a resubmission the same step is the same approver's again: the
    retry would approve the new round. It is undone; it answers the first round's approval."""
    expense_id = _submit(expenses, org)
    command = ApproveStep(
        expense_id=expense_id, user_id=org.person(6), comments="ok", idempotency_key="round-1"
    )
    first = expenses.approve(command)
    expenses.send_back(SendBack(expense_id=expense_id, user_id=org.person(5), reason="receipt?"))
    expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=org.person(7)))
    before = expenses.history(expense_id, Viewer.whole_company(org.id))
    assert expenses.status(expense_id, Viewer.whole_company(org.id)).approvals[
        0
    ].approver_id == org.person(6)

    again = expenses.approve(command)

    assert attrs.evolve(again, replayed=False) == first
    assert expenses.history(expense_id, Viewer.whole_company(org.id)) == before
    assert (
        expenses.status(expense_id, Viewer.whole_company(org.id)).approvals[0].status
        is ApprovalStatus.PENDING
    )


def test_a_refused_decision_keeps_no_key(expenses: ExpenseService, org: Org) -> None:
    expense_id = _submit(expenses, org)
    refused = RejectExpense(
        expense_id=expense_id, user_id=org.person(6), reason="", idempotency_key="fix-me"
    )
    with pytest.raises(ReasonRequired):
        expenses.reject(refused)

    fixed = expenses.reject(attrs.evolve(refused, reason="duplicate"))

    assert not fixed.replayed
    assert expenses.reject(attrs.evolve(refused, reason="duplicate")).replayed


def test_the_same_key_on_another_expense_is_refused_and_undone(
    expenses: ExpenseService, org: Org
) -> None:
    first, second = _submit(expenses, org, "small"), _submit(expenses, org, "small")
    expenses.withdraw(
        WithdrawExpense(expense_id=first, user_id=org.person(7), idempotency_key="once")
    )
    before = expenses.history(second, Viewer.whole_company(org.id))

    with pytest.raises(IdempotencyKeyReused):
        expenses.withdraw(
            WithdrawExpense(expense_id=second, user_id=org.person(7), idempotency_key="once")
        )

    assert expenses.history(second, Viewer.whole_company(org.id)) == before
    assert expenses.status(second, Viewer.whole_company(org.id)).status is ExpenseStatus.PENDING


def test_twins_with_one_key_decide_once(expenses: ExpenseService, org: Org) -> None:
    ids = [_submit(expenses, org, "small") for _ in range(6)]
    commands = [
        ApproveStep(
            expense_id=expense_id,
            user_id=org.person(6),
            comments=f"twin {expense_id}",
            idempotency_key=f"twin-{expense_id}",
        )
        for expense_id in ids
        for _ in range(2)  # the twins side by side, so the two threads race over them
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(expenses.approve, commands))

    for expense_id in ids:
        twins = [a for c, a in zip(commands, answers, strict=True) if c.expense_id == expense_id]
        assert sorted(a.replayed for a in twins) == [False, True]
        assert len({attrs.evolve(a, replayed=False) for a in twins}) == 1
        approvals = [
            e
            for e in expenses.history(expense_id, Viewer.whole_company(org.id))
            if e.kind is EventKind.APPROVED
        ]
        assert len(approvals) == 1
