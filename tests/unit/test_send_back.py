"""Send back and resubmit as pure decisions: a returned expense waits for its submitter, who
resubmits it as a new round of approvals or withdraws it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import attrs
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from expense_core import workflow
from expense_core.approvers import ApproverPool, RoutedStep
from expense_core.errors import (
    AmountOutsidePolicy,
    DomainError,
    ExpenseClosed,
    ExpenseNotReturned,
    InactiveUser,
    InvalidAmount,
    InvalidText,
    NoApproverForStep,
    NoPolicyFor,
    NotSubmitter,
    NotYourStep,
    OptionalStepCannotSendBack,
    PolicyChoiceRequired,
    PolicyInactive,
    ReasonRequired,
    SelfApproval,
    StepNotReached,
    UnknownExpense,
    UnknownPolicy,
    UnknownUser,
)
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    CompanyId,
    EventKind,
    Expense,
    ExpenseId,
    ExpenseStatus,
    Member,
    Policy,
    PolicyId,
    ScopeKind,
    UserId,
)
from expense_core.services import (
    ApproveStep,
    ChangeUser,
    ExpenseService,
    NewPolicy,
    OrgService,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START, TickingClock
from tests.strategies import OrgPlan, StepPlan, build_org, org_plans, step_plans
from tests.unit.support import (
    BUSINESS_TRAVEL,
    DAVID,
    EVE,
    FRANK,
    GRACE,
    LARGE_EQUIPMENT,
    SMALL_EQUIPMENT,
    TECHCORP,
    member,
)
from tests.unit.support import money as m
from tests.unit.test_approver_properties import Case, oracle
from tests.unit.test_workflow import (
    AD,
    FINANCE,
    MANAGER,
    SEM,
    STRANGER,
    SUBMITTER,
    T1,
    T2,
    T3,
    T4,
    approved,
    kinds,
    rejected,
    statuses,
    three_steps,
    with_optional,
    withdrawn,
)

TRAVEL = Policy(id=PolicyId(3), company_id=CompanyId(1), category="travel", name="Business Travel")
SMALL = Policy(
    id=PolicyId(1), company_id=CompanyId(1), category="equipment", name="Small Equipment"
)


def routing(*route: tuple[Member, bool]) -> tuple[RoutedStep, ...]:
    return tuple(
        RoutedStep(
            ApprovalStep(step_order=i, required_level=approver.level_number, is_required=required),
            approver,
            "test",
        )
        for i, (approver, required) in enumerate(route, start=1)
    )


def sent_back() -> Expense:
    """Three steps: the Manager approved, then the SEM sent it back."""
    after_first = workflow.approve(three_steps(), MANAGER.id, "fine", T1).expense
    return workflow.send_back(after_first, SEM.id, "receipts missing", T2).expense


def resubmitted(
    expense: Expense,
    *route: tuple[Member, bool],
    amount: str = "3500.00",
    policy: Policy = TRAVEL,
    description: str | None = "workstation",
) -> workflow.Decision:
    return workflow.resubmit(
        expense,
        submitter=SUBMITTER,
        policy=policy,
        amount=m(amount),
        description=description,
        routing=routing(*route) if route else routing((MANAGER, True), (SEM, True)),
        at=T3,
    )


# --- send back -------------------------------------------------------------------------------


def test_sending_back_returns_the_expense_and_closes_its_pending_steps() -> None:
    after_first = workflow.approve(with_optional(), MANAGER.id, None, T1).expense
    decision = workflow.send_back(after_first, SEM.id, "which conference?", T2)
    expense = decision.expense
    assert expense.status is ExpenseStatus.RETURNED
    assert not expense.is_terminal
    assert expense.completed_at is None
    assert statuses(expense) == ["approved", "skipped", "skipped"]
    returned = expense.approval(3)
    assert (returned.comments, returned.approved_at) == ("which conference?", T2)
    assert expense.approval(2).comments is None
    assert kinds(decision) == [("returned", 3), ("skipped", 2)]
    first = decision.events[0]
    assert (first.actor_id, first.at, first.comment) == (SEM.id, T2, "which conference?")
    assert decision.step_number == 3
    assert expense.current_step is None
    assert expense.pending_required == 0


@pytest.mark.parametrize("reason", [None, "", "   ", "\n\t"])
def test_sending_back_needs_a_reason(reason: str | None) -> None:
    with pytest.raises(ReasonRequired, match="sending an expense back needs"):
        workflow.send_back(three_steps(), MANAGER.id, reason, T1)


def test_an_overlong_reason_is_refused() -> None:
    with pytest.raises(InvalidText, match="reason"):
        workflow.send_back(three_steps(), MANAGER.id, "r" * 2001, T1)
    assert workflow.send_back(three_steps(), MANAGER.id, "r" * 2000, T1).step_number == 1


def test_an_optional_step_cannot_send_back() -> None:
    with pytest.raises(OptionalStepCannotSendBack, match="step 2 of expense 1 is optional"):
        workflow.send_back(with_optional(), FINANCE.id, "why?", T1)


@pytest.mark.parametrize(
    ("actor", "refusal"),
    [(SEM.id, StepNotReached), (STRANGER, NotYourStep), (SUBMITTER.id, SelfApproval)],
)
def test_only_the_current_steps_approver_may_send_back(
    actor: UserId, refusal: type[Exception]
) -> None:
    with pytest.raises(refusal):
        workflow.send_back(three_steps(), actor, "why?", T1)


@pytest.mark.parametrize("closed", [approved, rejected, withdrawn, sent_back])
def test_a_closed_or_returned_expense_cannot_be_sent_back(closed: Callable[[], Expense]) -> None:
    expense = closed()
    with pytest.raises(ExpenseClosed, match=f"already {expense.status}"):
        workflow.send_back(expense, SEM.id, "again", T4)


@pytest.mark.parametrize(
    "command",
    [
        lambda e: workflow.approve(e, SEM.id, None, T4),
        lambda e: workflow.approve(e, AD.id, None, T4),
        lambda e: workflow.reject(e, SEM.id, "no", T4),
    ],
    ids=["approve-returned-step", "approve-later-step", "reject"],
)
def test_nobody_decides_on_a_returned_expense(
    command: Callable[[Expense], workflow.Decision],
) -> None:
    with pytest.raises(ExpenseClosed, match="already returned"):
        command(sent_back())


def test_the_submitter_may_withdraw_a_returned_expense() -> None:
    decision = workflow.withdraw(sent_back(), SUBMITTER.id, T3)
    assert decision.expense.status is ExpenseStatus.WITHDRAWN
    assert decision.expense.completed_at == T3
    assert statuses(decision.expense) == ["approved", "skipped", "skipped"]
    assert kinds(decision) == [("withdrawn", None)]  # nothing was pending any more


# --- resubmit --------------------------------------------------------------------------------


def test_resubmission_opens_a_new_round_routed_afresh() -> None:
    before = sent_back()
    decision = resubmitted(before, (SEM, True), (AD, True), amount="3500.00")
    expense = decision.expense
    assert (expense.id, expense.user_id, expense.company_id) == (1, SUBMITTER.id, 1)
    assert expense.submitted_at == START  # the first submission's
    assert expense.status is ExpenseStatus.PENDING
    assert expense.completed_at is None
    assert (expense.policy_id, expense.amount) == (TRAVEL.id, m("3500.00"))
    assert [(a.step_number, a.approver_id, a.required) for a in expense.approvals] == [
        (1, SEM.id, True),
        (2, AD.id, True),
    ]
    assert all(a.approved_at is None and a.comments is None for a in expense.approvals)
    assert expense.current_step == expense.approval(1)
    (event,) = decision.events
    assert (event.kind, event.actor_id, event.at, event.step_number) == (
        EventKind.RESUBMITTED,
        SUBMITTER.id,
        T3,
        None,
    )
    assert event.comment == "amount 4000.00 -> 3500.00; policy 2 -> 3"


def test_the_resubmitted_event_says_what_changed() -> None:
    before = sent_back()
    same = resubmitted(before, amount="4000.00", policy=SMALL, description="workstation")
    assert same.events[0].comment == "policy 2 -> 1"
    nothing = workflow.resubmit(
        before,
        submitter=SUBMITTER,
        policy=Policy(id=PolicyId(2), company_id=CompanyId(1), category="e", name="Large"),
        amount=m("4000.00"),
        description="workstation",
        routing=routing((MANAGER, True)),
        at=T3,
    )
    assert nothing.events[0].comment == "nothing changed"
    everything = resubmitted(before, amount="12.00", description="a monitor")
    assert everything.events[0].comment == (
        "amount 4000.00 -> 12.00; description changed; policy 2 -> 3"
    )


def test_a_round_of_optional_steps_only_is_approved_at_once() -> None:
    decision = resubmitted(sent_back(), (MANAGER, False))
    assert decision.expense.status is ExpenseStatus.APPROVED
    assert decision.expense.completed_at == T3
    assert kinds(decision) == [("resubmitted", None), ("skipped", 1)]


def test_the_new_round_is_decided_like_a_submission() -> None:
    expense = resubmitted(sent_back(), (MANAGER, True), (FINANCE, False), (AD, True)).expense
    with pytest.raises(StepNotReached):
        workflow.approve(expense, AD.id, None, T4)
    expense = workflow.approve(expense, MANAGER.id, None, T4).expense
    decision = workflow.approve(expense, AD.id, None, T4 + timedelta(minutes=1))
    assert decision.expense.status is ExpenseStatus.APPROVED
    assert statuses(decision.expense) == ["approved", "skipped", "approved"]


def test_only_the_submitter_may_resubmit() -> None:
    expense = sent_back()
    with pytest.raises(NotSubmitter, match="only the submitter may resubmit expense 1"):
        workflow.check_resubmission(expense, MANAGER.id)
    with pytest.raises(NotSubmitter):
        workflow.resubmit(
            expense,
            submitter=MANAGER,
            policy=TRAVEL,
            amount=m("10.00"),
            description=None,
            routing=routing((SEM, True)),
            at=T3,
        )


@pytest.mark.parametrize("state", [three_steps, approved, rejected, withdrawn])
def test_only_a_returned_expense_may_be_resubmitted(state: Callable[[], Expense]) -> None:
    expense = state()
    with pytest.raises(ExpenseNotReturned, match=f"expense 1 is {expense.status}"):
        resubmitted(expense)


def test_a_resubmission_refuses_a_zero_amount_and_an_overlong_description() -> None:
    with pytest.raises(InvalidAmount):
        resubmitted(sent_back(), amount="0.00")
    with pytest.raises(InvalidText, match="description"):
        resubmitted(sent_back(), description="d" * 2001)


def test_a_returned_expense_is_returned_not_terminal() -> None:
    expense = sent_back()
    assert expense.is_returned
    assert not expense.is_terminal
    assert all(e.is_terminal and not e.is_returned for e in (approved(), rejected(), withdrawn()))
    assert not three_steps().is_returned


# --- properties over any number of rounds ----------------------------------------------------

PEOPLE = tuple(member(i, 6) for i in range(20, 26))


@st.composite
def rounds(draw: st.DrawFn) -> tuple[tuple[tuple[Member, bool], ...], ...]:
    """1 to 4 rounds, each routed to 1 to 4 distinct people, at least one step required."""
    drawn = []
    for _ in range(draw(st.integers(1, 4))):
        people = draw(st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=4, unique=True))
        required = draw(st.lists(st.booleans(), min_size=len(people), max_size=len(people)))
        required[draw(st.integers(0, len(people) - 1))] = True
        drawn.append(tuple(zip(people, required, strict=True)))
    return tuple(drawn)


def check_round(expense: Expense, route: Sequence[tuple[Member, bool]]) -> None:
    """Approved exactly when every required approval of the current round is approved (so none
    pending and none rejected); the approvals are the current round's, with distinct approvers,
    never the submitter."""
    required = [a for a in expense.approvals if a.required]
    every_required_approved = all(a.status is ApprovalStatus.APPROVED for a in required)
    assert (expense.status is ExpenseStatus.APPROVED) == every_required_approved
    if expense.status is ExpenseStatus.PENDING:
        assert any(a.status is ApprovalStatus.PENDING for a in required)
    else:
        assert not any(a.is_pending for a in expense.approvals)
    assert [(a.approver_id, a.required) for a in expense.approvals] == [(p.id, r) for p, r in route]
    approvers = [a.approver_id for a in expense.approvals]
    assert len(set(approvers)) == len(approvers)
    assert SUBMITTER.id not in approvers


@given(
    plan=rounds(),
    approvals=st.lists(st.integers(0, 4), min_size=4, max_size=4),
    finish=st.sampled_from(("approve", "reject", "withdraw", "send back", "leave")),
)
def test_every_round_is_decided_on_its_own(
    plan: tuple[tuple[tuple[Member, bool], ...], ...], approvals: list[int], finish: str
) -> None:
    """Each round but the last is sent back after some approvals; the last one ends as drawn."""
    first = plan[0]
    decision = workflow.submit(
        submitter=SUBMITTER,
        policy=TRAVEL,
        amount=m("100.00"),
        description=None,
        routing=routing(*first),
        at=START,
    )
    expense, history = decision.expense, list(decision.events)
    at = START

    def tick() -> None:
        nonlocal at
        at += timedelta(seconds=1)

    def apply(step: workflow.Decision, route: Sequence[tuple[Member, bool]]) -> Expense:
        assert step.expense.id == expense.id
        history.extend(step.events)
        check_round(step.expense, route)
        return step.expense

    check_round(expense, first)
    for index, route in enumerate(plan):
        if index > 0:
            tick()
            expense = apply(
                workflow.resubmit(
                    expense,
                    submitter=SUBMITTER,
                    policy=TRAVEL,
                    amount=m("100.00"),
                    description=None,
                    routing=routing(*route),
                    at=at,
                ),
                route,
            )
        last = index == len(plan) - 1
        for _ in range(approvals[index]):
            current = expense.current_step
            if expense.status is not ExpenseStatus.PENDING or current is None:
                break
            if last or expense.pending_required > 1:  # leave a step to send back from
                tick()
                expense = apply(workflow.approve(expense, current.approver_id, None, at), route)
        if expense.status is not ExpenseStatus.PENDING:
            assert last or expense.status is ExpenseStatus.APPROVED
            break
        current = expense.current_step
        assert current is not None
        tick()
        action = finish if last else "send back"
        if action == "approve":
            while expense.status is ExpenseStatus.PENDING:
                step = expense.current_step
                assert step is not None
                tick()
                expense = apply(workflow.approve(expense, step.approver_id, None, at), route)
        elif action == "reject":
            expense = apply(workflow.reject(expense, current.approver_id, "no", at), route)
        elif action == "withdraw":
            expense = apply(workflow.withdraw(expense, SUBMITTER.id, at), route)
        elif action == "send back":
            expense = apply(workflow.send_back(expense, current.approver_id, "fix", at), route)
            assert expense.status is ExpenseStatus.RETURNED
    kinds_seen = [e.kind for e in history]
    assert kinds_seen.count(EventKind.SUBMITTED) == 1
    assert kinds_seen.count(EventKind.RETURNED) - kinds_seen.count(EventKind.RESUBMITTED) == (
        expense.status is ExpenseStatus.RETURNED
    )
    assert [e.at for e in history] == sorted(e.at for e in history)


# --- through the service ---------------------------------------------------------------------


def travel_claim(expenses: ExpenseService, amount: str = "1500.00") -> ExpenseId:
    """Grace's Business Travel claim: Frank (Manager), then Eve (SEM)."""
    return expenses.submit(
        SubmitExpense(
            user_id=GRACE, policy_id=BUSINESS_TRAVEL, amount=m(amount), description="Berlin"
        )
    ).expense.id


