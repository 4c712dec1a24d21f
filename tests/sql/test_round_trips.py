"""Few round trips, identical SQL text, reads outside transactions: counted at the cursor.

Every statement the adapter sends passes SQLAlchemy's `before_cursor_execute` event; the
driver's own BEGIN and COMMIT (psycopg) do not, nor does the pool's liveness ping.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import attrs
import pytest
from litestar.concurrency import sync_to_thread
from psycopg import AsyncRawCursor
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from adapters.sql import SqlDatabase
from adapters.sql.awaited import AwaitedPool, PgAwaitedExpenses
from expense_core.delegation import Delegation
from expense_core.model import ApprovalStep, CompanyId, ExpenseId
from expense_core.services import (
    ApproveStep,
    AwaitedExpenseService,
    EscalationService,
    ExpenseService,
    OrgService,
    RejectExpense,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START, TickingClock
from tests.contract.support import add_policy, money, tech_corp
from tests.sql.support import opened, while_open

# Statements per use case. PostgreSQL: the bounds the design sets. SQLite has no data-modifying
# CTEs and opens its transactions with an explicit BEGIN IMMEDIATE: it takes a few more (one of
# them puts a change's notices in the outbox, which PostgreSQL does within the write).
# A resubmission reads like a submission, then locks and rewrites the expense.
MOST = {
    "postgres": {
        "submit": 2,
        "submit by category": 3,
        "decide": 2,
        "status": 2,
        "resubmit": 5,
        "resubmit by category": 4,
    },
    "sqlite": {
        "submit": 7,
        "submit by category": 7,
        "decide": 7,
        "status": 2,
        "resubmit": 11,
        "resubmit by category": 10,
    },
}
# A decision under a new idempotency key stores the key's record too: one statement more. Its
# retry takes the locking read (the step is found decided) and the record's read.
MOST["postgres"] |= {"keyed decide": 3, "replayed decide": 2}
MOST["sqlite"] |= {"keyed decide": 7, "replayed decide": 3}


class Recorder:
    """The statements an engine sends, and whether each ran inside a transaction."""

    def __init__(self, db: SqlDatabase) -> None:
        self.statements: list[str] = []
        self.in_transaction: list[bool] = []
        self._sqlite = db.is_sqlite
        event.listen(db.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Connection, _c: Any, statement: str, *_: Any) -> None:
        driver: Any = conn.connection.driver_connection
        self.statements.append(statement)
        self.in_transaction.append(
            bool(driver.in_transaction) if self._sqlite else not driver.autocommit
        )

    def run(self, action: Callable[[], object]) -> list[str]:
        self.statements.clear()
        self.in_transaction.clear()
        action()
        return list(self.statements)


@pytest.fixture
def db(database_url: str) -> Iterator[SqlDatabase]:
    with opened(database_url) as database:
        yield database


def _dialect(db: SqlDatabase) -> str:
    return "sqlite" if db.is_sqlite else "postgres"


@pytest.mark.parametrize("known_company", [False, True])
def test_each_use_case_takes_few_statements(db: SqlDatabase, known_company: bool) -> None:
    most = MOST[_dialect(db)]
    org = tech_corp(db.unit_of_work)
    expenses = ExpenseService(db.unit_of_work, TickingClock())
    recorder = Recorder(db)
    company = org.id if known_company else None
    counts: dict[str, list[int]] = {use_case: [] for use_case in most}

    def submit(policy: str, amount: str) -> ExpenseId:
        ids: list[ExpenseId] = []

        def go() -> None:
            ids.append(
                expenses.submit(
                    SubmitExpense(
                        user_id=org.person(7),
                        policy_id=getattr(org, policy).id,
                        amount=money(amount),
                        company_id=company,
                    )
                ).expense.id
            )

        counts["submit"].append(len(recorder.run(go)))
        return ids[0]

    def decide(action: Callable[[], object]) -> None:
        counts["decide"].append(len(recorder.run(action)))

    def approve(expense_id: ExpenseId, who: int) -> Callable[[], object]:
        command = ApproveStep(expense_id=expense_id, user_id=org.person(who), company_id=company)
        return lambda: expenses.approve(command)

    def status(expense_id: ExpenseId) -> Callable[[], object]:
        viewer = None if company is None else Viewer.whole_company(company)
        return lambda: expenses.status(expense_id, viewer)

    def submit_by_category(category: str, amount: str) -> None:
        command = SubmitExpense(
            user_id=org.person(7), category=category, amount=money(amount), company_id=company
        )
        counts["submit by category"].append(len(recorder.run(lambda: expenses.submit(command))))

    submit_by_category("equipment", "10.00")
    submit_by_category("equipment", "2500.00")
    submit_by_category("travel", "99.00")
    small = submit("small", "10.00")
    large = submit("large", "2500.00")
    travel = submit("travel", "99.00")
    withdrawn = submit("large", "3000.00")
    decide(approve(small, 6))
    for who in (6, 5, 4):
        decide(approve(large, who))
    rejection = RejectExpense(
        expense_id=travel, user_id=org.person(6), reason="no", company_id=company
    )
    decide(lambda: expenses.reject(rejection))
    withdrawal = WithdrawExpense(expense_id=withdrawn, user_id=org.person(7), company_id=company)
    decide(lambda: expenses.withdraw(withdrawal))

    def send_back(expense_id: ExpenseId) -> Callable[[], object]:
        command = SendBack(
            expense_id=expense_id, user_id=org.person(6), reason="why?", company_id=company
        )
        return lambda: expenses.send_back(command)

    def resubmit(expense_id: ExpenseId, use_case: str, **change: Any) -> None:
        command = ResubmitExpense(
            expense_id=expense_id, user_id=org.person(7), company_id=company, **change
        )
        counts[use_case].append(len(recorder.run(lambda: expenses.resubmit(command))))

    returned = submit("travel", "120.00")
    decide(send_back(returned))
    resubmit(returned, "resubmit")  # the same policy: its steps rerouted in place
    decide(send_back(returned))
    resubmit(returned, "resubmit", policy_id=org.large.id, amount=money("2500.00"))
    decide(send_back(returned))
    resubmit(returned, "resubmit", policy_id=org.small.id, amount=money("10.00"))
    decide(send_back(returned))
    resubmit(returned, "resubmit by category", category="equipment", amount=money("2500.00"))

    # A delegate's decision: the delegation comes with the locking read, no statement of its own.
    with db.unit_of_work() as uow:
        uow.delegations.put(
            Delegation(
                company_id=org.id,
                user_id=org.person(6),
                delegate_id=org.person(3),
                starts_at=START,
                ends_at=START + timedelta(days=14),
            )
        )
        uow.commit()
    own, covered = submit("small", "12.00"), submit("small", "13.00")
    decide(approve(own, 6))
    decide(approve(covered, 3))
    assert counts["decide"][-1] == counts["decide"][-2], counts["decide"]
    covered_rejection = RejectExpense(
        expense_id=submit("large", "2600.00"),
        user_id=org.person(3),
        reason="no",
        company_id=company,
    )
    decide(lambda: expenses.reject(covered_rejection))
    if not db.is_sqlite:
        # The locking read and one write, whoever decides.
        assert counts["decide"][-3:] == [2, 2, 2], counts["decide"]
    for expense_id in (small, large, travel, withdrawn):
        counts["status"].append(len(recorder.run(status(expense_id))))
    keyed = submit("large", "2600.00")
    for who in (6, 5, 4):
        command = ApproveStep(
            expense_id=keyed,
            user_id=org.person(who),
            company_id=company,
            idempotency_key=f"count-{who}",
        )
        counts["keyed decide"].append(len(recorder.run(partial(expenses.approve, command))))
        counts["replayed decide"].append(len(recorder.run(partial(expenses.approve, command))))

    for use_case, bound in most.items():
        assert max(counts[use_case]) <= bound, (use_case, counts[use_case])


def test_the_sql_text_does_not_depend_on_how_many_steps(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work)
    expenses = ExpenseService(db.unit_of_work, TickingClock())
    recorder = Recorder(db)

    def submit(policy: str, amount: str) -> list[str]:
        command = SubmitExpense(
            user_id=org.person(7), policy_id=getattr(org, policy).id, amount=money(amount)
        )
        return recorder.run(lambda: expenses.submit(command))

    one_step, three_steps = submit("small", "10.00"), submit("large", "2500.00")
    assert one_step == three_steps
    assert submit("small", "11.00") == one_step


def test_reads_and_decisions_run_outside_transactions_on_postgres(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work)
    expenses = ExpenseService(db.unit_of_work, TickingClock())
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"))
    ).expense.id
    recorder = Recorder(db)

    recorder.run(lambda: expenses.status(expense_id, Viewer.whole_company(org.id)))
    recorder.run(lambda: expenses.list_expenses(Viewer.whole_company(org.id)))
    assert recorder.in_transaction == [False]
    recorder.run(lambda: expenses.inbox(org.person(6)))
    assert recorder.in_transaction == [False, False]  # the actor, then the inbox

    approval = ApproveStep(expense_id=expense_id, user_id=org.person(6))
    recorder.run(lambda: expenses.approve(approval))
    if db.is_sqlite:
        # The locking read finds the actor's company itself; it and the writes share one
        # transaction.
        inside = [
            in_transaction
            for statement, in_transaction in zip(
                recorder.statements, recorder.in_transaction, strict=True
            )
            if statement != "BEGIN IMMEDIATE"  # SQLite's: it opens the transaction
        ]
        assert inside
        assert all(inside)
    else:
        # The read, unlocked, and the one write, checked against the version read: no BEGIN,
        # no COMMIT (tests/sql/test_unlocked_decisions.py: what a write in between does).
        assert recorder.in_transaction == [False, False]


def test_a_submission_writes_alone_outside_a_transaction_unless_it_keeps_a_key(
    db: SqlDatabase,
) -> None:
    org = tech_corp(db.unit_of_work)
    expenses = ExpenseService(db.unit_of_work, TickingClock())
    recorder = Recorder(db)
    command = SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"))

    recorder.run(lambda: expenses.submit(command))
    if db.is_sqlite:
        # Its write takes several statements: they share a transaction.
        assert recorder.in_transaction[-1]
    else:
        # The submitter with the policy and the pool, then the write: no BEGIN, no COMMIT.
        assert recorder.in_transaction == [False, False]

    keyed = SubmitExpense(
        user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"), idempotency_key="k"
    )
    recorder.run(lambda: expenses.submit(keyed))
    # The expense and the key's record are written together or not at all.
    assert recorder.in_transaction[-2:] == [True, True]


@pytest.mark.postgres
def test_nothing_may_be_written_after_an_only_write(postgres_url: str) -> None:
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work)
        with db.unit_of_work() as uow:
            expense = ExpenseService(db.unit_of_work, TickingClock()).submit(
                SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("1.00"))
            )
            uow.commit_next_write()
            uow.expenses.add(expense.expense, (), ())
            with pytest.raises(RuntimeError, match="only write"):
                uow.expenses.add(expense.expense, (), ())


@pytest.mark.postgres
def test_repeated_statements_become_prepared_statements(postgres_url: str) -> None:
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work)
        expenses = ExpenseService(db.unit_of_work, TickingClock())
        expense_id = expenses.submit(
            SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"))
        ).expense.id
        for _ in range(6):  # psycopg prepares a query after its fifth run on a connection
            expenses.status(expense_id, Viewer.whole_company(CompanyId(org.id)))
        with db.engine.connect() as conn:  # the pool's only connection: the same session
            prepared = conn.execute(text("SELECT statement FROM pg_prepared_statements")).scalars()
            assert any("FROM expenses JOIN users AS submitter" in s for s in prepared)


def test_deadlines_and_the_fallback_cost_no_statement_more(db: SqlDatabase) -> None:
    """A submission routed through the fallback approver with a deadline, and a decision that
    starts the next step's clock, stay within the bounds; a sweep reads what is due in one
    statement and escalates an expense in a few."""
    most = MOST[_dialect(db)]
    org = tech_corp(db.unit_of_work)
    OrgService(db.unit_of_work).set_fallback_approver(org.id, org.person(2))
    add_policy(
        db.unit_of_work,
        org.id,
        "training",
        (
            ApprovalStep(step_order=1, required_level=6, escalate_after_hours=1),
            ApprovalStep(step_order=2, required_level=5, escalate_after_hours=1),
        ),
    )
    clock = TickingClock()
    expenses = ExpenseService(db.unit_of_work, clock)
    recorder = Recorder(db)
    submitted: list[ExpenseId] = []

    def submit(command: SubmitExpense) -> int:
        found = recorder.run(lambda: submitted.append(expenses.submit(command).expense.id))
        return len(found)

    cto = SubmitExpense(user_id=org.person(1), policy_id=org.small.id, amount=money("10.00"))
    assert submit(cto) <= most["submit"]
    grace = SubmitExpense(user_id=org.person(7), category="training", amount=money("10.00"))
    assert submit(grace) <= most["submit by category"]
    approval = ApproveStep(expense_id=submitted[1], user_id=org.person(6))
    assert len(recorder.run(lambda: expenses.approve(approval))) <= most["decide"]

    sweeps = EscalationService(db.unit_of_work, clock)
    with db.unit_of_work() as uow:
        due = recorder.run(
            lambda: uow.expenses.due_for_escalation(START + timedelta(days=1), after=None, limit=9)
        )
    assert len(due) == 1
    swept = recorder.run(lambda: sweeps.sweep(START + timedelta(days=1)))
    # The due steps, then per expense: the lock, the submitter, the approver, the policy, the
    # pool and the write (SQLite: BEGIN IMMEDIATE first, and the write is four statements:
    # the approvals, the expense's version, the history, the outbox).
    assert len(swept) <= 1 + (10 if db.is_sqlite else 6)


@pytest.mark.postgres
@pytest.mark.parametrize("known_company", [False, True])
def test_the_awaited_use_cases_take_one_statement_a_step(
    postgres_url: str, known_company: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the event loop a submission is one read and one write (the next one of the same
    person under the same policy only the write; by category, one read more the first time),
    an approval one read and one write, a status
    page one read, each outside a transaction and all of a use case's on one connection taken
    once: counted at psycopg's cursor, where they are sent, and at its pool."""
    sent: list[bool] = []
    taken: list[object] = []
    execute, getconn = AsyncRawCursor.execute, AsyncConnectionPool.getconn

    async def counted(cursor: AsyncRawCursor[Any], *args: Any, **kwargs: Any) -> Any:
        sent.append(cursor.connection.autocommit)
        return await execute(cursor, *args, **kwargs)

    async def took(pool: AsyncConnectionPool, *args: Any, **kwargs: Any) -> Any:
        taken.append(pool)
        return await getconn(pool, *args, **kwargs)

    monkeypatch.setattr(AsyncRawCursor, "execute", counted)
    monkeypatch.setattr(AsyncConnectionPool, "getconn", took)
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work)
        company = org.id if known_company else None
        viewer = None if company is None else Viewer.whole_company(company)
        store = PgAwaitedExpenses(AwaitedPool(db, size=1, timeout_s=10))
        awaited = AwaitedExpenseService(
            ExpenseService(db.unit_of_work, TickingClock()), store, sync_to_thread
        )

        async def each() -> dict[str, int]:
            counts: dict[str, int] = {}

            async def count(use_case: str, work: Awaitable[object]) -> Any:
                sent.clear()
                taken.clear()
                done = await work
                assert all(sent), f"{use_case} ran in a transaction"
                # Its statements on one connection, taken from the pool once.
                assert len(taken) == 1, f"{use_case} took {len(taken)} connections"
                counts[use_case] = max(counts.get(use_case, 0), len(sent))
                return done

            for policy, amount, approvers in (
                ("small", "10.00", (6,)),
                ("large", "2500.00", (6, 5, 4)),
            ):
                command = SubmitExpense(
                    user_id=org.person(7),
                    policy_id=getattr(org, policy).id,
                    amount=money(amount),
                    company_id=company,
                )
                submitted = await count("submit", awaited.submit(command))
                # The same person under the same policy again: what the first read is
                # recalled, and the write checks that the organisation is still as read.
                await count("submit again", awaited.submit(command))
                expense_id = submitted.expense.id
                for who in approvers:
                    approval = ApproveStep(
                        expense_id=expense_id, user_id=org.person(who), company_id=company
                    )
                    await count("approve", awaited.approve(approval))
                    await count("status", awaited.status(expense_id, viewer))
                # By category, on a store that has recalled nothing yet: the category's
                # policies are read, then the one picked with its approvers, then the write;
                # the next time, both reads are recalled.
                by_category = SubmitExpense(
                    user_id=org.person(7),
                    category="equipment",
                    amount=money(amount),
                    company_id=company,
                )
                fresh = PgAwaitedExpenses(AwaitedPool(db, size=1, timeout_s=10))
                await fresh.open()
                on_fresh = attrs.evolve(awaited, store=fresh)
                try:
                    await count("submit by category", on_fresh.submit(by_category))
                    await count("submit by category again", on_fresh.submit(by_category))
                finally:
                    await fresh.close()
            return counts

        counts = while_open(store, each)
    assert counts == {
        "submit": 2,
        "submit again": 1,
        "approve": 2,
        "status": 1,
        "submit by category": 3,
        "submit by category again": 1,
    }
