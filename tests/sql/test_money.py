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
from expense_core.visibility import Viewer
from tests.clocks import TickingClock
from tests.contract.support import Org, add_policy, tech_corp
from tests.sql.support import opened

amounts = st.decimals(
    min_value=Decimal("0.00"), max_value=LIMIT, places=2, allow_nan=False, allow_infinity=False
).map(Money)
categories = itertools.count(1)


# Each dialect's own exact type: SQLite integer cents, PostgreSQL numeric (the seed's three
# policies' upper bounds).
STORED = {
    "sqlite": (
        "SELECT max_amount, typeof(max_amount) FROM policies WHERE company_id = :c",
        [(199999, "integer"), (99999999999, "integer"), (99999999999, "integer")],
    ),
    "postgresql": (
        "SELECT max_amount, pg_typeof(max_amount)::text FROM policies WHERE company_id = :c",
        [
            (Decimal("1999.99"), "numeric"),
            (Decimal("999999999.99"), "numeric"),
            (Decimal("999999999.99"), "numeric"),
        ],
    ),
}


@pytest.fixture
def db(database_url: str) -> Iterator[SqlDatabase]:
    with opened(database_url, pool_size=2) as database:
        yield database


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
        assert expenses.status(submitted.id, Viewer.whole_company(org.id)).amount == high
        with db.unit_of_work() as uow:
            assert uow.expenses.get(org.id, submitted.id).amount == high


def test_each_dialect_stores_amounts_in_an_exact_type(db: SqlDatabase, org: Org) -> None:
    query, expected = STORED[db.engine.dialect.name]
    with db.engine.connect() as conn:
        rows = conn.execute(text(query), {"c": org.id}).all()
    assert sorted(rows) == expected
