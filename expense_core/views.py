"""Read models: what queries answer, shaped for the people who ask (names, levels, pages)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import attrs

from expense_core.model import (
    ApprovalStatus,
    CompanyId,
    ExpenseId,
    ExpenseStatus,
    Money,
    PolicyId,
    UserId,
)

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class ApprovalView:
    step_number: int
    approver_id: UserId
    approver_name: str
    approver_level: str
    status: ApprovalStatus
    approved_at: datetime | None
    comments: str | None
    required: bool


@attrs.frozen(kw_only=True)
class ExpenseView:
    """An expense with the names the status page shows."""

    id: ExpenseId
    company_id: CompanyId
    amount: Money
    description: str | None
    status: ExpenseStatus
    submitted_at: datetime
    completed_at: datetime | None
    user_id: UserId
    user_name: str
    policy_id: PolicyId
    policy_name: str
    approvals: tuple[ApprovalView, ...]
    # Which policy version routed it: a deactivated policy has been replaced by a successor.
    policy_active: bool = True

    @property
    def pending_required(self) -> int:
        return sum(1 for a in self.approvals if a.required and a.status is ApprovalStatus.PENDING)


@attrs.frozen(kw_only=True)
class ExpenseSummary:
    id: ExpenseId
    company_id: CompanyId
    user_id: UserId
    policy_id: PolicyId
    amount: Money
    description: str | None
    status: ExpenseStatus
    submitted_at: datetime
    completed_at: datetime | None


@attrs.frozen(kw_only=True)
class InboxItem:
    """A step an approver can act on now: the current required step or a pending optional one."""

    expense_id: ExpenseId
    step_number: int
    required: bool
    amount: Money
    description: str | None
    submitted_at: datetime
    submitter_id: UserId
    submitter_name: str
    policy_name: str
    # The absent approver whose step it is, when the inbox's owner covers for them.
    on_behalf_of: UserId | None = None


@attrs.frozen
class Page(Generic[T]):
    """One page of a keyset-paginated list; pass `next_cursor` back to get the next one."""

    items: tuple[T, ...]
    next_cursor: int | None


@attrs.frozen(kw_only=True)
class Backlog:
    """What waits for a decision across every company: an operator's figure, not a tenant's.

    `oldest_pending_since` is the submission of the oldest expense with a pending step (its
    steps have waited since), None when nothing is pending.
    """

    pending_steps: int
    oldest_pending_since: datetime | None
