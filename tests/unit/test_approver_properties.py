"""Approver resolution over generated organisations, checked against a brute-force oracle.

Organisations have vacancies, inactive people, cross-team reporting chains and a second company;
the oracle looks at everyone in the store, while the memory adapter hands resolution a bounded
pool: both must route every step to the same person.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from hypothesis import event, given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from expense_core.approvers import (
    CHAIN_RULE,
    NEAREST_RULE,
    ApproverPool,
    RoutedStep,
    explain,
    ineligibility,
    resolve_approvers,
)
from expense_core.approvers import may_approve as engine_may_approve
from expense_core.errors import NoApproverForStep
from expense_core.model import ApprovalStep, Member, ScopeKind, UserId
from tests.strategies import OrgPlan, StepPlan, build_org, org_plans, step_plans


@attrs.frozen
class Case:
    """A built organisation, a submitter in it and the steps of a policy."""

    submitter: Member
    steps: tuple[ApprovalStep, ...]
    everyone: tuple[Member, ...]
    bounded: ApproverPool  # what the memory adapter hands resolution


PICK = st.integers(0, 1 << 16)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    plan: OrgPlan = draw(org_plans())
    # A team's junior people first: they are the ones with someone above them to route to.
    teams = sorted({u.team for u in plan.users})
    team = teams[draw(PICK) % len(teams)]
    members = sorted(
        (i for i, u in enumerate(plan.users) if u.team == team), key=lambda i: -plan.users[i].level
    )
    submitter_index = members[draw(PICK) % len(members)]
    plans: tuple[StepPlan, ...] = draw(step_plans(plan, plan.users[submitter_index].level))
    store = MemoryStore()
    built = build_org(plan, store.unit_of_work)
    submitter_id = built.users[submitter_index]
    steps = built.steps(plans)
    with store.unit_of_work() as uow:
        everyone = tuple(uow.org.member(user_id) for user_id in built.users)
        submitter = uow.org.member(submitter_id)
        bounded = uow.org.approver_pool(submitter, steps)
    return Case(submitter, steps, everyone, bounded)


# --- the oracle ------------------------------------------------------------------------------


def reporting_chain(submitter: Member, everyone: Sequence[Member]) -> tuple[Member, ...]:
    by_id = {m.id: m for m in everyone}
    chain: list[Member] = []
    seen = {submitter.id}
    manager_id = submitter.user.manager_id
    while manager_id is not None and manager_id not in seen:
        seen.add(manager_id)
        chain.append(by_id[manager_id])
        manager_id = by_id[manager_id].user.manager_id
    return tuple(chain)


def may_approve(step: ApprovalStep, submitter: Member, person: Member, taken: set[UserId]) -> bool:
    """The rules of §2, written out once more without looking at the engine's code."""
    scope = step.team_scope
    if scope.kind is ScopeKind.SUBMITTER:
        in_scope = person.user.team_id == submitter.user.team_id
    elif scope.kind is ScopeKind.TEAM:
        in_scope = person.user.team_id == scope.team_id
    else:
        in_scope = True
    senior_enough = scope.kind is ScopeKind.TEAM or person.level_number < submitter.level_number
    return (
        person.id != submitter.id
        and person.user.active
        and person.user.company_id == submitter.user.company_id
        and in_scope
        and person.level_number <= step.required_level
        and senior_enough
        and person.id not in taken
    )


def oracle(case: Case) -> list[UserId] | int:
    """Each step's approver by brute force over the whole organisation, or the failing step."""
    chain = reporting_chain(case.submitter, case.everyone)
    taken: set[UserId] = set()
    chosen: list[UserId] = []
    for step in sorted(case.steps, key=lambda s: s.step_order):
        from_chain = [m for m in chain if may_approve(step, case.submitter, m, taken)]
        if from_chain:
            pick = from_chain[0].id
        else:
            eligible = [m for m in case.everyone if may_approve(step, case.submitter, m, taken)]
            if not eligible:
                return step.step_order
            nearest = max(m.level_number for m in eligible)
            pick = min(m.id for m in eligible if m.level_number == nearest)
        taken.add(pick)
        chosen.append(pick)
    return chosen


