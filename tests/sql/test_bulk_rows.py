"""The rows a bulk load writes: a cell for each column of its table, and COPY lines of
expenses (written out field by field, for speed) that say what the rows say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs

from adapters.sql import bulk, bulk_copy, tables
from expense_core.model import (
    NEW_EXPENSE,
    Approval,
    ApprovalStatus,
    ApprovalStep,
    Company,
    CompanyId,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseStatus,
    HierarchyLevel,
    LevelId,
    Money,
    Policy,
    PolicyId,
    ScopeKind,
    Team,
    TeamId,
    TeamScope,
    User,
    UserId,
)

AT = datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)
COMPANY = CompanyId(3)
FIRST = {table.name: 3 for table in bulk.WRITTEN}
AWKWARD = "tab\there, line\nbreak\r, back\\slash, \\N"


def _expenses() -> list[tuple[Expense, tuple[ExpenseEvent, ...]]]:
    decided = Expense(
        id=NEW_EXPENSE,
        company_id=COMPANY,
        user_id=UserId(9),
        policy_id=PolicyId(4),
        amount=Money(Decimal("1234.50")),
        description=AWKWARD,
        status=ExpenseStatus.REJECTED,
        submitted_at=AT,
        completed_at=AT + timedelta(seconds=2),
        approvals=(
            Approval(
                step_number=1,
                approver_id=UserId(5),
                approver_level_id=LevelId(6),
                status=ApprovalStatus.APPROVED,
                approved_at=AT + timedelta(seconds=1),
                comments="ok",
            ),
            Approval(
                step_number=2,
                approver_id=UserId(4),
                approver_level_id=LevelId(5),
                status=ApprovalStatus.REJECTED,
                approved_at=AT + timedelta(seconds=2),
                comments=AWKWARD,
            ),
            Approval(
                step_number=3,
                approver_id=UserId(3),
                approver_level_id=LevelId(4),
                required=False,
                status=ApprovalStatus.SKIPPED,
            ),
        ),
    )

    submitted = ExpenseEvent(
        expense_id=NEW_EXPENSE,
        company_id=COMPANY,
        kind=EventKind.SUBMITTED,
        at=AT,
        actor_id=UserId(9),
    )
    history = (
        submitted,
        attrs.evolve(
            submitted,
            kind=EventKind.APPROVED,
            actor_id=UserId(5),
            step_number=1,
            comment="ok",
            approver_id=UserId(5),
        ),
        attrs.evolve(submitted, kind=EventKind.REJECTED, step_number=2, comment=AWKWARD),
        attrs.evolve(
            submitted, kind=EventKind.REASSIGNED, actor_id=None, previous_approver_id=UserId(2)
        ),
    )
    waiting = Expense(
        id=NEW_EXPENSE,
        company_id=COMPANY,
        user_id=UserId(8),
        policy_id=PolicyId(5),
        amount=Money(Decimal("0.01")),
        description=None,
        status=ExpenseStatus.PENDING,
        submitted_at=AT,
    )
    return [(decided, history), (waiting, ())]


def test_copy_lines_of_expenses_are_their_rows_cell_for_cell() -> None:
    lines = bulk_copy._empty_lines()
    bulk_copy._expense_lines(bulk.Numbering.starting_at(dict(FIRST)), _expenses(), lines)
    rows = bulk.expense_rows(bulk.Numbering.starting_at(dict(FIRST)), _expenses())
    assert lines == {
        table: [bulk_copy._line(row) for row in found] for table, found in rows.items()
    }
    assert [line.count("\n") for line in lines[tables.expenses]] == [1, 1]


def test_every_row_has_a_cell_for_each_column_of_its_table() -> None:
    numbering = bulk.Numbering.starting_at(dict(FIRST))
    team, level = TeamId(3), LevelId(3)
    steps = (
        ApprovalStep(id=3, step_order=1, required_level=6),
        ApprovalStep(
            id=4, step_order=2, required_level=5, team_scope=TeamScope(ScopeKind.TEAM, team)
        ),
    )
    org = bulk.org_rows(
        numbering,
        companies=[Company(COMPANY, "Rows")],
        teams=[Team(team, COMPANY, "Finance", is_company_wide=True)],
        levels=[HierarchyLevel(level, COMPANY, team, 1, "CFO")],
        users=[
            User(
                id=UserId(3),
                company_id=COMPANY,
                team_id=team,
                email="cfo@rows.example",
                name="Chief",
                hierarchy_level_id=level,
            )
        ],
        policies=[
            Policy(id=PolicyId(3), company_id=COMPANY, category="travel", name="T", steps=steps)
        ],
    )
    expenses = bulk.expense_rows(numbering, _expenses())
    for table in bulk.WRITTEN:
        written = org[table] + expenses[table]
        assert written, table.name
        assert {len(row) for row in written} == {len(table.columns)}, table.name
    assert numbering.next["approval_steps"] == 5
    assert numbering.next["expenses"] == 5
