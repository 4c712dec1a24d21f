"""What several services share: who is acting, how a decision is stored, how lists are paged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from expense_core.errors import InactiveUser, InvalidInput, ReadOnlyRole, UnknownUser
from expense_core.model import CompanyId, Expense, Member, Role, UserId
from expense_core.notifications import notices
from expense_core.ports import UnitOfWork
from expense_core.views import Page
from expense_core.workflow import Decision

MAX_PAGE = 100
T = TypeVar("T")


class UtcClock:
    """The system's clock, in UTC: what a service uses when given none."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def save_decision(uow: UnitOfWork, before: Expense, decision: Decision) -> None:
    """Write what a decision changed of `before`, with its events and their notices."""
    uow.expenses.save(
        decision.expense, decision.events, notices(before, decision.expense, decision.events)
    )


def actor(uow: UnitOfWork, user_id: UserId, company_id: CompanyId | None) -> Member:
    """Look up the member acting and check they may act, as `checked_actor`.

    Raises:
        UnknownUser, InactiveUser.
    """
    return checked_actor(uow.org.member(user_id), user_id, company_id)


def checked_actor(member: Member, user_id: UserId, company_id: CompanyId | None) -> Member:
    """The member acting, if they may: in `company_id` (when confined to one) and active.

    Raises:
        UnknownUser: the member is of another company. InactiveUser: they are inactive.
    """
    if company_id is not None and member.user.company_id != company_id:
        raise UnknownUser(user_id)
    if not member.user.active:
        raise InactiveUser(user_id)
    return member


def check_writer(member: Member, action: str) -> None:
    """Refuse a change by an auditor.

    Raises:
        ReadOnlyRole: the member is an auditor; `action` says what they may not do.
    """
    if member.user.role is Role.AUDITOR:
        raise ReadOnlyRole(member.id, action)


def check_page(cursor: int | None, limit: int) -> None:
    """Raises: InvalidInput for a limit outside 1..MAX_PAGE or a cursor that is not positive."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if cursor is not None and cursor < 1:
        raise InvalidInput(f"cursor must be a positive id, got {cursor}")


def page_of(items: Sequence[T], limit: int, key: Callable[[T], int]) -> Page[T]:
    """The first `limit` items, and the cursor of the next page when one more was fetched."""
    if len(items) > limit:
        return Page(tuple(items[:limit]), key(items[limit - 1]))
    return Page(tuple(items), None)
