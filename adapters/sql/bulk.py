"""Generated data loaded in bulk: the rows each core value becomes, and the SQLite loader.

A load stores what it is given past every stored id, in one transaction that other writers wait
for. Rows follow their `tables.py` tables column for column, in the tables' order; SQLite takes
them as batched INSERTs here, PostgreSQL as COPY (`bulk_copy.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final

import attrs
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection, Engine

from adapters.sql import tables
from expense_core.model import (
    ApprovalStep,
    Company,
    Expense,
    ExpenseEvent,
    HierarchyLevel,
    Policy,
    Team,
    User,
)

# Tables in the order they are written: each refers only to those before it, and a user only
# to users before it.
WRITTEN: Final = (
    tables.companies,
    tables.teams,
    tables.hierarchy_levels,
    tables.users,
    tables.policies,
    tables.approval_steps,
    tables.expenses,
    tables.approvals,
    tables.expense_events,
)
# Where the values a caller numbers itself are stored.
TABLE_OF: Final[Mapping[type, Table]] = {
    Company: tables.companies,
    Team: tables.teams,
    HierarchyLevel: tables.hierarchy_levels,
    User: tables.users,
    Policy: tables.policies,
    ApprovalStep: tables.approval_steps,
}

Row = tuple[object, ...]
Rows = dict[Table, list[Row]]
Submitted = Iterable[tuple[Expense, Sequence[ExpenseEvent]]]


@attrs.define
class Numbering:
    """Where a load's ids start in each table (by name), and the next one to give."""

    first: dict[str, int]
    next: dict[str, int]

    @classmethod
    def starting_at(cls, first: dict[str, int]) -> Numbering:
        return cls(first, dict(first))

    def first_of(self, kind: type) -> int:
        return self.first[TABLE_OF[kind].name]

    def take(self, table: Table) -> int:
        taken = self.next[table.name]
        self.next[table.name] = taken + 1
        return taken

    def given(self, table: Table, value: int) -> int:
        """Note an id the caller gave, and return it.

        Raises:
            ValueError: an id before the load's first, which may be stored already.
        """
        name = table.name
        if value < self.first[name]:
            raise ValueError(f"{name} id {value} is before this load's first, {self.first[name]}")
        if value >= self.next[name]:
            self.next[name] = value + 1
        return value


def empty_rows() -> Rows:
    return {table: [] for table in WRITTEN}


def org_rows(
    numbering: Numbering,
    *,
    companies: Sequence[Company],
    teams: Sequence[Team],
    levels: Sequence[HierarchyLevel],
    users: Sequence[User],
    policies: Sequence[Policy],
) -> Rows:
    """The rows of organisations, under the ids they carry.

    Raises:
        ValueError: an id before the load's first.
    """
    rows = empty_rows()
    given = numbering.given
    rows[tables.companies] = [
        (given(tables.companies, c.id), c.name, c.fallback_approver_id) for c in companies
    ]
    rows[tables.teams] = [
        (given(tables.teams, t.id), t.company_id, t.name, t.is_company_wide) for t in teams
    ]
    rows[tables.hierarchy_levels] = [
        (given(tables.hierarchy_levels, lv.id), lv.company_id, lv.team_id, lv.level_number,
         lv.level_name)
        for lv in levels
    ]  # fmt: skip
    rows[tables.users] = [
        (given(tables.users, u.id), u.company_id, u.team_id, u.email, u.name,
         u.hierarchy_level_id, u.active, u.manager_id, str(u.role))
        for u in users
    ]  # fmt: skip
    rows[tables.policies] = [
        (given(tables.policies, p.id), p.company_id, p.category, p.name, p.description,
         p.min_amount, p.max_amount, p.created_at, p.active)
        for p in policies
    ]  # fmt: skip
    rows[tables.approval_steps] = [
        (given(tables.approval_steps, s.id), p.id, s.step_order, s.required_level,
         str(s.team_scope), s.is_required, s.description, p.company_id, s.escalate_after_hours)
        for p in policies
        for s in p.steps
    ]  # fmt: skip
    return rows


def expense_rows(numbering: Numbering, expenses: Submitted) -> Rows:
    """The rows of expenses, their approvals and their events, numbered in order."""
    rows = empty_rows()
    take = numbering.take
    for expense, events in expenses:
        expense_id = take(tables.expenses)
        company = expense.company_id
        e = expense
        rows[tables.expenses].append(
            (expense_id, company, e.user_id, e.policy_id, e.amount, e.description,
             str(e.status), e.submitted_at, e.completed_at, 0)  # version 0: never written since
        )  # fmt: skip
        rows[tables.approvals] += [
            (take(tables.approvals), expense_id, a.step_number, a.approver_id,
             a.approver_level_id, a.required, str(a.status), a.approved_at, a.comments, company,
             a.escalate_after_hours, a.escalate_at)
            for a in expense.approvals
        ]  # fmt: skip
        rows[tables.expense_events] += [
            (take(tables.expense_events), company, expense_id, str(v.kind), v.at, v.actor_id,
             v.step_number, v.comment, v.approver_id, v.previous_approver_id, v.on_behalf_of)
            for v in events
        ]  # fmt: skip
    return rows


@attrs.frozen
class SqliteBulkLoader:
    """Bulk loads on SQLite: batched INSERTs in one `BEGIN IMMEDIATE` transaction, with
    foreign keys checked row by row as ever."""

    engine: Engine

    @contextlib.contextmanager
    def begin(self) -> Iterator[SqliteBulkLoad]:
        with self.engine.connect() as conn:
            # The write lock from the start: other writers wait, and the ids past every stored
            # one stay this load's.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                first = {
                    table.name: conn.execute(
                        select(func.coalesce(func.max(table.c.id), 0) + 1)
                    ).scalar_one()
                    for table in WRITTEN
                }
                yield SqliteBulkLoad(conn, Numbering.starting_at(first))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise


class SqliteBulkLoad:
    """One load on SQLite; each batch is written before its call returns."""

    def __init__(self, conn: Connection, numbering: Numbering) -> None:
        self._conn = conn
        self._numbering = numbering

    def first_id(self, kind: type) -> int:
        return self._numbering.first_of(kind)

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
        rows = org_rows(
            self._numbering,
            companies=companies,
            teams=teams,
            levels=levels,
            users=users,
            policies=policies,
        )
        self._insert(rows)
        done()

    def add_expenses(self, expenses: Submitted, *, done: Callable[[], None]) -> None:
        self._insert(expense_rows(self._numbering, expenses))
        done()

    def _insert(self, rows: Rows) -> None:
        for table in WRITTEN:
            found = rows[table]
            if found:
                keys = table.columns.keys()
                self._conn.execute(
                    table.insert(), [dict(zip(keys, row, strict=True)) for row in found]
                )
