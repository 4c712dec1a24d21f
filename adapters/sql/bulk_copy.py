"""Generated data loaded into PostgreSQL with COPY: a million expenses in minutes.

One transaction: other writers to the tables wait for it, readers go on. Batches are written
on a thread of their own while the caller works out the next; foreign keys are checked a table
at a time after the copy when the role may defer them, sequences are moved past the ids used
and the tables analyzed before the commit. The rows are those of `bulk.py`, in COPY's text
format.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
import psycopg
from psycopg import sql
from sqlalchemy import Table
from sqlalchemy.engine import Engine

from adapters.sql import tables
from adapters.sql.bulk import WRITTEN, Numbering, Row, Submitted, org_rows
from expense_core.model import Company, HierarchyLevel, Money, Policy, Team, User

NULL: Final = "\\N"
_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NAMES: Final = tuple(table.name for table in WRITTEN)
# Rows of COPY text per table; a batch at a time.
Lines = dict[Table, list[str]]


def _text(value: str | None) -> str:
    return NULL if value is None else value.translate(_ESCAPES)


def _stamp(at: datetime | None) -> str:
    # Load times are UTC, which the seed's naive TIMESTAMP columns hold; PostgreSQL ignores
    # the "+00:00" in a TIMESTAMP WITHOUT TIME ZONE.
    return NULL if at is None else str(at)


def _cell(value: object) -> str:
    """A value of a `bulk.py` row as COPY's text format reads it."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, Money):
        return str(value.value)
    return str(value)  # ids, numbers, UTC times as `_stamp` writes them


def _line(row: Row) -> str:
    return "\t".join([_cell(value) for value in row]) + "\n"


class _Stamps(dict[datetime | None, str]):
    """Timestamps as COPY reads them, each formatted once: an expense's rows repeat the
    moments of its submission and decisions."""

    def __missing__(self, at: datetime | None) -> str:
        self[at] = stamp = _stamp(at)
        return stamp


class _Texts(dict[str | None, str]):
    """Texts as COPY reads them, each escaped once: expenses repeat a handful of
    descriptions and comments."""

    def __missing__(self, value: str | None) -> str:
        self[value] = text = _text(value)
        return text


def _id(value: int | None) -> str:
    return NULL if value is None else str(value)


def _expense_lines(numbering: Numbering, expenses: Submitted, lines: Lines) -> None:
    """The lines `_line` makes of `bulk.expense_rows`, written out field by field: this runs
    for millions of rows, and a `_cell` call per cell costs the thread that works out the
    expenses an eighth more instructions (callgrind, 10,000 expenses)."""
    ids = numbering.next
    stamps, texts = _Stamps(), _Texts()
    expense_lines = lines[tables.expenses]
    approval_lines = lines[tables.approvals]
    event_lines = lines[tables.expense_events]
    expense_key, approval_key, event_key = (
        tables.expenses.name,
        tables.approvals.name,
        tables.expense_events.name,
    )
    for expense, events in expenses:
        expense_id = ids[expense_key]
        ids[expense_key] = expense_id + 1
        company = expense.company_id
        expense_lines.append(
            f"{expense_id}\t{company}\t{expense.user_id}\t{expense.policy_id}\t"
            f"{expense.amount.value}\t{texts[expense.description]}\t{expense.status}\t"
            f"{stamps[expense.submitted_at]}\t{stamps[expense.completed_at]}\t0\n"
        )
        first = ids[approval_key]
        for approval_id, a in enumerate(expense.approvals, first):
            approval_lines.append(
                f"{approval_id}\t{expense_id}\t{a.step_number}\t{a.approver_id}\t"
                f"{a.approver_level_id}\t{'t' if a.required else 'f'}\t{a.status}\t"
                f"{stamps[a.approved_at]}\t{texts[a.comments]}\t{company}\t"
                f"{_id(a.escalate_after_hours)}\t{stamps[a.escalate_at]}\n"
            )
        ids[approval_key] = first + len(expense.approvals)
        first = ids[event_key]
        for event_id, e in enumerate(events, first):
            event_lines.append(
                f"{event_id}\t{company}\t{expense_id}\t{e.kind}\t{stamps[e.at]}\t"
                f"{_id(e.actor_id)}\t{_id(e.step_number)}\t{texts[e.comment]}\t"
                f"{_id(e.approver_id)}\t{_id(e.previous_approver_id)}\t{_id(e.on_behalf_of)}\n"
            )
        ids[event_key] = first + len(events)


