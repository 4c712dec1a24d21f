"""A decision on PostgreSQL reads its expense unlocked and writes it in one statement, only over
the version it read: another write in between makes the write change nothing
(`ExpenseChanged`), and the service decides again on the expense locked.

The interleaving is forced through the service's clock, which a decision reads between its
read and its write: there the test has another approver decide on the same expense.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from adapters.sql import SqlDatabase
from adapters.sql.tables import outbox
from expense_core import workflow
from expense_core.errors import ExpenseChanged
from expense_core.model import (
    ApprovalStatus,
    EventKind,
    ExpenseStatus,
    UserId,
)
from expense_core.notifications import notices
from expense_core.services import ApproveStep, ExpenseService
from expense_core.visibility import Viewer
from tests.clocks import MeddlingClock, TickingClock
from tests.sql.support import opened, submitted_to_three_steps

pytestmark = pytest.mark.postgres

FRANK, EVE, DAVID, GRACE = 6, 5, 4, 7  # step 1, step 2, optional step 3, the submitter


@pytest.fixture
def db(postgres_url: str) -> Iterator[SqlDatabase]:
    with opened(postgres_url, pool_size=2) as database:
        yield database


def test_a_decision_overtaken_between_its_read_and_its_write_is_decided_again(
    db: SqlDatabase,
) -> None:
    org, expense_id = submitted_to_three_steps(db, "unlocked", GRACE)
    other = ExpenseService(db.unit_of_work, TickingClock())
    overtaken = ExpenseService(
        db.unit_of_work,
        # The decision reads the clock once, after its read: Frank decides step 1 there.
        MeddlingClock(
            1, lambda: other.approve(ApproveStep(expense_id=expense_id, user_id=org.person(FRANK)))
        ),
    )

    decision = overtaken.approve(ApproveStep(expense_id=expense_id, user_id=org.person(DAVID)))

    # Decided again on what Frank left: both approvals stand, in the order they were made.
    steps = {a.step_number: a.status for a in decision.expense.approvals}
    assert steps == {
        1: ApprovalStatus.APPROVED,
        2: ApprovalStatus.PENDING,
        3: ApprovalStatus.APPROVED,
    }
    stored = other.status(expense_id, Viewer.whole_company(org.id))
    assert stored.status is ExpenseStatus.PENDING
    assert [a.status for a in stored.approvals] == [steps[1], steps[2], steps[3]]
    history = other.history(expense_id, Viewer.whole_company(org.id))
    assert [(e.kind, e.actor_id) for e in history] == [
        (EventKind.SUBMITTED, org.person(GRACE)),
        (EventKind.APPROVED, org.person(FRANK)),
        (EventKind.APPROVED, org.person(DAVID)),
    ]


def test_an_overtaken_write_changes_nothing(db: SqlDatabase) -> None:
    org, expense_id = submitted_to_three_steps(db, "unlocked", GRACE)
    david = UserId(org.person(DAVID))
    with db.unit_of_work() as uow:
        uow.commit_next_write()
        found = uow.expenses.get_for_decision(org.id, david, expense_id)
        assert found is not None
        before, covers, _ = found
        # Frank decides step 1 on another connection: no lock was taken to stop him.
        ExpenseService(db.unit_of_work, TickingClock()).approve(
            ApproveStep(expense_id=expense_id, user_id=org.person(FRANK))
        )
        decision = workflow.approve(before, david, None, TickingClock().now(), covers)
        with pytest.raises(ExpenseChanged):
            uow.expenses.save(
                decision.expense,
                decision.events,
                notices(before, decision.expense, decision.events),
            )

    viewer = Viewer.whole_company(org.id)
    service = ExpenseService(db.unit_of_work, TickingClock())
    assert [a.status for a in service.status(expense_id, viewer).approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
        ApprovalStatus.PENDING,
    ]
    history = service.history(expense_id, viewer)
    assert [e.actor_id for e in history] == [org.person(GRACE), org.person(FRANK)]
    with db.engine.connect() as conn:
        noticed = conn.execute(
            select(outbox.c.actor_id).where(outbox.c.expense_id == expense_id)
        ).scalars()
        actors = set(noticed)
    # Frank's notices are there; the overtaken write put none in the outbox.
    assert org.person(FRANK) in actors
    assert org.person(DAVID) not in actors
