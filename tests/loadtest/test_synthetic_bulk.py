"""Synthetic data written in bulk: the rows the services would store, holding every invariant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from adapters.clock import SystemClock
from adapters.sql.database import SqlDatabase
from adapters.sql.tables import metadata
from entrypoints import synthetic
from expense_core import demo
from expense_core.model import (
    NEW_EXPENSE,
    ApprovalStatus,
    Company,
    CompanyId,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    Member,
    Money,
    Policy,
    PolicyId,
    Team,
    TeamId,
    UserId,
)
from expense_core.services import ApproveStep, ExpenseService, SubmitExpense
from expense_core.visibility import Viewer
from loadtest.mix import load_plan
from tests import pg
from tests.clocks import TickingClock

START = datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)
# Always the same instant: the seeds date their history back from it.
STOPPED = TickingClock(START, step=timedelta(0))
COUNTS: dict[str, Any] = {
    "companies": 3,
    "users_per_company": 40,
    "expenses": 300,
    "random_seed": 11,
}

WALL_TIME = ("policies", "created_at")  # what the services' way takes from the wall clock

pytestmark = pytest.mark.postgres


@pytest.fixture
def database(postgres_url: str) -> Iterator[SqlDatabase]:
    db = SqlDatabase.connect(postgres_url)
    yield db
    db.dispose()


@pytest.fixture
def other_database(postgres_server: pg.PgServer, postgres_template: str) -> Iterator[SqlDatabase]:
    """A second fresh database, to store the same seed a second way."""
    name = postgres_server.create_database(template=postgres_template)
    db = SqlDatabase.connect(postgres_server.url(name))
    yield db
    db.dispose()
    postgres_server.drop_database(name)


# Not compared: when policies were created (wall time on the services' way), how many times an
# expense was written (once in bulk; by the services once per decision), and how many
# statements wrote the organisation (a few in bulk; by the services one per member or policy).
UNCOMPARED = {("policies", "created_at"), ("expenses", "version"), ("org_version", "version")}


def stored_rows(db: SqlDatabase) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table in key order, in every column but the `UNCOMPARED`."""
    found = {}
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in UNCOMPARED]
            query = select(*columns).order_by(*table.primary_key.columns)
            found[table.name] = [tuple(row) for row in conn.execute(query)]
        found["sequences"] = [
            tuple(row)
            for row in conn.execute(
                text("SELECT sequencename, last_value FROM pg_sequences ORDER BY sequencename")
            )
        ]
    return found


def test_bulk_seed_stores_the_rows_the_services_store(
    database: SqlDatabase, other_database: SqlDatabase
) -> None:
    # Something there already: the bulk rows must start past it, as the services' would.
    for db in (database, other_database):
        demo.install_demo(db.unit_of_work)
    demo_log = stored_rows(other_database)["audit_log"]
    by_services = synthetic.seed(database.unit_of_work, STOPPED, **COUNTS)
    in_bulk = synthetic.seed_bulk(other_database.bulk_loader(), STOPPED, **COUNTS)

    assert in_bulk == by_services
    expected, written = stored_rows(database), stored_rows(other_database)
    statuses = Counter(row[6] for row in expected["expenses"])
    assert set(statuses) == {"pending", "approved", "rejected"}
    assert len(expected["expense_events"]) > len(expected["expenses"])
    # Loaded history tells nobody: the services' seed left notices in the outbox, the bulk
    # load none (a subscription made afterwards hears only of what happens afterwards).
    assert len(expected["outbox"]) > len(expected["expenses"])
    assert written["outbox"] == []
    # Nor is a bulk load an admin's change: the services' seed made the organisation through
    # the admin use cases, each in the audit log; the bulk load writes no entry.
    assert len(expected["audit_log"]) > len(demo_log) > 0
    assert "company.created" in {row[4] for row in expected["audit_log"][len(demo_log) :]}
    assert written["audit_log"] == demo_log
    told = {"outbox", "audit_log"}
    counters = {f"{t}_id_seq" for t in told}
    for table, rows in expected.items():
        if table == "sequences":
            rows = [r for r in rows if r[0] not in counters]
            written[table] = [r for r in written[table] if r[0] not in counters]
        if table not in told:
            assert written[table] == rows, table


def test_same_seed_same_rows_and_another_seed_other_rows(
    database: SqlDatabase, other_database: SqlDatabase
) -> None:
    first = synthetic.seed_bulk(database.bulk_loader(), STOPPED, **COUNTS)
    again = synthetic.seed_bulk(other_database.bulk_loader(), STOPPED, **COUNTS)
    assert again == first
    assert stored_rows(other_database) == stored_rows(database)

    other = synthetic.seed_bulk(database.bulk_loader(), STOPPED, **(COUNTS | {"random_seed": 12}))
    assert [c.name for c in other.companies] != [c.name for c in first.companies]