def outcome(case: Case, pool: ApproverPool) -> list[UserId] | int:
    try:
        routed = resolve_approvers(case.submitter, case.steps, pool)
    except NoApproverForStep as refused:
        return int(str(refused).split("step ")[1].split(" ")[0])
    return [r.approver.id for r in routed]


def everyone_pool(case: Case) -> ApproverPool:
    return ApproverPool(reporting_chain(case.submitter, case.everyone), case.everyone)


# --- properties ------------------------------------------------------------------------------


@given(case=cases())
def test_resolution_agrees_with_a_brute_force_oracle_over_the_whole_org(case: Case) -> None:
    expected = oracle(case)
    event("routed" if isinstance(expected, list) else f"refused at step {expected}")
    assert outcome(case, everyone_pool(case)) == expected


@given(case=cases())
def test_a_bounded_pool_resolves_like_a_pool_of_everyone(case: Case) -> None:
    assert outcome(case, case.bounded) == outcome(case, everyone_pool(case))
    routed = outcome(case, case.bounded)
    if isinstance(routed, list):
        rules = [r.rule for r in resolve_approvers(case.submitter, case.steps, case.bounded)]
        full = [r.rule for r in resolve_approvers(case.submitter, case.steps, everyone_pool(case))]
        assert rules == full


@given(case=cases())
def test_resolved_approvers_are_eligible_nearest_distinct_and_never_the_submitter(
    case: Case,
) -> None:
    try:
        routed = resolve_approvers(case.submitter, case.steps, case.bounded)
    except NoApproverForStep:
        assert isinstance(oracle(case), int)
        return
    chain = reporting_chain(case.submitter, case.everyone)
    ids = [r.approver.id for r in routed]
    assert len(set(ids)) == len(ids)
    assert case.submitter.id not in ids
    taken: set[UserId] = set()
    for r in routed:
        approver, step = r.approver, r.step
        assert may_approve(step, case.submitter, approver, taken)
        if step.team_scope.kind is not ScopeKind.TEAM:
            assert approver.level_number < case.submitter.level_number
        check_the_rule(r, chain, case, taken)
        taken.add(approver.id)


def check_the_rule(
    r: RoutedStep, chain: tuple[Member, ...], case: Case, taken: set[UserId]
) -> None:
    eligible_chain = [m for m in chain if may_approve(r.step, case.submitter, m, taken)]
    if r.rule == CHAIN_RULE:
        event("chain")
        assert eligible_chain[0] == r.approver
        return
    assert r.rule == NEAREST_RULE
    event("nearest")
    assert not eligible_chain
    for other in case.everyone:
        if other.id != r.approver.id and may_approve(r.step, case.submitter, other, taken):
            assert (other.level_number, -other.id) < (r.approver.level_number, -r.approver.id)


@given(case=cases())
def test_explain_chooses_like_resolution_and_judges_every_candidate(case: Case) -> None:
    explained = explain(case.submitter, case.steps, case.bounded)
    pool_ids = {m.id for m in case.bounded.everyone()}
    for step in explained:
        judged = [v.member.id for v in step.considered]
        assert sorted(judged) == sorted(pool_ids)
        for verdict in step.considered:
            chosen = step.chosen is not None and verdict.member.id == step.chosen.id
            assert verdict.reason.startswith("chosen: ") == chosen
            assert verdict.reason != "eligible"
    expected = oracle(case)
    if isinstance(expected, list):
        assert [s.chosen.id if s.chosen else None for s in explained] == expected
    else:
        assert explained[expected - 1].chosen is None
        assert [s.chosen is not None for s in explained[: expected - 1]] == [True] * (expected - 1)


@given(case=cases(), data=st.data())
def test_the_quick_eligibility_check_agrees_with_the_reasons(
    case: Case, data: st.DataObject
) -> None:
    people = (*case.everyone, case.submitter)
    ids = [m.id for m in people]
    taken = {user_id: n for n, user_id in enumerate(data.draw(st.sets(st.sampled_from(ids))))}
    for step in case.steps:
        for member in people:
            why = ineligibility(step, case.submitter, member, taken)
            assert engine_may_approve(step, case.submitter, member, taken) == (why is None)
