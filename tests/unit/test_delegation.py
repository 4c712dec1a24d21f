"""Delegation as pure decisions: who may cover for whom, and what a delegate may decide.

Properties hand the workflow a cover for every step under every delegation there is, whoever
it is from or to: whatever the adapters find, a delegate decides only an absent approver's own
steps, directly (not transitively), inside the period, never as the submitter, never while
holding another step of the expense (four eyes), and only at the step's level or above.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from expense_core import workflow
from expense_core.approvers import RoutedStep
from expense_core.delegation import Cover, Delegation, in_force, new_delegation
from expense_core.errors import (
    DelegateAuditor,
    DelegateInactive,
    DelegateNotEligible,
    DelegationCycle,
    DelegationPeriodEmpty,
    DomainError,
    ExpenseClosed,
    InvalidText,
    NaiveTimestamp,
    NotYourStep,
    SelfApproval,
    SelfDelegation,
    StepAlreadyDecided,
    StepNotReached,
    TimestampOutOfRange,
    UnknownDelegate,
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
    Role,
)
from tests.clocks import START
from tests.unit.support import member
from tests.unit.support import money as m

DAY = timedelta(days=1)


def auditor(someone: Member) -> Member:
    return attrs.evolve(someone, user=attrs.evolve(someone.user, role=Role.AUDITOR))


ALICE, CAROL, DAVID, EVE, FRANK, GRACE = (
    member(1, 1),
    member(3, 3),
    member(4, 4),
    member(5, 5),
    member(6, 6),
    member(7, 7),
)
LEVELS = {p.id: p.level_number for p in (ALICE, CAROL, DAVID, EVE, FRANK, GRACE)}


def expense_of(submitter: Member, *steps: tuple[Member, int, bool]) -> Expense:
    """A stored pending expense: one step per (approver, required level, is_required)."""
    routing = tuple(
        RoutedStep(
            ApprovalStep(step_order=i, required_level=level, is_required=required),
            approver,
            "test",
        )
        for i, (approver, level, required) in enumerate(steps, start=1)
    )
    decision = workflow.submit(
        submitter=submitter,
        policy=Policy(id=PolicyId(1), company_id=CompanyId(1), category="c", name="n"),
        amount=m("100.00"),
        description=None,
        routing=routing,
        at=START,
    )
    return attrs.evolve(decision.expense, id=ExpenseId(1))


def away(user: Member, delegate: Member, *, days: int = 14, start: datetime = START) -> Delegation:
    return Delegation(
        company_id=CompanyId(1),
        user_id=user.id,
        delegate_id=delegate.id,
        starts_at=start,
        ends_at=start + days * DAY,
        note="holiday",
    )


def covers_for(
    expense: Expense, delegations: list[Delegation], required: dict[int, int]
) -> tuple[Cover, ...]:
    """A cover for every step under every delegation: more than any adapter finds."""
    return tuple(
        Cover(
            step_number=a.step_number,
            delegation=d,
            required_level=required[a.step_number],
            delegate_level=LEVELS[d.delegate_id],
        )
        for a in expense.approvals
        for d in delegations
    )


def small(submitter: Member = GRACE) -> Expense:
    """Small Equipment: Frank's step alone, at the Manager's level (6)."""
    return expense_of(submitter, (FRANK, 6, True))


def large() -> Expense:
    """Large Equipment: Frank (6), then Eve (5), then David (4)."""
    return expense_of(GRACE, (FRANK, 6, True), (EVE, 5, True), (DAVID, 4, True))


REQUIRED_SMALL, REQUIRED_LARGE = {1: 6}, {1: 6, 2: 5, 3: 4}


# --- setting a delegation --------------------------------------------------------------------


def set_up(
    user: Member = FRANK,
    delegate: Member = EVE,
    starts_at: datetime = START,
    ends_at: datetime = START + DAY,
    note: str | None = "holiday",
    delegates_own: Delegation | None = None,
) -> Delegation:
    return new_delegation(
        user=user,
        delegate=delegate,
        starts_at=starts_at,
        ends_at=ends_at,
        note=note,
        delegates_own=delegates_own,
    )


def test_a_delegation_keeps_its_period_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    d = set_up(starts_at=datetime(2026, 12, 1, 1, tzinfo=paris), ends_at=START + 500 * DAY)
    assert (d.user_id, d.delegate_id, d.company_id, d.note) == (FRANK.id, EVE.id, 1, "holiday")
    assert d.starts_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert d.starts_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"delegate": FRANK}, SelfDelegation),
        ({"delegate": member(30, 5, company=2)}, UnknownDelegate),
        ({"delegate": member(31, 5, active=False)}, DelegateInactive),
        ({"delegate": auditor(member(32, 5))}, DelegateAuditor),
        ({"ends_at": START}, DelegationPeriodEmpty),
        ({"ends_at": START - DAY}, DelegationPeriodEmpty),
        ({"starts_at": START.replace(tzinfo=None)}, NaiveTimestamp),
        ({"ends_at": (START + DAY).replace(tzinfo=None)}, NaiveTimestamp),
        (
            {"ends_at": datetime.max.replace(tzinfo=timezone(-timedelta(hours=5)))},
            TimestampOutOfRange,
        ),
        ({"note": "n" * 2001}, InvalidText),
        ({"delegates_own": away(EVE, FRANK, days=2, start=START - DAY)}, DelegationCycle),
    ],
)
def test_a_bad_delegation_is_refused(change: dict[str, object], error: type[DomainError]) -> None:
    with pytest.raises(error) as refused:
        set_up(**change)  # type: ignore[arg-type]  # each case replaces one argument
    assert refused.value.code == error.code


def test_a_delegation_back_to_someone_away_at_another_time_is_no_cycle() -> None:
    eve_later = away(EVE, FRANK, days=3, start=START + DAY)  # begins as Frank's ends
    assert set_up(delegates_own=eve_later).delegate_id == EVE.id
    eve_to_carol = away(EVE, CAROL)  # Eve is covered by someone else: no cycle either
    assert set_up(delegates_own=eve_to_carol).delegate_id == EVE.id


@given(
    start=st.integers(-1000, 1000),
    length=st.integers(-5, 1000),
    other_start=st.integers(-1000, 1000),
    other_length=st.integers(1, 1000),
)
def test_only_mutual_delegations_over_overlapping_periods_are_cycles(
    start: int, length: int, other_start: int, other_length: int
) -> None:
    hours = timedelta(hours=1)
    starts_at, ends_at = START + start * hours, START + (start + length) * hours
    eve = Delegation(
        company_id=CompanyId(1),
        user_id=EVE.id,
        delegate_id=FRANK.id,
        starts_at=START + other_start * hours,
        ends_at=START + (other_start + other_length) * hours,
    )
    try:
        made = set_up(starts_at=starts_at, ends_at=ends_at, delegates_own=eve)
    except DelegationPeriodEmpty:
        assert length <= 0
    except DelegationCycle:
        assert length > 0
        assert start < other_start + other_length
        assert other_start < start + length
    else:
        assert length > 0
        assert not made.overlaps(eve)
        assert (made.starts_at, made.ends_at) == (starts_at, ends_at)


# --- deciding as a delegate ------------------------------------------------------------------


def test_a_delegate_approves_the_absent_approvers_step_which_stays_theirs() -> None:
    covers = covers_for(small(), [away(FRANK, EVE)], REQUIRED_SMALL)
    decision = workflow.approve(small(), EVE.id, "for Frank", START + DAY, covers)
    step = decision.expense.approval(1)
    assert (step.approver_id, step.status, step.comments) == (
        FRANK.id,
        ApprovalStatus.APPROVED,
        "for Frank",
    )
    assert decision.on_behalf_of == FRANK.id
    assert decision.expense.status is ExpenseStatus.APPROVED
    assert [(e.kind, e.actor_id, e.on_behalf_of) for e in decision.events] == [
        (EventKind.APPROVED, EVE.id, FRANK.id)
    ]


def test_the_absent_approver_still_decides_their_own_step() -> None:
    covers = covers_for(small(), [away(FRANK, EVE)], REQUIRED_SMALL)
    decision = workflow.approve(small(), FRANK.id, None, START + DAY, covers)
    assert decision.on_behalf_of is None
    assert decision.events[0].on_behalf_of is None


def test_a_delegate_rejects_and_every_event_of_the_decision_says_for_whom() -> None:
    covers = covers_for(large(), [away(FRANK, CAROL)], REQUIRED_LARGE)
    decision = workflow.reject(large(), CAROL.id, "not now", START, covers)
    assert decision.expense.status is ExpenseStatus.REJECTED
    assert [(e.kind, e.step_number, e.on_behalf_of) for e in decision.events] == [
        (EventKind.REJECTED, 1, FRANK.id),
        (EventKind.SKIPPED, 2, FRANK.id),
        (EventKind.SKIPPED, 3, FRANK.id),
    ]


@pytest.mark.parametrize(
    "at", [START - timedelta(microseconds=1), START + 14 * DAY, START + 30 * DAY]
)
def test_a_delegate_never_acts_outside_the_period(at: datetime) -> None:
    covers = covers_for(small(), [away(FRANK, EVE)], REQUIRED_SMALL)
    with pytest.raises(NotYourStep):
        workflow.approve(small(), EVE.id, None, at, covers)


def test_a_delegate_who_approves_another_step_of_the_expense_is_not_eligible() -> None:
    covers = covers_for(large(), [away(FRANK, EVE)], REQUIRED_LARGE)
    with pytest.raises(DelegateNotEligible, match="approve step 2 of this expense themselves"):
        workflow.approve(large(), EVE.id, None, START, covers)


def test_a_delegate_junior_to_the_step_is_not_eligible() -> None:
    expense = expense_of(GRACE, (EVE, 5, True))
    covers = covers_for(expense, [away(EVE, FRANK)], {1: 5})
    with pytest.raises(DelegateNotEligible, match="are level 6; step 1 needs level 5"):
        workflow.approve(expense, FRANK.id, None, START, covers)


def test_a_delegate_who_submitted_the_expense_may_not_decide_it() -> None:
    expense = small(submitter=EVE)
    covers = covers_for(expense, [away(FRANK, EVE)], REQUIRED_SMALL)
    with pytest.raises(SelfApproval):
        workflow.approve(expense, EVE.id, None, START, covers)


def test_delegation_is_not_transitive() -> None:
    chain = [away(FRANK, EVE), away(EVE, CAROL)]  # Carol covers for Eve, Eve for Frank
    covers = covers_for(small(), chain, REQUIRED_SMALL)
    with pytest.raises(NotYourStep):
        workflow.approve(small(), CAROL.id, None, START, covers)


def test_a_covered_step_not_reached_yet_waits_and_a_decided_one_is_decided() -> None:
    covers = covers_for(large(), [away(DAVID, CAROL)], REQUIRED_LARGE)
    with pytest.raises(StepNotReached, match="step 3 of expense 1 waits for step 1"):
        workflow.approve(large(), CAROL.id, None, START, covers)
    decided = workflow.approve(small(), FRANK.id, None, START, ()).expense
    with pytest.raises(ExpenseClosed):
        workflow.approve(
            decided, EVE.id, None, START, covers_for(decided, [away(FRANK, EVE)], REQUIRED_SMALL)
        )


def test_a_decided_covered_step_of_a_pending_expense_says_so() -> None:
    expense = expense_of(GRACE, (FRANK, 6, False), (DAVID, 4, True))
    covers = covers_for(expense, [away(FRANK, EVE)], {1: 6, 2: 4})
    expense = workflow.approve(expense, EVE.id, None, START, covers).expense
    with pytest.raises(StepAlreadyDecided):
        workflow.approve(expense, EVE.id, None, START, covers)


def test_covers_in_force_name_the_actor_and_hold_the_moment() -> None:
    mine, theirs = away(FRANK, EVE), away(DAVID, CAROL)
    covers = covers_for(large(), [mine, theirs], REQUIRED_LARGE)
    assert {c.delegation for c in in_force(covers, EVE.id, START)} == {mine}
    assert in_force(covers, EVE.id, START + 14 * DAY) == ()


# --- properties ------------------------------------------------------------------------------

PEOPLE = (ALICE, CAROL, DAVID, EVE, FRANK, GRACE)
person = st.sampled_from(PEOPLE)


@st.composite
def pending_expenses(draw: st.DrawFn) -> tuple[Expense, dict[int, int]]:
    """A pending expense of 1 to 3 steps with distinct approvers, none the submitter, each at
    their step's required level or more senior, maybe partly decided already."""
    submitter = draw(person)
    others = [p for p in PEOPLE if p.id != submitter.id]
    approvers = draw(st.lists(st.sampled_from(others), min_size=1, max_size=3, unique=True))
    required = {
        i: draw(st.integers(approver.level_number, 7)) for i, approver in enumerate(approvers, 1)
    }
    flags = [draw(st.booleans()) for _ in approvers]
    flags[draw(st.integers(0, len(flags) - 1))] = True
    expense = expense_of(
        submitter,
        *((a, required[i], f) for i, (a, f) in enumerate(zip(approvers, flags, strict=True), 1)),
    )
    for _ in range(draw(st.integers(0, sum(flags) - 1))):
        current = expense.current_step
        assert current is not None
        expense = workflow.approve(expense, current.approver_id, None, START, ()).expense
    assert expense.status is ExpenseStatus.PENDING
    return expense, required


