"""The fallback approver and escalation targets over generated organisations, against oracles.

The company names a fallback approver, anyone at all: a junior, the submitter, someone
inactive (deactivated after being named), nobody. Resolution and escalation through the memory
adapter's bounded pools must agree with brute force over the whole organisation, and four eyes
and no self-approval must hold on every path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import event, given, reject
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from expense_core import escalation, workflow
from expense_core.approvers import (
    FALLBACK_RULE,
    ApproverPool,
    RoutedStep,
    explain,
    resolve_approvers,
)
from expense_core.errors import NoApproverForStep
from expense_core.escalation import SENIOR_RULE
from expense_core.model import ApprovalStep, Expense, Member, Money, Policy, PolicyId, UserId
from tests.strategies import OrgPlan, StepPlan, build_org, org_plans, step_plans
from tests.unit.test_approver_properties import may_approve, reporting_chain

PICK = st.integers(0, 1 << 16)
AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@attrs.frozen
class Case:
    """A built organisation whose company names `fallback` (None: nobody), a submitter in it,
    the steps of a policy, and the store it lives in."""

    store: MemoryStore
    submitter: Member
    steps: tuple[ApprovalStep, ...]
    everyone: tuple[Member, ...]
    fallback: Member | None

    def bounded(self, steps: tuple[ApprovalStep, ...] | None = None) -> ApproverPool:
        """The pool the memory adapter gathers, as a submission or a sweep asks for it."""
        with self.store.unit_of_work() as uow:
            return uow.org.approver_pool(self.submitter, self.steps if steps is None else steps)

    def whole(self) -> ApproverPool:
        """Everyone in the store, the fallback approver as the company names them."""
        return ApproverPool(
            reporting_chain(self.submitter, self.everyone), self.everyone, self.fallback
        )


@st.composite
def cases(draw: st.DrawFn, *, seniors_first: bool = True) -> Case:
    """Submitters drawn mostly from the top of their team (the people a fallback approver is
    for), or with `seniors_first=False` from the bottom (whose expenses route, then wait)."""
    plan: OrgPlan = draw(org_plans())
    teams = sorted({u.team for u in plan.users})
    team = teams[draw(PICK) % len(teams)]
    members = [i for i, u in enumerate(plan.users) if u.team == team]
    members.sort(key=lambda i: plan.users[i].level, reverse=not seniors_first)
    submitter_index = members[min(draw(PICK) % len(members), draw(PICK) % len(members))]
    submitter_plan = plan.users[submitter_index]
    # One or two steps mostly: the fallback approver takes one step of an expense at most.
    most = draw(st.sampled_from((1, 2, 4)))
    plans: tuple[StepPlan, ...] = draw(step_plans(plan, submitter_plan.level, most))
    store = MemoryStore()
    built = build_org(plan, store.unit_of_work)
    colleagues = [i for i, u in enumerate(plan.users) if u.company == submitter_plan.company]
    fallback_index = draw(
        st.none() | st.sampled_from(colleagues) | st.integers(0, len(built.users) - 1)
    )
    with store.unit_of_work() as uow:
        submitter = uow.org.member(built.users[submitter_index])
        company = uow.org.company(submitter.user.company_id)
        if fallback_index is not None:
            # Straight through the port: the service refuses an inactive or foreign fallback,
            # but one may be deactivated after being named.
            named = built.users[fallback_index]
            uow.org.update_company(attrs.evolve(company, fallback_approver_id=named))
            uow.commit()
    with store.unit_of_work() as uow:
        everyone = tuple(uow.org.member(user_id) for user_id in built.users)
        fallback = None if fallback_index is None else uow.org.member(built.users[fallback_index])
    return Case(store, submitter, built.steps(plans), everyone, fallback)


# --- the oracle ------------------------------------------------------------------------------


def fallback_may(case: Case, taken: set[UserId]) -> bool:
    """§8 once more: the fallback approver stands above scope and level, never above four eyes."""
    f = case.fallback
    return (
        f is not None
        and f.id != case.submitter.id
        and f.user.active
        and f.user.company_id == case.submitter.user.company_id
        and f.id not in taken
    )


def oracle(case: Case) -> list[tuple[UserId, bool]] | int:
    """Each step's approver and whether the fallback took it, or the step that fails."""
    chain = reporting_chain(case.submitter, case.everyone)
    taken: set[UserId] = set()
    chosen: list[tuple[UserId, bool]] = []
    for step in sorted(case.steps, key=lambda s: s.step_order):
        from_chain = [m for m in chain if may_approve(step, case.submitter, m, taken)]
        eligible = [m for m in case.everyone if may_approve(step, case.submitter, m, taken)]
        if from_chain:
            pick, by_fallback = from_chain[0].id, False
        elif eligible:
            nearest = max(m.level_number for m in eligible)
            pick = min(m.id for m in eligible if m.level_number == nearest)
            by_fallback = False
        elif fallback_may(case, taken):
            assert case.fallback is not None
            pick, by_fallback = case.fallback.id, True
        else:
            return step.step_order
        taken.add(pick)
        chosen.append((pick, by_fallback))
    return chosen


