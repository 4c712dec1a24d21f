"""What the pages show, worked out from what the use cases answer: amounts and times as people
read them, the history as sentences, the field an error concerns, and what a person may do now.

Nothing here decides a rule: what someone may do is asked of the workflow's own decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Final

import attrs

from expense_core import workflow
from expense_core.errors import (
    AmountOutsidePolicy,
    DomainError,
    InvalidAmount,
    InvalidInput,
    InvalidText,
    NoApproverForStep,
    NoPolicyFor,
    PolicyChoiceRequired,
    PolicyInactive,
    ReasonRequired,
    UnknownPolicy,
)
from expense_core.model import EventKind, Expense, ExpenseEvent, Money, UserId
from expense_core.services import RoutingExplanation
from expense_core.views import ExpenseView

NARROW_SPACE: Final = "\u202f"
# Only to ask the workflow whether a rejection would be accepted; never stored.
_SOME_REASON: Final = "reason"


def money(amount: Money) -> str:
    """An amount with two decimals and thin-space thousands: the same in every locale."""
    return f"{amount.value:,.2f}".replace(",", NARROW_SPACE)


def utc(at: datetime) -> datetime:
    # A store that hands back naive times keeps UTC in them (the seed's TIMESTAMP columns).
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def instant(at: datetime) -> str:
    """The ISO-8601 UTC instant, for a `<time datetime>` and its title."""
    return utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown_time(at: datetime) -> str:
    """The time as shown before the viewer's browser puts it in their own zone."""
    return utc(at).strftime("%Y-%m-%d %H:%M UTC")


# --- what a person may do now ------------------------------------------------------------------


def allowed_actions(expense: Expense, viewer: UserId, at: datetime) -> frozenset[str]:
    """The decisions the workflow would take from `viewer` on this expense now: a dry run of
    each, so the page offers exactly what the engine would accept."""
    attempts: Mapping[str, Callable[[], object]] = {
        "approve": lambda: workflow.approve(expense, viewer, None, at),
        "reject": lambda: workflow.reject(expense, viewer, _SOME_REASON, at),
        "withdraw": lambda: workflow.withdraw(expense, viewer, at),
        "send_back": lambda: workflow.send_back(expense, viewer, _SOME_REASON, at),
        "resubmit": lambda: workflow.check_resubmission(expense, viewer),
    }
    allowed = set()
    for action, attempt in attempts.items():
        try:
            attempt()
        except DomainError:
            continue
        allowed.add(action)
    return frozenset(allowed)


# --- errors next to their field -----------------------------------------------------------------

FORM: Final = "form"  # an error about the whole form, shown above it


class FieldRefused(InvalidInput):
    """A form field the page itself cannot read (a blank amount, a choice not on the list)."""

    code = "field_refused"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_SUBMISSION_FIELDS: Final = (
    (InvalidAmount, "amount"),
    (AmountOutsidePolicy, "amount"),
    (NoPolicyFor, "amount"),
    (InvalidText, "description"),
    (UnknownPolicy, "policy"),
    (PolicyInactive, "policy"),
    (PolicyChoiceRequired, "policy"),
    (NoApproverForStep, "policy"),
)


def submission_field(exc: DomainError) -> str:
    """The field of the new-expense form a refusal concerns, or `FORM`."""
    if isinstance(exc, FieldRefused):
        return exc.field
    return next((field for kind, field in _SUBMISSION_FIELDS if isinstance(exc, kind)), FORM)


def in_words(exc: DomainError) -> str:
    """A refusal as a sentence for the person at the form."""
    if isinstance(exc, PolicyChoiceRequired):
        return "Choose a policy, or a category and let the amount pick the policy; not both."
    if isinstance(exc, ReasonRequired):
        # The rule names what needs the reason: a rejection, or sending an expense back.
        what = exc.message.removesuffix(" needs a non-empty reason")
        return f"Say why: {what} needs a reason."
    text = exc.message
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


# --- the history as sentences --------------------------------------------------------------------


@attrs.frozen
class Moment:
    """One entry of an expense's timeline."""

    at: datetime
    kind: EventKind
    text: str
    comment: str | None


def names_in(view: ExpenseView, routing: RoutingExplanation | None = None) -> dict[UserId, str]:
    """The names of everyone the expense's page knows: submitter, approvers, today's routing."""
    names = {view.user_id: view.user_name}
    names.update({a.approver_id: a.approver_name for a in view.approvals})
    if routing is not None:
        names.update({s.chosen.id: s.chosen.user.name for s in routing.steps if s.chosen})
    return names


def people_in(events: Iterable[ExpenseEvent]) -> set[UserId]:
    """Everyone the history names."""
    named = ((e.actor_id, e.approver_id, e.previous_approver_id, e.on_behalf_of) for e in events)
    return {user_id for ids in named for user_id in ids if user_id is not None}


_SENTENCES: Final = {
    EventKind.SUBMITTED: "Submitted by {actor}",
    EventKind.APPROVED: "Step {step} approved by {actor}",
    EventKind.REJECTED: "Rejected at step {step} by {actor}",
    EventKind.WITHDRAWN: "Withdrawn by {actor}",
    EventKind.SKIPPED: "Step {step} skipped",
    EventKind.REASSIGNED: "Step {step} moved from {previous} to {approver}",
    EventKind.RETURNED: "Sent back at step {step} by {actor}",
    EventKind.RESUBMITTED: "Resubmitted by {actor}",
    EventKind.ESCALATED: "Step {step} escalated from {previous} to {approver}",
    EventKind.ESCALATION_FAILED: "Step {step} could not be escalated",
}


def timeline(events: Iterable[ExpenseEvent], names: Mapping[UserId, str]) -> list[Moment]:
    """The history, oldest first, one sentence per event."""

    def who(user_id: UserId | None) -> str:
        if user_id is None:
            return "the system"
        return names.get(user_id, f"user {user_id}")

    return [
        Moment(
            e.at,
            e.kind,
            _SENTENCES.get(e.kind, "{kind} by {actor}").format(
                kind=str(e.kind).replace("_", " ").capitalize(),
                actor=who(e.actor_id),
                step=e.step_number,
                previous=who(e.previous_approver_id),
                approver=who(e.approver_id),
            )
            + ("" if e.on_behalf_of is None else f" for {who(e.on_behalf_of)}"),
            e.comment,
        )
        for e in events
    ]
