"""Random submit/approve/reject/withdraw/send-back/resubmit sequences through `ExpenseService`,
right and wrong actors.

After every step: an expense is approved exactly when no required approval of its current round
is pending and none is rejected (withdrawn and returned ones aside; in every state, exactly when
every required approval is approved), and only terminal expenses carry `completed_at`; a terminal
expense never changes again; a refused command changes nothing; history only grows, agrees with
the current round's approval rows, and keeps every round; no round is routed to its submitter
or to one person twice.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from adapters.memory import MemoryStore
from expense_core.demo import install_demo
from expense_core.errors import DomainError
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    CompanyId,
    EventKind,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    LevelId,
    Money,
    PolicyId,
    ScopeKind,
    TeamId,
    TeamScope,
    UserId,
)
from expense_core.notifications import OutboxEntry, Topic
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    NewPolicy,
    NewUser,
    OrgService,
    RejectExpense,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.views import ExpenseView
from expense_core.visibility import Viewer
from tests.clocks import TickingClock
from tests.unit.support import EVE, GRACE, LARGE_EQUIPMENT, TECHCORP, money

DECIDED = {
    ApprovalStatus.APPROVED: {EventKind.APPROVED},
    ApprovalStatus.REJECTED: {EventKind.REJECTED},
    # The step an expense was sent back from is skipped; its `returned` event decided it.
    ApprovalStatus.SKIPPED: {EventKind.SKIPPED, EventKind.RETURNED},
}
ROUND_OPENERS = (EventKind.SUBMITTED, EventKind.RESUBMITTED)


@attrs.frozen
class Seen:
    view: ExpenseView
    history: tuple[ExpenseEvent, ...]


def add_people_and_policies(org: OrgService) -> None:
    """Beside the demo: a company-wide Finance team, an inactive manager, a report of Eve's,
    two policies with optional steps, and a second company (Globex) with its own policy."""
    finance = org.create_team(TECHCORP, "Finance", is_company_wide=True)
    controller = org.create_level(TECHCORP, finance.id, 4, "Controller")
    accountant = org.create_level(TECHCORP, finance.id, 6, "Accountant")
    people = (
        (finance.id, controller.id, "Fiona", True, None),  # user 8
        (finance.id, accountant.id, "Finn", True, None),  # user 9
        (TeamId(1), LevelId(6), "Henry", False, None),  # user 10: an inactive manager
        (TeamId(1), LevelId(7), "Ida", True, EVE),  # user 11: reports to Eve
    )
    for team, level, name, active, manager in people:
        org.create_user(
            NewUser(
                company_id=TECHCORP,
                team_id=team,
                email=f"{name.lower()}@techcorp.com",
                name=name,
                hierarchy_level_id=level,
                active=active,
                manager_id=manager,
            )
        )
    in_finance = TeamScope(ScopeKind.TEAM, finance.id)
    policies = (
        (
            "training",
            (
                ApprovalStep(step_order=1, required_level=6),
                ApprovalStep(
                    step_order=2, required_level=6, team_scope=in_finance, is_required=False
                ),
                ApprovalStep(step_order=3, required_level=5),
            ),
        ),
        (
            "software",
            (
                ApprovalStep(
                    step_order=1,
                    required_level=4,
                    team_scope=TeamScope(ScopeKind.COMPANY_WIDE),
                    is_required=False,
                ),
                ApprovalStep(step_order=2, required_level=6),
            ),
        ),
    )
    for category, steps in policies:  # policies 4 and 5
        org.create_policy(
            NewPolicy(
                company_id=TECHCORP,
                category=category,
                name=category.title(),
                min_amount=money("0.00"),
                max_amount=money("50000.00"),
                steps=steps,
            )
        )
    globex = org.create_company("Globex")  # company 2
    ops = org.create_team(globex.id, "Operations")
    boss: UserId | None = None
    for number, name in ((1, "Gus"), (2, "Hana"), (3, "Ivan")):  # users 12-14
        rung = org.create_level(globex.id, ops.id, number, f"Rung {number}")
        boss = org.create_user(
            NewUser(
                company_id=globex.id,
                team_id=ops.id,
                email=f"{name.lower()}@globex.example",
                name=name,
                hierarchy_level_id=rung.id,
                manager_id=boss,
            )
        ).id
    org.create_policy(  # policy 6
        NewPolicy(
            company_id=globex.id,
            category="travel",
            name="Globex Travel",
            min_amount=money("0.00"),
            max_amount=money("100000.00"),
            steps=(ApprovalStep(step_order=1, required_level=2),),
        )
    )


COMPANIES = (TECHCORP, CompanyId(2))
ACTORS = tuple(UserId(i) for i in range(1, 16))  # 15 does not exist
POLICIES = tuple(PolicyId(i) for i in range(1, 8))  # 7 does not exist
CATEGORIES = ("equipment", "travel", "training", "software", "meals")
AMOUNTS = tuple(
    Money.cents(c) for c in (0, 1, 80_000, 120_000, 199_999, 200_000, 400_000, 5_000_001)
)
REASONS = (None, "", "  ", "over budget")
DESCRIPTIONS = (None, "with receipts", "d" * 2001)
KEYS = (None, None, "k1", "k2")


class ExpenseWorkflow(RuleBasedStateMachine):
    expenses = Bundle("expenses")

    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        install_demo(self.store.unit_of_work)
        add_people_and_policies(OrgService(self.store.unit_of_work))
        self.service = ExpenseService(self.store.unit_of_work, TickingClock())
        self.company: dict[ExpenseId, CompanyId] = {}
        self.seen: dict[ExpenseId, Seen] = {}

    # --- reading ---------------------------------------------------------------------------

    def read(self, expense_id: ExpenseId) -> Seen:
        return Seen(
            self.service.status(expense_id),
            self.service.history(expense_id, Viewer.whole_company(self.company[expense_id])),
        )

    def outbox(self, expense_id: ExpenseId) -> list[OutboxEntry]:
        with self.store.unit_of_work() as uow:
            every = uow.outbox.undispatched(limit=1_000_000)
        return [e for e in every if e.expense_id == expense_id]

    def stored(self) -> int:
        return sum(
            len(self.service.list_expenses(Viewer.whole_company(c), limit=100).items)
            for c in COMPANIES
        )

    def attempt(
        self,
        expense_id: ExpenseId,
        actor: UserId,
        kind: EventKind,
        allowed: Callable[[ExpenseView], bool],
        command: Callable[[], object],
    ) -> None:
        """Run a command: it succeeds exactly when the rules allow it; a refusal changes nothing;
        a success appends events, the first of this kind by this actor."""
        before = self.read(expense_id)
        told = self.outbox(expense_id)
        refusal: DomainError | None = None
        try:
            command()
        except DomainError as refused:
            refusal = refused
        if refusal is not None:
            event(f"refused: {refusal.code}")
            assert not allowed(before.view), f"refused a permitted command: {refusal}"
            assert self.read(expense_id) == before
            assert self.outbox(expense_id) == told
            return
        assert allowed(before.view), f"{kind} by user {actor} should have been refused"
        after = self.read(expense_id)
        event(f"{after.view.status} after a command")
        assert after.history[: len(before.history)] == before.history
        first = after.history[len(before.history)]
        assert (first.kind, first.actor_id) == (kind, actor)

    def actionable(self, view: ExpenseView) -> list[UserId]:
        """Who may approve now: the current required step's approver and optional approvers."""
        if view.status is not ExpenseStatus.PENDING:
            return []
        pending = [a for a in view.approvals if a.status is ApprovalStatus.PENDING]
        current = next((a for a in pending if a.required), None)
        return [a.approver_id for a in pending if a is current or not a.required]

    def current_approver(self, view: ExpenseView) -> UserId | None:
        """Who may reject now: the current required step's approver alone."""
        if view.status is not ExpenseStatus.PENDING:
            return None
        pending = (a for a in view.approvals if a.required and a.status is ApprovalStatus.PENDING)
        return next(a.approver_id for a in pending)

    # --- rules -----------------------------------------------------------------------------

    @initialize(target=expenses)
    def grace_asks_for_a_workstation(self) -> object:
        return self.submit(GRACE, LARGE_EQUIPMENT, "equipment", Money.cents(400_000), None)

    @initialize(target=expenses)
    def ida_asks_for_training(self) -> object:
        return self.submit(UserId(11), None, "training", Money.cents(120_000), None)

    @rule(
        target=expenses,
        submitter=st.sampled_from(ACTORS),
        policy=st.sampled_from(POLICIES) | st.none(),
        category=st.sampled_from(CATEGORIES),
        amount=st.sampled_from(AMOUNTS),
        key=st.sampled_from(KEYS),
    )
    def submit(
        self,
        submitter: UserId,
        policy: PolicyId | None,
        category: str,
        amount: Money,
        key: str | None,
    ) -> object:
        count = self.stored()
        try:
            submitted = self.service.submit(
                SubmitExpense(
                    user_id=submitter,
                    policy_id=policy,
                    category=None if policy is not None else category,
                    amount=amount,
                    idempotency_key=key,
                )
            )
        except DomainError:
            assert self.stored() == count
            return multiple()
        expense = submitted.expense
        assert self.stored() == count + (0 if submitted.replayed else 1)
        assert expense.user_id == submitter
        approvers = [m.id for m in submitted.approvers]
        assert approvers == [a.approver_id for a in expense.approvals]
        assert submitter not in approvers
        assert len(set(approvers)) == len(approvers)
        self.company[expense.id] = expense.company_id
        if submitted.replayed:
            assert expense.id in self.seen
            return multiple()
        return expense.id

    @rule(expense_id=expenses, actor=st.sampled_from(ACTORS), comment=st.sampled_from((None, "ok")))
    def approve(self, expense_id: ExpenseId, actor: UserId, comment: str | None) -> None:
        self.attempt(
            expense_id,
            actor,
            EventKind.APPROVED,
            lambda view: actor in self.actionable(view),
            lambda: self.service.approve(
                ApproveStep(expense_id=expense_id, user_id=actor, comments=comment)
            ),
        )

    @rule(expense_id=expenses, data=st.data())
    def approve_as_someone_who_may(self, expense_id: ExpenseId, data: st.DataObject) -> None:
        candidates = self.actionable(self.read(expense_id).view)
        if candidates:
            self.approve(expense_id, data.draw(st.sampled_from(candidates)), "go")

    @rule(expense_id=expenses, actor=st.sampled_from(ACTORS), reason=st.sampled_from(REASONS))
    def reject(self, expense_id: ExpenseId, actor: UserId, reason: str | None) -> None:
        self.attempt(
            expense_id,
            actor,
            EventKind.REJECTED,
            lambda view: actor == self.current_approver(view) and bool(reason and reason.strip()),
            lambda: self.service.reject(
                RejectExpense(expense_id=expense_id, user_id=actor, reason=reason)
            ),
        )

    @rule(expense_id=expenses, data=st.data(), reason=st.sampled_from(REASONS))
    def reject_as_someone_who_may(
        self, expense_id: ExpenseId, data: st.DataObject, reason: str | None
    ) -> None:
        candidates = self.actionable(self.read(expense_id).view)
        if candidates:
            self.reject(expense_id, data.draw(st.sampled_from(candidates)), reason)

    @rule(expense_id=expenses, actor=st.sampled_from(ACTORS), reason=st.sampled_from(REASONS))
    def send_back(self, expense_id: ExpenseId, actor: UserId, reason: str | None) -> None:
        self.attempt(
            expense_id,
            actor,
            EventKind.RETURNED,
            lambda view: actor == self.current_approver(view) and bool(reason and reason.strip()),
            lambda: self.service.send_back(
                SendBack(expense_id=expense_id, user_id=actor, reason=reason)
            ),
        )

    @rule(expense_id=expenses, data=st.data())
    def send_back_as_someone_who_may(self, expense_id: ExpenseId, data: st.DataObject) -> None:
        candidates = self.actionable(self.read(expense_id).view)
        if candidates:
            self.send_back(expense_id, data.draw(st.sampled_from(candidates)), "receipts?")

    @rule(
        expense_id=expenses,
        actor=st.sampled_from(ACTORS),
        policy=st.sampled_from(POLICIES) | st.none(),
        category=st.sampled_from(CATEGORIES) | st.none(),
        amount=st.sampled_from(AMOUNTS) | st.none(),
        description=st.sampled_from(DESCRIPTIONS),
    )
    def resubmit(
        self,
        expense_id: ExpenseId,
        actor: UserId,
        policy: PolicyId | None,
        category: str | None,
        amount: Money | None,
        description: str | None,
    ) -> None:
        """Refused unless the submitter resubmits a returned expense (routing may refuse it
        too), changing nothing; else the same expense is routed afresh, as a submission is."""
        before = self.read(expense_id)
        count = self.stored()
        try:
            resubmitted = self.service.resubmit(
                ResubmitExpense(
                    expense_id=expense_id,
                    user_id=actor,
                    amount=amount,
                    description=description,
                    policy_id=policy,
                    category=category,
                )
            )
        except DomainError as refused:
            event(f"resubmission refused: {refused.code}")
            assert self.read(expense_id) == before
            assert self.stored() == count
            return
        assert before.view.status is ExpenseStatus.RETURNED
        assert actor == before.view.user_id
        assert policy is None or category is None
        after = self.read(expense_id)
        event(f"{after.view.status} after a resubmission")
        assert self.stored() == count
        assert after.history[: len(before.history)] == before.history
        first = after.history[len(before.history)]
        assert (first.kind, first.actor_id) == (EventKind.RESUBMITTED, actor)
        expense = resubmitted.expense
        assert expense.id == expense_id
        assert after.view.status in (ExpenseStatus.PENDING, ExpenseStatus.APPROVED)
        approvers = [m.id for m in resubmitted.approvers]
        assert approvers == [a.approver_id for a in expense.approvals]
        assert approvers == [a.approver_id for a in after.view.approvals]
        assert actor not in approvers
        assert len(set(approvers)) == len(approvers)
        assert after.view.amount == (before.view.amount if amount is None else amount)
        assert after.view.description == (description or before.view.description)
        if policy is not None:
            assert after.view.policy_id == policy
        elif category is None:
            assert after.view.policy_id == before.view.policy_id
        assert after.view.submitted_at == before.view.submitted_at

    @rule(expense_id=expenses, amount=st.sampled_from(AMOUNTS) | st.none())
    def resubmit_as_the_submitter(self, expense_id: ExpenseId, amount: Money | None) -> None:
        self.resubmit(expense_id, self.read(expense_id).view.user_id, None, None, amount, None)

    @rule(expense_id=expenses, actor=st.sampled_from(ACTORS))
    def withdraw(self, expense_id: ExpenseId, actor: UserId) -> None:
        self.attempt(
            expense_id,
            actor,
            EventKind.WITHDRAWN,
            lambda view: (
                view.status in (ExpenseStatus.PENDING, ExpenseStatus.RETURNED)
                and actor == view.user_id
            ),
            lambda: self.service.withdraw(WithdrawExpense(expense_id=expense_id, user_id=actor)),
        )

    @rule(expense_id=expenses)
    def withdraw_as_the_submitter(self, expense_id: ExpenseId) -> None:
        self.withdraw(expense_id, self.read(expense_id).view.user_id)

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def every_expense_obeys_the_workflow(self) -> None:
        for expense_id in self.company:
            now = self.read(expense_id)
            check_status(now.view)
            check_history(now.view, now.history)
            previous = self.seen.get(expense_id)
            if previous is not None:
                assert now.history[: len(previous.history)] == previous.history
                if previous.view.status not in (ExpenseStatus.PENDING, ExpenseStatus.RETURNED):
                    assert now == previous  # terminal stays terminal, untouched
                if previous.view.status is ExpenseStatus.RETURNED and now != previous:
                    # Only its submitter moves a returned expense on.
                    kind = now.history[len(previous.history)].kind
                    assert kind in (EventKind.RESUBMITTED, EventKind.WITHDRAWN)
            self.seen[expense_id] = now

    @invariant()
    def everyone_who_must_act_is_told(self) -> None:
        """The outbox tells each event of an expense, in order, and asks each person who may act
        on it now, since its latest (re)submission; it closes with its final status."""
        for expense_id in self.company:
            now = self.read(expense_id)
            told = self.outbox(expense_id)
            assert [e.id for e in told] == sorted(e.id for e in told)
            reported = [e.event for e in told if e.topic is not Topic.APPROVAL_REQUESTED]
            assert [e for e in now.history if e.kind not in _UNTOLD] == _dedupe(reported)
            rounds = [i for i, e in enumerate(told) if e.topic in _ROUND_STARTS]
            assert rounds, "no submission notice"
            asked = {
                e.recipient_id for e in told[rounds[-1] :] if e.topic is Topic.APPROVAL_REQUESTED
            }
            assert set(self.actionable(now.view)) <= asked
            closing = _CLOSED_BY.get(now.view.status)
            if closing is not None:
                assert [e.topic for e in told].count(closing) == 1
                assert not [
                    e
                    for e in told
                    if e.topic is Topic.APPROVAL_REQUESTED and e.id > _last(told, closing)
                ]


