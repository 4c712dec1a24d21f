"""The one place that picks adapters: settings -> database -> unit-of-work factory -> services.

Nothing is built at import time: a `Container` is fed `Settings` by its entrypoint and builds
each provider on first use. Tests override `settings` (`memory://`) to run the whole API in
memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import attrs
from dependency_injector import containers, providers

from adapters.clock import SystemClock
from adapters.memory import MemoryBulkLoader, MemoryStore, MemoryUnitOfWork
from entrypoints.ports import BulkLoader
from entrypoints.settings import InvalidSetting, Settings
from expense_core.ports import UnitOfWork
from expense_core.services import AccessService, EscalationService, ExpenseService, OrgService


@runtime_checkable
class Database(Protocol):
    """A store the services run on, and what operators do to it."""

    def unit_of_work(self) -> UnitOfWork:
        """Start a new unit of work (one transaction)."""
        ...

    def upgrade(self) -> None:
        """Bring the schema to the newest version."""
        ...

    def ping(self) -> None:
        """Raises: Unavailable when the store cannot be reached."""
        ...

    def dispose(self) -> None:
        """Close every connection."""
        ...

    def bulk_loader(self) -> BulkLoader:
        """What loads generated data in bulk into this store (see `entrypoints.ports`)."""
        ...


@attrs.frozen
class MemoryDatabase:
    """The in-memory store behind the `Database` face; data lives as long as the process."""

    store: MemoryStore = attrs.Factory(MemoryStore)

    def unit_of_work(self) -> MemoryUnitOfWork:
        return self.store.unit_of_work()

    def upgrade(self) -> None:
        """Nothing to migrate: the store has no schema."""

    def ping(self) -> None:
        """Always reachable: it is in this process."""

    def dispose(self) -> None:
        """Nothing to close."""

    def bulk_loader(self) -> MemoryBulkLoader:
        return MemoryBulkLoader(self.store)


def database_for(settings: Settings) -> Database:
    """Open the database DATABASE_URL names: `memory://`, or a SQLAlchemy URL (lazily: nothing
    connects until a unit of work or a ping needs to).

    Raises:
        InvalidSetting: DATABASE_URL names a database the SQL adapter does not support.
    """
    if settings.is_memory:
        return MemoryDatabase()
    # Imported here so that in-memory use never loads SQLAlchemy or a driver.
    from adapters.sql import SqlDatabase

    try:
        return SqlDatabase.connect(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout_s=settings.db_pool_timeout_ms / 1000,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
    except ValueError as exc:
        raise InvalidSetting(f"DATABASE_URL: {exc}") from None


def open_database(settings: Settings) -> Iterator[Database]:
    """The database for these settings, disposed of when the container shuts down."""
    database = database_for(settings)
    try:
        yield database
    finally:
        database.dispose()


def uow_factory_for(database: Database) -> Callable[[], UnitOfWork]:
    """What the services call to start a unit of work."""
    return database.unit_of_work


def bulk_loader_for(database: Database) -> BulkLoader:
    """What `seed synthetic` loads its data with: the configured database's own bulk path."""
    return database.bulk_loader()


class Container(containers.DeclarativeContainer):
    """Settings in, services out; each provider is built on first use.

    `shutdown_resources()` disposes of the database if it was opened.
    """

    settings = providers.Dependency(instance_of=Settings)
    clock = providers.Singleton(SystemClock)
    database = providers.Resource(open_database, settings=settings)
    new_uow = providers.Singleton(uow_factory_for, database=database)
    bulk_loader = providers.Singleton(bulk_loader_for, database=database)
    expenses = providers.Singleton(ExpenseService, new_uow=new_uow, clock=clock)
    org = providers.Singleton(OrgService, new_uow=new_uow, clock=clock)
    access = providers.Singleton(AccessService, new_uow=new_uow, clock=clock)
    escalation = providers.Singleton(EscalationService, new_uow=new_uow, clock=clock)


def container_for(settings: Settings) -> Container:
    """A container fed these settings."""
    return Container(settings=settings)
