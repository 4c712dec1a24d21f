"""A unit of work's link to the database: one pooled connection, read in autocommit until the
first write, then one transaction; driver failures turned into `Unavailable`.

Reads before any write run outside a transaction (a BEGIN/COMMIT pair would double a status
query's round trips). The first write-intent statement opens the transaction: on PostgreSQL
the driver's own BEGIN, on SQLite `BEGIN IMMEDIATE`, which takes the write lock up front so a
decision never reads a state it then cannot write over. Everything from there on, reads too,
runs in that one transaction until commit or rollback.

Pooled connections are not pinged at checkout (a round trip per unit of work). A connection
that died while idle in the pool (a server restart, a killed backend) fails its first
statement instead; nothing can have happened on it yet, so that statement runs once more on a
fresh connection. The failure has invalidated the whole pool, so the connections that died
with it are replaced as they are checked out, each without a failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeAlias

from sqlalchemy.engine import Connection, CursorResult, Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql import Executable

from expense_core.errors import Unavailable

Params: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


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

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._conn: Connection | None = None
        self._autocommit = False
        self._in_transaction = False
        # Nothing has run on the connection yet: a disconnect now may be retried.
        self._first_use = False

    def read(self, statement: Executable, params: Params = None) -> CursorResult[Any]:
        """Run a statement that writes nothing; outside a transaction if none is open yet."""
        return self._run(statement, params, autocommit=True)

    def write(self, statement: Executable, params: Params = None) -> CursorResult[Any]:
        """Run a statement inside the unit of work's transaction, opening it if need be."""
        return self._run(statement, params, autocommit=False)

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
                conn.execution_options(isolation_level=conn.default_isolation_level)
                self._autocommit = False
        except SQLAlchemyError as exc:
            _reraise(exc)
        self._in_transaction = True
        return conn

    def commit(self) -> None:
        if self._conn is None or not self._in_transaction:
            return
        try:
            self._conn.commit()
        except SQLAlchemyError as exc:
            _reraise(exc)
        finally:
            self._in_transaction = False

    def close(self) -> None:
        """Roll back whatever is uncommitted and give the connection back to the pool."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        self._in_transaction = False
        try:
            conn.rollback()
        except SQLAlchemyError:
            pass  # a lost connection: the server rolls back on its own
        finally:
            conn.close()

    def _connection(self, *, autocommit: bool) -> Connection:
        """The unit of work's connection; a fresh one starts in autocommit if asked to read."""
        if self._conn is not None:
            return self._conn
        try:
            self._conn = self._engine.connect()
            self._first_use = True
            if autocommit and not self.is_sqlite:
                self._conn.execution_options(isolation_level="AUTOCOMMIT")
                self._autocommit = True
        except SQLAlchemyError as exc:
            _reraise(exc)
        return self._conn

    def _run(self, statement: Executable, params: Params, *, autocommit: bool) -> CursorResult[Any]:
        conn = self._connection(autocommit=True) if autocommit else self.begin()
        retry, self._first_use = self._first_use, False
        try:
            return conn.execute(statement, params)
        except DBAPIError as exc:
            if not (retry and exc.connection_invalidated):
                _reraise(exc)
        except SQLAlchemyError as exc:
            _reraise(exc)
        # The connection died in the pool before this unit of work ran anything on it.
        self._discard()
        conn = self._connection(autocommit=True) if autocommit else self.begin()
        self._first_use = False
        try:
            return conn.execute(statement, params)
        except SQLAlchemyError as exc:
            _reraise(exc)

    def _discard(self) -> None:
        """Give back a connection that was found dead, and start over without one."""
        conn, self._conn = self._conn, None
        self._autocommit = self._in_transaction = False
        if conn is not None:
            conn.close()


def _reraise(exc: SQLAlchemyError) -> NoReturn:
    if is_unavailability(exc):
        raise Unavailable from exc
    raise exc