@st.composite
def delegation_graphs(draw: st.DrawFn, favourite: Member | None = None) -> list[Delegation]:
    """At most one delegation per person, to anyone else (the `favourite` often), over some
    hours around START."""
    graph = []
    for user in PEOPLE:
        if draw(st.booleans()):
            anyone = st.sampled_from([p for p in PEOPLE if p.id != user.id])
            if favourite is not None and favourite.id != user.id:
                anyone = st.one_of(st.just(favourite), anyone)
            delegate = draw(anyone)
            start = START + draw(st.integers(-48, 48)) * timedelta(hours=1)
            graph.append(
                Delegation(
                    company_id=CompanyId(1),
                    user_id=user.id,
                    delegate_id=delegate.id,
                    starts_at=start,
                    ends_at=start + draw(st.integers(1, 96)) * timedelta(hours=1),
                )
            )
    return graph


def _decide(kind: str) -> Callable[..., workflow.Decision]:
    return workflow.approve if kind == "approve" else workflow.reject


@given(
    drawn=pending_expenses(),
    data=st.data(),
    hours=st.integers(-48, 144),
    kind=st.sampled_from(["approve", "reject"]),
)
def test_a_delegate_decides_only_what_their_absent_approver_could_leave_them(
    drawn: tuple[Expense, dict[int, int]], data: st.DataObject, hours: int, kind: str
) -> None:
    expense, required = drawn
    current = expense.current_step
    assert current is not None
    # Mostly someone else than the submitter and the current approver; anyone at times.
    others = [p for p in PEOPLE if p.id not in (expense.user_id, current.approver_id)]
    actor = data.draw(st.one_of(st.sampled_from(others), st.sampled_from(PEOPLE)))
    graph = data.draw(delegation_graphs(favourite=actor))
    if current.approver_id != actor.id and data.draw(st.integers(0, 3)) > 0:
        # Often the current approver's delegate, in or out of the period, eligible or not.
        start = START + (hours + data.draw(st.integers(-96, 24))) * timedelta(hours=1)
        graph = [d for d in graph if d.user_id != current.approver_id]
        graph.append(
            Delegation(
                company_id=CompanyId(1),
                user_id=current.approver_id,
                delegate_id=actor.id,
                starts_at=start,
                ends_at=start + data.draw(st.integers(1, 96)) * timedelta(hours=1),
            )
        )
    at = START + hours * timedelta(hours=1)
    covers = covers_for(expense, graph, required)
    try:
        decision = _decide(kind)(expense, actor.id, "why", at, covers)
    except DomainError as refused:
        event(f"refused: {refused.code}")
        return
    event("decided on behalf" if decision.on_behalf_of else "decided own step")
    # No self-approval, and the decision is the actor's, for someone or not.
    assert actor.id != expense.user_id
    assert all(e.actor_id == actor.id for e in decision.events)
    assert all(e.on_behalf_of == decision.on_behalf_of for e in decision.events)
    assert decision.step_number is not None
    step = expense.approval(decision.step_number)
    decided = decision.expense.approval(decision.step_number)
    assert decided.approver_id == step.approver_id  # the step stays its approver's
    if decision.on_behalf_of is None:
        assert step.approver_id == actor.id
        return
    absent = decision.on_behalf_of
    assert absent == step.approver_id != actor.id
    # Directly, inside the period: not transitive, never outside it.
    assert any(
        d.user_id == absent and d.delegate_id == actor.id and d.starts_at <= at < d.ends_at
        for d in graph
    )
    # Four eyes: the delegate holds no step of the expense.
    assert all(a.approver_id != actor.id for a in decision.expense.approvals)
    assert actor.level_number <= required[step.step_number]
    # Approved exactly when no required step is pending and none is rejected.
    after = decision.expense
    statuses = [a.status for a in after.approvals if a.required]
    closed = ApprovalStatus.REJECTED in statuses or ApprovalStatus.PENDING not in statuses
    assert after.is_terminal == closed
    assert (after.status is ExpenseStatus.APPROVED) == (
        ApprovalStatus.REJECTED not in statuses and ApprovalStatus.PENDING not in statuses
    )