def outcome(case: Case, pool: ApproverPool) -> list[tuple[UserId, bool]] | int:
    try:
        routed = resolve_approvers(case.submitter, case.steps, pool)
    except NoApproverForStep as refused:
        return refused.step
    return [(r.approver.id, r.rule == FALLBACK_RULE) for r in routed]


# --- resolution ------------------------------------------------------------------------------


@given(case=cases())
def test_resolution_with_a_fallback_agrees_with_the_oracle(case: Case) -> None:
    expected = oracle(case)
    if isinstance(expected, list):
        event("routed, by the fallback" if any(f for _, f in expected) else "routed")
    else:
        event("refused")
    assert outcome(case, case.bounded()) == expected
    assert outcome(case, case.whole()) == expected


@given(case=cases())
def test_four_eyes_and_no_self_approval_hold_with_a_fallback(case: Case) -> None:
    try:
        routed = resolve_approvers(case.submitter, case.steps, case.bounded())
    except NoApproverForStep:
        return
    ids = [r.approver.id for r in routed]
    assert len(set(ids)) == len(ids)
    assert case.submitter.id not in ids
    assert all(r.approver.user.active for r in routed)
    assert {r.approver.user.company_id for r in routed} <= {case.submitter.user.company_id}


@given(case=cases())
def test_a_step_goes_to_the_fallback_exactly_when_nobody_else_is_eligible_and_they_may(
    case: Case,
) -> None:
    steps = sorted(case.steps, key=lambda s: s.step_order)
    try:
        routed: tuple[RoutedStep, ...] = resolve_approvers(case.submitter, steps, case.bounded())
    except NoApproverForStep as refused:
        # Refused at a step exactly when nobody is eligible there and the fallback may not.
        earlier = tuple(s for s in case.steps if s.step_order < refused.step)
        before = oracle(attrs.evolve(case, steps=earlier))
        assert isinstance(before, list)
        taken = {user_id for user_id, _ in before}
        step = steps[refused.step - 1]
        assert not any(may_approve(step, case.submitter, m, taken) for m in case.everyone)
        assert not fallback_may(case, taken)
        return
    taken = set()
    for r in routed:
        nobody_else = not any(may_approve(r.step, case.submitter, m, taken) for m in case.everyone)
        assert (r.rule == FALLBACK_RULE) == (nobody_else and fallback_may(case, taken))
        if r.rule == FALLBACK_RULE:
            event("a step went to the fallback")
            assert case.fallback is not None
            assert r.approver.id == case.fallback.id
        taken.add(r.approver.id)


@given(case=cases())
def test_explain_chooses_like_resolution_and_judges_the_fallback(case: Case) -> None:
    pool = case.bounded()
    explained = explain(case.submitter, case.steps, pool)
    expected = oracle(case)
    chosen = [s.chosen.id if s.chosen else None for s in explained]
    if isinstance(expected, list):
        assert chosen == [user_id for user_id, _ in expected]
        assert [s.rule == FALLBACK_RULE for s in explained] == [f for _, f in expected]
    else:
        assert chosen[expected - 1] is None
    if case.fallback is not None:
        for step in explained:
            judged = {v.member.id for v in step.considered}
            assert case.fallback.id in judged


# --- escalation ------------------------------------------------------------------------------


@attrs.frozen
class Overdue:
    """A case routed into an expense whose current step (after `approved` required steps were
    approved) is overdue."""

    case: Case
    expense_steps: tuple[ApprovalStep, ...]
    expense: Expense
    step: ApprovalStep
    approver: Member


