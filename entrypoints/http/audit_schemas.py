"""The audit log on the wire: an entry as JSON, a page of them, and an entry as a CSV row."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, Final

from msgspec import Struct

from entrypoints.http.schemas import Timestamp, timestamp
from expense_core.audit import AuditEntry
from expense_core.views import Page

CSV_COLUMNS: Final = (
    "id",
    "at",
    "company_id",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
)
# Rows per chunk of a CSV stream: one page of the log, one write to the socket.
CSV_CHUNK = 100


class AuditEntryOut(Struct):
    """One admin change. `actor_id` is null when nobody in particular acted (the command line,
    demo mode); `before` is null for a creation, `after` for a deletion."""

    id: int
    at: Timestamp
    company_id: int
    actor_id: int | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditPage(Struct):
    """Newest first; pass `next_cursor` as `cursor` for the next page."""

    items: list[AuditEntryOut]
    next_cursor: int | None


def audit_entry_out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=e.id,
        at=timestamp(e.at),
        company_id=e.company_id,
        actor_id=e.actor_id,
        action=e.action,
        target_type=e.target_type.value,
        target_id=e.target_id,
        before=None if e.before is None else dict(e.before),
        after=None if e.after is None else dict(e.after),
    )


def audit_page(page: Page[AuditEntry]) -> AuditPage:
    return AuditPage([audit_entry_out(e) for e in page.items], page.next_cursor)


def _json(record: object) -> str:
    return "" if record is None else json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def csv_chunks(entries: Iterable[AuditEntry]) -> Iterator[str]:
    """The header row, then the entries as CSV rows, `CSV_CHUNK` rows a chunk; a missing
    actor or record is an empty field, a record is its JSON text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = iter(entries)
    while True:
        for e in islice(rows, CSV_CHUNK):
            writer.writerow(
                (
                    e.id,
                    timestamp(e.at),
                    e.company_id,
                    "" if e.actor_id is None else e.actor_id,
                    e.action,
                    e.target_type.value,
                    e.target_id,
                    _json(e.before),
                    _json(e.after),
                )
            )
        chunk = buffer.getvalue()
        if not chunk:
            return
        yield chunk
        buffer.seek(0)
        buffer.truncate()