# What no one outside is told of: a step skipped as its expense closed, a failed escalation.
_UNTOLD = (EventKind.SKIPPED, EventKind.ESCALATION_FAILED)
_ROUND_STARTS = (Topic.EXPENSE_SUBMITTED, Topic.EXPENSE_RESUBMITTED)
_CLOSED_BY = {
    ExpenseStatus.APPROVED: Topic.EXPENSE_APPROVED,
    ExpenseStatus.REJECTED: Topic.EXPENSE_REJECTED,
    ExpenseStatus.WITHDRAWN: Topic.EXPENSE_WITHDRAWN,
}


def _dedupe(events: list[ExpenseEvent]) -> list[ExpenseEvent]:
    """The events once each, in their first order (a decision's and a closing notice share
    their event)."""
    seen: list[ExpenseEvent] = []
    for e in events:
        if e not in seen:
            seen.append(e)
    return seen


def _last(told: list[OutboxEntry], topic: Topic) -> int:
    return max(e.id for e in told if e.topic is topic)


def check_status(view: ExpenseView) -> None:
    approvals = view.approvals
    required = [a for a in approvals if a.required]
    pending_required = any(a.status is ApprovalStatus.PENDING for a in required)
    rejected = [a for a in approvals if a.status is ApprovalStatus.REJECTED]
    assert required
    assert all(a.required for a in rejected)
    assert len(rejected) <= 1
    if view.status not in (ExpenseStatus.WITHDRAWN, ExpenseStatus.RETURNED):
        assert (view.status is ExpenseStatus.APPROVED) == (not pending_required and not rejected)
    assert (view.status is ExpenseStatus.APPROVED) == all(
        a.status is ApprovalStatus.APPROVED for a in required
    )
    if view.status is ExpenseStatus.REJECTED:
        assert len(rejected) == 1
    if view.status is ExpenseStatus.PENDING:
        assert pending_required
        assert not rejected
        assert all(a.status is not ApprovalStatus.SKIPPED for a in approvals)
        assert view.completed_at is None
    elif view.status is ExpenseStatus.RETURNED:
        assert all(a.status is not ApprovalStatus.PENDING for a in approvals)
        assert not rejected
        # The step sent back: skipped, with the reason and the time it was sent back.
        (sent_back,) = [
            a for a in approvals if a.status is ApprovalStatus.SKIPPED and a.approved_at
        ]
        assert sent_back.required
        assert sent_back.comments
        assert view.completed_at is None
    else:
        assert all(a.status is not ApprovalStatus.PENDING for a in approvals)
        assert view.completed_at is not None
        assert view.completed_at >= view.submitted_at
    approvers = [a.approver_id for a in approvals]
    assert view.user_id not in approvers
    assert len(set(approvers)) == len(approvers)


