"""The expense state machine as pure decisions: state, command and time in; state and events out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import attrs
import pytest

from expense_core import workflow
from expense_core.approvers import RoutedStep
from expense_core.errors import (
    ExpenseClosed,
    InvalidAmount,
    InvalidText,
    NotSubmitter,
    NotYourStep,
    OptionalStepCannotReject,
    ReasonRequired,
    SelfApproval,
    StepAlreadyDecided,
    StepNotReached,
)
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    CompanyId,
    EventKind,
    Expense,
    ExpenseId,
    ExpenseStatus,
    Member,
    Policy,
    PolicyId,
    UserId,
    with_expense_id,
)
from tests.clocks import START
from tests.unit.support import member
from tests.unit.support import money as m

SUBMITTER = member(7, 7)
MANAGER, SEM, AD, FINANCE = member(6, 6), member(5, 5), member(4, 4), member(20, 5, team=2)
STRANGER = UserId(99)
T1, T2, T3, T4 = (START + timedelta(minutes=i) for i in range(1, 5))


def open_expense(*route: tuple[Member, bool], amount: str = "4000.00") -> Expense:
    """A stored pending expense with one step per (approver, is_required), in that order."""
    routing = tuple(
        RoutedStep(
            ApprovalStep(step_order=i, required_level=approver.level_number, is_required=required),
            approver,
            "test",
        )
        for i, (approver, required) in enumerate(route, start=1)
    )
    decision = workflow.submit(
        submitter=SUBMITTER,
        policy=Policy(
            id=PolicyId(2), company_id=CompanyId(1), category="equipment", name="Large Equipment"
        ),
        amount=m(amount),
        description="workstation",
        routing=routing,
        at=START,
    )
    return attrs.evolve(decision.expense, id=ExpenseId(1))


def three_steps() -> Expense:
    return open_expense((MANAGER, True), (SEM, True), (AD, True))


def with_optional() -> Expense:
    """Manager, then an optional Finance look, then SEM."""
    return open_expense((MANAGER, True), (FINANCE, False), (SEM, True))


def statuses(expense: Expense) -> list[str]:
    return [str(a.status) for a in expense.approvals]


def kinds(decision: workflow.Decision) -> list[tuple[str, int | None]]:
    return [(str(e.kind), e.step_number) for e in decision.events]


# --- submit ----------------------------------------------------------------------------------


def test_submission_opens_a_pending_expense_with_one_pending_approval_per_step() -> None:
    expense = with_optional()
    assert expense.status is ExpenseStatus.PENDING
    assert expense.submitted_at == START
    assert expense.completed_at is None
    assert [(a.step_number, a.approver_id, a.required) for a in expense.approvals] == [
        (1, 6, True),
        (2, 20, False),
        (3, 5, True),
    ]
    assert [a.approver_level_id for a in expense.approvals] == [106, 205, 105]
    assert statuses(expense) == ["pending"] * 3
    assert expense.pending_required == 2
    assert expense.current_step == expense.approval(1)


def test_submission_appends_one_submitted_event_by_the_submitter() -> None:
    decision = workflow.submit(
        submitter=SUBMITTER,
        policy=Policy(id=PolicyId(1), company_id=CompanyId(1), category="c", name="n"),
        amount=m("10.00"),
        description=None,
        routing=(RoutedStep(ApprovalStep(step_order=1, required_level=6), MANAGER, "test"),),
        at=START,
    )
    (event,) = decision.events
    assert (event.kind, event.actor_id, event.at, event.step_number) == (
        EventKind.SUBMITTED,
        SUBMITTER.id,
        START,
        None,
    )
    assert event.company_id == 1


def test_submission_refuses_a_zero_amount() -> None:
    with pytest.raises(InvalidAmount, match="greater than 0"):
        open_expense((MANAGER, True), amount="0.00")


def test_submission_refuses_an_overlong_description() -> None:
    with pytest.raises(InvalidText, match="description"):
        workflow.submit(
            submitter=SUBMITTER,
            policy=Policy(id=PolicyId(1), company_id=CompanyId(1), category="c", name="n"),
            amount=m("10.00"),
            description="d" * 2001,
            routing=(RoutedStep(ApprovalStep(step_order=1, required_level=6), MANAGER, "t"),),
            at=START,
        )


def test_a_submission_needing_no_required_approval_is_approved_at_once() -> None:
    expense = open_expense((MANAGER, False))
    assert expense.status is ExpenseStatus.APPROVED
    assert expense.completed_at == START
    assert statuses(expense) == ["skipped"]


# --- approve ---------------------------------------------------------------------------------


def test_approving_the_current_step_records_who_when_and_why() -> None:
    decision = workflow.approve(three_steps(), MANAGER.id, "fine", T1)
    first = decision.expense.approval(1)
    assert (first.status, first.approved_at, first.comments) == (
        ApprovalStatus.APPROVED,
        T1,
        "fine",
    )
    assert decision.step_number == 1
    assert decision.expense.status is ExpenseStatus.PENDING
    assert decision.expense.current_step == decision.expense.approval(2)
    (event,) = decision.events
    assert (event.kind, event.actor_id, event.at, event.step_number, event.comment) == (
        EventKind.APPROVED,
        MANAGER.id,
        T1,
        1,
        "fine",
    )
    assert event.expense_id == 1


def test_second_step_waits_for_the_first() -> None:
    with pytest.raises(StepNotReached, match="step 2 of expense 1 waits for step 1"):
        workflow.approve(three_steps(), SEM.id, None, T1)


def test_third_step_waits_for_the_second() -> None:
    after_first = workflow.approve(three_steps(), MANAGER.id, None, T1).expense
    with pytest.raises(StepNotReached, match="waits for step 2"):
        workflow.approve(after_first, AD.id, None, T2)


def test_the_last_required_approval_approves_the_expense() -> None:
    expense = three_steps()
    for at, approver in zip((T1, T2, T3), (MANAGER, SEM, AD), strict=True):
        assert expense.status is ExpenseStatus.PENDING
        decision = workflow.approve(expense, approver.id, None, at)
        expense = decision.expense
    assert expense.status is ExpenseStatus.APPROVED
    assert expense.completed_at == T3
    assert statuses(expense) == ["approved"] * 3
    assert kinds(decision) == [("approved", 3)]


def test_a_step_cannot_be_approved_twice() -> None:
    after_first = workflow.approve(three_steps(), MANAGER.id, None, T1).expense
    with pytest.raises(StepAlreadyDecided, match="step 1 of expense 1 is already approved"):
        workflow.approve(after_first, MANAGER.id, None, T2)


def test_only_an_approver_of_the_expense_may_decide() -> None:
    with pytest.raises(NotYourStep, match="user 99 is not an approver"):
        workflow.approve(three_steps(), STRANGER, None, T1)


def test_the_submitter_can_never_decide_on_their_own_expense() -> None:
    with pytest.raises(SelfApproval):
        workflow.approve(three_steps(), SUBMITTER.id, None, T1)
    with pytest.raises(SelfApproval):
        workflow.reject(three_steps(), SUBMITTER.id, "no", T1)


def test_self_approval_is_refused_even_on_an_approval_row_naming_the_submitter() -> None:
    # Resolution never routes a step to the submitter; the decision re-checks it all the same.
    expense = open_expense((SUBMITTER, True))
    with pytest.raises(SelfApproval):
        workflow.approve(expense, SUBMITTER.id, None, T1)


def test_an_overlong_comment_is_refused() -> None:
    with pytest.raises(InvalidText, match="comments"):
        workflow.approve(three_steps(), MANAGER.id, "c" * 2001, T1)


# --- optional steps --------------------------------------------------------------------------


def test_an_optional_step_may_be_approved_before_the_required_ones() -> None:
    decision = workflow.approve(with_optional(), FINANCE.id, "looked", T1)
    assert statuses(decision.expense) == ["pending", "approved", "pending"]
    assert decision.expense.current_step == decision.expense.approval(1)
    assert decision.expense.status is ExpenseStatus.PENDING
    assert decision.step_number == 2


def test_an_optional_step_never_blocks_and_is_skipped_when_the_expense_closes() -> None:
    expense = workflow.approve(with_optional(), MANAGER.id, None, T1).expense
    decision = workflow.approve(expense, SEM.id, None, T2)
    assert decision.expense.status is ExpenseStatus.APPROVED
    assert statuses(decision.expense) == ["approved", "skipped", "approved"]
    assert kinds(decision) == [("approved", 3), ("skipped", 2)]
    skipped = decision.events[1]
    assert (skipped.actor_id, skipped.at) == (SEM.id, T2)


def test_an_optional_step_cannot_reject() -> None:
    with pytest.raises(OptionalStepCannotReject, match="step 2 of expense 1 is optional"):
        workflow.reject(with_optional(), FINANCE.id, "too much", T1)


def test_an_optional_step_cannot_be_approved_once_the_expense_closed() -> None:
    expense = workflow.approve(with_optional(), MANAGER.id, None, T1).expense
    closed = workflow.approve(expense, SEM.id, None, T2).expense
    with pytest.raises(ExpenseClosed, match="expense 1 is already approved"):
        workflow.approve(closed, FINANCE.id, None, T3)


# --- reject ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   ", "\n\t"])
def test_rejection_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(ReasonRequired):
        workflow.reject(three_steps(), MANAGER.id, reason, T1)


def test_rejection_closes_the_expense_and_skips_the_rest() -> None:
    after_first = workflow.approve(with_optional(), MANAGER.id, None, T1).expense
    decision = workflow.reject(after_first, SEM.id, "over budget", T2)
    expense = decision.expense
    assert expense.status is ExpenseStatus.REJECTED
    assert expense.completed_at == T2
    assert statuses(expense) == ["approved", "skipped", "rejected"]
    rejected = expense.approval(3)
    assert (rejected.comments, rejected.approved_at) == ("over budget", T2)
    assert kinds(decision) == [("rejected", 3), ("skipped", 2)]
    assert decision.events[0].comment == "over budget"
    assert decision.step_number == 3


def test_rejection_waits_for_its_step_like_approval() -> None:
    with pytest.raises(StepNotReached):
        workflow.reject(three_steps(), AD.id, "no", T1)


def test_an_overlong_reason_is_refused() -> None:
    with pytest.raises(InvalidText, match="reason"):
        workflow.reject(three_steps(), MANAGER.id, "r" * 2001, T1)


# --- withdraw --------------------------------------------------------------------------------


def test_the_submitter_may_withdraw_a_pending_expense() -> None:
    after_first = workflow.approve(with_optional(), MANAGER.id, None, T1).expense
    decision = workflow.withdraw(after_first, SUBMITTER.id, T2)
    assert decision.expense.status is ExpenseStatus.WITHDRAWN
    assert decision.expense.completed_at == T2
    assert statuses(decision.expense) == ["approved", "skipped", "skipped"]
    assert kinds(decision) == [("withdrawn", None), ("skipped", 2), ("skipped", 3)]
    assert decision.step_number is None


@pytest.mark.parametrize("actor", [MANAGER.id, STRANGER])
def test_only_the_submitter_may_withdraw(actor: UserId) -> None:
    with pytest.raises(NotSubmitter, match=f"user {actor} is not"):
        workflow.withdraw(three_steps(), actor, T1)


# --- terminal states -------------------------------------------------------------------------


def approved() -> Expense:
    expense = open_expense((MANAGER, True), (SEM, False))
    return workflow.approve(expense, MANAGER.id, None, T1).expense


def rejected() -> Expense:
    return workflow.reject(three_steps(), MANAGER.id, "no", T1).expense


def withdrawn() -> Expense:
    return workflow.withdraw(three_steps(), SUBMITTER.id, T1).expense


@pytest.mark.parametrize("closed", [approved, rejected, withdrawn])
@pytest.mark.parametrize(
    "command",
    [
        lambda e: workflow.approve(e, MANAGER.id, None, T4),
        lambda e: workflow.approve(e, SEM.id, None, T4),
        lambda e: workflow.reject(e, SEM.id, "late", T4),
        lambda e: workflow.withdraw(e, SUBMITTER.id, T4),
    ],
    ids=["approve-decided-step", "approve-open-step", "reject", "withdraw"],
)
def test_a_terminal_expense_refuses_every_command(
    closed: Callable[[], Expense], command: Callable[[Expense], workflow.Decision]
) -> None:
    expense = closed()
    assert expense.is_terminal
    with pytest.raises(ExpenseClosed, match=f"already {expense.status}"):
        command(expense)


# --- reassign --------------------------------------------------------------------------------


def test_reassignment_moves_a_pending_step_and_says_from_whom() -> None:
    other_manager = member(16, 6)
    decision = workflow.reassign(three_steps(), 1, other_manager, None, T1)
    step = decision.expense.approval(1)
    assert (step.approver_id, step.approver_level_id, step.status) == (
        16,
        106,
        ApprovalStatus.PENDING,
    )
    (event,) = decision.events
    assert (event.kind, event.approver_id, event.previous_approver_id, event.step_number) == (
        EventKind.REASSIGNED,
        16,
        6,
        1,
    )
    with pytest.raises(NotYourStep):
        workflow.approve(decision.expense, MANAGER.id, None, T2)
    assert workflow.approve(decision.expense, other_manager.id, None, T2).step_number == 1


def test_stamping_a_stored_id_changes_nothing_else() -> None:
    moved = workflow.reassign(with_optional(), 1, member(16, 6), STRANGER, T1)
    closed = workflow.reject(moved.expense, UserId(16), "over budget", T2)
    assert closed.expense.completed_at == T2
    assert closed.expense.with_id(ExpenseId(8)) == attrs.evolve(closed.expense, id=ExpenseId(8))
    events = (*moved.events, *closed.events)
    assert with_expense_id(events, ExpenseId(8)) == tuple(
        attrs.evolve(e, expense_id=ExpenseId(8)) for e in events
    )


def test_reassignment_refuses_the_submitter_a_decided_step_and_a_closed_expense() -> None:
    with pytest.raises(SelfApproval):
        workflow.reassign(three_steps(), 1, SUBMITTER, None, T1)
    after_first = workflow.approve(three_steps(), MANAGER.id, None, T1).expense
    with pytest.raises(StepAlreadyDecided):
        workflow.reassign(after_first, 1, SEM, None, T2)
    with pytest.raises(ExpenseClosed):
        workflow.reassign(withdrawn(), 2, member(16, 6), None, T2)


def test_time_is_taken_from_the_command_not_a_clock() -> None:
    late = datetime(2031, 1, 1, tzinfo=START.tzinfo)
    decision = workflow.approve(three_steps(), MANAGER.id, None, late)
    assert decision.expense.approval(1).approved_at == late
    assert decision.events[0].at == late
