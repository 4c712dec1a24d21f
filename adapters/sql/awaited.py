"""`AwaitedExpenses` on PostgreSQL: the hot statements of `expenses.py`, awaited on psycopg's
asynchronous connections.

The statements, their parameters and the reading of their rows are the synchronous adapter's
own (`view_read`, `decision_read`, `decision_write`...): only the waiting differs. Each call runs
one prepared statement (with PostgreSQL's placeholders, `CompiledQuery.raw_sql`) in autocommit
on a connection of its own pool (`AwaitedPool`), opened with the engine's settings and type
adapters.

A submission is decided on the submitter, policy and approver pool of an earlier submission of
the same person under the same policy when this worker has them (`PgAwaitedExpenses`), and
written only while the organisation is as they were read (`org_version`, migration 0013): one
round trip where reading them again made two.

A statement that finds its connection dead (it died idle in the pool: a server restart) runs
once more, after the pool has checked its idle connections and replaced the dead ones. Failures
end as the synchronous adapter's do: `Unavailable` when the database cannot serve now, told to
the observer by kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Final, TypeVar

import attrs
import psycopg
from psycopg import AsyncRawCursor
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import TimeoutError as SqlPoolTimeout

from adapters.sql.access import holder_from, holder_read, note_use_write
from adapters.sql.database import SqlDatabase
from adapters.sql.expenses import (
    ROLE_OF,
    added,
    checked_add_write,
    decision_basis,
    decision_read,
    decision_write,
    is_new_round,
    view_of,
    view_read,
)
from adapters.sql.internals import driver_error
from adapters.sql.link import Query, _reraise
from adapters.sql.observe import SqlObserver, error_kind
from adapters.sql.org import (
    member_and_policies,
    member_policy_and_pool,
    org_version_of,
    versioned_member_policy_and_pool_read,
    versioned_member_with_policies_read,
)
from expense_core.approvers import ApproverPool
from expense_core.errors import ExpenseChanged, OrgChanged
from expense_core.model import (
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    Member,
    PolicyId,
    Role,
    UserId,
)
from expense_core.notifications import Notice
from expense_core.ports import CategoryBasis, DecisionBasis, SubmissionBasis
from expense_core.tokens import TokenHolder, TokenId
from expense_core.views import ExpenseView
from expense_core.visibility import Sight

K = TypeVar("K")
V = TypeVar("V")

_ROLE_OF = Query(ROLE_OF)
# How long closing waits for the statements running to end, and how often it looks.
DRAIN_S = 3.0
DRAIN_POLL_S = 0.01


class AwaitedPool:
    """A pool of asynchronous psycopg connections to the database of `database`, opened as its
    engine opens its own (server options, timeouts, type adapters), in autocommit."""

    def __init__(
        self,
        database: SqlDatabase,
        *,
        size: int,
        timeout_s: float,
        observer: SqlObserver | None = None,
    ) -> None:
        if database.is_sqlite:
            raise ValueError("awaited statements need PostgreSQL")
        self.dialect: Dialect = database.engine.dialect
        _, given = self.dialect.create_connect_args(database.engine.url)
        params = {**given, **database.connect_args, "autocommit": True}
        self._size = size
        self._params = params
        self._timeout_s = timeout_s
        self._in_use = 0
        self._observer = observer
        self._pool: AsyncConnectionPool | None = None

    async def open(self) -> None:
        """Start opening the connections on the running loop, in the background (a database
        that is down is no bar: a statement waits for a connection up to the pool's timeout).
        A statement opens them if nobody has, as after `close`."""
        if self._pool is not None:
            return
        pool = AsyncConnectionPool(
            "",
            kwargs=self._params,
            min_size=self._size,
            max_size=self._size,
            timeout=self._timeout_s,
            open=False,
            name="awaited",
        )
        await pool.open(wait=False)
        await self._adopt(pool)

    async def _adopt(self, pool: AsyncConnectionPool) -> None:
        if self._pool is None:
            self._pool = pool
        else:  # another statement opened one meanwhile
            await pool.close()

    async def close(self) -> None:
        """Close the connections, once the statements running have ended (for at most
        `DRAIN_S`): a request cancelled at the end of a shutdown's grace period ends its
        statement (psycopg cancels it in the server) before it can answer "retry"."""
        deadline = time.monotonic() + DRAIN_S
        while self._in_use and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        await asyncio.sleep(DRAIN_POLL_S)  # their answers, written as they unwind
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold one connection for the statements this task runs within (`rows`): taken at the
        first, given back at the end. A read and the write after it wait for the pool once, not
        twice behind everyone else's statements. Within a block already held, nothing more."""
        if _HELD.get() is not None:
            yield
            return
        held = _Held(self)
        token = _HELD.set(held)
        try:
            yield
        finally:
            _HELD.reset(token)
            await held.give_back()

    async def rows(self, query: Query, given: Mapping[str, Any]) -> list[Any]:
        """Run one statement and return its rows, as `Link.read` would."""
        compiled = query.compiled(self.dialect)
        params = compiled.params(given)
        values = compiled.ordered(params)
        returns = compiled.row is not None
        try:
            try:
                fetched = await self._run(compiled.raw_sql, values, returns)
            except _Failed as failed:
                if not failed.lost or not await self._may_run_again():
                    raise
                # The connection died idle in the pool: replace the dead ones, and try again.
                if self._pool is not None:
                    await self._pool.check()
                fetched = await self._run(compiled.raw_sql, values, returns)
        except _Failed as failed:
            error = driver_error(
                failed.error, compiled.sql, params, self.dialect, connection_invalidated=failed.lost
            )
            self._failed(error_kind(error))
            _reraise(error)
        except PoolTimeout as exc:
            self._failed("pool_timeout")
            _reraise(SqlPoolTimeout(str(exc)))
        return compiled.rows(fetched)

    async def _run(self, sql: bytes, values: tuple[Any, ...], returns: bool) -> list[Any]:
        held = _HELD.get()
        if held is None or held.pool is not self:
            pool, conn = await self._take()
            try:
                return await _execute(conn, sql, values, returns)
            finally:
                await self._give_back(pool, conn)
        if held.conn is None:
            held.source, held.conn = await self._take()
        held.statements += 1
        return await _execute(held.conn, sql, values, returns)

    async def _may_run_again(self) -> bool:
        """Whether a statement whose connection was lost may run again: yes if it was its
        connection's first (it died idle in the pool, the statement never ran), and then that
        connection is given back (the pool drops it); never after others ran on it."""
        held = _HELD.get()
        if held is None or held.pool is not self:
            return True
        if held.statements > 1:
            return False
        await held.give_back()
        return True

    async def _take(self) -> tuple[AsyncConnectionPool, psycopg.AsyncConnection[Any]]:
        pool = self._pool
        if pool is None:
            await self.open()
            pool = self._pool
            assert pool is not None  # noqa: S101 -- just opened
        waiting = self._observer is not None and self._in_use >= self._size
        started = time.perf_counter() if waiting else 0.0
        self._in_use += 1
        try:
            conn = await pool.getconn()
        except BaseException:
            self._in_use -= 1
            raise
        if waiting and self._observer is not None:
            self._observer.waited(time.perf_counter() - started)
        return pool, conn

    async def _give_back(
        self, pool: AsyncConnectionPool, conn: psycopg.AsyncConnection[Any]
    ) -> None:
        try:
            await pool.putconn(conn)
        finally:
            self._in_use -= 1

    def _failed(self, kind: str) -> None:
        if self._observer is not None:
            self._observer.failed(kind)


async def _execute(
    conn: psycopg.AsyncConnection[Any], sql: bytes, values: tuple[Any, ...], returns: bool
) -> list[Any]:
    try:
        cursor = AsyncRawCursor(conn)
        await cursor.execute(sql, values, prepare=True)
        return await cursor.fetchall() if returns else []
    except psycopg.Error as exc:
        raise _Failed(exc, lost=conn.broken) from exc


@attrs.define
class _Held:
    """The connection a task holds for its statements (`AwaitedPool.held`), once taken."""

    pool: AwaitedPool
    source: AsyncConnectionPool | None = None
    conn: psycopg.AsyncConnection[Any] | None = None
    statements: int = 0  # run on `conn`

    async def give_back(self) -> None:
        if self.conn is not None and self.source is not None:
            conn, self.conn, self.statements = self.conn, None, 0
            await self.pool._give_back(self.source, conn)


_HELD: ContextVar[_Held | None] = ContextVar("held_connection", default=None)


class _Failed(Exception):
    """A statement's driver error, and whether its connection was lost with it."""

    def __init__(self, error: psycopg.Error, *, lost: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.lost = lost


# How many submission bases a worker keeps, at most, and as many choices by category: past it,
# it forgets the one kept longest. What they name is shared (`_Alike`): a basis costs a few
# hundred bytes of its own, the people and policies it names are kept once for all of them.
KEPT_BASES: Final = 16384


class _Alike:
    """One object for each value the kept bases hold, however many hold it: the same managers,
    approvers and policies recur in many people's bases, and each read makes copies of them.
    Forgotten with the bases, and as a whole once it holds `KEPT_BASES` times 4 (the bases
    kept then hold theirs on)."""

    def __init__(self) -> None:
        self._held: dict[Any, Any] = {}

    def clear(self) -> None:
        self._held.clear()

    def submission(self, basis: SubmissionBasis) -> SubmissionBasis:
        pool = basis.pool
        if pool is not None:
            fallback = None if pool.fallback is None else self._one(pool.fallback)
            pool = ApproverPool(self._all(pool.chain), self._all(pool.candidates), fallback)
        policy = None if basis.policy is None else self._one(basis.policy)
        member = self._one(basis.member)
        return attrs.evolve(basis, member=member, policy=policy, pool=pool, recalled=True)

    def category(self, chosen: CategoryBasis) -> CategoryBasis:
        policies = tuple(self._one(policy) for policy in chosen.policies)
        member = self._one(chosen.member)
        return attrs.evolve(chosen, member=member, policies=policies, recalled=True)

    def _all(self, members: tuple[Member, ...]) -> tuple[Member, ...]:
        return self._one(tuple(self._one(member) for member in members))

    def _one(self, value: V) -> V:
        if len(self._held) >= 4 * KEPT_BASES:
            self._held.clear()
        held: V = self._held.setdefault(value, value)
        return held


class PgAwaitedExpenses:
    """`AwaitedExpenses`, and `AwaitedTokens` for token mode's every request, on an
    `AwaitedPool`.

    It keeps the basis of each submission it read under a policy that exists (by submitter and
    policy, `KEPT_BASES` at most), and each choice of policies by category (by submitter and
    category), and recalls them for the next submission: `add` writes only while the
    organisation's version is still the one read with its basis. When it has moved, nothing is
    written and everything kept is forgotten (it was all read before the change).
    """

    def __init__(self, pool: AwaitedPool) -> None:
        self._pool = pool
        self._kept: dict[tuple[UserId, PolicyId], SubmissionBasis] = {}
        self._chosen: dict[tuple[UserId, str], CategoryBasis] = {}
        self._alike = _Alike()

    async def open(self) -> None:
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    def held(self) -> AbstractAsyncContextManager[None]:
        return self._pool.held()

    async def submission_basis(self, user_id: UserId, policy_id: PolicyId) -> SubmissionBasis:
        kept = self._kept.get((user_id, policy_id))
        if kept is not None:
            return kept
        rows = await self._pool.rows(*versioned_member_policy_and_pool_read(user_id, policy_id))
        member, policy, pool = member_policy_and_pool(rows, user_id)
        basis = SubmissionBasis(member, policy, pool, seen=org_version_of(rows))
        if policy is not None and pool is not None:  # what names no policy is not kept
            _keep(self._kept, (user_id, policy_id), self._alike.submission(basis))
        return basis

    async def category_basis(self, user_id: UserId, category: str) -> CategoryBasis:
        kept = self._chosen.get((user_id, category))
        if kept is not None:
            return kept
        rows = await self._pool.rows(*versioned_member_with_policies_read(user_id, category))
        member, policies = member_and_policies(rows, user_id)
        chosen = CategoryBasis(member, category, policies, seen=rows[0].org_version)
        _keep(self._chosen, (user_id, category), self._alike.category(chosen))
        return chosen

    def forget(self, basis: SubmissionBasis | CategoryBasis) -> None:
        if isinstance(basis, CategoryBasis):
            self._chosen.pop((basis.member.id, basis.category), None)
        elif basis.policy is not None:
            self._kept.pop((basis.member.id, basis.policy.id), None)

    async def add(
        self,
        basis: SubmissionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> Expense:
        seen = basis.seen if isinstance(basis.seen, int) else None
        rows = await self._pool.rows(*checked_add_write(seen, expense, events, notices))
        if not rows:
            self._kept.clear()
            self._chosen.clear()
            self._alike.clear()
            raise OrgChanged
        return added(expense, rows)

    async def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> ExpenseView:
        return view_of(await self._pool.rows(*view_read(company_id, expense_id, sight)), expense_id)

    async def holder(self, token_id: TokenId) -> TokenHolder | None:
        rows = await self._pool.rows(*holder_read(token_id))
        return holder_from(rows[0]) if rows else None

    async def note_use(self, token_id: TokenId, at: datetime, unless_since: datetime) -> None:
        await self._pool.rows(*note_use_write(token_id, at, unless_since))

    async def basis_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> DecisionBasis | None:
        rows = await self._pool.rows(*decision_read(company_id, actor_id, expense_id))
        if not rows:
            return None
        basis = decision_basis(rows, actor_id)
        if basis.role is None:
            # An expense without steps carries no role: read it alone.
            role = await self._pool.rows(_ROLE_OF, {"actor": actor_id})
            if role:
                basis = DecisionBasis(basis.expense, basis.covers, Role(role[0][0]), basis.seen)
        return basis

    async def save_decision(
        self,
        basis: DecisionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> None:
        before = basis.expense
        if is_new_round(before, expense) or not isinstance(basis.seen, int):
            raise ValueError("an awaited decision writes the steps it read, over their version")
        written = await self._pool.rows(
            *decision_write(before, basis.seen, expense, events, notices)
        )
        if not written:
            raise ExpenseChanged(expense.id)


def _keep(kept: dict[K, V], key: K, value: V) -> None:
    """Keep `value` under `key`, forgetting the value kept longest when `KEPT_BASES` are."""
    if len(kept) >= KEPT_BASES:
        del kept[next(iter(kept))]
    kept[key] = value