def check_history(view: ExpenseView, history: tuple[ExpenseEvent, ...]) -> None:
    assert history[0].kind is EventKind.SUBMITTED
    assert history[0].actor_id == view.user_id
    assert [e.kind for e in history].count(EventKind.SUBMITTED) == 1
    assert all(e.expense_id == view.id and e.company_id == view.company_id for e in history)
    times = [e.at for e in history]
    assert times == sorted(times)
    # Rounds: each send-back is answered by one resubmission, both by the right people.
    turns = [e for e in history if e.kind in (EventKind.RETURNED, EventKind.RESUBMITTED)]
    assert [e.kind for e in turns] == [
        EventKind.RETURNED if i % 2 == 0 else EventKind.RESUBMITTED for i in range(len(turns))
    ]
    if view.status is ExpenseStatus.RETURNED:
        assert len(turns) % 2 == 1
    elif view.status is not ExpenseStatus.WITHDRAWN:  # withdrawn: from a round, or returned
        assert len(turns) % 2 == 0
    assert all(e.actor_id == view.user_id for e in turns if e.kind is EventKind.RESUBMITTED)
    # The approval rows are the current round's: they agree with its events alone.
    opened = max(i for i, e in enumerate(history) if e.kind in ROUND_OPENERS)
    history = history[opened:]
    for approval in view.approvals:
        matching = [e for e in history if e.step_number == approval.step_number]
        if approval.status is ApprovalStatus.PENDING:
            assert matching == []
        else:
            (event,) = matching
            assert event.kind in DECIDED[approval.status]
            if event.kind is not EventKind.SKIPPED:
                assert event.actor_id == approval.approver_id
                assert event.at == approval.approved_at
                assert event.comment == approval.comments
    withdrawals = [e for e in history if e.kind is EventKind.WITHDRAWN]
    assert len(withdrawals) == (view.status is ExpenseStatus.WITHDRAWN)
    steps = {a.step_number for a in view.approvals}
    assert all(e.step_number in steps for e in history if e.step_number is not None)


TestExpenseWorkflow = ExpenseWorkflow.TestCase