def sent_back_by_frank(expenses: ExpenseService) -> ExpenseId:
    expense_id = travel_claim(expenses)
    expenses.send_back(SendBack(expense_id=expense_id, user_id=FRANK, reason="hotel receipt"))
    return expense_id


def test_a_returned_expense_leaves_every_inbox_until_it_is_resubmitted(
    expenses: ExpenseService,
) -> None:
    expense_id = travel_claim(expenses)
    assert [i.expense_id for i in expenses.inbox(FRANK).items] == [expense_id]
    decision = expenses.send_back(SendBack(expense_id=expense_id, user_id=FRANK, reason="why?"))
    assert decision.expense.status is ExpenseStatus.RETURNED
    assert expenses.inbox(FRANK).items == ()
    assert expenses.inbox(EVE).items == ()
    returned = expenses.list_expenses(
        Viewer.whole_company(TECHCORP), status=ExpenseStatus.RETURNED
    ).items
    assert [s.id for s in returned] == [expense_id]
    assert (
        expenses.list_expenses(Viewer.whole_company(TECHCORP), status=ExpenseStatus.PENDING).items
        == ()
    )

    resubmitted = expenses.resubmit(
        ResubmitExpense(expense_id=expense_id, user_id=GRACE, amount=m("1350.00"))
    )
    assert resubmitted.expense.id == expense_id
    assert [p.id for p in resubmitted.approvers] == [FRANK, EVE]
    assert [i.expense_id for i in expenses.inbox(FRANK).items] == [expense_id]
    assert (
        expenses.list_expenses(Viewer.whole_company(TECHCORP), status=ExpenseStatus.RETURNED).items
        == ()
    )


