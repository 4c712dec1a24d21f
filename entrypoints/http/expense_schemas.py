"""The expense API on the wire: the bodies it reads, the responses it writes, and their explicit
mapping from the core's results.

Field names and shapes are the seed's (`SubmitResponse`, `StatusResponse`...); their shared types
(ids, texts, amounts, times) come from `schemas.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import msgspec
from litestar.openapi.spec import Reference
from litestar.params import Parameter
from msgspec import Struct

from entrypoints.http.errors import ErrorBody
from entrypoints.http.schemas import (
    ActorId,
    AmountIn,
    Category,
    Id,
    MoneyOut,
    Text,
    Timestamp,
    maybe_timestamp,
    money,
    timestamp,
)
from expense_core.approvers import StepExplanation
from expense_core.errors import DomainError
from expense_core.model import (
    ApprovalStatus,
    EventKind,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    Member,
)
from expense_core.services import (
    BulkAction,
    BulkDecision,
    RoutingExplanation,
    Submitted,
)
from expense_core.views import ExpenseSummary, ExpenseView, InboxItem, Page
from expense_core.workflow import Decision

# --- requests --------------------------------------------------------------------------------


class SubmitBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """An expense to submit: name the policy (`policy_id`) or let `category` pick it."""

    amount: AmountIn
    user_id: ActorId | None = None
    policy_id: Id | None = None
    category: Category | None = None
    description: Text | None = None


class ApproveBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """An approver approves their step of an expense."""

    expense_id: Id
    approver_id: ActorId | None = None
    comments: Text | None = None


class RejectBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """An approver rejects an expense at their step; the reason is required."""

    expense_id: Id
    approver_id: ActorId | None = None
    reason: Text | None = None


class WithdrawBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """The submitter withdraws a pending expense."""

    user_id: ActorId | None = None


class SendBackBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """The approver of the current step sends the expense back to its submitter, saying why."""

    expense_id: Id
    approver_id: ActorId | None = None
    reason: Text | None = None


class ResubmitBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """The submitter resubmits a returned expense; fields left out (or null) keep their values.

    Name another policy with `policy_id`, or a `category` whose active policy covers the amount;
    with neither the expense keeps its policy, which must still be active and cover the amount.
    """

    user_id: ActorId | None = None
    amount: AmountIn | None = None
    description: Text | None = None
    policy_id: Id | None = None
    category: Category | None = None


class BulkApprove(
    Struct, tag_field="action", tag="approve", forbid_unknown_fields=True, kw_only=True
):
    """Approve the approver's step of an expense, as `POST /api/expenses/approve`."""

    expense_id: Id
    comments: Text | None = None


class BulkReject(
    Struct, tag_field="action", tag="reject", forbid_unknown_fields=True, kw_only=True
):
    """Reject an expense at the approver's step, as `POST /api/expenses/reject`."""

    expense_id: Id
    reason: Text | None = None


class BulkBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """Decisions of one approver (1 to 100), each made on its own, in order."""

    decisions: list[BulkApprove | BulkReject]
    approver_id: ActorId | None = None


# --- responses -------------------------------------------------------------------------------


class ApprovalRequired(Struct):
    step: int
    approver: str
    level: str
    approver_id: int
    required: bool


class SubmitResponse(Struct):
    message: str
    expense_id: int
    status: ExpenseStatus
    amount: MoneyOut
    approvals_required: list[ApprovalRequired]
    policy_id: int


class ApproveResponse(Struct):
    message: str
    expense_id: int
    step_approved: int
    expense_status: ExpenseStatus
    pending_approvals: int
    # The absent approver a delegate approved for; null when approvers decide their own step.
    on_behalf_of: int | None


class RejectResponse(Struct):
    message: str
    expense_id: int
    step_rejected: int
    expense_status: ExpenseStatus
    on_behalf_of: int | None


class WithdrawResponse(Struct):
    message: str
    expense_id: int
    expense_status: ExpenseStatus


class SendBackResponse(Struct):
    """As a rejection's answer, for the step sent back; the expense is `returned`."""

    message: str
    expense_id: int
    step_returned: int
    expense_status: ExpenseStatus
    on_behalf_of: int | None


# msgspec cannot describe a union of untagged structs (responses carry no tag): the schema names
# the three bodies by hand.
BulkAnswer = Annotated[
    Any,
    Parameter(
        description=(
            "The body the decision's own endpoint would have answered: an `ApproveResponse`, a "
            "`RejectResponse` or, when refused, an `ErrorBody`."
        ),
        schema_extra={
            "oneOf": [
                Reference(f"#/components/schemas/{name}")
                for name in ("ApproveResponse", "RejectResponse", "ErrorBody")
            ]
        },
    ),
]


class BulkResult(Struct):
    """One decision of a bulk call: the status and body it would have answered alone."""

    expense_id: int
    status: int
    body: BulkAnswer


class BulkResponse(Struct):
    results: list[BulkResult]


