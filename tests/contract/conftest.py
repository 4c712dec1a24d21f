"""The contract suite runs every test on every adapter: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from adapters.memory import MemoryStore
from expense_core.ports import UnitOfWork
from expense_core.services import AccessService, ExpenseService, OrgService
from tests.clocks import TickingClock
from tests.contract.support import Org, tech_corp
from tests.sql.support import opened


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_uow(request: pytest.FixtureRequest) -> Iterator[Callable[[], UnitOfWork]]:
    """Units of work of one adapter. PostgreSQL tests share a database and use fresh ids."""
    if request.param == "memory":
        yield MemoryStore().unit_of_work
        return
    fixture = "sqlite_url" if request.param == "sqlite" else "shared_postgres_url"
    with opened(request.getfixturevalue(fixture), pool_size=2) as db:
        yield db.unit_of_work


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def org(new_uow: Callable[[], UnitOfWork]) -> Org:
    """A fresh TechCorp: the seed's ladder of seven and its three policies."""
    return tech_corp(new_uow)


@pytest.fixture
def expenses(new_uow: Callable[[], UnitOfWork], clock: TickingClock) -> ExpenseService:
    return ExpenseService(new_uow, clock)


@pytest.fixture
def org_service(new_uow: Callable[[], UnitOfWork]) -> OrgService:
    return OrgService(new_uow)


@pytest.fixture
def access(new_uow: Callable[[], UnitOfWork], clock: TickingClock) -> AccessService:
    return AccessService(new_uow, clock)
