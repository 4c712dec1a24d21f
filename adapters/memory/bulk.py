"""Generated data loaded straight into a `MemoryStore`'s tables, all of it or nothing.

A load holds the store's lock from start to end, as a unit of work does, and takes back
everything it wrote if it fails. What the tables derive (emails, each company's expenses, who
holds which pending step) is kept in step; the approver ladders are rebuilt when next needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import attrs

from adapters.memory.store import MemoryStore
from expense_core.errors import DuplicateEmail
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    Company,
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    HierarchyLevel,
    Policy,
    Team,
    User,
)

# The store's id counter of each value a caller numbers itself.
COUNTER_OF: Final[dict[type, str]] = {
    Company: "companies",
    Team: "teams",
    HierarchyLevel: "levels",
    User: "users",
    Policy: "policies",
    ApprovalStep: "approval_steps",
}


@attrs.frozen
class MemoryBulkLoader:
    """Bulk loads into one `MemoryStore`."""

    store: MemoryStore

    @contextlib.contextmanager
    def begin(self) -> Iterator[MemoryBulkLoad]:
        store = self.store
        with store.lock:
            load = MemoryBulkLoad(store)
            try:
                yield load
            except BaseException:
                load.take_back()
                raise
            finally:
                store.forget_ladders()


class MemoryBulkLoad:
    """One load into a `MemoryStore`; each batch is stored before its call returns."""

    def __init__(self, store: MemoryStore) -> None:
        self._t = store.tables
        self._counters = dict(store.tables.counters)
        # What `take_back` removes: keys added to dicts, expenses appended to each company's
        # list (which ended here before the load) and added to each approver's pending set.
        self._added: list[tuple[dict[Any, Any], Any]] = []
        self._listed: dict[CompanyId, int] = {}
        self._waiting: list[tuple[set[ExpenseId], ExpenseId]] = []

    def first_id(self, kind: type) -> int:
        return self._counters.get(COUNTER_OF[kind], 0) + 1

    def add_org(
        self,
        *,
        companies: Sequence[Company],
        teams: Sequence[Team],
        levels: Sequence[HierarchyLevel],
        users: Sequence[User],
        policies: Sequence[Policy],
        done: Callable[[], None],
    ) -> None:
        t = self._t
        for company in companies:
            self._store(Company, t.companies, company)
        for team in teams:
            self._store(Team, t.teams, team)
        for level in levels:
            self._store(HierarchyLevel, t.levels, level)
        for user in users:
            if (user.company_id, user.email) in t.emails:
                raise DuplicateEmail(user.email)
            self._store(User, t.users, user)
            self._put(t.emails, (user.company_id, user.email), user.id)
        for policy in policies:
            for step in policy.steps:
                self._count(ApprovalStep, step.id)
            self._store(Policy, t.policies, policy)
        done()

    def add_expenses(
        self,
        expenses: Iterable[tuple[Expense, Sequence[ExpenseEvent]]],
        *,
        done: Callable[[], None],
    ) -> None:
        t = self._t
        for expense, events in expenses:
            expense_id = ExpenseId(t.counters.get("expenses", 0) + 1)
            t.counters["expenses"] = expense_id
            self._put(t.expenses, expense_id, attrs.evolve(expense, id=expense_id))
            self._put(
                t.events, expense_id, tuple(attrs.evolve(e, expense_id=expense_id) for e in events)
            )
            company = expense.company_id
            listed = t.company_expenses.get(company)
            if listed is None:
                listed = []
                self._put(t.company_expenses, company, listed)
            self._listed.setdefault(company, len(listed))
            # Still ascending: every id this load gives is past every stored one.
            listed.append(expense_id)
            for a in expense.approvals:
                if a.status is ApprovalStatus.PENDING:
                    held = t.waiting_on.get(a.approver_id)
                    if held is None:
                        held = set()
                        self._put(t.waiting_on, a.approver_id, held)
                    held.add(expense_id)
                    self._waiting.append((held, expense_id))
        done()

    def _store(
        self,
        kind: type,
        table: dict[Any, Any],
        value: Company | Team | HierarchyLevel | User | Policy,
    ) -> None:
        self._count(kind, value.id)
        self._put(table, value.id, value)

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        if key in table:
            raise ValueError(f"{key!r} is stored already")
        table[key] = value
        self._added.append((table, key))

    def _count(self, kind: type, value: int) -> None:
        """Keep the store's counter at the largest id given, as if each had been drawn."""
        counters = self._t.counters
        name = COUNTER_OF[kind]
        if value < self.first_id(kind):
            raise ValueError(f"{name} id {value} is before this load's first")
        counters[name] = max(counters.get(name, 0), value)

    def take_back(self) -> None:
        """Remove everything this load stored."""
        t = self._t
        for held, expense_id in self._waiting:
            held.discard(expense_id)
        for company, length in self._listed.items():
            del t.company_expenses[company][length:]
        for table, key in reversed(self._added):
            del table[key]
        t.counters.clear()
        t.counters.update(self._counters)