@st.composite
def overdue(draw: st.DrawFn) -> Overdue:
    case: Case = draw(cases(seniors_first=False))
    # Required steps that escalate after a day; the policy ends before a step nobody may take.
    steps = tuple(attrs.evolve(s, escalate_after_hours=24, is_required=True) for s in case.steps)
    try:
        routed = resolve_approvers(case.submitter, steps, case.bounded())
    except NoApproverForStep as refused:
        if refused.step == 1:
            reject()
        steps = steps[: refused.step - 1]
        routed = resolve_approvers(case.submitter, steps, case.bounded(steps))
    case = attrs.evolve(case, steps=steps)
    policy = Policy(
        id=PolicyId(1),
        company_id=case.submitter.user.company_id,
        category="any",
        name="any",
        steps=steps,
    )
    decision = workflow.submit(
        submitter=case.submitter,
        policy=policy,
        amount=Money.cents(100),
        description=None,
        routing=routed,
        at=AT,
    )
    expense = decision.expense
    for _ in range(draw(st.integers(0, 3))):
        current = expense.current_step
        if current is None or expense.pending_required == 1:
            break
        expense = workflow.approve(expense, current.approver_id, None, AT).expense
    current = expense.current_step
    assert current is not None
    by_id = {m.id: m for m in case.everyone}
    step = next(s for s in steps if s.step_order == current.step_number)
    return Overdue(case, steps, expense, step, by_id[current.approver_id])


def escalation_oracle(o: Overdue) -> tuple[UserId | None, bool]:
    """Who the overdue step goes to by brute force, and whether as the fallback."""
    case = o.case
    current = o.expense.current_step
    assert current is not None
    taken = {a.approver_id for a in o.expense.approvals if a.step_number != current.step_number}
    if case.fallback is not None and case.fallback.id == o.approver.id:
        return None, False
    higher = attrs.evolve(
        o.step, required_level=min(o.step.required_level, o.approver.level_number - 1)
    )
    eligible = [
        m
        for m in case.everyone
        if m.level_number < o.approver.level_number
        and may_approve(higher, case.submitter, m, taken)
    ]
    if eligible:
        nearest = max(m.level_number for m in eligible)
        return min(m.id for m in eligible if m.level_number == nearest), False
    if fallback_may(case, taken):
        assert case.fallback is not None
        return case.fallback.id, True
    return None, False


def planned(o: Overdue, pool: ApproverPool) -> escalation.Escalation:
    found = escalation.plan(
        o.expense, o.step, o.case.submitter, o.approver, pool, AT + timedelta(hours=25)
    )
    assert found is not None
    return found


def bounded_for(o: Overdue) -> ApproverPool:
    higher = escalation.raised(o.step, o.approver)
    return o.case.bounded((higher,) * len(o.expense.approvals))


@given(o=overdue())
def test_an_overdue_step_goes_to_the_nearest_more_senior_eligible_person_else_the_fallback(
    o: Overdue,
) -> None:
    expected_id, by_fallback = escalation_oracle(o)
    for pool in (bounded_for(o), o.case.whole()):
        found = planned(o, pool)
        assert (found.approver.id if found.approver else None) == expected_id
        assert (found.rule == FALLBACK_RULE) == by_fallback
        if found.approver is not None and not by_fallback:
            assert found.rule == SENIOR_RULE
    event("stays" if expected_id is None else "by the fallback" if by_fallback else "up")


@given(o=overdue())
def test_escalation_keeps_four_eyes_never_reaches_the_submitter_and_only_climbs(
    o: Overdue,
) -> None:
    found = planned(o, bounded_for(o))
    assert found.overdue == timedelta(hours=1)
    assert found.previous == o.approver
    if found.approver is None:
        return
    others = {a.approver_id for a in o.expense.approvals if a.step_number != found.step_number}
    assert found.approver.id != o.case.submitter.id
    assert found.approver.id not in others
    assert found.approver.id != o.approver.id
    if found.rule != FALLBACK_RULE:
        assert found.approver.level_number < o.approver.level_number
    moved = escalation.decide(o.expense, found, at=AT, restart_at=AT + timedelta(hours=25))
    approvers = [a.approver_id for a in moved.expense.approvals]
    assert len(set(approvers)) == len(approvers)
    step = moved.expense.approval(found.step_number)
    assert step.escalate_at == AT + timedelta(hours=49)
    assert [e.kind for e in moved.events] == ["escalated"]
