"""A unit of work's link to the database: one pooled connection, read in autocommit until the
first write, then one transaction; driver failures turned into `Unavailable`.

Reads before any write run outside a transaction (a BEGIN/COMMIT pair would double a status
query's round trips). The first write-intent statement opens the transaction: on PostgreSQL
the driver's own BEGIN, on SQLite `BEGIN IMMEDIATE`, which takes the write lock up front so a
decision never reads a state it then cannot write over. Everything from there on, reads too,
runs in that one transaction until commit or rollback. A unit of work whose next write is its
only one (`commit_next_write`) runs it on PostgreSQL as it runs its reads, outside a
transaction: one statement is atomic by itself, and the BEGIN and COMMIT around it would be
two round trips more. SQLite's writes take several statements: they keep their transaction.

Statements that run on every request are wrapped in `Query`: on PostgreSQL each is compiled
once and sent straight to psycopg as a prepared statement, skipping SQLAlchemy's per-execution
machinery (cache-key generation, execution context, result metadata), which cost several times
what the driver does. Their binds and results still pass through the columns' own types, and
driver errors through SQLAlchemy's exception translation, so callers cannot tell the paths apart.
What this path takes from SQLAlchemy beyond its everyday API is in `internals.py`.

Pooled connections are not pinged at checkout (a round trip per unit of work). A connection
that died while idle in the pool (a server restart, a killed backend) fails its first
statement instead; nothing can have happened on it yet, so that statement runs once more on a
fresh connection. The failure has invalidated the whole pool, so the connections that died
with it are replaced as they are checked out, each without a failure.

Watched (`SqlDatabase.observe`), a link tells its observer how long it waited for a connection
when none was free, and the kind of each failure it raises.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn, TypeAlias, overload

from sqlalchemy.engine import Connection, CursorResult, Dialect, Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import Executable

from adapters.sql.internals import (
    CompiledQuery,
    after_cursor_execute,
    before_cursor_execute,
    driver_error,
    invalidate_pool,
)
from adapters.sql.observe import SqlObserver, error_kind
from expense_core.errors import Unavailable

Params: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_CURSOR = "expense_tracker.cursor"


class Query:
    """A statement run on every request: on PostgreSQL, compiled once and prepared by the driver.

    Elsewhere (SQLite) it runs as any other statement. Only for statements whose parameters are
    all plain (no expanding IN lists) and given as one mapping.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: CompiledQuery | None = None

    def compiled(self, dialect: Dialect) -> CompiledQuery:
        if self._compiled is None:
            self._compiled = CompiledQuery(self.statement, dialect)
        return self._compiled


