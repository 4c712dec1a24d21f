"""The expense state machine: pure decisions from (state, command, time) to (new state, events).

An expense is `pending` until it is `approved`, `rejected` or `withdrawn`, all terminal. Required
steps are decided in order; optional steps never block and are skipped when the expense closes.
An expense is approved exactly when no required approval is pending and none is rejected.
A refused command raises and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from expense_core.approvers import RoutedStep
from expense_core.errors import (
    ExpenseClosed,
    NotSubmitter,
    NotYourStep,
    OptionalStepCannotReject,
    ReasonRequired,
    SelfApproval,
    StepAlreadyDecided,
    StepNotReached,
)
from expense_core.model import (
    NEW_EXPENSE,
    Approval,
    ApprovalStatus,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseStatus,
    Member,
    Money,
    Policy,
    UserId,
    check_text,
    make_approval,
    make_event,
    make_expense,
)
from expense_core.policies import check_expense_amount


@attrs.frozen(weakref_slot=False)  # no weak references: see `_decision`
class Decision:
    """The expense after a command, the events it appends, and the step it decided (if any)."""

    expense: Expense
    events: tuple[ExpenseEvent, ...]
    step_number: int | None = None


class _DecisionDraft:
    __slots__ = ("events", "expense", "step_number")
    events: tuple[ExpenseEvent, ...]
    expense: Expense
    step_number: int | None


def _decision(
    expense: Expense, events: tuple[ExpenseEvent, ...], step_number: int | None
) -> Decision:
    # As the builders of `expense_core.model`: every command decides, so a decision is built
    # in a plain slotted draft that then takes its frozen class.
    d = _DecisionDraft()
    d.expense = expense
    d.events = events
    d.step_number = step_number
    d.__class__ = Decision  # type: ignore[assignment]  # the draft becomes what it drafts
    return d  # type: ignore[return-value]


def submit(
    *,
    submitter: Member,
    policy: Policy,
    amount: Money,
    description: str | None,
    routing: Sequence[RoutedStep],
    at: datetime,
) -> Decision:
    """Open a pending expense with one pending approval per routed step.

    The expense carries `NEW_EXPENSE` as its id until a store assigns one.

    Raises:
        InvalidAmount: the amount is zero.
        InvalidText: the description is longer than 2,000 characters.
    """
    check_expense_amount(amount)
    approvals = tuple(
        [
            make_approval(
                r.step.step_order,
                r.approver.user.id,
                r.approver.level.id,
                r.step.is_required,
                _WAITING,
                None,
                None,
            )
            for r in routing
        ]
    )
    expense = make_expense(
        NEW_EXPENSE,
        submitter.user.company_id,
        submitter.user.id,
        policy.id,
        amount,
        check_text("description", description),
        _OPEN,
        at,
        None,
        approvals,
    )
    submitted = _event(expense, _SUBMITTED, submitter.user.id, at)
    for a in approvals:
        if a.required:
            return Decision(expense, (submitted,))
    # A policy of optional steps only needs nobody's approval.
    closed, skipped = _close(expense, ExpenseStatus.APPROVED, submitter.user.id, at)
    return Decision(closed, (submitted, *skipped))


def approve(expense: Expense, actor: UserId, comment: str | None, at: datetime) -> Decision:
    """Approve the actor's step: the current required step, or a pending optional one.

    Raises:
        ExpenseClosed: the expense is no longer pending.
        SelfApproval: the actor submitted the expense.
        NotYourStep: the actor approves no step of this expense.
        StepAlreadyDecided: the actor's step was already decided.
        StepNotReached: the actor's step waits for an earlier required step.
        InvalidText: the comment is longer than 2,000 characters.
    """
    target = _actors_step(expense, actor)
    comment = check_text("comments", comment)
    decided = make_approval(
        target.step_number,
        target.approver_id,
        target.approver_level_id,
        target.required,
        _APPROVED,
        at,
        comment,
    )
    step = target.step_number
    event = _event(expense, _APPROVED_EVENT, actor, at, step, comment)
    approvals = tuple([decided if a.step_number == step else a for a in expense.approvals])
    for a in approvals:
        if a.required and a.status is _WAITING:
            return _decision(_with_approvals(expense, approvals), (event,), step)
    # The last required step: the expense is approved, and optional steps left are skipped.
    closed, skipped = _close(expense, _CLOSED_APPROVED, actor, at, approvals)
    return _decision(closed, (event, *skipped), step)


def reject(expense: Expense, actor: UserId, reason: str | None, at: datetime) -> Decision:
    """Reject the expense at the actor's current required step; the other steps are skipped.

    Raises:
        ExpenseClosed, SelfApproval, NotYourStep, StepAlreadyDecided, StepNotReached: as `approve`.
        OptionalStepCannotReject: the actor only holds an optional step.
        ReasonRequired: the reason is missing or blank.
        InvalidText: the reason is longer than 2,000 characters.
    """
    target = _actors_step(expense, actor)
    if not target.required:
        raise OptionalStepCannotReject(expense.id, target.step_number)
    if reason is None or not reason.strip():
        raise ReasonRequired
    reason = check_text("reason", reason)
    decided = _decide(expense, target, ApprovalStatus.REJECTED, reason, at)
    event = _event(expense, EventKind.REJECTED, actor, at, target.step_number, reason)
    closed, skipped = _close(decided, ExpenseStatus.REJECTED, actor, at)
    return Decision(closed, (event, *skipped), target.step_number)


def withdraw(expense: Expense, actor: UserId, at: datetime) -> Decision:
    """Withdraw a pending expense on its submitter's word; pending steps are skipped.

    Raises:
        NotSubmitter: the actor did not submit the expense.
        ExpenseClosed: the expense is no longer pending.
    """
    if actor != expense.user_id:
        raise NotSubmitter(expense.id, actor)
    if expense.is_terminal:
        raise ExpenseClosed(expense.id, expense.status)
    event = _event(expense, EventKind.WITHDRAWN, actor, at)
    closed, skipped = _close(expense, ExpenseStatus.WITHDRAWN, actor, at)
    return Decision(closed, (event, *skipped))


def reassign(
    expense: Expense, step_number: int, approver: Member, actor: UserId | None, at: datetime
) -> Decision:
    """Move a pending step to another approver, keeping the step's place in the sequence.

    Raises:
        ExpenseClosed: the expense is no longer pending.
        StepAlreadyDecided: the step is not pending.
        SelfApproval: the new approver submitted the expense.
    """
    if expense.is_terminal:
        raise ExpenseClosed(expense.id, expense.status)
    step = expense.approval(step_number)
    if not step.is_pending:
        raise StepAlreadyDecided(expense.id, step_number, step.status)
    if approver.id == expense.user_id:
        raise SelfApproval(expense.id)
    moved = attrs.evolve(step, approver_id=approver.id, approver_level_id=approver.level.id)
    event = attrs.evolve(
        _event(expense, EventKind.REASSIGNED, actor, at, step_number),
        approver_id=approver.id,
        previous_approver_id=step.approver_id,
    )
    return Decision(_replace(expense, moved), (event,), step_number)


def _actors_step(expense: Expense, actor: UserId) -> Approval:
    if expense.status is not _OPEN:
        raise ExpenseClosed(expense.id, expense.status)
    if actor == expense.user_id:
        raise SelfApproval(expense.id)
    current = mine = first_pending = None
    for a in expense.approvals:
        waiting = a.status is _WAITING
        if current is None and waiting and a.required:
            current = a
        if a.approver_id == actor:
            if mine is None:
                mine = a
            if waiting and first_pending is None:
                first_pending = a
    if mine is None:
        raise NotYourStep(expense.id, actor)
    if first_pending is None:
        raise StepAlreadyDecided(expense.id, mine.step_number, mine.status)
    for a in expense.approvals:
        if (
            a.approver_id == actor
            and a.status is _WAITING
            and (not a.required or a is current or a == current)
        ):
            return a
    # Only required steps after the current one remain: steps are sequential.
    assert current is not None  # noqa: S101 -- a pending expense always has a pending required step
    raise StepNotReached(expense.id, first_pending.step_number, current.step_number)


def _decide(
    expense: Expense,
    approval: Approval,
    status: ApprovalStatus,
    comment: str | None,
    at: datetime,
) -> Expense:
    return _replace(
        expense, attrs.evolve(approval, status=status, approved_at=at, comments=comment)
    )


def _replace(expense: Expense, approval: Approval) -> Expense:
    step = approval.step_number
    return _with_approvals(
        expense, tuple([approval if a.step_number == step else a for a in expense.approvals])
    )


def _with_approvals(
    expense: Expense,
    approvals: tuple[Approval, ...],
    status: ExpenseStatus | None = None,
    completed_at: datetime | None = None,
) -> Expense:
    # Not `attrs.evolve`, which costs several times more: every decision builds a new expense.
    return make_expense(
        expense.id,
        expense.company_id,
        expense.user_id,
        expense.policy_id,
        expense.amount,
        expense.description,
        expense.status if status is None else status,
        expense.submitted_at,
        expense.completed_at if completed_at is None else completed_at,
        approvals,
    )


def _close(
    expense: Expense,
    status: ExpenseStatus,
    actor: UserId,
    at: datetime,
    approvals: tuple[Approval, ...] | None = None,
) -> tuple[Expense, tuple[ExpenseEvent, ...]]:
    """The expense closed in `status` with `approvals` (its own if not given), the steps still
    pending skipped; and the events of the skipped steps."""
    if approvals is None:
        approvals = expense.approvals
    skipped = tuple(
        [
            _event(expense, EventKind.SKIPPED, actor, at, a.step_number)
            for a in approvals
            if a.status is _WAITING
        ]
    )
    if skipped:
        approvals = tuple(
            [
                attrs.evolve(a, status=ApprovalStatus.SKIPPED) if a.status is _WAITING else a
                for a in approvals
            ]
        )
    return _with_approvals(expense, approvals, status, at), skipped


# Looking a member up on its enum class costs more than building an event field by field.
_OPEN, _CLOSED_APPROVED = ExpenseStatus.PENDING, ExpenseStatus.APPROVED
_WAITING, _APPROVED = ApprovalStatus.PENDING, ApprovalStatus.APPROVED
_SUBMITTED, _APPROVED_EVENT = EventKind.SUBMITTED, EventKind.APPROVED


def _event(
    expense: Expense,
    kind: EventKind,
    actor: UserId | None,
    at: datetime,
    step_number: int | None = None,
    comment: str | None = None,
) -> ExpenseEvent:
    return make_event(
        expense.id, expense.company_id, kind, at, actor, step_number, comment, None, None
    )
