"""The contract suite runs every test on every adapter: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar, cast

import pytest

from adapters.memory import MemoryStore
from adapters.memory.awaited import MemoryAwaitedExpenses
from adapters.sql import SqlDatabase
from adapters.sql.awaited import AwaitedPool, PgAwaitedExpenses
from entrypoints.ports import AwaitedStore
from expense_core.ports import UnitOfWork
from expense_core.services import AccessService, ExpenseService, OrgService
from tests.clocks import TickingClock
from tests.contract.paths import Awaited, AwaitedAccess
from tests.contract.support import Org, tech_corp
from tests.sql.support import opened

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[MemoryStore | SqlDatabase]:
    """One adapter's store. PostgreSQL tests share a database and use fresh ids."""
    if request.param == "memory":
        yield MemoryStore()
        return
    fixture = "sqlite_url" if request.param == "sqlite" else "shared_postgres_url"
    with opened(request.getfixturevalue(fixture), pool_size=2) as db:
        yield db


@pytest.fixture
def new_uow(store: MemoryStore | SqlDatabase) -> Callable[[], UnitOfWork]:
    """Units of work of one adapter."""
    return store.unit_of_work


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def org(new_uow: Callable[[], UnitOfWork]) -> Org:
    """A fresh TechCorp: the seed's ladder of seven and its three policies."""
    return tech_corp(new_uow)


@pytest.fixture(params=["library", "awaited"])
def expenses(
    request: pytest.FixtureRequest,
    store: MemoryStore | SqlDatabase,
    new_uow: Callable[[], UnitOfWork],
    clock: TickingClock,
) -> Iterator[ExpenseService]:
    """The expense use cases, as the library calls them and as the HTTP API awaits them
    (`tests.contract.paths`); SQLite has no awaited store, and the API hands its use cases to
    the library on threads."""
    service = ExpenseService(new_uow, clock)
    yield from _on_path(request.param, service, lambda: Awaited(service, _awaited_store(store)))


def _on_path(path: str, library: T, awaited: Callable[[], Awaited | AwaitedAccess]) -> Iterator[T]:
    """`library` itself on the "library" path; else what `awaited` makes, looking like it, and
    closed after the test."""
    if path == "library":
        yield library
        return
    made = awaited()
    try:
        yield cast(T, made)
    finally:
        made.close()


def _awaited_store(store: MemoryStore | SqlDatabase) -> AwaitedStore | None:
    """The store the API awaits on this adapter, as the container makes it (none on SQLite)."""
    if isinstance(store, MemoryStore):
        return MemoryAwaitedExpenses(store)
    if store.is_sqlite:
        return None
    return PgAwaitedExpenses(AwaitedPool(store, size=2, timeout_s=10))


@pytest.fixture
def org_service(new_uow: Callable[[], UnitOfWork]) -> OrgService:
    return OrgService(new_uow)


@pytest.fixture(params=["library", "awaited"])
def access(
    request: pytest.FixtureRequest,
    store: MemoryStore | SqlDatabase,
    new_uow: Callable[[], UnitOfWork],
    clock: TickingClock,
) -> Iterator[AccessService]:
    """The access use cases, as the library calls them and as token mode's requests await a
    bearer token's check (`AwaitedAccessService`; on SQLite handed to the library on a
    thread)."""
    service = AccessService(new_uow, clock)
    yield from _on_path(
        request.param, service, lambda: AwaitedAccess(service, _awaited_store(store))
    )