def test_the_status_page_shows_the_current_round_and_the_history_every_round(
    expenses: ExpenseService,
) -> None:
    expense_id = sent_back_by_frank(expenses)
    expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=GRACE, amount=m("1350.00")))
    for approver in (FRANK, EVE):
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=approver, comments="ok"))
    view = expenses.status(expense_id)
    assert (view.status, view.amount) == (ExpenseStatus.APPROVED, m("1350.00"))
    assert [(a.step_number, a.approver_id, a.status) for a in view.approvals] == [
        (1, FRANK, ApprovalStatus.APPROVED),
        (2, EVE, ApprovalStatus.APPROVED),
    ]
    history = expenses.history(expense_id, Viewer.whole_company(TECHCORP))
    assert [(e.kind, e.actor_id, e.step_number) for e in history] == [
        (EventKind.SUBMITTED, GRACE, None),
        (EventKind.RETURNED, FRANK, 1),
        (EventKind.SKIPPED, FRANK, 2),
        (EventKind.RESUBMITTED, GRACE, None),
        (EventKind.APPROVED, FRANK, 1),
        (EventKind.APPROVED, EVE, 2),
    ]
    assert history[1].comment == "hotel receipt"
    assert history[3].comment == "amount 1500.00 -> 1350.00"


def test_a_category_may_move_a_resubmission_to_another_policy(expenses: ExpenseService) -> None:
    expense_id = sent_back_by_frank(expenses)
    resubmitted = expenses.resubmit(
        ResubmitExpense(
            expense_id=expense_id, user_id=GRACE, category="equipment", amount=m("4000.00")
        )
    )
    assert resubmitted.expense.policy_id == LARGE_EQUIPMENT
    assert [p.id for p in resubmitted.approvers] == [FRANK, EVE, DAVID]
    assert len(expenses.status(expense_id).approvals) == 3


