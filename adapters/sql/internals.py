"""What the SQL adapter takes from SQLAlchemy beyond its everyday API, all in one module.

A `Query` (link.py) skips SQLAlchemy's per-execution machinery and hands its compiled SQL to
psycopg as a prepared statement. That path runs on every request: through SQLAlchemy's own
execution instead, a submit-status-approve cycle on PostgreSQL took 30-50% more CPU in the
library (three alternating runs of 1,500 cycles on 2 cores: 1.73-2.78 ms against 2.29-3.55 ms).
For it the adapter reads a compiled statement's parts (documented among SQLAlchemy's "Core
Internals"), and does by hand three things that SQLAlchemy's own execution does: fire the
`before_cursor_execute` and `after_cursor_execute` events, translate a driver error, and
invalidate the pool after a disconnect (`Pool._invalidate`, private). A result's columns come
from the statement's public `exported_columns`, read once when it is compiled.

Checked against SQLAlchemy 2.1, which pyproject.toml pins (`>=2.1,<2.2`). Before widening the
pin, run tests/sql/test_internals.py: each of its tests names the assumption it checks and
fails with that name when an upgrade changes it.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import Executable

CHECKED_WITH: Final = "2.1"

Processor: TypeAlias = Callable[[Any], Any]


class CompiledQuery:
    """The SQL text, bind defaults and processors, and row type of one statement, compiled once
    for one dialect."""

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        target: Any = statement
        compiled: Any = target.compile(dialect=dialect)
        if compiled.escaped_bind_names or compiled.positional:
            raise ValueError("a Query needs plainly named parameters")
        self.sql: str = compiled.string
        # The same statement with PostgreSQL's own placeholders ($1, $2...), as psycopg's raw
        # cursors take it: psycopg rewrites named placeholders on every execution of a text
        # longer than 4 KB or with over 50 parameters (it caches only shorter ones), and the
        # approver pool's statement is 6 KB.
        numbered: Any = target.compile(dialect=_numbered(dialect))
        self.raw_sql: bytes = numbered.string.encode()
        self.order: tuple[str, ...] = tuple(numbered.positiontup)
        self.defaults: dict[str, Any] = {}
        self.bind_processors: list[tuple[str, Processor]] = []
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError("a Query cannot expand IN lists")
            if not bind.required:
                self.defaults[name] = bind.effective_value
            processor = bind.type.bind_processor(dialect)
            if processor is not None:
                self.bind_processors.append((name, processor))
        # The columns of a result, named as SQLAlchemy's own rows name them, with the
        # processors their types apply to what the driver returns.
        exported = getattr(target, "exported_columns", None)
        names: list[str] = list(exported.keys()) if exported is not None else []
        self.result_processors: list[tuple[int, Processor]] = []
        for position, column in enumerate(exported if exported is not None else ()):
            processor = column.type.result_processor(dialect, None)
            if processor is not None:
                self.result_processors.append((position, processor))
        self.row: Any = collections.namedtuple("Row", names, rename=True) if names else None

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self.defaults, **given}
        for name, processor in self.bind_processors:
            params[name] = processor(params[name])
        return params

    def ordered(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """`params` (as `params` made them) in the order of `raw_sql`'s placeholders."""
        return tuple([params[name] for name in self.order])

    def rows(self, fetched: list[tuple[Any, ...]]) -> list[Any]:
        row = self.row
        if row is None:
            return []
        processors = self.result_processors
        if not processors:
            return [row._make(values) for values in fetched]
        made = []
        for values in fetched:
            listed = list(values)
            for position, processor in processors:
                listed[position] = processor(listed[position])
            made.append(row._make(listed))
        return made


def before_cursor_execute(
    conn: Connection, cursor: Any, sql: str, params: Mapping[str, Any]
) -> None:
    """Fire the engine's `before_cursor_execute` listeners (tests count statements with one),
    as SQLAlchemy does before each statement it runs itself."""
    if conn.dispatch.before_cursor_execute:
        conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, False)


def after_cursor_execute(
    conn: Connection, cursor: Any, sql: str, params: Mapping[str, Any]
) -> None:
    """Fire the engine's `after_cursor_execute` listeners (statement spans end there), as
    SQLAlchemy does after each statement it ran without an error."""
    if conn.dispatch.after_cursor_execute:
        conn.dispatch.after_cursor_execute(conn, cursor, sql, params, None, False)


@functools.cache
def _numbered(dialect: Dialect) -> Dialect:
    """A dialect of the same kind that writes numbered placeholders ($1...): SQLAlchemy's
    `numeric_dollar` parameter style."""
    kind: Any = type(dialect)
    numbered: Dialect = kind(paramstyle="numeric_dollar")
    numbered.server_version_info = dialect.server_version_info
    return numbered


def invalidate_pool(engine: Engine, conn: Connection, exc: Exception) -> None:
    """After a disconnect, as SQLAlchemy does: every connection of the pool older than this
    failure is replaced at its next checkout (a server restart killed them all), and this one
    at once."""
    engine.pool._invalidate(conn.connection, exc)
    conn.invalidate(exc)


def driver_error(
    exc: Exception,
    sql: str,
    params: Mapping[str, Any],
    dialect: Dialect,
    *,
    connection_invalidated: bool,
) -> StatementError:
    """A driver's error as SQLAlchemy's execution raises it (`OperationalError`...)."""
    return DBAPIError.instance(
        sql,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=connection_invalidated,
        dialect=dialect,
    )
