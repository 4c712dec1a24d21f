"""The audit log in memory: entries in id order, appended to one list (undone on rollback)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from adapters.memory.undo import APPENDED, Undo
from expense_core.audit import AuditEntry, AuditFilter, AuditId
from expense_core.model import CompanyId

if TYPE_CHECKING:
    from adapters.memory.store import MemoryStore


class MemoryAuditLog:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._store = store
        self._entries = store.tables.audit
        self._undo = undo

    def append(self, entry: AuditEntry) -> None:
        stored = attrs.evolve(entry, id=AuditId(self._store.next_id("audit")))
        self._entries.append(stored)
        self._undo.append((self._entries, None, APPENDED))

    def extend(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            self.append(entry)

    def page(
        self,
        company_id: CompanyId,
        *,
        where: AuditFilter,
        before: AuditId | None,
        limit: int,
    ) -> tuple[AuditEntry, ...]:
        found: list[AuditEntry] = []
        # Ids grow with the list: walking it backwards is newest first.
        for e in reversed(self._entries):
            if len(found) == limit:
                break
            if before is not None and e.id >= before:
                continue
            if e.company_id == company_id and where.matches(e):
                found.append(e)
        return tuple(found)
