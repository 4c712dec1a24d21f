"""Synthetic organisations: ladders, reporting chains, Finance, policies, routable expenses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.clock import SystemClock
from adapters.memory import MemoryStore
from entrypoints import synthetic
from expense_core.model import ExpenseId, ExpenseStatus


@pytest.mark.parametrize("users", [14, 15, 99, 250, 1234])
def test_every_team_is_a_full_ladder_and_everyone_is_counted(users: int) -> None:
    finance, teams = synthetic.team_sizes(users)
    assert finance + sum(teams) == users
    for size in (finance, *teams):
        seats = synthetic.rungs(size)
        assert sum(seats) == size
        assert min(seats) >= 1
        assert seats[-1] == max(seats)  # the junior rung is the widest


def test_a_company_smaller_than_two_ladders_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 14"):
        synthetic.team_sizes(13)


def test_seeded_companies_route_their_submitters_through_their_chains(tmp_path: Path) -> None:
    store = MemoryStore()
    advanced: list[int] = []
    made = synthetic.seed(
        store.unit_of_work,
        SystemClock(),
        companies=2,
        users_per_company=120,
        expenses=30,
        advance=advanced.append,
    )
    assert sum(advanced) == synthetic.progress_steps(2, 120, 30)
    assert made.expenses == 30
    with store.unit_of_work() as uow:
        for company in made.companies:
            assert company.users == 120
            assert set(company.policies) == {
                "Small Equipment",
                "Large Equipment",
                "Business Travel",
            }
            for user_id in company.submitters:
                member = uow.org.member(user_id)
                assert member.level_number in (6, 7)
                chain = member.user.manager_id
                assert chain is not None
                assert uow.org.member(chain).level_number == member.level_number - 1
            finance = [
                p for p in uow.org.policies(company.company_id, "equipment") if len(p.steps) == 4
            ]
            assert finance[0].steps[-1].team_scope.team_id is not None
        statuses = {
            uow.expenses.view(None, ExpenseId(i)).status for i in range(1, made.expenses + 1)
        }
    assert ExpenseStatus.PENDING in statuses
    assert ExpenseStatus.APPROVED in statuses
    plan = tmp_path / "plan.json"
    made.write_plan(plan)
    written = json.loads(plan.read_text())
    assert [c["company_id"] for c in written["companies"]] == [c.company_id for c in made.companies]
    assert [c["submitters"] for c in written["companies"]] == [
        list(c.submitters) for c in made.companies
    ]