def test_resubmission_routes_under_todays_organisation(
    store: MemoryStore, expenses: ExpenseService, org: OrgService
) -> None:
    expense_id = sent_back_by_frank(expenses)
    left = org.change_user(ChangeUser(user_id=FRANK, active=False))
    assert left.reassignments == ()  # a returned expense holds no pending step
    resubmitted = expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=GRACE))
    assert [p.id for p in resubmitted.approvers] == [EVE, DAVID]
    assert resubmitted.expense.amount == m("1500.00")  # left out: kept
    assert resubmitted.expense.description == "Berlin"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"user_id": FRANK}, NotSubmitter),
        ({"user_id": UserId(99)}, UnknownUser),
        ({"expense_id": ExpenseId(99)}, UnknownExpense),
        ({"policy_id": SMALL_EQUIPMENT, "category": "equipment"}, PolicyChoiceRequired),
        ({"policy_id": SMALL_EQUIPMENT, "amount": m("2500.00")}, AmountOutsidePolicy),
        ({"policy_id": PolicyId(99)}, UnknownPolicy),
        ({"category": "yachts"}, NoPolicyFor),
        ({"amount": m("0.00")}, InvalidAmount),
        ({"description": "d" * 2001}, InvalidText),
    ],
    ids=[
        "not-the-submitter",
        "unknown-user",
        "unknown-expense",
        "policy-and-category",
        "amount-outside-policy",
        "unknown-policy",
        "no-policy-for",
        "zero-amount",
        "long-description",
    ],
)
def test_a_refused_resubmission_changes_nothing(
    expenses: ExpenseService, change: dict[str, object], error: type[DomainError]
) -> None:
    expense_id = sent_back_by_frank(expenses)
    before = (
        expenses.status(expense_id),
        expenses.history(expense_id, Viewer.whole_company(TECHCORP)),
    )
    fields: dict[str, Any] = {"expense_id": expense_id, "user_id": GRACE, **change}
    with pytest.raises(error):
        expenses.resubmit(ResubmitExpense(**fields))
    assert (
        expenses.status(expense_id),
        expenses.history(expense_id, Viewer.whole_company(TECHCORP)),
    ) == before