def _empty_lines() -> Lines:
    return {table: [] for table in WRITTEN}


def _copy(conn: psycopg.Connection[Any], lines: Lines) -> None:
    """Write the lines, table by table in `WRITTEN`'s order, every column of each."""
    with conn.cursor() as cursor:
        for table in WRITTEN:
            found = lines[table]
            if not found:
                continue
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(table.name),
                sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns),
            )
            with cursor.copy(statement) as copy:
                for start in range(0, len(found), 4096):
                    copy.write("".join(found[start : start + 4096]))


def _reserve(conn: psycopg.Connection[Any]) -> Numbering:
    """Keep other writers out of the tables until this load commits, and find where its ids
    start: past the sequences and past every stored id."""
    with conn.cursor() as cursor:
        # A load of millions of rows outlasts any request-sized statement timeout.
        cursor.execute("SET LOCAL statement_timeout = 0")
        # Readers go on; writers (whose ids could collide with ours) wait for the commit.
        cursor.execute(
            sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
                sql.SQL(", ").join(map(sql.Identifier, _NAMES))
            )
        )
        first: dict[str, int] = {}
        for name in _NAMES:
            # Read, not drawn (nextval): a table this load writes nothing to keeps its sequence.
            cursor.execute(
                sql.SQL(
                    "SELECT greatest(coalesce(s.last_value + 1, s.start_value), "
                    "coalesce((SELECT max(id) FROM {}), 0) + 1) "
                    "FROM pg_sequences AS s "
                    "WHERE format('%%I.%%I', s.schemaname, s.sequencename)::regclass "
                    "= pg_get_serial_sequence(%s, 'id')::regclass"
                ).format(sql.Identifier(name)),
                (name,),
            )
            found = cursor.fetchone()
            assert found is not None  # noqa: S101 -- every table's id has its sequence
            first[name] = int(found[0])
    return Numbering.starting_at(first)


def _defer_reference_checks(conn: psycopg.Connection[Any]) -> bool:
    """Turn off the row-by-row foreign key checks for this transaction, if this role may.

    They cost most of what PostgreSQL spends on a COPY (four index probes through a trigger for
    every approval row); `_check_references` checks the same keys afterwards, a table at a time.
    Only superusers (or roles granted it) may set session_replication_role: others keep the
    row-by-row checks, and a slower load.
    """
    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _check_references(conn: psycopg.Connection[Any], numbering: Numbering) -> None:
    """Check every foreign key of the rows this load wrote, as the constraints would have: one
    pass over each table's new rows, joined to what each key refers to.

    Raises:
        RuntimeError: some new row refers to nothing (the caller rolls back).
    """
    keys = conn.execute(
        "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text, "
        "array_agg(a.attname ORDER BY k.i), array_agg(r.attname ORDER BY k.i) "
        "FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, ref, i) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col "
        "JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = k.ref "
        "WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[]) "
        "GROUP BY c.oid, c.conname, c.conrelid, c.confrelid ORDER BY c.conname",
        (list(_NAMES),),
    ).fetchall()
    by_table: dict[str, list[tuple[str, str, list[str], list[str]]]] = {}
    for name, table, refers_to, columns, referred in keys:
        by_table.setdefault(table, []).append((name, refers_to, columns, referred))
    for table, constraints in by_table.items():
        if numbering.next[table] == numbering.first[table]:
            continue
        row = sql.Identifier("new")
        joins, broken = [], []
        for i, (_, refers_to, columns, referred) in enumerate(constraints):
            target = sql.Identifier(f"ref{i}")
            on = sql.SQL(" AND ").join(
                sql.SQL("{}.{} = {}.{}").format(target, sql.Identifier(r), row, sql.Identifier(c))
                for c, r in zip(columns, referred, strict=True)
            )
            joins.append(
                sql.SQL("LEFT JOIN {} AS {} ON {}").format(sql.Identifier(refers_to), target, on)
            )
            # MATCH SIMPLE: a key with a NULL in it refers to nothing and needs nothing.
            given = sql.SQL(" AND ").join(
                sql.SQL("{}.{} IS NOT NULL").format(row, sql.Identifier(c)) for c in columns
            )
            broken.append(
                sql.SQL("count(*) FILTER (WHERE {} AND {}.{} IS NULL)").format(
                    given, target, sql.Identifier(referred[0])
                )
            )
        query = sql.SQL("SELECT {} FROM {} AS {} {} WHERE {}.id >= %s").format(
            sql.SQL(", ").join(broken),
            sql.Identifier(table),
            row,
            sql.SQL(" ").join(joins),
            row,
        )
        counts = conn.execute(query, (numbering.first[table],)).fetchone()
        assert counts is not None  # noqa: S101 -- an aggregate returns one row
        for (name, *_), count in zip(constraints, counts, strict=True):
            if count:
                raise RuntimeError(f"{count} new rows of {table} break {name}")