@given(
    drawn=pending_expenses(),
    graph=delegation_graphs(),
    data=st.data(),
    hours=st.integers(-60, 150),
    before=st.integers(0, 96),
    after=st.integers(1, 96),
)
def test_an_eligible_delegate_of_the_current_approver_may_decide(
    drawn: tuple[Expense, dict[int, int]],
    graph: list[Delegation],
    data: st.DataObject,
    hours: int,
    before: int,
    after: int,
) -> None:
    expense, required = drawn
    current = expense.current_step
    assert current is not None
    eligible = [
        p
        for p in PEOPLE
        if p.id != expense.user_id
        and all(a.approver_id != p.id for a in expense.approvals)
        and p.level_number <= required[current.step_number]
    ]
    assume(eligible)
    actor = data.draw(st.sampled_from(eligible))
    at = START + hours * timedelta(hours=1)
    ours = Delegation(
        company_id=CompanyId(1),
        user_id=current.approver_id,
        delegate_id=actor.id,
        starts_at=at - before * timedelta(hours=1),
        ends_at=at + after * timedelta(hours=1),
    )
    # Whoever else delegates to whom, the actor covers for the current approver alone.
    others = [d for d in graph if d.user_id != current.approver_id and d.delegate_id != actor.id]
    covers = covers_for(expense, [ours, *others], required)
    for decide in (workflow.approve, workflow.reject):
        decision = decide(expense, actor.id, "why", at, covers)
        assert (decision.step_number, decision.on_behalf_of) == (
            current.step_number,
            current.approver_id,
        )