def test_an_expense_that_is_not_returned_cannot_be_resubmitted(expenses: ExpenseService) -> None:
    expense_id = travel_claim(expenses)
    with pytest.raises(ExpenseNotReturned, match="is pending"):
        expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=GRACE))
    expenses.withdraw(WithdrawExpense(expense_id=expense_id, user_id=GRACE))
    with pytest.raises(ExpenseNotReturned, match="is withdrawn"):
        expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=GRACE))


def test_a_deactivated_policy_is_checked_again(expenses: ExpenseService, org: OrgService) -> None:
    expense_id = sent_back_by_frank(expenses)
    org.deactivate_policy(BUSINESS_TRAVEL)
    with pytest.raises(PolicyInactive):
        expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=GRACE))
    resubmitted = expenses.resubmit(
        ResubmitExpense(expense_id=expense_id, user_id=GRACE, policy_id=SMALL_EQUIPMENT)
    )
    assert [p.id for p in resubmitted.approvers] == [FRANK]


def test_the_submitter_may_withdraw_instead(expenses: ExpenseService) -> None:
    expense_id = sent_back_by_frank(expenses)
    decision = expenses.withdraw(WithdrawExpense(expense_id=expense_id, user_id=GRACE))
    assert decision.expense.status is ExpenseStatus.WITHDRAWN
    with pytest.raises(ExpenseNotReturned):
        expenses.resubmit(ResubmitExpense(expense_id=expense_id, user_id=GRACE))


