"""A SQL database behind the ports: the engine, its pool and per-dialect settings, migrations.

PostgreSQL through psycopg 3, or an embedded SQLite file in WAL mode. Nothing connects until
asked: `SqlDatabase.connect` only builds the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import create_engine, event, func, literal_column, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from adapters.sql.link import Link, is_unavailability
from adapters.sql.observe import SqlObserver
from adapters.sql.tables import approvals, expenses
from adapters.sql.uow import SqlUnitOfWork
from expense_core.errors import Unavailable
from expense_core.views import Backlog

if TYPE_CHECKING:
    from alembic.config import Config

    from adapters.sql.bulk import SqliteBulkLoader
    from adapters.sql.bulk_copy import CopyBulkLoader

DEFAULT_URL: Final = "sqlite:///./expense_tracker.db"
MIGRATIONS: Final = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS: Final = 10_000
CONNECT_TIMEOUT_S: Final = 5
POOL_TIMEOUT_S: Final = 5.0
# Any constant will do: it keeps two processes from migrating one database at once.
MIGRATION_LOCK: Final = 4_000_001

# Every company's pending approvals (those the partial index of migration 0003 holds), and the
# submission of the oldest pending expense among them: ids follow the order of submission.
_PENDING = (
    select(func.count().label("steps"), func.min(approvals.c.expense_id).label("first"))
    .where(approvals.c.status == literal_column("'pending'"))
    .cte("pending")
)
BACKLOG: Final = select(_PENDING.c.steps, expenses.c.submitted_at.label("since")).select_from(
    _PENDING.outerjoin(expenses, expenses.c.id == _PENDING.c.first)
)


class SqlDatabase:
    """One database: hands out units of work over a pool of connections."""

    def __init__(self, engine: Engine, connect_args: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        # What the driver is given beside the URL (timeouts, server options), for connections
        # opened outside the engine (`awaited.AwaitedPool`).
        self.connect_args: dict[str, Any] = dict(connect_args or {})
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._observer: SqlObserver | None = None

    @classmethod
    def connect(
        cls,
        url: str = DEFAULT_URL,
        *,
        pool_size: int = 10,
        pool_timeout_s: float = POOL_TIMEOUT_S,
        statement_timeout_ms: int = 0,
        connect_timeout_s: int = CONNECT_TIMEOUT_S,
        echo: bool = False,
    ) -> SqlDatabase:
        """Build the engine for a `postgresql+psycopg://` or `sqlite:///` URL; connect lazily.

        A unit of work waits at most `pool_timeout_s` for a pooled connection and
        `connect_timeout_s` to open one; on PostgreSQL a statement (lock waits included) runs at
        most `statement_timeout_ms` (0: no limit). Each of these ends as `Unavailable`.

        Raises:
            ValueError: another kind of database, or an in-memory SQLite one (each pooled
                connection would see its own empty database).
        """
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        connect_args: dict[str, Any] = {}
        options: dict[str, Any] = {
            "poolclass": QueuePool,
            "pool_size": pool_size,
            # pool_size is the whole budget: past it, callers queue rather than open more.
            "max_overflow": 0,
            # ...but not for ever: a request that cannot have a connection soon is answered
            # "unavailable, retry" rather than left hanging behind an overloaded pool.
            "pool_timeout": pool_timeout_s,
            # No ping per checkout: a unit of work retries a statement that finds its pooled
            # connection dead before anything ran on it (see link.py).
            "pool_pre_ping": False,
            "echo": echo,
        }
        if backend == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
            # The seed's naive TIMESTAMP columns hold UTC, CURRENT_TIMESTAMP defaults too.
            # Generic plans: each hot statement is prepared once per connection, and planning
            # the approver pool's lateral walk afresh on every call cost more than running it.
            server_options = "-c timezone=UTC -c plan_cache_mode=force_generic_plan"
            if statement_timeout_ms > 0:
                server_options += f" -c statement_timeout={statement_timeout_ms}"
            connect_args = {"connect_timeout": connect_timeout_s, "options": server_options}
            engine = create_engine(parsed, connect_args=connect_args, **options)
        elif backend == "sqlite":
            if parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed):
                raise ValueError(
                    "use a SQLite file: each pooled connection would see its own in-memory database"
                )
            engine = create_engine(parsed, connect_args={"check_same_thread": False}, **options)
            event.listen(engine, "connect", _configure_sqlite)
        else:
            raise ValueError(
                f"unsupported database {parsed.drivername!r}: use PostgreSQL or SQLite"
            )
        return cls(engine, connect_args)

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self._observer)

    def observe(self, observer: SqlObserver) -> None:
        """Tell `observer` about the pool and failed statements from now on (see observe.py)."""
        self._observer = observer
        pool = self.engine.pool
        if isinstance(pool, QueuePool):
            observer.pool_sized(pool.size())
        event.listen(self.engine, "checkout", lambda *_: observer.checked_out())
        event.listen(self.engine, "checkin", lambda *_: observer.checked_in())

    def backlog(self) -> Backlog:
        """What is waiting for a decision: pending steps, and since when the oldest has.

        Raises:
            Unavailable: the database cannot be reached.
        """
        link = Link(self.engine)
        try:
            row = link.read(BACKLOG).one()
        finally:
            link.close()
        return Backlog(pending_steps=row.steps, oldest_pending_since=row.since)

    def bulk_loader(self) -> CopyBulkLoader | SqliteBulkLoader:
        """What loads generated data in bulk: COPY on PostgreSQL, batched INSERTs on SQLite."""
        # Imported here: a serving process never loads in bulk.
        if self.is_sqlite:
            from adapters.sql.bulk import SqliteBulkLoader

            return SqliteBulkLoader(self.engine)
        from adapters.sql.bulk_copy import CopyBulkLoader

        return CopyBulkLoader(self.engine)

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to `revision` (the newest by default), in one transaction.

        Raises:
            Unavailable: the database cannot be reached.
        """
        # Imported here: Alembic takes a second to import, which a serving process never needs.
        from alembic import command

        try:
            with self.engine.connect() as conn:
                if self.is_sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                    # Requests are bounded by the statement timeout; a migration is not.
                    conn.execute(text("SET LOCAL statement_timeout = 0"))
                command.upgrade(alembic_config(conn), revision)
                conn.commit()
        except SQLAlchemyError as exc:
            if is_unavailability(exc):
                raise Unavailable from exc
            raise

    def ping(self) -> None:
        """Raises: Unavailable when the database cannot be reached."""
        link = Link(self.engine)
        try:
            link.read(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise Unavailable from exc
        finally:
            link.close()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection: Connection) -> Config:
    """An Alembic configuration that migrates over `connection` with the shipped scripts."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


def upgrade(database_url: str) -> None:
    """Migrate the database at `database_url` to the newest schema.

    Raises:
        Unavailable: the database cannot be reached.
    """
    db = SqlDatabase.connect(database_url, pool_size=1)
    try:
        db.upgrade()
    finally:
        db.dispose()


def _configure_sqlite(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    # The driver must not BEGIN on its own: a unit of work reads in autocommit and opens its
    # transaction with BEGIN IMMEDIATE when it first means to write (see link.py).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
    finally:
        cursor.close()
