"""Delegation: who may decide an absent approver's steps, when, and which of them.

A user names one delegate for a period `[starts_at, ends_at)`. While it runs, the delegate may
decide every step assigned to the absent user, where they would be allowed to themselves apart
from team scope: never as the submitter, never as the approver of another step of the same
expense (four eyes), and only at the step's required level or more senior. The steps stay the
absent user's. Not transitive: a delegate's own delegate inherits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from expense_core.errors import (
    DelegateAuditor,
    DelegateInactive,
    DelegationCycle,
    DelegationPeriodEmpty,
    NaiveTimestamp,
    SelfDelegation,
    TimestampOutOfRange,
    UnknownDelegate,
)
from expense_core.model import (
    Approval,
    CompanyId,
    Expense,
    Member,
    Role,
    UserId,
    check_text,
)


@attrs.frozen(kw_only=True)
class Delegation:
    """`delegate_id` may act for `user_id`, who is away from `starts_at` until `ends_at`."""

    company_id: CompanyId
    user_id: UserId
    delegate_id: UserId
    starts_at: datetime
    ends_at: datetime
    note: str | None = None

    def is_active(self, at: datetime) -> bool:
        """Whether the period holds `at`: its start counts, its end does not."""
        return self.starts_at <= at < self.ends_at

    def overlaps(self, other: Delegation) -> bool:
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at


@attrs.frozen(kw_only=True)
class Cover:
    """A delegation as a decision on one step of an expense weighs it: the step it is about
    (one whose approver is the delegation's absent user), the level that step requires and
    the delegate's own level."""

    step_number: int
    delegation: Delegation
    required_level: int
    delegate_level: int


def new_delegation(
    *,
    user: Member,
    delegate: Member,
    starts_at: datetime,
    ends_at: datetime,
    note: str | None,
    delegates_own: Delegation | None,
) -> Delegation:
    """Check a delegation from `user` to `delegate`; `delegates_own` is the delegate's own
    delegation, if they have one.

    Raises:
        NaiveTimestamp: a time without a time zone.
        TimestampOutOfRange: a time whose UTC date falls outside years 1 to 9999.
        DelegationPeriodEmpty: `ends_at` is not after `starts_at`.
        SelfDelegation: the delegate is the user.
        UnknownDelegate: the delegate is of another company.
        DelegateInactive: the delegate is inactive.
        DelegateAuditor: the delegate is an auditor (who may decide nothing).
        DelegationCycle: the delegate has named the user as their own delegate for a period
            that overlaps this one.
        InvalidText: the note is longer than 2,000 characters.
    """
    starts_at, ends_at = _utc("starts_at", starts_at), _utc("ends_at", ends_at)
    if ends_at <= starts_at:
        raise DelegationPeriodEmpty(starts_at, ends_at)
    if delegate.id == user.id:
        raise SelfDelegation(user.id)
    if delegate.user.company_id != user.user.company_id:
        raise UnknownDelegate(delegate.id)
    if not delegate.user.active:
        raise DelegateInactive(delegate.id)
    if delegate.user.role is Role.AUDITOR:
        raise DelegateAuditor(delegate.id)
    delegation = Delegation(
        company_id=user.user.company_id,
        user_id=user.id,
        delegate_id=delegate.id,
        starts_at=starts_at,
        ends_at=ends_at,
        note=check_text("note", note),
    )
    # Two people each covering for the other over the same days: while both are away nobody
    # is, and each could decide the other's steps. A longer ring (A to B, B to C, C to A) gives
    # nobody more: delegation is not transitive, so each acts only for their own delegator.
    if (
        delegates_own is not None
        and delegates_own.delegate_id == user.id
        and delegates_own.overlaps(delegation)
    ):
        raise DelegationCycle(user.id, delegate.id)
    return delegation


def _utc(field: str, value: datetime) -> datetime:
    """The same instant in UTC, as stores hand it back.

    Raises:
        NaiveTimestamp, TimestampOutOfRange.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveTimestamp(field, value)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise TimestampOutOfRange(field, value) from None


def in_force(covers: Sequence[Cover], actor: UserId, at: datetime) -> tuple[Cover, ...]:
    """The covers that let `actor` act at `at`: delegations to them whose period holds `at`."""
    if not covers:
        return ()
    return tuple(
        [c for c in covers if c.delegation.delegate_id == actor and c.delegation.is_active(at)]
    )


def ineligibility(expense: Expense, step: Approval, cover: Cover) -> str | None:
    """Why the cover's delegate may not decide `step` for its approver; None when they may."""
    delegate = cover.delegation.delegate_id
    if cover.delegation.user_id != step.approver_id or cover.step_number != step.step_number:
        return f"are not user {step.approver_id}'s delegate for step {step.step_number}"
    if delegate == expense.user_id:
        return "submitted the expense"
    for a in expense.approvals:
        if a.approver_id == delegate:
            return f"approve step {a.step_number} of this expense themselves (four eyes)"
    if cover.delegate_level > cover.required_level:
        return (
            f"are level {cover.delegate_level}; step {step.step_number} needs level "
            f"{cover.required_level} or more senior"
        )
    return None