# --- resubmission over generated organisations -----------------------------------------------


def local_steps(plan: OrgPlan, company: int, plans: tuple[StepPlan, ...]) -> tuple[StepPlan, ...]:
    """The drawn steps as a policy of `company` may have them: team scopes of its own teams (the
    submitter's team instead of another company's), the first step required."""
    return tuple(
        attrs.evolve(
            p,
            scope=(
                ScopeKind.SUBMITTER
                if p.scope is ScopeKind.TEAM and plan.teams[p.team].company != company
                else p.scope
            ),
            is_required=p.is_required or i == 0,
        )
        for i, p in enumerate(plans)
    )


@given(data=st.data())
def test_a_resubmission_is_routed_as_a_submission_would_be_today(data: st.DataObject) -> None:
    """Submit under one policy, send back at the current step, let someone leave, resubmit under
    either policy: the new round's approvers are those a brute-force oracle picks in today's
    organisation (distinct, never the submitter), or the resubmission is refused and nothing
    changed; history only grows."""
    plan: OrgPlan = data.draw(org_plans())
    store = MemoryStore()
    built = build_org(plan, store.unit_of_work)
    # Junior people first: they have someone above them to route to.
    juniors_first = sorted(range(len(plan.users)), key=lambda i: -plan.users[i].level)
    index = juniors_first[data.draw(st.integers(0, len(plan.users) - 1))]
    submitter = built.users[index]
    company = plan.users[index].company
    org = OrgService(store.unit_of_work)
    policies = [
        org.create_policy(
            NewPolicy(
                company_id=built.companies[company],
                category=category,
                name=category,
                min_amount=m("0.00"),
                max_amount=m("1000.00"),
                steps=built.steps(
                    local_steps(plan, company, data.draw(step_plans(plan, plan.users[index].level)))
                ),
            )
        )
        for category in ("first", "second")
    ]
    expenses = ExpenseService(store.unit_of_work, TickingClock())
    try:
        expense = expenses.submit(
            SubmitExpense(user_id=submitter, policy_id=policies[0].id, amount=m("10.00"))
        ).expense
    except (NoApproverForStep, InactiveUser) as refused:
        event(f"not submitted: {refused.code}")
        return
    current = expense.current_step
    assert current is not None  # the first step is required
    expenses.send_back(SendBack(expense_id=expense.id, user_id=current.approver_id, reason="?"))
    leaver = data.draw(st.sampled_from(built.users))
    org.change_user(ChangeUser(user_id=leaver, active=False))  # nothing pending to strand
    policy = data.draw(st.sampled_from(policies))
    company_id = built.companies[company]
    before = (
        expenses.status(expense.id),
        expenses.history(expense.id, Viewer.whole_company(company_id)),
    )
    with store.unit_of_work() as uow:
        today = tuple(uow.org.member(u) for u in built.users)
        expected = oracle(
            Case(uow.org.member(submitter), policy.steps, today, ApproverPool((), ()))
        )
    refusal: DomainError | None = None
    try:
        resubmitted = expenses.resubmit(
            ResubmitExpense(expense_id=expense.id, user_id=submitter, policy_id=policy.id)
        )
    except (NoApproverForStep, InactiveUser) as refused:
        refusal = refused
    if refusal is not None:
        event(f"resubmission refused: {refusal.code}")
        if isinstance(refusal, NoApproverForStep):
            assert refusal.step == expected
        else:
            assert leaver == submitter
        assert (
            expenses.status(expense.id),
            expenses.history(expense.id, Viewer.whole_company(company_id)),
        ) == before
        return
    event("resubmitted")
    assert leaver != submitter
    approvers = [p.id for p in resubmitted.approvers]
    assert approvers == expected
    assert submitter not in approvers
    assert len(set(approvers)) == len(approvers)
    assert leaver not in approvers
    view = expenses.status(expense.id)
    assert (view.id, view.policy_id, view.status) == (expense.id, policy.id, ExpenseStatus.PENDING)
    assert [a.approver_id for a in view.approvals] == approvers
    assert all(a.status is ApprovalStatus.PENDING for a in view.approvals)
    history = expenses.history(expense.id, Viewer.whole_company(company_id))
    assert history[: len(before[1])] == before[1]
    assert [e.kind for e in history[len(before[1]) :]] == [EventKind.RESUBMITTED]


