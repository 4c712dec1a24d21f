"""What the world outside is told: the notices a change writes to the outbox.

A notice is written in the same unit of work as the change it reports (the transactional
outbox); a worker delivers it later. Each notice is tied to one of the events the change
appended, which it carries to its receivers.

The types:
- `expense.submitted|approved|rejected|withdrawn|returned|resubmitted`: the expense's status
  changed (or it was submitted again);
- `approval.decided`: a step was approved, rejected or sent back;
- `approval.escalated`, `approval.reassigned`: a step moved to another approver;
- `approval.requested`: someone may act now who could not before (`recipient_id`): the
  approver of the step that became current, of each optional step of a new round, or the new
  approver of a step that moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import NamedTuple

import attrs

from expense_core.model import (
    Approval,
    ApprovalStatus,
    CompanyId,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    UserId,
)


class Topic(StrEnum):
    EXPENSE_SUBMITTED = "expense.submitted"
    EXPENSE_APPROVED = "expense.approved"
    EXPENSE_REJECTED = "expense.rejected"
    EXPENSE_WITHDRAWN = "expense.withdrawn"
    EXPENSE_RETURNED = "expense.returned"
    EXPENSE_RESUBMITTED = "expense.resubmitted"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_DECIDED = "approval.decided"
    APPROVAL_ESCALATED = "approval.escalated"
    APPROVAL_REASSIGNED = "approval.reassigned"


TOPICS = frozenset(Topic)


class Notice(NamedTuple):
    """One outbox row: a topic, the position of its event among those the change appended, and
    for `approval.requested` who is asked to act. (A tuple: a change makes several, and a
    tuple is made in a fraction of a frozen class's time.)"""

    topic: Topic
    event: int
    recipient_id: UserId | None = None


# What each event kind says on its own; the status a change leads to says the rest.
_BY_KIND: dict[EventKind, Topic] = {
    EventKind.SUBMITTED: Topic.EXPENSE_SUBMITTED,
    EventKind.RESUBMITTED: Topic.EXPENSE_RESUBMITTED,
    EventKind.WITHDRAWN: Topic.EXPENSE_WITHDRAWN,
    EventKind.APPROVED: Topic.APPROVAL_DECIDED,
    EventKind.REJECTED: Topic.APPROVAL_DECIDED,
    EventKind.RETURNED: Topic.APPROVAL_DECIDED,
    EventKind.ESCALATED: Topic.APPROVAL_ESCALATED,
    EventKind.REASSIGNED: Topic.APPROVAL_REASSIGNED,
}
_CLOSED_AS: dict[ExpenseStatus, Topic] = {
    ExpenseStatus.APPROVED: Topic.EXPENSE_APPROVED,
    ExpenseStatus.REJECTED: Topic.EXPENSE_REJECTED,
    ExpenseStatus.RETURNED: Topic.EXPENSE_RETURNED,
}
# Module globals: an enum member looked up on its class is slow on Python 3.11 (see workflow).
_PENDING = ApprovalStatus.PENDING
_OPEN = ExpenseStatus.PENDING
_ESCALATED = EventKind.ESCALATED
_REQUESTED = Topic.APPROVAL_REQUESTED


def notices(
    before: Expense | None, after: Expense, events: Sequence[ExpenseEvent]
) -> tuple[Notice, ...]:
    """The notices of a change from `before` (None for a submission) to `after` that appended
    `events`, in the order receivers should see them: each event's own, then the new status
    (tied to the event that decided it), then who is asked to act now."""
    if not events:
        return ()
    found: list[Notice] = []
    decisive = None
    for position, event in enumerate(events):
        topic = _BY_KIND.get(event.kind)
        if topic is not None:
            found.append(Notice(topic, position))
            if decisive is None and event.kind is not _ESCALATED:
                decisive = position
    status = after.status
    if status is _OPEN:
        waiting = (
            [(a.step_number, a.approver_id) for a in _actionable(before)]
            if before is not None and before.status is _OPEN
            else ()
        )
        for step in _actionable(after):
            if (step.step_number, step.approver_id) not in waiting:
                cause = _cause(events, step.step_number)
                found.append(Notice(_REQUESTED, cause, step.approver_id))
    elif status in _CLOSED_AS and (before is None or before.status is not status):
        found.append(Notice(_CLOSED_AS[status], decisive if decisive is not None else 0))
    return tuple(found)


def _actionable(expense: Expense) -> list[Approval]:
    """The steps that can be decided now: the current required one (the first pending) and
    every pending optional one (see `workflow`), in one pass."""
    found = []
    reached = False
    for a in expense.approvals:
        if a.status is _PENDING:
            if a.required:
                if reached:
                    continue
                reached = True
            found.append(a)
    return found


def _cause(events: Sequence[ExpenseEvent], step_number: int) -> int:
    """The event that made a step actionable: the last about that step, else the last one."""
    for position in range(len(events) - 1, -1, -1):
        if events[position].step_number == step_number:
            return position
    return len(events) - 1


@attrs.frozen(kw_only=True)
class OutboxEntry:
    """A stored notice, with the event it reports, as the worker reads it."""

    id: int
    company_id: CompanyId
    expense_id: ExpenseId
    topic: Topic
    event: ExpenseEvent
    recipient_id: UserId | None = None
