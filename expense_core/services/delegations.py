"""Delegations: a user names who covers for them while they are away; each use case one unit
of work. A user sets, reads and clears their own (an auditor only reads it); an admin of the
company anyone's. Setting and clearing append to the audit log (`delegation.set`,
`delegation.cleared`), naming the command's `actor_id` (None in demo mode and on the command
line).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from expense_core.audit import TargetType, delegation_record, entry
from expense_core.delegation import Delegation, new_delegation
from expense_core.errors import AdminOnly, NoDelegation, UnknownDelegate, UnknownUser
from expense_core.model import CompanyId, Member, Role, UserId
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import actor, check_writer


@attrs.frozen(kw_only=True)
class SetDelegation:
    """Name `delegate_id` to act for `user_id` from `starts_at` until `ends_at`, replacing the
    user's previous delegation. `actor_id` is who sets it (the user when None); `company_id`
    confines the command to the caller's company, when known (a verified token)."""

    user_id: UserId
    delegate_id: UserId
    starts_at: datetime
    ends_at: datetime
    note: str | None = None
    actor_id: UserId | None = None
    company_id: CompanyId | None = None


@attrs.frozen(kw_only=True)
class ClearDelegation:
    """End `user_id`'s delegation; `actor_id` and `company_id` as in `SetDelegation`."""

    user_id: UserId
    actor_id: UserId | None = None
    company_id: CompanyId | None = None


@attrs.frozen
class DelegationState:
    """A stored delegation, and whether its period holds the moment it was read."""

    delegation: Delegation
    active: bool


@attrs.frozen
class DelegationService:
    """Set, read and clear who covers for whom."""

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def set(self, cmd: SetDelegation) -> DelegationState:
        """Store a delegation in place of the user's previous one.

        Raises:
            UnknownUser, InactiveUser: the actor is unknown (or of another company) or
                inactive; or the user is unknown in the actor's company.
            ReadOnlyRole: the actor is an auditor.
            AdminOnly: the actor sets someone else's delegation and is not an admin.
            UnknownDelegate: no such delegate in the user's company.
            NaiveTimestamp, DelegationPeriodEmpty, SelfDelegation, DelegateInactive,
            DelegateAuditor, DelegationCycle, InvalidText: see `delegation.new_delegation`.
        """
        with self.new_uow() as uow:
            user = _changeable(uow, cmd.user_id, cmd.actor_id, cmd.company_id)
            company = user.user.company_id
            try:
                delegate = uow.org.member(cmd.delegate_id)
            except UnknownUser:
                raise UnknownDelegate(cmd.delegate_id) from None
            delegation = new_delegation(
                user=user,
                delegate=delegate,
                starts_at=cmd.starts_at,
                ends_at=cmd.ends_at,
                note=cmd.note,
                delegates_own=uow.delegations.get(company, delegate.id),
            )
            previous = uow.delegations.get(company, user.id)
            uow.delegations.put(delegation)
            now = self.clock.now()
            if delegation != previous:
                uow.audit.append(
                    entry(
                        company_id=company,
                        actor_id=cmd.actor_id,
                        at=now,
                        action="delegation.set",
                        target_type=TargetType.DELEGATION,
                        target_id=user.id,
                        before=None if previous is None else delegation_record(previous),
                        after=delegation_record(delegation),
                    )
                )
            uow.commit()
        return DelegationState(delegation, delegation.is_active(now))

    def get(self, user_id: UserId, company_id: CompanyId | None = None) -> DelegationState:
        """The user's delegation, whatever its period; without a company, any company's (demo
        mode).

        Raises:
            UnknownUser: no such user (in that company).
            NoDelegation: the user has named no delegate.
        """
        with self.new_uow() as uow:
            user = uow.org.member(user_id)
            if company_id is not None and user.user.company_id != company_id:
                raise UnknownUser(user_id)
            delegation = uow.delegations.get(user.user.company_id, user_id)
        if delegation is None:
            raise NoDelegation(user_id)
        return DelegationState(delegation, delegation.is_active(self.clock.now()))

    def clear(self, cmd: ClearDelegation) -> None:
        """End the user's delegation: from now on their delegate acts for them no more.

        Raises:
            UnknownUser, InactiveUser, ReadOnlyRole, AdminOnly: as `set`.
            NoDelegation: the user has named no delegate.
        """
        with self.new_uow() as uow:
            user = _changeable(uow, cmd.user_id, cmd.actor_id, cmd.company_id)
            company = user.user.company_id
            previous = uow.delegations.get(company, user.id)
            if previous is None or not uow.delegations.remove(company, user.id):
                raise NoDelegation(cmd.user_id)
            uow.audit.append(
                entry(
                    company_id=company,
                    actor_id=cmd.actor_id,
                    at=self.clock.now(),
                    action="delegation.cleared",
                    target_type=TargetType.DELEGATION,
                    target_id=user.id,
                    before=delegation_record(previous),
                )
            )
            uow.commit()


def _changeable(
    uow: UnitOfWork, user_id: UserId, actor_id: UserId | None, company_id: CompanyId | None
) -> Member:
    """The user whose delegation the actor changes, if they may: their own, or as an admin
    anyone's in their company; never an auditor, who changes nothing.

    Raises:
        UnknownUser, InactiveUser, ReadOnlyRole, AdminOnly.
    """
    acting = actor(uow, user_id if actor_id is None else actor_id, company_id)
    user = acting
    if acting.id != user_id:
        user = uow.org.member(user_id)
        if user.user.company_id != acting.user.company_id:
            raise UnknownUser(user_id)
    # Another company's user stays unknown, to an auditor as to anyone.
    check_writer(acting, "set or clear a delegation")
    if user is not acting and acting.user.role is not Role.ADMIN:
        raise AdminOnly("another user's delegation")
    return user
