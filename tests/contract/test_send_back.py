"""Send back and resubmit on every adapter: a returned expense is stored as decided, filtered
and kept out of inboxes; a resubmission replaces the expense's fields and approval rows, however
many steps its new policy has, and the history keeps every round."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from expense_core.model import (
    ApprovalStatus,
    EventKind,
    ExpenseId,
    ExpenseStatus,
    PolicyId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ApproveStep,
    ChangeUser,
    ExpenseService,
    OrgService,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from expense_core.workflow import Decision
from tests.contract.support import Org, money


def _travel_claim(expenses: ExpenseService, org: Org, amount: str = "1500.00") -> ExpenseId:
    """Grace's claim under Business Travel: Frank, then Eve."""
    return expenses.submit(
        SubmitExpense(
            user_id=org.person(7),
            policy_id=org.travel.id,
            amount=money(amount),
            description="Berlin",
        )
    ).expense.id


def _send_back(expenses: ExpenseService, org: Org, expense_id: ExpenseId, who: int) -> Decision:
    return expenses.send_back(
        SendBack(expense_id=expense_id, user_id=org.person(who), reason="receipts, please")
    )


def test_a_send_back_writes_exactly_what_it_decided(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.large.id, amount=money("4000.00"))
    ).expense.id
    first = expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(6)))
    decision = _send_back(expenses, org, expense_id, 5)
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, expense_id)
        history = uow.expenses.history(org.id, expense_id)
    assert stored == decision.expense
    assert stored.status is ExpenseStatus.RETURNED
    assert stored.completed_at is None
    assert [a.status for a in stored.approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.SKIPPED,
        ApprovalStatus.SKIPPED,
    ]
    assert stored.approvals[1].comments == "receipts, please"
    assert history[1:] == (*first.events, *decision.events)
    assert [(e.kind, e.step_number) for e in decision.events] == [
        (EventKind.RETURNED, 2),
        (EventKind.SKIPPED, 3),
    ]


@pytest.mark.parametrize("rounds", [("large", "small", "travel"), ("small", "large")])
def test_a_resubmission_replaces_the_approval_rows_whatever_their_number(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org, rounds: tuple[str, ...]
) -> None:
    expense_id = _travel_claim(expenses, org, "1200.00")
    events = []
    with new_uow() as uow:
        events.extend(uow.expenses.history(org.id, expense_id))
    for policy in rounds:
        sent_back = _send_back(expenses, org, expense_id, 6)
        events.extend(sent_back.events)
        amount = "4000.00" if policy == "large" else "1200.00"
        resubmitted = expenses.resubmit(
            ResubmitExpense(
                expense_id=expense_id,
                user_id=org.person(7),
                amount=money(amount),
                description=f"now {policy}",
                policy_id=getattr(org, policy).id,
            )
        )
        with new_uow() as uow:
            stored = uow.expenses.get(org.id, expense_id)
            history = uow.expenses.history(org.id, expense_id)
        assert stored == resubmitted.expense
        assert (stored.id, stored.status, stored.policy_id) == (
            expense_id,
            ExpenseStatus.PENDING,
            getattr(org, policy).id,
        )
        assert (stored.amount, stored.description) == (money(amount), f"now {policy}")
        expected = {"large": (6, 5, 4), "small": (6,), "travel": (6, 5)}[policy]
        assert [(a.step_number, a.approver_id) for a in stored.approvals] == [
            (i, org.person(level)) for i, level in enumerate(expected, start=1)
        ]
        assert all(
            a.status is ApprovalStatus.PENDING and a.comments is None for a in stored.approvals
        )
        assert history[: len(events)] == tuple(events)
        (resubmission,) = history[len(events) :]
        assert (resubmission.kind, resubmission.actor_id) == (EventKind.RESUBMITTED, org.person(7))
        events.append(resubmission)
        view = expenses.status(expense_id, Viewer.whole_company(org.id))
        assert len(view.approvals) == len(expected)
    # The last round goes through like any other.
    for level in {"large": (6, 5, 4), "small": (6,), "travel": (6, 5)}[rounds[-1]]:
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(level)))
    view = expenses.status(expense_id, Viewer.whole_company(org.id))
    assert view.status is ExpenseStatus.APPROVED
    assert all(a.status is ApprovalStatus.APPROVED for a in view.approvals)


