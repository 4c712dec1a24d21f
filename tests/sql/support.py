"""What the SQL adapter's tests share: a database opened for a while, and disposed of after; an
awaited store opened for a while on an event loop of its own; the harness of the races, where
threads, each on its own connection, fight over the same expenses."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import attrs
import pytest

from adapters.memory import MemoryStore
from adapters.sql import SqlDatabase
from expense_core.errors import DomainError, Unavailable
from expense_core.model import (
    ApprovalStep,
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    Policy,
    UserId,
)
from expense_core.services import ExpenseService, SubmitExpense
from expense_core.workflow import Decision
from tests.clocks import TickingClock
from tests.contract.support import Org, add_policy, money, tech_corp


def three_steps(db: SqlDatabase | MemoryStore, company: CompanyId, category: str) -> Policy:
    """A policy of step 1 (level 6: Frank in TechCorp), step 2 (level 5: Eve) and an optional
    step 3 (level 4: David)."""
    return add_policy(
        db.unit_of_work,
        company,
        category,
        (
            ApprovalStep(step_order=1, required_level=6),
            ApprovalStep(step_order=2, required_level=5),
            ApprovalStep(step_order=3, required_level=4, is_required=False),
        ),
    )


def submitted_to_three_steps(
    store: SqlDatabase | MemoryStore, category: str, submitter: int
) -> tuple[Org, ExpenseId]:
    """A fresh TechCorp and an expense of `submitter` (an index into its people) under a new
    `three_steps` policy of `category`."""
    org = tech_corp(store.unit_of_work)
    policy = three_steps(store, org.id, category)
    submitted = ExpenseService(store.unit_of_work, TickingClock()).submit(
        SubmitExpense(user_id=org.person(submitter), policy_id=policy.id, amount=money("50.00"))
    )
    return org, submitted.expense.id


@contextlib.contextmanager
def opened(url: str, *, pool_size: int = 1) -> Iterator[SqlDatabase]:
    """The database at `url`, its pool's connections closed on the way out."""
    db = SqlDatabase.connect(url, pool_size=pool_size)
    try:
        yield db
    finally:
        db.dispose()


T = TypeVar("T")


class Opened(Protocol):
    """An awaited store or pool: opened on the running loop, closed after."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...


def while_open(store: Opened, work: Callable[[], Awaitable[T]]) -> T:
    """What `work` returns, awaited on an event loop of its own with `store` open meanwhile."""

    async def run() -> T:
        await store.open()
        try:
            return await work()
        finally:
            await store.close()

    return asyncio.run(run())


def race_params(*, postgres: tuple[int, int], sqlite: tuple[int, int]) -> list[Any]:
    """A race fixture's params: how many expenses and threads, on PostgreSQL and on SQLite."""
    return [
        pytest.param(("postgres", *postgres), marks=pytest.mark.postgres, id="postgres"),
        pytest.param(("sqlite", *sqlite), id="sqlite"),
    ]


@contextlib.contextmanager
def race_database(request: pytest.FixtureRequest) -> Iterator[tuple[SqlDatabase, int, int]]:
    """The fresh database of a race fixture's param (see `race_params`), a connection per
    thread, with how many expenses and threads."""
    dialect, expenses, threads = request.param
    url = request.getfixturevalue("postgres_url" if dialect == "postgres" else "sqlite_url")
    with opened(url, pool_size=threads) as db:
        yield db, expenses, threads


@attrs.frozen
class Attempt:
    expense_id: ExpenseId
    actor: UserId
    kind: str
    group: str = ""  # attempts of one group compete for one outcome


@attrs.frozen
class Outcome:
    attempt: Attempt
    decision: Decision | None  # None when refused, or for a command answering no decision
    refusal: DomainError | None

    @property
    def won(self) -> bool:
        return self.refusal is None


def side_by_side(
    ids: Sequence[ExpenseId], attempts_on: Callable[[ExpenseId], list[Attempt]], seed: int
) -> list[Attempt]:
    """Each expense's attempts, shuffled, next to each other: the threads fight over it."""
    shuffle = random.Random(seed).shuffle  # noqa: S311 -- test data, not secrets
    attempts: list[Attempt] = []
    for expense_id in ids:
        mine = attempts_on(expense_id)
        shuffle(mine)
        attempts += mine
    return attempts


def run_race(
    threads: int, attempts: Sequence[Attempt], decide: Callable[[Attempt], Decision | None]
) -> list[Outcome]:
    """Make every attempt, `threads` at once; each one's decision or refusal, in order. None of
    them found the store unavailable."""

    def run(attempt: Attempt) -> Outcome:
        try:
            decision = decide(attempt)
        except DomainError as refusal:
            return Outcome(attempt, None, refusal)
        return Outcome(attempt, decision, None)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        outcomes = list(pool.map(run, attempts))
    assert [o.refusal for o in outcomes if isinstance(o.refusal, Unavailable)] == []
    return outcomes


def check_each(
    db: SqlDatabase,
    company_id: CompanyId,
    ids: Sequence[ExpenseId],
    outcomes: Sequence[Outcome],
    check: Callable[[Expense, tuple[ExpenseEvent, ...], list[Outcome]], None],
) -> None:
    """Check each expense as stored, with its history and the outcomes of its attempts."""
    by_expense: dict[ExpenseId, list[Outcome]] = {}
    for outcome in outcomes:
        by_expense.setdefault(outcome.attempt.expense_id, []).append(outcome)
    with db.unit_of_work() as uow:
        for expense_id in ids:
            expense = uow.expenses.get(company_id, expense_id)
            history = uow.expenses.history(company_id, expense_id)
            check(expense, history, by_expense[expense_id])
