"""Money goes in and comes out exactly, on both dialects: never through a float."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from adapters.sql import SqlDatabase
from expense_core.model import LIMIT, ApprovalStep, Money
from expense_core.services import ExpenseService, SubmitExpense
from tests.clocks import TickingClock
from tests.contract.support import Org, add_policy, tech_corp

amounts = st.decimals(
    min_value=Decimal("0.00"), max_value=LIMIT, places=2, allow_nan=False, allow_infinity=False
).map(Money)
categories = itertools.count(1)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[SqlDatabase]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    database = SqlDatabase.connect(url, pool_size=2)
    yield database
    database.dispose()


@pytest.fixture
def org(db: SqlDatabase) -> Org:
    return tech_corp(db.unit_of_work)


# The database fixture is shared by the examples on purpose: each one works with fresh ids.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounds=st.lists(amounts, min_size=2, max_size=2).map(sorted))
def test_amounts_round_trip_unchanged(db: SqlDatabase, org: Org, bounds: list[Money]) -> None:
    low, high = bounds
    policy = add_policy(
        db.unit_of_work,
        org.id,
        f"category {next(categories)}",
        (ApprovalStep(step_order=1, required_level=6),),
        low=str(low),
        high=high,
    )
    with db.unit_of_work() as uow:
        stored = uow.org.policy(org.id, policy.id)
    assert (stored.min_amount, stored.max_amount) == (low, high)
    assert str(stored.max_amount.value) == str(high.value)  # the exponent too: two places
    if high.value:
        expenses = ExpenseService(db.unit_of_work, TickingClock())
        submitted = expenses.submit(
            SubmitExpense(user_id=org.person(7), policy_id=policy.id, amount=high)
        ).expense
        assert expenses.status(submitted.id, org.id).amount == high
        with db.unit_of_work() as uow:
            assert uow.expenses.get(org.id, submitted.id).amount == high


def test_sqlite_keeps_whole_cents(sqlite_url: str) -> None:
    db = SqlDatabase.connect(sqlite_url, pool_size=1)
    try:
        org = tech_corp(db.unit_of_work)
        with db.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT max_amount, typeof(max_amount) FROM policies WHERE company_id = :c"),
                {"c": org.id},
            ).all()
        assert sorted(rows) == [
            (199999, "integer"),
            (99999999999, "integer"),
            (99999999999, "integer"),
        ]
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgresql_keeps_numeric(postgres_url: str) -> None:
    db = SqlDatabase.connect(postgres_url, pool_size=1)
    try:
        org = tech_corp(db.unit_of_work)
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT max_amount, pg_typeof(max_amount)::text FROM policies"
                    " WHERE company_id = :c"
                ),
                {"c": org.id},
            ).all()
        assert sorted(rows) == [
            (Decimal("1999.99"), "numeric"),
            (Decimal("999999999.99"), "numeric"),
            (Decimal("999999999.99"), "numeric"),
        ]
    finally:
        db.dispose()