def test_a_resubmission_under_the_same_policy_reroutes_its_steps_in_place(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _travel_claim(expenses, org)
    _send_back(expenses, org, expense_id, 6)
    OrgService(new_uow).change_user(ChangeUser(user_id=org.person(6), active=False))
    resubmitted = expenses.resubmit(
        ResubmitExpense(expense_id=expense_id, user_id=org.person(7), amount=money("1350.00"))
    )
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, expense_id)
    assert stored == resubmitted.expense
    assert [a.approver_id for a in stored.approvals] == [org.person(5), org.person(4)]
    assert stored.amount == money("1350.00")
    assert stored.description == "Berlin"


def test_returned_is_a_filter_of_the_list(expenses: ExpenseService, org: Org) -> None:
    pending = _travel_claim(expenses, org)
    returned = _travel_claim(expenses, org)
    _send_back(expenses, org, returned, 6)

    def listed(status: ExpenseStatus) -> list[ExpenseId]:
        return [
            s.id for s in expenses.list_expenses(Viewer.whole_company(org.id), status=status).items
        ]

    assert listed(ExpenseStatus.RETURNED) == [returned]
    assert listed(ExpenseStatus.PENDING) == [pending]
    everything = expenses.list_expenses(Viewer.whole_company(org.id), user_id=org.person(7)).items
    assert [(s.id, s.status) for s in everything] == [
        (returned, ExpenseStatus.RETURNED),
        (pending, ExpenseStatus.PENDING),
    ]
    expenses.resubmit(ResubmitExpense(expense_id=returned, user_id=org.person(7)))
    assert listed(ExpenseStatus.RETURNED) == []
    assert listed(ExpenseStatus.PENDING) == [returned, pending]


def test_a_returned_expense_waits_on_nobody(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.large.id, amount=money("4000.00"))
    ).expense.id
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(6)))
    _send_back(expenses, org, expense_id, 5)

    def held(level: int) -> tuple[ExpenseId, ...]:
        with new_uow() as uow:
            return uow.org.pending_held_by(org.id, org.person(level))

    def inbox(level: int) -> list[ExpenseId]:
        return [
            i.expense_id
            for i in expenses.inbox(org.person(level), Viewer.whole_company(org.id)).items
        ]

    assert [held(level) for level in (6, 5, 4)] == [(), (), ()]
    assert [inbox(level) for level in (6, 5, 4)] == [[], [], []]
    with new_uow() as uow:
        assert uow.org.pending_submitted_by(org.id, org.person(7)) == ()

    expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=org.person(7)))
    assert [held(level) for level in (6, 5, 4)] == [(expense_id,)] * 3
    assert [inbox(level) for level in (6, 5, 4)] == [[expense_id], [], []]
    with new_uow() as uow:
        assert uow.org.pending_submitted_by(org.id, org.person(7)) == (expense_id,)


def test_a_resubmission_to_fewer_steps_lets_go_of_the_dropped_approvers(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.large.id, amount=money("4000.00"))
    ).expense.id
    _send_back(expenses, org, expense_id, 6)
    expenses.resubmit(
        ResubmitExpense(
            expense_id=expense_id,
            user_id=org.person(7),
            policy_id=org.small.id,
            amount=money("1500.00"),
        )
    )
    with new_uow() as uow:
        held = [uow.org.pending_held_by(org.id, org.person(level)) for level in (6, 5, 4)]
    assert held == [(expense_id,), (), ()]
    # Nobody else holds anything: the dropped approvers may leave freely.
    left = OrgService(new_uow).change_user(ChangeUser(user_id=org.person(4), active=False))
    assert left.reassignments == ()


def test_a_returned_expense_may_be_withdrawn(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _travel_claim(expenses, org)
    _send_back(expenses, org, expense_id, 6)
    decision = expenses.withdraw(WithdrawExpense(expense_id=expense_id, user_id=org.person(7)))
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, expense_id)
        history = uow.expenses.history(org.id, expense_id)
    assert stored == decision.expense
    assert stored.status is ExpenseStatus.WITHDRAWN
    assert stored.completed_at is not None
    assert history[-1].kind is EventKind.WITHDRAWN


def test_a_resubmission_by_category_stores_the_policy_it_picked(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _travel_claim(expenses, org)
    _send_back(expenses, org, expense_id, 6)
    resubmitted = expenses.resubmit(
        ResubmitExpense(
            expense_id=expense_id,
            user_id=org.person(7),
            category="equipment",
            amount=money("2500.00"),
            company_id=org.id,
        )
    )
    assert resubmitted.expense.policy_id == org.large.id
    view = expenses.status(expense_id, Viewer.whole_company(org.id))
    assert (view.policy_id, view.policy_name) == (PolicyId(org.large.id), "Large Equipment")
    assert [a.approver_name for a in view.approvals] == [
        "Frank Miller",
        "Eve Davis",
        "David Wilson",
    ]
