"""Visibility costs no round trip: a person's read of a status, a history or a list is the
same one statement a whole-company read is, its test (the reporting chain by a recursive CTE)
inside it. Counted at the cursor, as `test_round_trips.py` counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection

from adapters.sql import SqlDatabase
from expense_core.errors import UnknownExpense
from expense_core.model import Role
from expense_core.services import ExpenseService, NewUser, OrgService, SubmitExpense
from expense_core.visibility import Viewer
from tests.clocks import TickingClock
from tests.contract.support import money, tech_corp
from tests.sql.support import opened


@pytest.fixture
def db(database_url: str) -> Iterator[SqlDatabase]:
    with opened(database_url) as database:
        yield database


def _statements(db: SqlDatabase, action: Callable[[], object]) -> list[str]:
    sent: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return sent


def test_a_persons_reads_take_one_statement_each_seen_or_not(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work, managers=True)
    outsider = OrgService(db.unit_of_work).create_user(
        NewUser(
            company_id=org.id,
            team_id=org.team.id,
            email="outsider@techcorp.example",
            name="Out Sider",
            hierarchy_level_id=org.levels[7].id,
            role=Role.MANAGER,
        )
    )
    expenses = ExpenseService(db.unit_of_work, TickingClock())
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"))
    ).expense.id
    alice = Viewer(org.id, org.person(1), Role.EMPLOYEE)  # sees it through the chain
    nobody = Viewer(org.id, outsider.id, outsider.role)

    assert len(_statements(db, lambda: expenses.status(expense_id, alice))) == 1
    assert len(_statements(db, lambda: expenses.history(expense_id, alice))) == 1
    assert len(_statements(db, lambda: expenses.list_expenses(alice))) == 1

    def refused(read: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with pytest.raises(UnknownExpense):
                read()

        return run

    assert len(_statements(db, refused(lambda: expenses.status(expense_id, nobody)))) == 1
    assert len(_statements(db, refused(lambda: expenses.history(expense_id, nobody)))) == 1
    whole = Viewer.whole_company(org.id)
    assert len(_statements(db, lambda: expenses.explain(expense_id, alice))) == len(
        _statements(db, lambda: expenses.explain(expense_id, whole))
    )