# --- with escalation -------------------------------------------------------------------------


def escalating(*route: tuple[Member, bool], hours: int = 24) -> tuple[RoutedStep, ...]:
    return tuple(
        attrs.evolve(
            r, step=attrs.evolve(r.step, escalate_after_hours=hours if r.step.is_required else None)
        )
        for r in routing(*route)
    )


def test_sending_back_stops_every_escalation_clock() -> None:
    opened = workflow.submit(
        submitter=SUBMITTER,
        policy=TRAVEL,
        amount=m("1850.00"),
        description=None,
        routing=escalating((MANAGER, True), (SEM, True)),
        at=T1,
    ).expense
    assert opened.approval(1).escalate_at == T1 + timedelta(hours=24)

    returned = workflow.send_back(opened, MANAGER.id, "receipt missing", T2).expense

    assert [a.escalate_at for a in returned.approvals] == [None, None]


def test_a_resubmitted_round_is_due_from_the_resubmission() -> None:
    before = sent_back()
    decision = workflow.resubmit(
        before,
        submitter=SUBMITTER,
        policy=TRAVEL,
        amount=m("3500.00"),
        description=None,
        routing=escalating((SEM, True), (AD, True), hours=8),
        at=T3,
    )
    first, second = decision.expense.approvals
    assert (first.escalate_after_hours, first.escalate_at) == (8, T3 + timedelta(hours=8))
    assert (second.escalate_after_hours, second.escalate_at) == (8, None)
