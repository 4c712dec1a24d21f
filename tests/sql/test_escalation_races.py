"""Escalation sweeps racing each other and the approvers they are about to overrule.

Threads, each on its own connection, run sweeps as of one instant while the overdue steps'
approvers approve them; then two `expense-tracker escalate` processes sweep one PostgreSQL
database at once. Afterwards every overdue step was escalated once or approved by its approver
first, never both, never twice; the sweeps' reports agree with the history.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from adapters.sql import SqlDatabase
from expense_core.errors import DomainError
from expense_core.escalation import Escalation
from expense_core.model import ApprovalStep, EventKind, ExpenseId
from expense_core.services import ApproveStep, EscalationService, ExpenseService, SubmitExpense
from tests.clocks import START, TickingClock
from tests.contract.support import Org, add_policy, money, tech_corp
from tests.e2e.conftest import cli_command, environment
from tests.sql.support import opened

LATE = START + timedelta(hours=30)


@pytest.fixture(
    params=[
        pytest.param(("postgres", 120, 12), marks=pytest.mark.postgres, id="postgres"),
        pytest.param(("sqlite", 30, 6), id="sqlite"),
    ]
)
def race(request: pytest.FixtureRequest) -> Iterator[tuple[SqlDatabase, str, int, int]]:
    dialect, expenses, threads = request.param
    url = request.getfixturevalue("postgres_url" if dialect == "postgres" else "sqlite_url")
    with opened(url, pool_size=threads) as db:
        yield db, url, expenses, threads


def _overdue(db: SqlDatabase, how_many: int) -> tuple[Org, list[ExpenseId]]:
    """Grace's expenses whose first step (Frank's) escalates after a day; Eve has step 2."""
    org = tech_corp(db.unit_of_work)
    policy = add_policy(
        db.unit_of_work,
        org.id,
        "race",
        (
            ApprovalStep(step_order=1, required_level=6, escalate_after_hours=24),
            ApprovalStep(step_order=2, required_level=5),
        ),
    )
    service = ExpenseService(db.unit_of_work, TickingClock())
    command = SubmitExpense(user_id=org.person(7), policy_id=policy.id, amount=money("50.00"))
    return org, [service.submit(command).expense.id for _ in range(how_many)]


def test_racing_sweeps_and_approvers_decide_each_step_once(
    race: tuple[SqlDatabase, str, int, int],
) -> None:
    db, _, how_many, threads = race
    org, ids = _overdue(db, how_many)
    clock = TickingClock(start=LATE)
    sweeps = EscalationService(db.unit_of_work, clock)
    service = ExpenseService(db.unit_of_work, clock)

    def frank_approves(expense_id: ExpenseId) -> Callable[[], object]:
        def run() -> object:
            try:
                return service.approve(ApproveStep(expense_id=expense_id, user_id=org.person(6)))
            except DomainError as refusal:  # David has it now
                return refusal

        return run

    # Sweeps first and last, approvals between: every sweep has expenses to fight over.
    jobs: list[Callable[[], object]] = [lambda: sweeps.sweep(LATE) for _ in range(threads // 2)]
    jobs += [frank_approves(e) for e in ids[::2]]
    jobs += [lambda: sweeps.sweep(LATE) for _ in range(threads // 2)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda job: job(), jobs))

    reported = Counter(
        outcome.expense_id
        for result in results
        if isinstance(result, tuple)
        for outcome in result
        if isinstance(outcome, Escalation)
    )
    with db.unit_of_work() as uow:
        for expense_id in ids:
            expense = uow.expenses.get(org.id, expense_id)
            history = uow.expenses.history(org.id, expense_id)
            escalated = [e for e in history if e.kind is EventKind.ESCALATED]
            approved = [e for e in history if e.kind is EventKind.APPROVED]
            step = expense.approval(1)
            assert len(escalated) + len(approved) == 1, history
            assert reported[expense_id] == len(escalated)
            if escalated:
                assert (escalated[0].previous_approver_id, escalated[0].approver_id) == (
                    org.person(6),
                    org.person(4),
                )
                assert (step.approver_id, step.is_pending) == (org.person(4), True)
                # Its clock restarted when it moved (the clock reads after LATE).
                assert step.escalate_at == escalated[0].at + timedelta(hours=24)
            else:
                assert (step.approver_id, step.is_pending) == (org.person(6), False)
            assert expense.approval(2).approver_id == org.person(5)
    # Frank approved some before a sweep reached them; the sweeps took all the others.
    assert sum(reported.values()) >= how_many // 2


@pytest.mark.postgres
def test_two_escalate_processes_at_once_escalate_each_step_once(postgres_url: str) -> None:
    how_many = 300
    with opened(postgres_url) as db:
        org, ids = _overdue(db, how_many)
    env = environment(DATABASE_URL=postgres_url)
    command = [*cli_command(), "escalate", "--as-of", LATE.isoformat()]
    processes = [
        subprocess.Popen(  # noqa: S603 -- our own command
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs

    lines = [line for out, _ in outputs for line in out.splitlines()]
    escalated = Counter(int(line.split()[1]) for line in lines)
    assert sorted(escalated) == sorted(ids)
    assert set(escalated.values()) == {1}
    with opened(postgres_url) as db, db.unit_of_work() as uow:
        for expense_id in ids:
            history = uow.expenses.history(org.id, expense_id)
            assert [e.kind for e in history].count(EventKind.ESCALATED) == 1
