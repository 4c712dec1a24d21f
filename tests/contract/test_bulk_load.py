"""Every adapter's bulk path: what it stores reads back through the ports as what the services
store, past whatever was there, and a load that fails keeps nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from adapters.memory import MemoryBulkLoader, MemoryStore
from adapters.sql import SqlDatabase
from entrypoints import synthetic
from entrypoints.ports import BulkLoader
from entrypoints.synthetic import SyntheticOrgs
from expense_core import demo
from expense_core.model import Company, CompanyId, ExpenseId, Money, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import ExpenseService, SubmitExpense
from tests.clocks import TickingClock

DEMO = CompanyId(1)
START = datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)
COUNTS: dict[str, Any] = {
    "companies": 2,
    "users_per_company": 30,
    "expenses": 90,
    "random_seed": 7,
}


class StoppedClock:
    """Always the same instant: the seeds date their history back from it."""

    def now(self) -> datetime:
        return START


@attrs.frozen
class Store:
    load: BulkLoader
    new_uow: Callable[[], UnitOfWork]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store of one adapter, with its bulk loader."""
    if request.param == "memory":
        memory = MemoryStore()
        yield Store(MemoryBulkLoader(memory), memory.unit_of_work)
        return
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    db = SqlDatabase.connect(request.getfixturevalue(fixture), pool_size=2)
    try:
        yield Store(db.bulk_loader(), db.unit_of_work)
    finally:
        db.dispose()


def something_stored(new_uow: Callable[[], UnitOfWork]) -> None:
    """The demo organisation and one expense: a load must start past them."""
    demo.install_demo(new_uow)
    ExpenseService(new_uow, TickingClock()).submit(
        SubmitExpense(user_id=UserId(7), category="equipment", amount=Money.cents(120_00))
    )


def read_back(new_uow: Callable[[], UnitOfWork], *companies: CompanyId) -> dict[str, Any]:
    """Everything the ports tell of these companies, but when policies were created (the
    services take it from the wall clock)."""
    seen: dict[str, Any] = {}
    with new_uow() as uow:
        for at in companies:
            teams = uow.org.teams(at)
            users = uow.org.users(at, after=None, limit=10_000)
            listed = uow.expenses.summaries(
                at, user_id=None, status=None, before=None, limit=10_000
            )
            seen[f"company {at}"] = (
                uow.org.company(at),
                teams,
                [uow.org.levels(at, t.id) for t in teams],
                users,
                [uow.org.member(u.id) for u in users],
                [attrs.evolve(p, created_at=None) for p in uow.org.company_policies(at)],
                listed,
                [(uow.expenses.get(at, s.id), uow.expenses.history(at, s.id)) for s in listed],
                [uow.expenses.view(at, s.id) for s in listed],
                [uow.expenses.inbox(at, u.id, after=None, limit=10_000) for u in users],
            )
    return seen


def seed_through_the_services(*, on_something: bool) -> tuple[MemoryStore, SyntheticOrgs]:
    """The reference: the same seed, through the services, in memory."""
    reference = MemoryStore()
    if on_something:
        something_stored(reference.unit_of_work)
    return reference, synthetic.seed(reference.unit_of_work, StoppedClock(), **COUNTS)


def ids(made: SyntheticOrgs) -> list[CompanyId]:
    return [c.company_id for c in made.companies]


def test_a_load_stores_what_the_services_store_past_what_was_there(store: Store) -> None:
    something_stored(store.new_uow)
    made = synthetic.seed_bulk(store.load, StoppedClock(), **COUNTS)

    reference, expected = seed_through_the_services(on_something=True)
    assert made == expected
    found = read_back(store.new_uow, DEMO, *ids(made))
    wanted = read_back(reference.unit_of_work, DEMO, *ids(expected))
    assert found.keys() == wanted.keys()
    for company, seen in found.items():
        assert seen == wanted[company], company
    # The store goes on from there: the next submission is routed and numbered as ever.
    submit = SubmitExpense(
        user_id=made.companies[0].submitters[0], category="travel", amount=Money.cents(300_00)
    )
    assert ExpenseService(store.new_uow, TickingClock()).submit(submit) == ExpenseService(
        reference.unit_of_work, TickingClock()
    ).submit(submit)


class Refused(Exception):
    """Raised from inside a load."""


def test_a_load_that_fails_keeps_nothing(store: Store) -> None:
    something_stored(store.new_uow)
    before = read_back(store.new_uow, DEMO)
    total = synthetic.progress_steps(
        COUNTS["companies"], COUNTS["users_per_company"], COUNTS["expenses"]
    )
    written: list[int] = []

    def refuse_once_all_is_written(steps: int) -> None:
        written.append(steps)
        if sum(written) == total:
            raise Refused

    with pytest.raises(Refused):
        synthetic.seed_bulk(
            store.load, StoppedClock(), **COUNTS, advance=refuse_once_all_is_written
        )
    assert sum(written) == total

    def load_into_the_stored_company() -> None:
        with store.new_uow() as uow:
            stored = uow.expenses.get(DEMO, ExpenseId(1)), uow.expenses.history(DEMO, ExpenseId(1))
        with store.load.begin() as load:
            load.add_expenses([stored, stored], done=lambda: None)
            raise Refused

    with pytest.raises(Refused):
        load_into_the_stored_company()

    # Nothing was kept: the next load stores what it would have.
    assert read_back(store.new_uow, DEMO) == before
    made = synthetic.seed_bulk(store.load, StoppedClock(), **COUNTS)
    reference, expected = seed_through_the_services(on_something=True)
    assert made == expected
    assert read_back(store.new_uow, *ids(made)) == read_back(reference.unit_of_work, *ids(made))


def test_an_id_before_the_first_is_refused_and_nothing_is_kept(store: Store) -> None:
    def load_a_company_under(before: int) -> None:
        with store.load.begin() as load:
            first = load.first_id(Company)
            load.add_org(
                companies=[
                    Company(CompanyId(first), "Fine"),
                    Company(CompanyId(first - before), "Too early"),
                ],
                teams=[],
                levels=[],
                users=[],
                policies=[],
                done=lambda: None,
            )

    with pytest.raises(ValueError, match="before this load's first"):
        load_a_company_under(1)
    with store.load.begin() as load:
        assert load.first_id(Company) == 1
