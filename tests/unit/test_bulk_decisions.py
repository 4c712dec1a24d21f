"""Bulk decisions: each one made on its own, exactly as `approve` or `reject` makes it alone.

The property: any sequence of bulk calls answers, item by item, what the same decisions made
one by one answer, and leaves the store as they leave it; so four eyes and no self-approval
hold through bulk as they do alone, and are checked again on the history.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from expense_core.demo import install_demo
from expense_core.errors import (
    DomainError,
    ExpenseClosed,
    InvalidBulkSize,
    ReasonRequired,
    SelfApproval,
    UnknownExpense,
)
from expense_core.model import EventKind, ExpenseId, ExpenseStatus, PolicyId, UserId
from expense_core.services import (
    BULK_LIMIT,
    ApproveStep,
    BulkAction,
    BulkDecision,
    DecideInBulk,
    ExpenseService,
    RejectExpense,
    SubmitExpense,
)
from expense_core.visibility import Viewer
from expense_core.workflow import Decision
from tests.clocks import TickingClock
from tests.unit.support import (
    BUSINESS_TRAVEL,
    FRANK,
    GRACE,
    LARGE_EQUIPMENT,
    SMALL_EQUIPMENT,
    TECHCORP,
    money,
)

# Grace's small (Frank) and large (Frank, Eve, David) equipment, Frank's travel (Eve, David).
SUBMISSIONS = (
    (GRACE, SMALL_EQUIPMENT, "100.00"),
    (GRACE, SMALL_EQUIPMENT, "200.00"),
    (GRACE, LARGE_EQUIPMENT, "4000.00"),
    (FRANK, BUSINESS_TRAVEL, "300.00"),
)


def with_expenses() -> tuple[ExpenseService, list[ExpenseId]]:
    store = MemoryStore()
    install_demo(store.unit_of_work)
    expenses = ExpenseService(store.unit_of_work, TickingClock())
    ids = [submit(expenses, user, policy, amount) for user, policy, amount in SUBMISSIONS]
    return expenses, ids


def submit(expenses: ExpenseService, user: UserId, policy: PolicyId, amount: str) -> ExpenseId:
    command = SubmitExpense(user_id=user, policy_id=policy, amount=money(amount))
    return expenses.submit(command).expense.id


def approving(*expense_ids: int, comment: str | None = None) -> tuple[BulkDecision, ...]:
    return tuple(
        BulkDecision(expense_id=ExpenseId(e), action=BulkAction.APPROVE, comment=comment)
        for e in expense_ids
    )


def one_by_one(
    expenses: ExpenseService, approver: UserId, item: BulkDecision
) -> Decision | DomainError:
    try:
        if item.action is BulkAction.APPROVE:
            return expenses.approve(
                ApproveStep(expense_id=item.expense_id, user_id=approver, comments=item.comment)
            )
        return expenses.reject(
            RejectExpense(expense_id=item.expense_id, user_id=approver, reason=item.comment)
        )
    except DomainError as refusal:
        return refusal


def comparable(outcome: Decision | DomainError) -> object:
    if isinstance(outcome, DomainError):
        return type(outcome), outcome.code, outcome.message
    return outcome


def everything(expenses: ExpenseService, ids: list[ExpenseId]) -> list[object]:
    return [(expenses.status(e), expenses.history(e, Viewer.whole_company(TECHCORP))) for e in ids]


bulk_items = st.builds(
    BulkDecision,
    expense_id=st.integers(1, len(SUBMISSIONS) + 1).map(ExpenseId),  # the last is unknown
    action=st.sampled_from(BulkAction),
    comment=st.sampled_from([None, "", " ", "ok", "over budget"]),
)
bulk_calls = st.lists(
    st.tuples(st.integers(1, 7).map(UserId), st.lists(bulk_items, min_size=1, max_size=6)),
    max_size=6,
)


@given(calls=bulk_calls)
def test_a_bulk_call_does_what_the_same_decisions_one_by_one_do(
    calls: list[tuple[UserId, list[BulkDecision]]],
) -> None:
    in_bulk, ids = with_expenses()
    alone, same_ids = with_expenses()
    assert ids == same_ids

    for approver, items in calls:
        answered = in_bulk.decide_in_bulk(DecideInBulk(user_id=approver, decisions=tuple(items)))
        expected = [one_by_one(alone, approver, item) for item in items]

        assert [comparable(o) for o in answered] == [comparable(o) for o in expected]
        assert everything(in_bulk, ids) == everything(alone, ids)

    # Four eyes and no self-approval, whatever the bulk calls asked for.
    for expense_id in ids:
        view = in_bulk.status(expense_id)
        approvers = {a.step_number: a.approver_id for a in view.approvals}
        assert len(set(approvers.values())) == len(approvers)
        for change in in_bulk.history(expense_id, Viewer.whole_company(TECHCORP)):
            if change.kind in (EventKind.APPROVED, EventKind.REJECTED):
                assert change.step_number is not None
                assert change.actor_id == approvers[change.step_number] != view.user_id


def test_answers_come_in_input_order_and_a_refusal_undoes_no_other_decision() -> None:
    expenses, ids = with_expenses()
    small, other_small, large, travel = ids
    decisions = (
        BulkDecision(expense_id=other_small, action=BulkAction.APPROVE, comment="ok"),
        BulkDecision(expense_id=large, action=BulkAction.REJECT, comment=None),
        BulkDecision(expense_id=ExpenseId(99), action=BulkAction.APPROVE),
        BulkDecision(expense_id=travel, action=BulkAction.APPROVE),
        BulkDecision(expense_id=small, action=BulkAction.REJECT, comment="not needed"),
        BulkDecision(expense_id=other_small, action=BulkAction.APPROVE),
    )

    answered = expenses.decide_in_bulk(DecideInBulk(user_id=FRANK, decisions=decisions))

    assert [type(a) for a in answered] == [
        Decision,
        ReasonRequired,
        UnknownExpense,
        SelfApproval,
        Decision,
        ExpenseClosed,
    ]
    first, fifth = answered[0], answered[4]
    assert isinstance(first, Decision)
    assert isinstance(fifth, Decision)
    assert (first.expense.id, first.expense.status) == (other_small, ExpenseStatus.APPROVED)
    assert (fifth.expense.id, fifth.expense.status) == (small, ExpenseStatus.REJECTED)
    assert [expenses.status(e).status for e in ids] == [
        ExpenseStatus.REJECTED,
        ExpenseStatus.APPROVED,
        ExpenseStatus.PENDING,
        ExpenseStatus.PENDING,
    ]


@pytest.mark.parametrize("size", [0, BULK_LIMIT + 1])
def test_no_decision_or_more_than_the_limit_is_refused_and_nothing_is_decided(size: int) -> None:
    expenses, ids = with_expenses()
    before = everything(expenses, ids)
    decisions = approving(*([ids[0]] * size))

    with pytest.raises(InvalidBulkSize, match=f"got {size}"):
        expenses.decide_in_bulk(DecideInBulk(user_id=FRANK, decisions=decisions))

    assert everything(expenses, ids) == before


def test_the_limit_itself_is_taken() -> None:
    expenses, ids = with_expenses()
    decisions = approving(ids[0], *([ids[1]] * (BULK_LIMIT - 1)), comment="ok")

    answered = expenses.decide_in_bulk(DecideInBulk(user_id=FRANK, decisions=decisions))

    assert len(answered) == BULK_LIMIT
    assert [type(a) for a in answered[:3]] == [Decision, Decision, ExpenseClosed]
    assert expenses.status(ids[1]).status is ExpenseStatus.APPROVED
