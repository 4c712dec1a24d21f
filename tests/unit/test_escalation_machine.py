"""Random submissions, decisions, fallback changes and escalation sweeps at moving instants,
through the services on the memory adapter.

After every step: an expense is approved exactly when no required approval is pending and none
is rejected; only the current required step of a pending expense carries a deadline, and only
if its policy step escalates; no expense has an approver twice (four eyes) or its submitter as
an approver; a step's escalation fails at most once; every escalation moved the step to
someone else than the submitter; after a sweep nothing is left overdue as of its instant; a dry
run changes nothing; history only grows.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from adapters.memory import MemoryStore
from expense_core import escalation
from expense_core.demo import install_demo
from expense_core.errors import DomainError
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    UserId,
)
from expense_core.services import (
    ApproveStep,
    EscalationService,
    ExpenseService,
    NewPolicy,
    OrgService,
    RejectExpense,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START
from tests.unit.support import TECHCORP, money

PEOPLE = tuple(UserId(i) for i in range(1, 8))
CATEGORIES = ("training", "conference", "equipment")


class Clock:
    """An instant the machine moves on by hand."""

    def __init__(self) -> None:
        self.at: datetime = START

    def now(self) -> datetime:
        return self.at


def add_escalating_policies(org: OrgService) -> None:
    """Beside the demo's: two policies whose steps escalate, one with an optional step between."""
    steps = {
        "training": (
            ApprovalStep(step_order=1, required_level=6, escalate_after_hours=24),
            ApprovalStep(step_order=2, required_level=5, escalate_after_hours=48),
        ),
        "conference": (
            ApprovalStep(step_order=1, required_level=6, escalate_after_hours=1),
            ApprovalStep(step_order=2, required_level=4, is_required=False),
            ApprovalStep(step_order=3, required_level=3, escalate_after_hours=2),
        ),
    }
    for category, policy_steps in steps.items():
        org.create_policy(
            NewPolicy(
                company_id=TECHCORP,
                category=category,
                name=category.title(),
                min_amount=money("0.00"),
                max_amount=money("50000.00"),
                steps=policy_steps,
            )
        )


class Escalations(RuleBasedStateMachine):
    expenses = Bundle("expenses")

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        install_demo(self.store.unit_of_work)
        self.clock = Clock()
        self.org = OrgService(self.store.unit_of_work, self.clock)
        add_escalating_policies(self.org)
        self.service = ExpenseService(self.store.unit_of_work, self.clock)
        self.sweeps = EscalationService(self.store.unit_of_work, self.clock)
        self.known: list[ExpenseId] = []
        self.histories: dict[ExpenseId, tuple[ExpenseEvent, ...]] = {}

    def stored(self) -> dict[ExpenseId, Expense]:
        with self.store.unit_of_work() as uow:
            return {e: uow.expenses.get(TECHCORP, e) for e in self.known}

    def history(self, expense_id: ExpenseId) -> tuple[ExpenseEvent, ...]:
        return self.service.history(expense_id, Viewer.whole_company(TECHCORP))

    # --- rules -----------------------------------------------------------------------------

    @initialize(target=expenses)
    def grace_asks_for_training(self) -> ExpenseId:
        return self.submit(UserId(7), "training", 5_000)

    @rule(
        target=expenses,
        submitter=st.sampled_from(PEOPLE),
        category=st.sampled_from(CATEGORIES),
        cents=st.sampled_from((5_000, 300_000)),
    )
    def submit(self, submitter: UserId, category: str, cents: int) -> ExpenseId:
        try:
            submitted = self.service.submit(
                SubmitExpense(user_id=submitter, category=category, amount=money(f"{cents}e-2"))
            )
        except DomainError:
            return ExpenseId(0)
        self.known.append(submitted.expense.id)
        return submitted.expense.id

    @rule(expense_id=expenses, verdict=st.sampled_from(("approve", "reject", "withdraw")))
    def decide(self, expense_id: ExpenseId, verdict: str) -> None:
        if expense_id not in self.known:
            return
        expense = self.stored()[expense_id]
        current = expense.current_step
        if current is None:
            return
        who = current.approver_id
        if verdict == "approve":
            self.service.approve(ApproveStep(expense_id=expense_id, user_id=who))
        elif verdict == "reject":
            self.service.reject(RejectExpense(expense_id=expense_id, user_id=who, reason="no"))
        else:
            self.service.withdraw(WithdrawExpense(expense_id=expense_id, user_id=expense.user_id))

    @rule(fallback=st.sampled_from((None, UserId(1), UserId(2), UserId(3), UserId(7))))
    def name_the_fallback(self, fallback: UserId | None) -> None:
        self.org.set_fallback_approver(TECHCORP, fallback)

    @rule(hours=st.sampled_from((0, 1, 3, 25, 50)), dry_run=st.booleans())
    def sweep(self, hours: int, dry_run: bool) -> None:
        self.clock.at += timedelta(hours=hours)
        before = self.stored()
        histories = {e: self.history(e) for e in self.known}
        done = self.sweeps.sweep(dry_run=dry_run)
        after = self.stored()
        if dry_run:
            assert after == before
            assert {e: self.history(e) for e in self.known} == histories
            return
        for outcome in done:
            event("escalated" if outcome.escalated else "escalation failed")
            moved = after[outcome.expense_id].approval(outcome.step_number)
            if outcome.approver is None:
                assert moved.approver_id == outcome.previous.id
                assert moved.escalate_at is None
            else:
                assert moved.approver_id == outcome.approver.id
                assert moved.escalate_at is not None
                assert moved.escalate_at > self.clock.at
        for expense in after.values():
            assert escalation.due_step(expense, self.clock.at) is None

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def approved_exactly_when_nothing_required_waits(self) -> None:
        for expense in self.stored().values():
            if expense.status is ExpenseStatus.WITHDRAWN:
                continue
            waiting = any(a.required and a.is_pending for a in expense.approvals)
            refused = any(a.status is ApprovalStatus.REJECTED for a in expense.approvals)
            assert (expense.status is ExpenseStatus.APPROVED) == (not waiting and not refused)

    @invariant()
    def only_the_current_step_has_a_deadline(self) -> None:
        for expense in self.stored().values():
            current = None if expense.is_terminal else expense.current_step
            for a in expense.approvals:
                if a is not current:
                    assert a.escalate_at is None, (expense.id, a)
            if current is not None and current.escalate_after_hours is None:
                assert current.escalate_at is None

    @invariant()
    def four_eyes_and_no_self_approval(self) -> None:
        for expense in self.stored().values():
            approvers = [a.approver_id for a in expense.approvals]
            assert len(set(approvers)) == len(approvers)
            assert expense.user_id not in approvers

    @invariant()
    def escalations_fail_once_and_never_reach_the_submitter(self) -> None:
        for expense_id, expense in self.stored().items():
            events = self.history(expense_id)
            failed = Counter(e.step_number for e in events if e.kind is EventKind.ESCALATION_FAILED)
            assert all(n == 1 for n in failed.values())
            for e in events:
                if e.kind is EventKind.ESCALATED:
                    assert e.actor_id is None
                    assert e.approver_id not in (expense.user_id, e.previous_approver_id)

    @invariant()
    def history_only_grows(self) -> None:
        for expense_id in self.known:
            now = self.history(expense_id)
            before = self.histories.get(expense_id, ())
            assert now[: len(before)] == before
            self.histories[expense_id] = now


TestEscalations = Escalations.TestCase