def _check_expense(
    expense: Expense, history: tuple[ExpenseEvent, ...], policy: Policy, submitter: Member
) -> None:
    """The workflow's invariants, and a history that tells the expense's whole story."""
    steps = policy.steps
    approvals = expense.approvals
    assert expense.policy_id == policy.id
    assert policy.covers(expense.amount)
    assert [a.step_number for a in approvals] == [s.step_order for s in steps]
    assert [a.required for a in approvals] == [s.is_required for s in steps]
    approvers = [a.approver_id for a in approvals]
    assert len(set(approvers)) == len(approvers)  # four eyes
    assert expense.user_id not in approvers
    required = [a for a in approvals if a.required]
    pending = [a.status is ApprovalStatus.PENDING for a in required]
    rejected = [a for a in approvals if a.status is ApprovalStatus.REJECTED]
    assert (expense.status is ExpenseStatus.APPROVED) == (not any(pending) and not rejected)
    assert (expense.completed_at is not None) == expense.is_terminal
    if expense.status is ExpenseStatus.PENDING:
        # Steps are sequential: what is decided is a run of approvals from the first step.
        assert pending == sorted(pending)
        assert all(a.status is not ApprovalStatus.SKIPPED for a in approvals)
    else:
        assert all(a.status is not ApprovalStatus.PENDING for a in approvals)
    if expense.status is ExpenseStatus.REJECTED:
        assert len(rejected) == 1
        assert rejected[0].required
        assert rejected[0].comments

    first, *rest = history
    assert (first.kind, first.actor_id, first.at) == (
        EventKind.SUBMITTED,
        submitter.id,
        expense.submitted_at,
    )
    assert {e.expense_id for e in history} == {expense.id}
    assert [e.at for e in history] == sorted(e.at for e in history)
    decided = {
        (e.step_number, e.actor_id, e.at, e.comment, e.kind)
        for e in rest
        if e.kind in (EventKind.APPROVED, EventKind.REJECTED)
    }
    assert decided == {
        (a.step_number, a.approver_id, a.approved_at, a.comments, EventKind(a.status))
        for a in approvals
        if a.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)
    }
    skipped = sorted(e.step_number or 0 for e in rest if e.kind is EventKind.SKIPPED)
    assert skipped == [a.step_number for a in approvals if a.status is ApprovalStatus.SKIPPED]
    if expense.is_terminal:
        assert history[-1].at == expense.completed_at
    assert len(history) == 1 + len(decided) + len(skipped)


def test_bulk_expenses_hold_the_invariants_and_their_approvers_can_finish_them(
    database: SqlDatabase,
) -> None:
    clock = SystemClock()
    made = synthetic.seed_bulk(
        database.bulk_loader(),
        clock,
        companies=3,
        users_per_company=60,
        expenses=400,
        random_seed=5,
    )
    service = ExpenseService(database.unit_of_work, clock)
    with database.engine.connect() as conn:
        stored = conn.execute(text("SELECT id, company_id FROM expenses ORDER BY id")).all()
    assert len(stored) == made.expenses == 400
    statuses: Counter[ExpenseStatus] = Counter()
    waiting: list[Expense] = []
    for expense_id, company_id in stored:
        with database.unit_of_work() as uow:
            expense = uow.expenses.get(company_id, expense_id)
            history = uow.expenses.history(company_id, expense_id)
            policy = uow.org.policy(company_id, expense.policy_id)
            submitter = uow.org.member(expense.user_id)
        _check_expense(expense, history, policy, submitter)
        assert expense.submitted_at < clock.now()
        # Routed as today's organisation routes it, person for person.
        explained = service.explain(expense.id, Viewer.whole_company(expense.company_id))
        assert [s.chosen.id if s.chosen else None for s in explained.steps] == [
            a.approver_id for a in expense.approvals
        ]
        statuses[expense.status] += 1
        if expense.status is ExpenseStatus.PENDING:
            waiting.append(expense)
    assert 120 < statuses[ExpenseStatus.PENDING] < 280
    assert statuses[ExpenseStatus.APPROVED] > 0
    assert statuses[ExpenseStatus.REJECTED] > 0

    for expense in waiting:
        company = CompanyId(expense.company_id)
        current = expense
        while (step := current.current_step) is not None:
            current = service.approve(
                ApproveStep(
                    expense_id=expense.id,
                    user_id=step.approver_id,
                    comments="seen",
                    company_id=company,
                )
            ).expense
        assert current.status is ExpenseStatus.APPROVED
        with database.unit_of_work() as uow:
            history = uow.expenses.history(company, expense.id)
            policy = uow.org.policy(company, expense.policy_id)
            submitter = uow.org.member(expense.user_id)
        _check_expense(current, history, policy, submitter)


