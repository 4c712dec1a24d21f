"""UnitOfWork: all or nothing, and what it sees of its own writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from expense_core.errors import UnknownCompany, UnknownExpense, UnknownTeam
from expense_core.model import Expense, Member, Team, TeamId
from expense_core.ports import UnitOfWork
from expense_core.services import ExpenseService, SubmitExpense
from expense_core.tokens import DEFAULT_TTL, TokenId, new_token
from tests.contract.support import Org, money


class Boom(Exception):
    pass


@pytest.fixture
def expense(expenses: ExpenseService, org: Org) -> Expense:
    """Grace's small equipment expense, pending, committed."""
    return expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"))
    ).expense


def test_nothing_survives_a_unit_of_work_left_uncommitted(
    new_uow: Callable[[], UnitOfWork], expense: Expense, org: Org
) -> None:
    with new_uow() as uow:
        company = uow.org.add_company("Ghost Ltd")
        team = uow.org.add_team(Team(TeamId(0), org.id, "Ghosts"))
        loaded = uow.expenses.get_for_update(org.id, expense.id)
        new_id = uow.expenses.add(loaded, (), ()).id
        uow.idempotency.remember(org.person(7), "ghost-key", "f" * 64, new_id)
        grace = Member(org.people[7], org.levels[7])
        token = new_token(TokenId("0000000000000bee"), grace, datetime.now(UTC), DEFAULT_TTL, None)
        uow.tokens.add(token, "h" * 64)
        assert uow.org.company(company.id) == company  # visible inside
    with new_uow() as uow:
        with pytest.raises(UnknownCompany):
            uow.org.company(company.id)
        with pytest.raises(UnknownTeam):
            uow.org.team(org.id, team.id)
        with pytest.raises(UnknownExpense):
            uow.expenses.get(org.id, new_id)
        assert uow.idempotency.recall(org.person(7), "ghost-key") is None
        assert uow.tokens.holder(token.id) is None
        assert uow.expenses.get(org.id, expense.id) == expense


def test_an_uncommitted_expense_never_shows_in_the_company_list(
    new_uow: Callable[[], UnitOfWork], expense: Expense, org: Org
) -> None:
    def listed() -> list[int]:
        with new_uow() as uow:
            found = uow.expenses.summaries(org.id, user_id=None, status=None, before=None, limit=50)
        return [s.id for s in found]

    before = listed()
    with new_uow() as uow:
        loaded = uow.expenses.get(org.id, expense.id)
        uow.expenses.add(loaded, (), ())
        uow.expenses.add(loaded, (), ())
    assert listed() == before == [expense.id]


def test_an_error_rolls_everything_back(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    added: list[Team] = []

    def doomed() -> None:
        with new_uow() as uow:
            added.append(uow.org.add_team(Team(TeamId(0), org.id, "Doomed")))
            raise Boom

    with pytest.raises(Boom):
        doomed()
    team = added[0]
    with new_uow() as uow, pytest.raises(UnknownTeam):
        uow.org.team(org.id, team.id)


def test_what_is_committed_stays(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    with new_uow() as uow:
        team = uow.org.add_team(Team(TeamId(0), org.id, "Kept"))
        uow.commit()
    with new_uow() as uow:
        assert uow.org.team(org.id, team.id) == team


def test_a_read_only_unit_of_work_needs_no_commit(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    for _ in range(3):
        with new_uow() as uow:
            assert uow.org.company(org.id) == org.company
            assert uow.org.member(org.person(7)).user == org.people[7]


def test_an_added_expense_comes_back_as_stored_under_its_new_id(
    new_uow: Callable[[], UnitOfWork], expense: Expense, org: Org
) -> None:
    with new_uow() as uow:
        added = uow.expenses.add(uow.expenses.get(org.id, expense.id), (), ())
        uow.commit()
    assert added.id > expense.id
    with new_uow() as uow:
        assert uow.expenses.get(org.id, added.id) == added


def test_an_only_write_said_so_is_stored_with_its_history_once_committed(
    new_uow: Callable[[], UnitOfWork], expense: Expense, org: Org
) -> None:
    with new_uow() as uow:
        read = uow.expenses.get(org.id, expense.id)
        with new_uow() as first:
            events = first.expenses.history(org.id, expense.id)
        uow.commit_next_write()
        added = uow.expenses.add(read, events, ())
        uow.commit()
    with new_uow() as uow:
        assert uow.expenses.get(org.id, added.id) == added
        assert [e.kind for e in uow.expenses.history(org.id, added.id)] == [e.kind for e in events]
