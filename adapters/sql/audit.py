"""The audit log on SQL: rows appended to `audit_log`, their records as JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, insert, select

from adapters.sql.link import Link
from adapters.sql.tables import audit_log
from expense_core.audit import AuditEntry, AuditFilter, AuditId, Record, TargetType
from expense_core.model import CompanyId, UserId

_APPEND = insert(audit_log)


def _text(record: Record | None) -> str | None:
    return None if record is None else json.dumps(record, ensure_ascii=False)


def _record(text: str | None) -> Record | None:
    if text is None:
        return None
    loaded: Record = json.loads(text)
    return loaded


def _values(entry: AuditEntry) -> dict[str, Any]:
    return {
        "company_id": entry.company_id,
        "actor_id": entry.actor_id,
        "at": entry.at,
        "action": entry.action,
        "target_type": entry.target_type.value,
        "target_id": entry.target_id,
        "before": _text(entry.before),
        "after": _text(entry.after),
    }


def entry_from(row: Any) -> AuditEntry:
    return AuditEntry(
        id=AuditId(row.id),
        company_id=CompanyId(row.company_id),
        actor_id=None if row.actor_id is None else UserId(row.actor_id),
        at=row.at,
        action=row.action,
        target_type=TargetType(row.target_type),
        target_id=row.target_id,
        before=_record(row.before),
        after=_record(row.after),
    )


class SqlAuditLog:
    """`AuditLog` over the `audit_log` table."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def append(self, entry: AuditEntry) -> None:
        self._link.write(_APPEND, _values(entry))

    def extend(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            # One statement for them all (executemany): an import writes one per thing made.
            self._link.write(_APPEND, [_values(e) for e in entries])

    def page(
        self,
        company_id: CompanyId,
        *,
        where: AuditFilter,
        before: AuditId | None,
        limit: int,
    ) -> tuple[AuditEntry, ...]:
        c = audit_log.c
        conditions: list[ColumnElement[bool]] = [c.company_id == company_id]
        if where.target_type is not None:
            conditions.append(c.target_type == where.target_type.value)
        if where.target_id is not None:
            conditions.append(c.target_id == where.target_id)
        if where.since is not None:
            conditions.append(c.at >= where.since)
        if where.until is not None:
            conditions.append(c.at < where.until)
        if before is not None:
            conditions.append(c.id < before)
        query = select(audit_log).where(*conditions).order_by(c.id.desc()).limit(limit)
        return tuple(entry_from(row) for row in self._link.read(query))
