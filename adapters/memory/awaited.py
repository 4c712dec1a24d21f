"""`AwaitedExpenses` and `AwaitedTokens` in memory: each call one unit of work of the store,
made at once (nothing in memory is waited for). Nothing is recalled: a read costs no more than
checking one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from adapters.memory.store import MemoryStore
from expense_core.errors import ExpenseChanged, OrgChanged
from expense_core.model import (
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    PolicyId,
    UserId,
)
from expense_core.notifications import Notice
from expense_core.ports import CategoryBasis, DecisionBasis, SubmissionBasis
from expense_core.tokens import TokenHolder, TokenId
from expense_core.views import ExpenseView
from expense_core.visibility import Sight


class MemoryAwaitedExpenses:
    """The store's expenses, to be awaited. The mark of a state read is the stored expense
    itself: every write stores a new one."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """The store's lock, so that a use case's reads see one state (nothing in memory is
        waited for, so nothing else on the loop runs within)."""
        with self._store.lock:
            yield

    async def submission_basis(self, user_id: UserId, policy_id: PolicyId) -> SubmissionBasis:
        with self._store.unit_of_work() as uow:
            member, policy, pool = uow.org.member_with_policy_and_pool(user_id, policy_id)
        return SubmissionBasis(member, policy, pool, seen=None)

    async def category_basis(self, user_id: UserId, category: str) -> CategoryBasis:
        with self._store.unit_of_work() as uow:
            member, policies = uow.org.member_with_policies(user_id, category)
        return CategoryBasis(member, category, policies, seen=None)

    def forget(self, basis: SubmissionBasis | CategoryBasis) -> None:
        """Nothing is kept."""

    async def add(
        self,
        basis: SubmissionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> Expense:
        with self._store.unit_of_work() as uow:
            # The organisation is as read if it reads the same again.
            read = (basis.member, basis.policy, basis.pool)
            if basis.policy is None or read != uow.org.member_with_policy_and_pool(
                basis.member.id, basis.policy.id
            ):
                raise OrgChanged
            stored = uow.expenses.add(expense, events, notices)
            uow.commit()
        return stored

    async def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> ExpenseView:
        with self._store.unit_of_work() as uow:
            return uow.expenses.view(company_id, expense_id, sight)

    async def basis_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> DecisionBasis | None:
        with self._store.unit_of_work() as uow:
            found = uow.expenses.get_for_decision(company_id, actor_id, expense_id)
        if found is None:
            return None
        expense, covers, role = found
        return DecisionBasis(expense, covers, role, seen=expense)

    async def save_decision(
        self,
        basis: DecisionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> None:
        with self._store.unit_of_work() as uow:
            if self._store.tables.expenses.get(expense.id) is not basis.seen:
                raise ExpenseChanged(expense.id)
            uow.expenses.save(expense, events, notices)
            uow.commit()

    async def holder(self, token_id: TokenId) -> TokenHolder | None:
        with self._store.unit_of_work() as uow:
            return uow.tokens.holder(token_id)

    async def note_use(self, token_id: TokenId, at: datetime, unless_since: datetime) -> None:
        with self._store.unit_of_work() as uow:
            uow.tokens.note_use(token_id, at, unless_since)
            uow.commit()