class Rows:
    """The rows a `Query` returned: the parts of SQLAlchemy's result API the adapter uses."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0][0]


def is_unavailability(exc: SQLAlchemyError) -> bool:
    """Whether an error means the database cannot serve us now (retry later), not a bug.

    Lost or refused connections, an exhausted pool, lock or statement timeouts, deadlocks and
    serialization failures (all `OperationalError`s), and SQLite's "database is locked".
    """
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class Link:
    """The connection of one unit of work, checked out at its first statement."""

    def __init__(self, engine: Engine, observer: SqlObserver | None = None) -> None:
        self._engine = engine
        self._observer = observer
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._conn: Connection | None = None
        self._autocommit = False
        self._in_transaction = False
        # Nothing has run on the connection yet: a disconnect now may be retried.
        self._first_use = False
        # The next write is the unit of work's only one (`commit_next_write`)...
        self._alone = False
        # ...and it has run, committed by itself: nothing may be written after it.
        self._wrote_alone = False

    @overload
    def read(self, statement: Query, params: Mapping[str, Any] | None = None) -> Rows: ...
    @overload
    def read(self, statement: Executable, params: Params = None) -> CursorResult[Any]: ...
    def read(self, statement: Executable | Query, params: Params = None) -> Any:
        """Run a statement that writes nothing; outside a transaction if none is open yet."""
        return self._run(statement, params, autocommit=True)

    @overload
    def write(self, statement: Query, params: Mapping[str, Any] | None = None) -> Rows: ...
    @overload
    def write(self, statement: Executable, params: Params = None) -> CursorResult[Any]: ...
    def write(self, statement: Executable | Query, params: Params = None) -> Any:
        """Run a statement inside the unit of work's transaction, opening it if need be; or, as
        the unit of work's only write (`commit_next_write`), by itself."""
        if self._wrote_alone:
            raise RuntimeError("the unit of work's only write has run: nothing may follow it")
        if self._alone:
            self._alone = False
            if self._conn is None or self._autocommit:
                self._wrote_alone = True
                return self._run(statement, params, autocommit=True)
        return self._run(statement, params, autocommit=False)

    def commit_next_write(self) -> None:
        """Run the next write by itself, outside a transaction, where that is atomic: on
        PostgreSQL, with no transaction open yet. It must be the unit of work's last write."""
        self._alone = not self.is_sqlite and not self._in_transaction

    @property
    def next_write_alone(self) -> bool:
        """Whether the next write will run by itself (`commit_next_write` took effect): no
        transaction will hold a lock taken before it."""
        return self._alone

    def begin(self) -> Connection:
        """Open the transaction (if not yet open): what a write or a locking read needs first."""
        conn = self._connection(autocommit=False)
        if self._in_transaction:
            return conn
        try:
            if self.is_sqlite:
                self._first_use = False
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif self._autocommit:
                # Leave autocommit: nothing is pending (autocommit), so this commit sends nothing.
                conn.commit()
                _driver(conn).autocommit = False
                self._autocommit = False
            if not conn.in_transaction():
                # Said explicitly: a `Query` runs on the driver, which SQLAlchemy does not see
                # begin, and its commit must not be skipped as a commit of nothing.
                conn.begin()
        except SQLAlchemyError as exc:
            self._raise(exc)
        self._in_transaction = True
        return conn

    def commit(self) -> None:
        if self._conn is None or not self._in_transaction:
            return
        try:
            self._conn.commit()
        except SQLAlchemyError as exc:
            self._raise(exc)
        finally:
            self._in_transaction = False

    def close(self) -> None:
        """Roll back whatever is uncommitted and give the connection back to the pool."""
        conn, self._conn = self._conn, None
        self._alone = self._wrote_alone = False
        if conn is None:
            return
        self._in_transaction = False
        try:
            conn.rollback()
            if self._autocommit:
                # Back to the driver's default for whoever checks the connection out next
                # (migrations, scripts); a unit of work sets the mode it starts in itself.
                self._autocommit = False
                _driver(conn).autocommit = False
        except (SQLAlchemyError, self._engine.dialect.loaded_dbapi.Error):
            pass  # a lost connection: the server rolls back on its own
        finally:
            conn.close()

    def _connection(self, *, autocommit: bool) -> Connection:
        """The unit of work's connection; a fresh one starts in autocommit if asked to read."""
        if self._conn is not None:
            return self._conn
        try:
            observer = self._observer
            self._conn = self._engine.connect() if observer is None else self._checkout(observer)
            self._first_use = True
            if autocommit and not self.is_sqlite:
                # Set on psycopg itself: SQLAlchemy's isolation_level="AUTOCOMMIT" costs as much
                # again, and resetting it when the connection goes back to the pool too.
                _driver(self._conn).autocommit = True
                self._autocommit = True
        except SQLAlchemyError as exc:
            self._raise(exc)
        return self._conn

    def _run(self, statement: Executable | Query, params: Params, *, autocommit: bool) -> Any:
        conn = self._connection(autocommit=True) if autocommit else self.begin()
        retry, self._first_use = self._first_use, False
        try:
            return self._execute(conn, statement, params)
        except DBAPIError as exc:
            if not (retry and exc.connection_invalidated):
                self._raise(exc)
        except SQLAlchemyError as exc:
            self._raise(exc)
        # The connection died in the pool before this unit of work ran anything on it.
        self._discard()
        conn = self._connection(autocommit=True) if autocommit else self.begin()
        self._first_use = False
        try:
            return self._execute(conn, statement, params)
        except SQLAlchemyError as exc:
            self._raise(exc)

    def _execute(self, conn: Connection, statement: Executable | Query, params: Params) -> Any:
        if not isinstance(statement, Query):
            return conn.execute(statement, params)
        if self.is_sqlite:
            return conn.execute(statement.statement, params)
        if not isinstance(params, Mapping | None):
            raise TypeError("a Query takes one mapping of parameters")
        return self._prepared(conn, statement.compiled(self._engine.dialect), params or {})

    def _prepared(
        self, conn: Connection, compiled: CompiledQuery, given: Mapping[str, Any]
    ) -> Rows:
        """Run a compiled `Query` as a prepared statement on the pooled psycopg connection."""
        pooled = conn.connection
        driver: Any = pooled.driver_connection
        params = compiled.params(given)
        # One cursor per driver connection, kept with it: making one costs more than a query.
        # A raw one: the statement comes with PostgreSQL's placeholders (`CompiledQuery.raw_sql`).
        cursor = pooled.info.get(_CURSOR)
        if cursor is None or cursor.connection is not driver:
            cursor = pooled.info[_CURSOR] = _raw_cursor(driver)
        try:
            before_cursor_execute(conn, cursor, compiled.sql, params)
            cursor.execute(compiled.raw_sql, compiled.ordered(params), prepare=True)
            after_cursor_execute(conn, cursor, compiled.sql, params)
            fetched = cursor.fetchall() if compiled.row is not None else []
            return Rows(compiled.rows(fetched))
        except self._engine.dialect.loaded_dbapi.Error as exc:
            lost = self._engine.dialect.is_disconnect(exc, driver, cursor)
            if lost:
                invalidate_pool(self._engine, conn, exc)
            raise driver_error(
                exc, compiled.sql, params, self._engine.dialect, connection_invalidated=lost
            ) from exc

    def _checkout(self, observer: SqlObserver) -> Connection:
        """A pooled connection, the wait for it told to the observer when none was free."""
        pool = self._engine.pool
        if not isinstance(pool, QueuePool) or pool.checkedout() < pool.size():
            return self._engine.connect()
        started = time.perf_counter()
        try:
            return self._engine.connect()
        finally:
            observer.waited(time.perf_counter() - started)

    def _raise(self, exc: SQLAlchemyError) -> NoReturn:
        if self._observer is not None:
            self._observer.failed(error_kind(exc))
        _reraise(exc)

    def _discard(self) -> None:
        """Give back a connection that was found dead, and start over without one."""
        conn, self._conn = self._conn, None
        self._autocommit = self._in_transaction = False
        if conn is not None:
            conn.close()


def _raw_cursor(driver: Any) -> Any:
    """A psycopg cursor that takes PostgreSQL's own placeholders ($1...)."""
    from psycopg import RawCursor  # here: a SQLite database never loads psycopg

    return RawCursor(driver)


def _driver(conn: Connection) -> Any:
    """The psycopg connection under a SQLAlchemy one."""
    return conn.connection.driver_connection


def _reraise(exc: SQLAlchemyError) -> NoReturn:
    if is_unavailability(exc):
        raise Unavailable from exc
    raise exc
