"""Reading the audit log: a company's admin changes, newest first, a page at a time or all of
them; for the company's admins only (`audit.AUDIT_READERS`), or anyone in demo mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import attrs

from expense_core.audit import AUDIT_READERS, AuditEntry, AuditFilter, AuditId, audit_filter
from expense_core.errors import AdminOnly
from expense_core.model import CompanyId, UserId
from expense_core.ports import UnitOfWork
from expense_core.services._common import MAX_PAGE, actor, check_page, page_of
from expense_core.views import Page


@attrs.frozen(kw_only=True)
class ReadAudit:
    """Which entries of `company_id`'s log: filtered by target (`target_id` needs
    `target_type`) and by time (`since` included, `until` not), after `cursor` (the previous
    page's `next_cursor`). `actor_id` is who reads (None: the command line, demo mode)."""

    company_id: CompanyId
    actor_id: UserId | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: int | None = None
    limit: int = 50


@attrs.frozen
class AuditService:
    """Read a company's audit log."""

    new_uow: Callable[[], UnitOfWork]

    def page(self, query: ReadAudit) -> Page[AuditEntry]:
        """A page of entries, newest first.

        Raises:
            UnknownCompany. UnknownUser, InactiveUser: the reader is unknown (or of another
                company) or inactive. AdminOnly: the reader may not read the log.
            InvalidInput: a bad filter, limit or cursor.
        """
        where = _checked(query)
        with self.new_uow() as uow:
            _check_reader(uow, query)
            before = None if query.cursor is None else AuditId(query.cursor)
            found = uow.audit.page(
                query.company_id, where=where, before=before, limit=query.limit + 1
            )
        return page_of(found, query.limit, lambda e: e.id)

    def export(self, query: ReadAudit) -> Iterator[AuditEntry]:
        """Every entry from `query.cursor` on, newest first; the reader and the filter are
        checked now, then pages of 100 are read as the entries are consumed, each in its own
        unit of work (a long export holds no transaction open).

        Raises:
            As `page`, at once.
        """
        where = _checked(attrs.evolve(query, limit=MAX_PAGE))
        with self.new_uow() as uow:
            _check_reader(uow, query)
        return self._entries(query.company_id, where, query.cursor)

    def _entries(
        self, company_id: CompanyId, where: AuditFilter, cursor: int | None
    ) -> Iterator[AuditEntry]:
        before = None if cursor is None else AuditId(cursor)
        while True:
            with self.new_uow() as uow:
                found = uow.audit.page(company_id, where=where, before=before, limit=MAX_PAGE)
            yield from found
            if len(found) < MAX_PAGE:
                return
            before = found[-1].id


def _checked(query: ReadAudit) -> AuditFilter:
    check_page(query.cursor, query.limit)
    return audit_filter(query.target_type, query.target_id, query.since, query.until)


def _check_reader(uow: UnitOfWork, query: ReadAudit) -> None:
    """Raises: UnknownCompany, UnknownUser, InactiveUser, AdminOnly."""
    uow.org.company(query.company_id)
    if query.actor_id is None:
        return
    reader = actor(uow, query.actor_id, query.company_id)
    if reader.user.role not in AUDIT_READERS:
        raise AdminOnly("the audit log")