class ApprovalOut(Struct):
    step_number: int
    approver_name: str
    approver_level: str
    status: ApprovalStatus
    approved_at: Timestamp | None
    comments: str | None
    required: bool
    approver_id: int


class StatusResponse(Struct):
    id: int
    amount: MoneyOut
    description: str | None
    status: ExpenseStatus
    submitted_at: Timestamp
    completed_at: Timestamp | None
    user_name: str
    policy_name: str
    approvals: list[ApprovalOut]
    user_id: int
    policy_id: int
    pending_approvals: int
    policy_active: bool


class ExpenseItem(Struct):
    id: int
    user_id: int
    policy_id: int
    amount: MoneyOut
    description: str | None
    status: ExpenseStatus
    submitted_at: Timestamp
    completed_at: Timestamp | None


class ExpensePage(Struct):
    """A page of expenses, newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[ExpenseItem]
    next_cursor: int | None


class InboxEntry(Struct):
    expense_id: int
    step_number: int
    required: bool
    amount: MoneyOut
    description: str | None
    submitted_at: Timestamp
    submitter_id: int
    submitter_name: str
    policy_name: str
    # Whose step it is when the inbox's owner covers for them; null for their own.
    on_behalf_of: int | None


class InboxPage(Struct):
    """The steps an approver can act on now, oldest expense first."""

    items: list[InboxEntry]
    next_cursor: int | None


class EventOut(Struct):
    kind: EventKind
    at: Timestamp
    actor_id: int | None
    step_number: int | None
    comment: str | None
    approver_id: int | None
    previous_approver_id: int | None
    on_behalf_of: int | None


class HistoryResponse(Struct):
    expense_id: int
    events: list[EventOut]


class PersonOut(Struct):
    user_id: int
    name: str
    level_number: int
    level_name: str


class VerdictOut(Struct):
    person: PersonOut
    verdict: str


class StepExplanationOut(Struct):
    step_number: int
    required_level: int
    team_scope: str
    required: bool
    assigned_approver_id: int | None
    chosen_today: PersonOut | None
    rule: str
    considered: list[VerdictOut]


class ExplainResponse(Struct):
    """Who today's organisation routes each step to, and why; `assigned_approver_id` is who
    the step was fixed to at submission."""

    expense_id: int
    steps: list[StepExplanationOut]


# --- mapping ---------------------------------------------------------------------------------


def submit_response(submitted: Submitted) -> SubmitResponse:
    expense = submitted.expense
    by_id = {m.id: m for m in submitted.approvers}
    status = expense.status
    if submitted.replayed:
        # A replay answers as the first response did, whatever happened to the expense since.
        required = any(a.required for a in expense.approvals)
        status = ExpenseStatus.PENDING if required else ExpenseStatus.APPROVED
    return SubmitResponse(
        message="Expense created successfully",
        expense_id=expense.id,
        status=status,
        amount=money(expense.amount),
        approvals_required=[
            ApprovalRequired(
                step=a.step_number,
                approver=by_id[a.approver_id].user.name,
                level=by_id[a.approver_id].level.level_name,
                approver_id=a.approver_id,
                required=a.required,
            )
            for a in expense.approvals
        ],
        policy_id=expense.policy_id,
    )


def approve_response(decision: Decision) -> ApproveResponse:
    assert decision.step_number is not None  # noqa: S101 -- an approval always decides a step
    return ApproveResponse(
        message="Approval submitted successfully",
        expense_id=decision.expense.id,
        step_approved=decision.step_number,
        expense_status=decision.expense.status,
        pending_approvals=decision.expense.pending_required,
        on_behalf_of=decision.on_behalf_of,
    )


def reject_response(decision: Decision) -> RejectResponse:
    assert decision.step_number is not None  # noqa: S101 -- a rejection always decides a step
    return RejectResponse(
        message="Expense rejected",
        expense_id=decision.expense.id,
        step_rejected=decision.step_number,
        expense_status=decision.expense.status,
        on_behalf_of=decision.on_behalf_of,
    )


def withdraw_response(decision: Decision) -> WithdrawResponse:
    return WithdrawResponse(
        message="Expense withdrawn",
        expense_id=decision.expense.id,
        expense_status=decision.expense.status,
    )


def send_back_response(decision: Decision) -> SendBackResponse:
    assert decision.step_number is not None  # noqa: S101 -- a send-back always decides a step
    return SendBackResponse(
        message="Expense sent back to its submitter",
        expense_id=decision.expense.id,
        step_returned=decision.step_number,
        expense_status=decision.expense.status,
        on_behalf_of=decision.on_behalf_of,
    )


def resubmit_response(submitted: Submitted) -> SubmitResponse:
    """A submission's answer, for the expense's new round of approvals."""
    return msgspec.structs.replace(submit_response(submitted), message="Expense resubmitted")


def bulk_decisions(body: BulkBody) -> tuple[BulkDecision, ...]:
    return tuple(_bulk_decision(d) for d in body.decisions)


def _bulk_decision(item: BulkApprove | BulkReject) -> BulkDecision:
    expense_id = ExpenseId(item.expense_id)
    if isinstance(item, BulkApprove):
        return BulkDecision(expense_id=expense_id, action=BulkAction.APPROVE, comment=item.comments)
    return BulkDecision(expense_id=expense_id, action=BulkAction.REJECT, comment=item.reason)


def bulk_response(
    decisions: Sequence[BulkDecision],
    outcomes: Sequence[Decision | DomainError],
    refusal: Callable[[DomainError], tuple[int, ErrorBody]],
) -> BulkResponse:
    """Each decision answered as its own endpoint would: a refusal's status and body come from
    `refusal`, the error handlers' mapping."""
    return BulkResponse(
        results=[
            _bulk_result(item, outcome, refusal)
            for item, outcome in zip(decisions, outcomes, strict=True)
        ]
    )


