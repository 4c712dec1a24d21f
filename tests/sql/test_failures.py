"""A database that cannot serve raises `Unavailable`, never a driver's traceback; it recovers."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from litestar.concurrency import sync_to_thread
from sqlalchemy import event
from sqlalchemy.engine import make_url

from adapters.sql import SqlDatabase, upgrade
from adapters.sql.awaited import AwaitedPool, PgAwaitedExpenses
from expense_core.errors import Unavailable
from expense_core.model import CompanyId, ExpenseId, UserId
from expense_core.services import (
    ApproveStep,
    AwaitedExpenseService,
    BulkAction,
    BulkDecision,
    DecideInBulk,
    ExpenseService,
    SubmitExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import MeddlingClock, TickingClock
from tests.contract.support import money, tech_corp
from tests.pg import PgServer
from tests.sql.support import opened, while_open


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed


def test_an_unreachable_server_is_unavailable() -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/nothing"
    with opened(url) as db:
        with pytest.raises(Unavailable):
            db.ping()
        with pytest.raises(Unavailable), db.unit_of_work() as uow:
            uow.org.member(UserId(1))
        with pytest.raises(Unavailable):
            ExpenseService(db.unit_of_work, TickingClock()).status(ExpenseId(1))
        with pytest.raises(Unavailable):
            db.upgrade()
    with pytest.raises(Unavailable):
        upgrade(url)


@pytest.mark.postgres
def test_a_missing_database_is_unavailable(postgres_server: PgServer) -> None:
    with opened(postgres_server.url("no_such_database")) as db, pytest.raises(Unavailable):
        db.ping()


def _terminate_sessions(url: str) -> int:
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(killed[0]) if killed else 0


@pytest.mark.postgres
def test_a_connection_lost_mid_work_is_unavailable_and_the_pool_recovers(
    postgres_url: str,
) -> None:
    with opened(postgres_url, pool_size=2) as db:
        org = tech_corp(db.unit_of_work)
        expenses = ExpenseService(db.unit_of_work, TickingClock())
        with db.unit_of_work() as uow:
            uow.org.member(org.person(7))
            assert _terminate_sessions(postgres_url) >= 1
            with pytest.raises(Unavailable):
                uow.org.company(org.id)
        # Idle pooled connections died too; they are replaced unnoticed.
        _terminate_sessions(postgres_url)
        db.ping()
        submitted = expenses.submit(
            SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("5.00"))
        )
        assert expenses.status(
            submitted.expense.id, Viewer.whole_company(CompanyId(org.id))
        ).amount == money("5.00")


@pytest.mark.postgres
def test_connections_that_died_in_the_pool_are_replaced_without_a_failure(
    postgres_url: str,
) -> None:
    with opened(postgres_url, pool_size=2) as db:
        org = tech_corp(db.unit_of_work)
        company = CompanyId(org.id)
        expenses = ExpenseService(db.unit_of_work, TickingClock())
        with db.unit_of_work() as one, db.unit_of_work() as two:
            one.org.member(org.person(7))
            two.org.member(org.person(7))
        assert _terminate_sessions(postgres_url) == 2  # as a server restart would
        db.ping()
        submitted = expenses.submit(
            SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("5.00"))
        )
        # A unit of work whose first statement writes (a decision that knows its company).
        _terminate_sessions(postgres_url)
        approver = submitted.approvers[0].id
        expenses.approve(
            ApproveStep(expense_id=submitted.expense.id, user_id=approver, company_id=company)
        )
        _terminate_sessions(postgres_url)
        view = expenses.status(submitted.expense.id, Viewer.whole_company(company))
        assert view.approvals[0].status == "approved"


@pytest.mark.postgres
def test_a_commit_that_cannot_reach_the_server_is_unavailable(postgres_url: str) -> None:
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work)
        with db.unit_of_work() as uow:
            uow.org.add_company("Lost Ltd")
            _terminate_sessions(postgres_url)
            with pytest.raises(Unavailable):
                uow.commit()
        with db.unit_of_work() as uow:
            assert uow.org.company(org.id) == org.company


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/db",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file:x?mode=memory&uri=true",
    ],
)
def test_unsupported_databases_are_refused_up_front(url: str) -> None:
    with pytest.raises(ValueError, match=r"SQLite file|unsupported"):
        SqlDatabase.connect(url)


def test_connecting_builds_an_engine_and_nothing_else(tmp_path: Path) -> None:
    with opened(f"sqlite:///{tmp_path}/never-created.db") as db:
        assert db.engine.pool.status().endswith("Current Checked out connections: 0")
        assert not (tmp_path / "never-created.db").exists()


def test_a_bulk_call_stops_trying_once_the_database_is_unavailable() -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/nothing"
    with opened(url) as db:
        attempts: list[object] = []
        event.listen(db.engine, "do_connect", lambda *args: attempts.append(args))
        expenses = ExpenseService(db.unit_of_work, TickingClock())
        one = ApproveStep(expense_id=ExpenseId(1), user_id=UserId(6))
        with pytest.raises(Unavailable):
            expenses.approve(one)
        alone = len(attempts)
        attempts.clear()

        decisions = tuple(
            BulkDecision(expense_id=ExpenseId(e), action=BulkAction.APPROVE) for e in (1, 2, 3)
        )
        answered = expenses.decide_in_bulk(DecideInBulk(user_id=UserId(6), decisions=decisions))

        assert [type(a) for a in answered] == [Unavailable] * 3
        assert len(attempts) == alone >= 1  # the first decision's, and no more


def _awaited(db: SqlDatabase, clock: TickingClock) -> tuple[AwaitedPool, AwaitedExpenseService]:
    pool = AwaitedPool(db, size=2, timeout_s=10)
    library = ExpenseService(db.unit_of_work, clock)
    return pool, AwaitedExpenseService(library, PgAwaitedExpenses(pool), sync_to_thread)


def _while_open(pool: AwaitedPool, work: Callable[[], Awaitable[str]]) -> str:
    """What `work` returns, run with the pool open and all its connections made."""

    async def once_full() -> str:
        assert pool._pool is not None
        await pool._pool.wait(timeout=10)
        return await work()

    return while_open(pool, once_full)


@pytest.mark.postgres
def test_awaited_connections_that_died_in_the_pool_are_replaced_without_a_failure(
    postgres_url: str,
) -> None:
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work)
        pool, awaited = _awaited(db, TickingClock())

        async def through_restarts() -> str:
            submit = SubmitExpense(
                user_id=org.person(7), policy_id=org.small.id, amount=money("5.00")
            )
            submitted = await awaited.submit(submit)
            # As a server restart would: the library's connection and both awaited ones.
            assert _terminate_sessions(postgres_url) == 3
            # The approval's held connection dies with its first statement: taken again.
            approver = submitted.approvers[0].id
            await awaited.approve(ApproveStep(expense_id=submitted.expense.id, user_id=approver))
            _terminate_sessions(postgres_url)
            view = await awaited.status(submitted.expense.id, Viewer.whole_company(org.id))
            return str(view.approvals[0].status)

        assert _while_open(pool, through_restarts) == "approved"


@pytest.mark.postgres
def test_an_awaited_connection_lost_between_a_read_and_its_write_is_unavailable(
    postgres_url: str,
) -> None:
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work)
        submitted = ExpenseService(db.unit_of_work, TickingClock()).submit(
            SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("5.00"))
        )
        # The approval reads the clock once, between its read and its write.
        pool, awaited = _awaited(db, MeddlingClock(1, lambda: _terminate_sessions(postgres_url)))
        approval = ApproveStep(expense_id=submitted.expense.id, user_id=submitted.approvers[0].id)

        async def lost() -> str:
            # The write is not run again on another connection: whether it ran is unknown once
            # its own connection is lost.
            with pytest.raises(Unavailable):
                await awaited.approve(approval)
            view = await awaited.status(submitted.expense.id, Viewer.whole_company(org.id))
            return str(view.approvals[0].status)

        assert _while_open(pool, lost) == "pending"