def _finish(conn: psycopg.Connection[Any], numbering: Numbering) -> None:
    """Move every sequence past the ids this load used, give the planner statistics of the new
    rows (until autovacuum gets round to it, every company looks a few rows big and plans go
    wrong), and commit."""
    with conn.cursor() as cursor:
        for name, next_id in numbering.next.items():
            if next_id > numbering.first[name]:
                # As if the ids had been drawn one by one: the last one used is the last value.
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (name, next_id - 1)
                )
        cursor.execute(
            sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, _NAMES)))
        )
    conn.commit()


class _Pipeline:
    """COPY one batch on a thread of its own while the caller works out the next: the
    database and Python each keep a core busy. One batch is in flight at a time."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._batches: queue.Queue[tuple[Lines, Callable[[], None]] | None] = queue.Queue(1)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bulk-copy", daemon=True)

    def __enter__(self) -> _Pipeline:
        self._thread.start()
        return self

    def send(self, lines: Lines, done: Callable[[], None]) -> None:
        """Queue lines for writing; `done` is called once they are written.

        Raises:
            whatever writing an earlier batch raised.
        """
        self._raise_failure()
        self._batches.put((lines, done))

    def __exit__(self, kind: object, *_: object) -> None:
        self._batches.put(None)
        self._thread.join()
        if kind is None:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._failure is not None:
                continue  # drain, so the sender never blocks on a dead writer
            lines, done = batch
            try:
                _copy(self._conn, lines)
                done()
            except BaseException as exc:  # handed to the sending thread
                self._failure = exc


@attrs.frozen
class CopyBulkLoader:
    """Bulk loads on PostgreSQL through psycopg's COPY."""

    engine: Engine

    @contextlib.contextmanager
    def begin(self) -> Iterator[CopyBulkLoad]:
        """Start a load on a connection of its own, returned to the pool when it ends.

        Raises:
            ValueError: the engine's driver is not psycopg.
        """
        pooled = self.engine.raw_connection()
        conn = pooled.driver_connection
        if not isinstance(conn, psycopg.Connection):
            pooled.close()
            raise ValueError("bulk loads need the psycopg driver (postgresql+psycopg://)")
        try:
            numbering = _reserve(conn)
            checked_later = _defer_reference_checks(conn)
            with _Pipeline(conn) as pipeline:
                yield CopyBulkLoad(numbering, pipeline)
            if checked_later:
                _check_references(conn, numbering)
            _finish(conn, numbering)
        except BaseException:
            conn.rollback()
            raise
        finally:
            pooled.close()


class CopyBulkLoad:
    """One load on PostgreSQL: batches are turned into COPY text here and written on the
    pipeline's thread."""

    def __init__(self, numbering: Numbering, pipeline: _Pipeline) -> None:
        self._numbering = numbering
        self._pipeline = pipeline

    def first_id(self, kind: type) -> int:
        return self._numbering.first_of(kind)

    def add_org(
        self,
        *,
        companies: Sequence[Company],
        teams: Sequence[Team],
        levels: Sequence[HierarchyLevel],
        users: Sequence[User],
        policies: Sequence[Policy],
        done: Callable[[], None],
    ) -> None:
        rows = org_rows(
            self._numbering,
            companies=companies,
            teams=teams,
            levels=levels,
            users=users,
            policies=policies,
        )
        self._pipeline.send(
            {table: [_line(r) for r in found] for table, found in rows.items()}, done
        )

    def add_expenses(self, expenses: Submitted, *, done: Callable[[], None]) -> None:
        lines = _empty_lines()
        _expense_lines(self._numbering, expenses, lines)
        self._pipeline.send(lines, done)
