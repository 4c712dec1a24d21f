"""Fixtures for the unit tests: the seed's demo organisation on a fresh in-memory store."""

from __future__ import annotations

import pytest

from adapters.memory import MemoryStore
from expense_core.demo import install_demo
from expense_core.services import AccessService, ExpenseService, OrgService
from tests.clocks import TickingClock


@pytest.fixture
def store() -> MemoryStore:
    """A fresh store holding the seed's TechCorp: users 1-7, policies 1-3."""
    store = MemoryStore()
    install_demo(store.unit_of_work)
    return store


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


@pytest.fixture
def expenses(store: MemoryStore, clock: TickingClock) -> ExpenseService:
    return ExpenseService(store.unit_of_work, clock)


@pytest.fixture
def org(store: MemoryStore) -> OrgService:
    return OrgService(store.unit_of_work)


@pytest.fixture
def access(store: MemoryStore, clock: TickingClock) -> AccessService:
    return AccessService(store.unit_of_work, clock)
