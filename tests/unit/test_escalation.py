"""Deadlines and escalations, step by step: when a step's clock starts, moves, restarts and
stops, what the decisions write, and what a policy may ask for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from expense_core import escalation, workflow
from expense_core.approvers import FALLBACK_RULE, ApproverPool, RoutedStep
from expense_core.errors import (
    InvalidAsOf,
    InvalidEscalation,
    NoApproverForStep,
    SelfApproval,
    StepAlreadyDecided,
)
from expense_core.escalation import SENIOR_RULE
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    CompanyId,
    EventKind,
    Expense,
    Member,
    Money,
    Policy,
    PolicyId,
    UserId,
)
from expense_core.policies import check_steps
from expense_core.services import EscalationService, ExpenseService, OrgService, SubmitExpense
from expense_core.visibility import Viewer
from tests.unit.support import ALICE, BOB, TECHCORP, member

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CEO, VP, DIRECTOR, AD, SEM, MANAGER, ENGINEER = (
    member(i, i, name=name)
    for i, name in enumerate(("Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace"), 1)
)


def step(
    order: int, level: int, hours: int | None = None, *, required: bool = True
) -> ApprovalStep:
    return ApprovalStep(
        step_order=order, required_level=level, is_required=required, escalate_after_hours=hours
    )


def opened(*routing: tuple[ApprovalStep, Member]) -> Expense:
    policy = Policy(
        id=PolicyId(1),
        company_id=CompanyId(1),
        category="training",
        name="Training",
        steps=tuple(s for s, _ in routing),
    )
    routed = tuple(RoutedStep(s, m, "test") for s, m in routing)
    return workflow.submit(
        submitter=ENGINEER,
        policy=policy,
        amount=Money.cents(100),
        description=None,
        routing=routed,
        at=AT,
    ).expense


# --- the clock -------------------------------------------------------------------------------


def test_the_first_required_step_is_due_its_hours_after_submission() -> None:
    expense = opened(
        (step(1, 4, required=False), AD), (step(2, 6, 24), MANAGER), (step(3, 5, 48), SEM)
    )
    assert [a.escalate_at for a in expense.approvals] == [None, AT + 24 * HOUR, None]
    assert [a.escalate_after_hours for a in expense.approvals] == [None, 24, 48]


def test_a_required_decision_starts_the_next_steps_clock_and_stops_its_own() -> None:
    expense = opened((step(1, 6, 24), MANAGER), (step(2, 5, 48), SEM))
    later = AT + 5 * HOUR
    moved = workflow.approve(expense, MANAGER.id, None, later).expense
    assert [a.escalate_at for a in moved.approvals] == [None, later + 48 * HOUR]
    assert moved.approval(1).escalate_after_hours == 24


def test_an_optional_decision_moves_no_clock() -> None:
    expense = opened((step(1, 6, 24), MANAGER), (step(2, 4, required=False), AD))
    moved = workflow.approve(expense, AD.id, None, AT + HOUR).expense
    assert [a.escalate_at for a in moved.approvals] == [AT + 24 * HOUR, None]


def test_a_step_without_hours_never_gets_a_deadline() -> None:
    expense = opened((step(1, 6, 24), MANAGER), (step(2, 5), SEM))
    moved = workflow.approve(expense, MANAGER.id, None, AT + HOUR).expense
    assert [a.escalate_at for a in moved.approvals] == [None, None]


@pytest.mark.parametrize("closing", ["reject", "withdraw"])
def test_closing_an_expense_stops_every_clock(closing: str) -> None:
    expense = opened((step(1, 6, 24), MANAGER), (step(2, 5, 48), SEM))
    if closing == "reject":
        closed = workflow.reject(expense, MANAGER.id, "no", AT + HOUR).expense
    else:
        closed = workflow.withdraw(expense, ENGINEER.id, AT + HOUR).expense
    assert [a.escalate_at for a in closed.approvals] == [None, None]
    assert escalation.due_step(closed, AT + 1000 * HOUR) is None


def test_a_step_is_due_from_its_deadline_on() -> None:
    expense = opened(
        (step(1, 6, 24), MANAGER),
    )
    assert escalation.due_step(expense, AT + 24 * HOUR - timedelta(microseconds=1)) is None
    assert escalation.due_step(expense, AT + 24 * HOUR) == expense.approval(1)


# --- escalating ------------------------------------------------------------------------------


def test_an_escalation_moves_the_step_restarts_its_clock_and_says_so() -> None:
    expense = opened((step(1, 6, 24), MANAGER), (step(2, 5, 48), SEM))
    moved = workflow.escalate(
        expense,
        1,
        AD,
        overdue=90 * timedelta(minutes=1),
        at=AT + 30 * HOUR,
        restart_at=AT + 30 * HOUR,
    )
    first = moved.expense.approval(1)
    assert (first.approver_id, first.approver_level_id) == (AD.id, AD.level.id)
    assert first.escalate_at == AT + 54 * HOUR
    assert first.status is ApprovalStatus.PENDING
    [event] = moved.events
    assert event.kind is EventKind.ESCALATED
    assert (event.step_number, event.previous_approver_id, event.approver_id) == (
        1,
        MANAGER.id,
        AD.id,
    )
    assert event.actor_id is None
    assert event.comment == "overdue by 1 h 30 min"


def test_a_failed_escalation_keeps_the_approver_and_stops_the_clock() -> None:
    expense = opened(
        (step(1, 6, 24), MANAGER),
    )
    failed = workflow.fail_escalation(expense, 1, "nobody may", overdue=26 * HOUR, at=AT)
    assert failed.expense.approval(1).approver_id == MANAGER.id
    assert failed.expense.approval(1).escalate_at is None
    [event] = failed.events
    assert (event.kind, event.approver_id) == (EventKind.ESCALATION_FAILED, MANAGER.id)
    assert event.comment == "overdue by 26 h 00 min; nobody may"


def test_escalation_refuses_the_submitter_and_a_decided_step() -> None:
    expense = opened((step(1, 6, 24), MANAGER), (step(2, 5, 48), SEM))
    with pytest.raises(SelfApproval):
        workflow.escalate(expense, 1, ENGINEER, overdue=HOUR, at=AT, restart_at=AT)
    approved = workflow.approve(expense, MANAGER.id, None, AT).expense
    with pytest.raises(StepAlreadyDecided):
        workflow.escalate(approved, 1, AD, overdue=HOUR, at=AT, restart_at=AT)


def test_the_target_skips_the_approver_of_another_step_and_climbs() -> None:
    pool = ApproverPool(candidates=(SEM, AD, DIRECTOR, VP, CEO))
    # Eve approves step 2: step 1 goes past her to David (four eyes).
    chosen, rule = escalation.choose_target(step(1, 6, 24), ENGINEER, MANAGER, pool, {SEM.id: 2})
    assert (chosen, rule) == (AD, SENIOR_RULE)


def test_past_the_top_the_fallback_takes_it_and_then_it_stays() -> None:
    pool = ApproverPool(candidates=(CEO,), fallback=VP)
    chosen, rule = escalation.choose_target(step(1, 6, 24), ENGINEER, CEO, pool, {})
    assert (chosen, rule) == (VP, FALLBACK_RULE)
    chosen, why = escalation.choose_target(step(1, 6, 24), ENGINEER, VP, pool, {})
    assert chosen is None
    assert "top of the ladder" in why


@pytest.mark.parametrize(
    ("fallback", "taken", "why"),
    [
        (None, {}, "names no fallback approver"),
        (ENGINEER, {}, "is the submitter"),
        (VP, {VP.id: 2}, "already approves step 2"),
        (member(2, 2, active=False), {}, "is inactive"),
    ],
)
def test_nobody_may_take_it_and_the_reason_says_why(
    fallback: Member | None, taken: dict[UserId, int], why: str
) -> None:
    pool = ApproverPool(candidates=(CEO,), fallback=fallback)
    chosen, reason = escalation.choose_target(step(1, 6, 24), ENGINEER, CEO, pool, taken)
    assert chosen is None
    assert why in reason


def test_overdue_reads_in_hours_and_minutes() -> None:
    assert workflow.overdue_by(timedelta(days=2, minutes=5, seconds=59)) == "overdue by 48 h 05 min"
    assert workflow.overdue_by(timedelta(0)) == "overdue by 0 h 00 min"


# --- what a policy may ask for ---------------------------------------------------------------


@pytest.mark.parametrize("hours", [0, -1, 8761, 10**9])
def test_hours_outside_a_year_are_refused(hours: int) -> None:
    with pytest.raises(InvalidEscalation, match="step 1"):
        check_steps((step(1, 6, hours),))


def test_an_optional_step_cannot_escalate() -> None:
    with pytest.raises(InvalidEscalation, match="optional"):
        check_steps((step(1, 6), step(2, 4, 24, required=False)))


def test_one_hour_to_a_year_is_fine() -> None:
    check_steps((step(1, 6, 1), step(2, 5, 8760)))


# --- the services ----------------------------------------------------------------------------


def test_the_cto_submits_once_the_company_names_a_fallback(
    expenses: ExpenseService, org: OrgService
) -> None:
    small = SubmitExpense(user_id=ALICE, policy_id=PolicyId(1), amount=Money.cents(90_000))
    with pytest.raises(NoApproverForStep):
        expenses.submit(small)
    org.set_fallback_approver(TECHCORP, BOB)
    submitted = expenses.submit(small)
    assert [m.id for m in submitted.approvers] == [BOB]
    explained = expenses.explain(submitted.expense.id, Viewer.whole_company(TECHCORP))
    assert explained.steps[0].rule == FALLBACK_RULE
    # Two steps cannot both go to Bob: Business Travel is still refused, at step 2.
    travel = SubmitExpense(user_id=ALICE, policy_id=PolicyId(3), amount=Money.cents(100))
    with pytest.raises(NoApproverForStep) as refused:
        expenses.submit(travel)
    assert refused.value.step == 2
    # Bob's own trip: step 1 goes to Alice, and step 2 never to Bob, who submitted it.
    bobs = SubmitExpense(user_id=BOB, policy_id=PolicyId(3), amount=Money.cents(100))
    with pytest.raises(NoApproverForStep) as refused:
        expenses.submit(bobs)
    assert refused.value.step == 2


def test_a_sweep_needs_an_instant_with_a_timezone(expenses: ExpenseService) -> None:
    sweeps = EscalationService(expenses.new_uow, expenses.clock)
    with pytest.raises(InvalidAsOf):
        sweeps.sweep(datetime(2026, 12, 1, 9, 0))  # noqa: DTZ001 -- the point of the test