def test_the_plan_file_keeps_its_shape_and_the_load_mix_reads_it(
    database: SqlDatabase, tmp_path: Path
) -> None:
    made = synthetic.seed_bulk(database.bulk_loader(), STOPPED, **COUNTS)
    path = tmp_path / "plan.json"
    made.write_plan(path)
    plan = json.loads(path.read_text())
    assert list(plan) == ["companies"]
    assert len(plan["companies"]) == COUNTS["companies"]
    with database.unit_of_work() as uow:
        for company in plan["companies"]:
            assert set(company) == {"company_id", "name", "users", "submitters", "policies"}
            assert company["users"] == COUNTS["users_per_company"]
            assert company["name"] == uow.org.company(company["company_id"]).name
            policies = {p.name: p.id for p in uow.org.company_policies(company["company_id"])}
            assert company["policies"] == policies
            assert set(policies) == {"Small Equipment", "Large Equipment", "Business Travel"}
            for user_id in company["submitters"]:
                member = uow.org.member(user_id)
                assert member.user.company_id == company["company_id"]
                assert member.level.level_name in synthetic.SUBMITTING_TITLES
    read = load_plan(path)
    assert [(c.company_id, list(c.submitters)) for c in read[1:]] == [
        (c["company_id"], c["submitters"]) for c in plan["companies"]
    ]


def test_seeding_sqlite_in_bulk_stores_the_expenses_postgresql_does(
    database: SqlDatabase, sqlite_url: str
) -> None:
    embedded = SqlDatabase.connect(sqlite_url)
    try:
        counts = COUNTS | {"expenses": 120}
        on_sqlite = synthetic.seed_database(embedded, STOPPED, **counts)
        on_postgres = synthetic.seed_database(database, STOPPED, **counts)
        assert on_sqlite == on_postgres
        for expense_id in range(1, 121):
            company = on_postgres.companies[(expense_id - 1) % 3].company_id
            views = []
            for db in (embedded, database):
                with db.unit_of_work() as uow:
                    views.append(
                        (
                            uow.expenses.get(company, ExpenseId(expense_id)),
                            uow.expenses.history(company, ExpenseId(expense_id)),
                        )
                    )
            assert views[0] == views[1]
    finally:
        embedded.dispose()


def _org(*, companies: Sequence[Company] = (), teams: Sequence[Team] = ()) -> dict[str, Any]:
    return {"companies": companies, "teams": teams, "levels": (), "users": (), "policies": ()}


def test_a_key_that_refers_to_nothing_is_caught_after_the_copy(database: SqlDatabase) -> None:
    def load_a_dangling_expense() -> None:
        with database.bulk_loader().begin() as load:
            company = Company(CompanyId(load.first_id(Company)), "Dangling")
            load.add_org(**_org(companies=[company]), done=lambda: None)
            dangling = Expense(
                id=NEW_EXPENSE,
                company_id=company.id,
                user_id=UserId(424242),
                policy_id=PolicyId(434343),
                amount=Money(Decimal("10.00")),
                description=None,
                status=ExpenseStatus.PENDING,
                submitted_at=START,
            )
            load.add_expenses([(dangling, ())], done=lambda: None)

    # The test server's role may defer the row-by-row checks: the load checks after the copy.
    with pytest.raises(
        RuntimeError, match=r"^1 new rows of expenses break expenses_policy_id_fkey$"
    ):
        load_a_dangling_expense()
    assert _count(database, "companies") == 0


def test_a_failed_copy_reaches_the_seeder_and_nothing_is_kept(database: SqlDatabase) -> None:
    written: list[str] = []

    def load_two_batches() -> None:
        with database.bulk_loader().begin() as load:
            first = CompanyId(load.first_id(Company))
            org = _org(
                companies=[Company(first, "First"), Company(first, "Same id again")],
                teams=[Team(TeamId(load.first_id(Team)), first, "Never written")],
            )
            load.add_org(**org, done=lambda: written.append("first"))
            load.add_org(**_org(), done=lambda: written.append("second"))

    with pytest.raises(psycopg.errors.UniqueViolation):
        load_two_batches()
    assert written == []
    assert _count(database, "companies") == _count(database, "teams") == 0


def _count(database: SqlDatabase, table: str) -> int:
    with database.engine.connect() as conn:
        found: int = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608 -- our own table names
    return found


def test_the_command_seeds_postgresql_quietly_off_a_terminal(
    postgres_url: str, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.json"
    command = Path(sys.executable).with_name("expense-tracker")
    done = subprocess.run(  # noqa: S603 -- our own command
        [str(command), "seed", "synthetic", "--companies", "2", "--users-per-company", "20",
         "--expenses", "50", "--seed", "3", "--plan", str(plan)],
        env={**os.environ, "DATABASE_URL": postgres_url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "seeding" not in done.stderr  # no progress bar off a terminal
    assert "2 synthetic companies and 50 expenses added" in done.stderr
    assert len(json.loads(plan.read_text())["companies"]) == 2
    db = SqlDatabase.connect(postgres_url)
    try:
        with db.engine.connect() as conn:
            counts = conn.execute(
                text("SELECT (SELECT count(*) FROM expenses), (SELECT count(*) FROM users)")
            ).one()
        assert tuple(counts) == (50, 40)
        # The sequences moved past the seeded ids: the next submission gets a fresh one.
        made = json.loads(plan.read_text())["companies"][0]
        submitted = ExpenseService(db.unit_of_work, SystemClock()).submit(
            SubmitExpense(
                user_id=UserId(made["submitters"][0]),
                category="travel",
                amount=Money(Decimal("300.00")),
            )
        )
        assert submitted.expense.id == ExpenseId(51)
    finally:
        db.dispose()
