"""Units of work that tell what they committed: each expense written, with the events appended
to its history (the domain metrics count them, `metrics.DomainMetrics.committed`).

Every use case that changes an expense writes it through `ExpenseRepository.add` or `save`
with its new events, in one unit of work: watching those two calls, and reporting only once
the unit of work commits, counts each decision once, whichever use case made it (those added
later included), and never one that was rolled back. Everything else passes straight through
to the store's own unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Self

from entrypoints.ports import AwaitedStore
from expense_core.model import (
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    PolicyId,
    UserId,
)
from expense_core.notifications import Notice
from expense_core.ports import (
    ApiTokens,
    AuditLog,
    CategoryBasis,
    DecisionBasis,
    DelegationRepository,
    ExpenseRepository,
    IdempotencyRecords,
    OrgRepository,
    Outbox,
    SubmissionBasis,
    UnitOfWork,
    WebhookRepository,
)
from expense_core.tokens import TokenHolder, TokenId
from expense_core.views import ExpenseView
from expense_core.visibility import Sight

log = logging.getLogger("expense_tracker.observed")

Change = tuple[Expense, Sequence[ExpenseEvent]]
Committed = Callable[[Sequence[Change]], None]


class _WatchedExpenses:
    """The store's expense repository, noting what `add` and `save` write."""

    def __init__(self, inner: ExpenseRepository, written: list[Change]) -> None:
        self._inner = inner
        self._written = written

    def add(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> Expense:
        stored = self._inner.add(expense, events, notices)
        self._written.append((stored, events))
        return stored

    def save(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> None:
        self._inner.save(expense, events, notices)
        self._written.append((expense, events))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class WatchedUnitOfWork:
    """A store's unit of work that tells `committed` what it wrote, once it has committed."""

    def __init__(self, inner: UnitOfWork, committed: Committed) -> None:
        self._inner = inner
        self._committed = committed
        self._written: list[Change] = []
        self.expenses = _WatchedExpenses(inner.expenses, self._written)

    def __enter__(self) -> Self:
        self._inner.__enter__()
        self._written.clear()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._written.clear()
        self._inner.__exit__(*exc_info)

    def commit(self) -> None:
        self._inner.commit()
        if self._written:
            written = list(self._written)
            self._written.clear()
            try:
                self._committed(written)
            except Exception:
                # What is committed stays committed: a use case never fails for its figures.
                log.exception("could not count what a unit of work committed")

    def commit_next_write(self) -> None:
        self._inner.commit_next_write()

    # The store's own repositories, looked up as attributes: quicker than `__getattr__`'s
    # failed lookup first, on every use.
    @property
    def org(self) -> OrgRepository:
        return self._inner.org

    @property
    def idempotency(self) -> IdempotencyRecords:
        return self._inner.idempotency

    @property
    def tokens(self) -> ApiTokens:
        return self._inner.tokens

    @property
    def delegations(self) -> DelegationRepository:
        return self._inner.delegations

    @property
    def webhooks(self) -> WebhookRepository:
        return self._inner.webhooks

    @property
    def outbox(self) -> Outbox:
        return self._inner.outbox

    @property
    def audit(self) -> AuditLog:
        return self._inner.audit

    def __getattr__(self, name: str) -> Any:
        # Whatever else the store's unit of work offers.
        return getattr(self._inner, name)


def watched(new_uow: Callable[[], UnitOfWork], committed: Committed) -> Callable[[], UnitOfWork]:
    """A unit-of-work factory whose units of work tell `committed` what they committed."""
    return lambda: WatchedUnitOfWork(new_uow(), committed)


class _WatchedAwaited:
    """An awaited store that tells `committed` what each of its writes committed (each is
    committed as it returns)."""

    def __init__(self, inner: AwaitedStore, committed: Committed) -> None:
        self._inner = inner
        self._committed = committed

    def held(self) -> AbstractAsyncContextManager[None]:
        return self._inner.held()

    # Reads hand back the store's own awaitable: no frame of their own on every request.
    def submission_basis(
        self, user_id: UserId, policy_id: PolicyId
    ) -> Coroutine[Any, Any, SubmissionBasis]:
        return self._inner.submission_basis(user_id, policy_id)

    def category_basis(self, user_id: UserId, category: str) -> Coroutine[Any, Any, CategoryBasis]:
        return self._inner.category_basis(user_id, category)

    def forget(self, basis: SubmissionBasis | CategoryBasis) -> None:
        self._inner.forget(basis)

    async def add(
        self,
        basis: SubmissionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> Expense:
        stored = await self._inner.add(basis, expense, events, notices)
        self._count(stored, events)
        return stored

    def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> Coroutine[Any, Any, ExpenseView]:
        return self._inner.view(company_id, expense_id, sight)

    def basis_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> Coroutine[Any, Any, DecisionBasis | None]:
        return self._inner.basis_for_decision(company_id, actor_id, expense_id)

    async def save_decision(
        self,
        basis: DecisionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> None:
        await self._inner.save_decision(basis, expense, events, notices)
        self._count(expense, events)

    def holder(self, token_id: TokenId) -> Coroutine[Any, Any, TokenHolder | None]:
        return self._inner.holder(token_id)

    def note_use(
        self, token_id: TokenId, at: datetime, unless_since: datetime
    ) -> Coroutine[Any, Any, None]:
        return self._inner.note_use(token_id, at, unless_since)

    def _count(self, expense: Expense, events: Sequence[ExpenseEvent]) -> None:
        try:
            self._committed([(expense, events)])
        except Exception:
            # What is committed stays committed: a use case never fails for its figures.
            log.exception("could not count what a write committed")

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        await self._inner.close()


def watched_awaited(store: AwaitedStore, committed: Committed) -> _WatchedAwaited:
    """`store`, telling `committed` what its writes commit."""
    return _WatchedAwaited(store, committed)