def _bulk_result(
    item: BulkDecision,
    outcome: Decision | DomainError,
    refusal: Callable[[DomainError], tuple[int, ErrorBody]],
) -> BulkResult:
    if isinstance(outcome, DomainError):
        status, error = refusal(outcome)
        return BulkResult(expense_id=item.expense_id, status=status, body=error)
    body = (
        approve_response(outcome) if item.action is BulkAction.APPROVE else reject_response(outcome)
    )
    return BulkResult(expense_id=item.expense_id, status=200, body=body)


def status_response(view: ExpenseView) -> StatusResponse:
    return StatusResponse(
        id=view.id,
        amount=money(view.amount),
        description=view.description,
        status=view.status,
        submitted_at=timestamp(view.submitted_at),
        completed_at=maybe_timestamp(view.completed_at),
        user_name=view.user_name,
        policy_name=view.policy_name,
        approvals=[
            ApprovalOut(
                step_number=a.step_number,
                approver_name=a.approver_name,
                approver_level=a.approver_level,
                status=a.status,
                approved_at=maybe_timestamp(a.approved_at),
                comments=a.comments,
                required=a.required,
                approver_id=a.approver_id,
            )
            for a in view.approvals
        ],
        user_id=view.user_id,
        policy_id=view.policy_id,
        pending_approvals=view.pending_required,
        policy_active=view.policy_active,
    )


def expense_page(page: Page[ExpenseSummary]) -> ExpensePage:
    return ExpensePage(
        items=[
            ExpenseItem(
                id=s.id,
                user_id=s.user_id,
                policy_id=s.policy_id,
                amount=money(s.amount),
                description=s.description,
                status=s.status,
                submitted_at=timestamp(s.submitted_at),
                completed_at=maybe_timestamp(s.completed_at),
            )
            for s in page.items
        ],
        next_cursor=page.next_cursor,
    )


def inbox_page(page: Page[InboxItem]) -> InboxPage:
    return InboxPage(
        items=[
            InboxEntry(
                expense_id=i.expense_id,
                step_number=i.step_number,
                required=i.required,
                amount=money(i.amount),
                description=i.description,
                submitted_at=timestamp(i.submitted_at),
                submitter_id=i.submitter_id,
                submitter_name=i.submitter_name,
                policy_name=i.policy_name,
                on_behalf_of=i.on_behalf_of,
            )
            for i in page.items
        ],
        next_cursor=page.next_cursor,
    )


def history_response(expense_id: int, events: tuple[ExpenseEvent, ...]) -> HistoryResponse:
    return HistoryResponse(
        expense_id=expense_id,
        events=[event_out(e) for e in events],
    )


def event_out(e: ExpenseEvent) -> EventOut:
    """One event of an expense's history (also the `event` of a webhook message)."""
    return EventOut(
        kind=e.kind,
        at=timestamp(e.at),
        actor_id=e.actor_id,
        step_number=e.step_number,
        comment=e.comment,
        approver_id=e.approver_id,
        previous_approver_id=e.previous_approver_id,
        on_behalf_of=e.on_behalf_of,
    )


def _person(member: Member) -> PersonOut:
    return PersonOut(
        user_id=member.id,
        name=member.user.name,
        level_number=member.level_number,
        level_name=member.level.level_name,
    )


def _step(explained: StepExplanation, assigned: dict[int, int]) -> StepExplanationOut:
    step = explained.step
    return StepExplanationOut(
        step_number=step.step_order,
        required_level=step.required_level,
        team_scope=str(step.team_scope),
        required=step.is_required,
        assigned_approver_id=assigned.get(step.step_order),
        chosen_today=None if explained.chosen is None else _person(explained.chosen),
        rule=explained.rule,
        considered=[VerdictOut(_person(v.member), v.reason) for v in explained.considered],
    )


def explain_response(explanation: RoutingExplanation) -> ExplainResponse:
    assigned = {a.step_number: int(a.approver_id) for a in explanation.expense.approvals}
    return ExplainResponse(
        expense_id=explanation.expense.id,
        steps=[_step(s, assigned) for s in explanation.steps],
    )
