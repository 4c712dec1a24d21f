"""Approver resolution on hand-built organisations: scope, seniority, four eyes, chain, nearest."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from expense_core.approvers import (
    CHAIN_RULE,
    NEAREST_RULE,
    NOBODY_RULE,
    ApproverPool,
    explain,
    resolve_approvers,
)
from expense_core.errors import NoApproverForStep
from expense_core.model import (
    COMPANY_SCOPE,
    ApprovalStep,
    Member,
    ScopeKind,
    TeamId,
    TeamScope,
)
from tests.unit.support import member

# TechCorp's ladder: user n sits at level n (1 = CTO ... 7 = SDE3), all in team 1.
LADDER = tuple(
    member(n, n, name=name)
    for n, name in enumerate(("Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace"), start=1)
)
ALICE, BOB, CAROL, DAVID, EVE, FRANK, GRACE = LADDER


def steps(*levels: int, scope: TeamScope | None = None) -> tuple[ApprovalStep, ...]:
    return tuple(
        ApprovalStep(step_order=i, required_level=level)
        if scope is None
        else ApprovalStep(step_order=i, required_level=level, team_scope=scope)
        for i, level in enumerate(levels, start=1)
    )


def pool(*members: Member, chain: tuple[Member, ...] = ()) -> ApproverPool:
    return ApproverPool(chain=chain, candidates=members)


def chosen(submitter: Member, plan: Sequence[ApprovalStep], candidates: ApproverPool) -> list[int]:
    return [r.approver.id for r in resolve_approvers(submitter, plan, candidates)]


# --- nearest level ---------------------------------------------------------------------------


def test_nearest_level_wins_not_the_most_senior() -> None:
    routed = resolve_approvers(GRACE, steps(6), pool(*LADDER))
    assert [r.approver for r in routed] == [FRANK]
    assert routed[0].rule == NEAREST_RULE


def test_each_step_goes_to_the_nearest_level_it_allows() -> None:
    assert chosen(GRACE, steps(6, 5, 4), pool(*LADDER)) == [6, 5, 4]


def test_a_vacant_level_goes_to_the_next_one_up() -> None:
    without_frank = tuple(m for m in LADDER if m is not FRANK)
    assert chosen(GRACE, steps(6), pool(*without_frank)) == [5]


def test_ties_go_to_the_lowest_user_id() -> None:
    twins = (member(30, 6), member(12, 6), member(21, 6))
    assert chosen(GRACE, steps(6), pool(*LADDER[:5], *twins)) == [12]


def test_nobody_junior_to_the_required_level_is_chosen() -> None:
    assert chosen(GRACE, steps(4), pool(*LADDER)) == [4]


# --- never the submitter, never inactive -----------------------------------------------------


def test_the_submitter_is_never_chosen_even_where_peers_may_approve() -> None:
    own_team = TeamScope(ScopeKind.TEAM, TeamId(1))
    assert chosen(FRANK, steps(6, scope=own_team), pool(*LADDER)) == [5]


def test_inactive_people_are_never_chosen() -> None:
    away = member(6, 6, active=False)
    assert chosen(GRACE, steps(6), pool(*LADDER[:5], away)) == [5]


# --- scopes and seniority --------------------------------------------------------------------


def test_submitter_scope_stays_in_the_submitters_team() -> None:
    other_team_manager = member(20, 6, team=2)
    assert chosen(GRACE, steps(6), pool(*LADDER, other_team_manager)) == [6]
    assert chosen(GRACE, steps(6), pool(ALICE, GRACE, other_team_manager)) == [1]


def test_submitter_scope_demands_someone_strictly_more_senior() -> None:
    peer = member(20, 6)
    assert chosen(FRANK, steps(6), pool(*LADDER, peer)) == [5]


def test_company_wide_scope_looks_across_teams_but_not_companies() -> None:
    sales_lead = member(20, 5, team=2)
    outsider = member(30, 6, team=3, company=2)
    candidates = pool(ALICE, GRACE, sales_lead, outsider)
    assert chosen(GRACE, steps(6, scope=COMPANY_SCOPE), candidates) == [20]


def test_company_wide_scope_demands_someone_strictly_more_senior() -> None:
    peer_elsewhere = member(20, 6, team=2)
    junior_elsewhere = member(21, 7, team=2)
    candidates = pool(ALICE, FRANK, peer_elsewhere, junior_elsewhere)
    assert chosen(FRANK, steps(7, scope=COMPANY_SCOPE), candidates) == [1]


def test_team_scope_picks_from_that_team_whatever_the_submitters_rank() -> None:
    finance = TeamScope(ScopeKind.TEAM, TeamId(9))
    analyst = member(40, 7, team=9)
    controller = member(41, 4, team=9)
    # Carol (Director, 3) is routed to a Finance analyst: the team scope does not demand seniority.
    assert chosen(CAROL, steps(7, scope=finance), pool(*LADDER, analyst, controller)) == [40]
    assert chosen(CAROL, steps(5, scope=finance), pool(*LADDER, analyst, controller)) == [41]


def test_team_scope_ignores_a_same_numbered_team_of_another_company() -> None:
    finance = TeamScope(ScopeKind.TEAM, TeamId(9))
    foreign = member(50, 5, team=9, company=2)
    with pytest.raises(NoApproverForStep):
        resolve_approvers(GRACE, steps(6, scope=finance), pool(*LADDER, foreign))


# --- four eyes -------------------------------------------------------------------------------


def test_four_eyes_moves_the_next_step_up_a_rung() -> None:
    # Frank (Manager) submits Business Travel: Manager then SEM steps, so Eve then David.
    assert chosen(FRANK, steps(6, 5), pool(*LADDER)) == [5, 4]


def test_four_eyes_gives_n_steps_n_different_people() -> None:
    assert chosen(GRACE, steps(6, 6, 6, 6), pool(*LADDER)) == [6, 5, 4, 3]


def test_four_eyes_refuses_when_people_run_out() -> None:
    with pytest.raises(NoApproverForStep, match="step 3"):
        resolve_approvers(GRACE, steps(2, 2, 2), pool(*LADDER))


# --- reporting chain -------------------------------------------------------------------------


def test_reporting_chain_wins_over_a_nearer_level() -> None:
    grace = member(7, 7, manager=5)
    routed = resolve_approvers(grace, steps(6), pool(*LADDER, chain=(EVE, ALICE)))
    assert [r.approver.id for r in routed] == [5]
    assert routed[0].rule == CHAIN_RULE


def test_chain_skips_inactive_and_ineligible_managers() -> None:
    away = member(6, 6, active=False, manager=4)
    other_team = member(30, 3, team=2)
    chain = (away, other_team, DAVID)
    assert chosen(GRACE, steps(6), pool(*LADDER, chain=chain)) == [4]


def test_chain_members_junior_to_the_step_are_passed_over() -> None:
    assert chosen(GRACE, steps(4), pool(*LADDER, chain=(FRANK, EVE, CAROL))) == [3]


def test_nearest_level_decides_when_no_chain_member_qualifies() -> None:
    routed = resolve_approvers(GRACE, steps(4), pool(*LADDER, chain=(FRANK, EVE)))
    assert [r.approver.id for r in routed] == [4]
    assert routed[0].rule == NEAREST_RULE


def test_four_eyes_moves_up_the_chain() -> None:
    assert chosen(GRACE, steps(6, 6), pool(*LADDER, chain=(FRANK, DAVID))) == [6, 4]


# --- nobody eligible -------------------------------------------------------------------------


def test_no_candidate_refuses_naming_the_step_level_and_scope() -> None:
    with pytest.raises(NoApproverForStep) as refused:
        resolve_approvers(ALICE, steps(6), pool(*LADDER))
    assert str(refused.value) == (
        "no eligible approver for step 1 (level 6 or more senior, scope 'submitter')"
    )
    assert refused.value.code == "no_approver_for_step"


def test_the_first_step_without_a_candidate_is_named() -> None:
    with pytest.raises(NoApproverForStep, match="step 3 "):
        resolve_approvers(CAROL, steps(6, 5, 4), pool(*LADDER))


def test_steps_are_resolved_in_step_order_whatever_order_they_come_in() -> None:
    plan = tuple(reversed(steps(6, 5, 4)))
    routed = resolve_approvers(GRACE, plan, pool(*LADDER))
    assert [(r.step.step_order, r.approver.id) for r in routed] == [(1, 6), (2, 5), (3, 4)]


def test_pool_lists_chain_and_candidates_once_each() -> None:
    both = pool(FRANK, EVE, chain=(EVE, DAVID))
    assert [m.id for m in both.everyone()] == [5, 4, 6]


# --- explain ---------------------------------------------------------------------------------


def verdicts(
    step_explanation_index: int,
    submitter: Member,
    plan: tuple[ApprovalStep, ...],
    candidates: ApproverPool,
) -> dict[int, str]:
    explained = explain(submitter, plan, candidates)[step_explanation_index]
    return {v.member.id: v.reason for v in explained.considered}


def test_explain_names_the_winner_and_a_reason_for_every_other_candidate() -> None:
    (small,) = explain(GRACE, steps(6), pool(*LADDER))
    assert small.chosen == FRANK
    assert small.rule == NEAREST_RULE
    assert {v.member.id for v in small.considered} == {m.id for m in LADDER}
    reasons = {v.member.id: v.reason for v in small.considered}
    assert reasons == {
        1: "eligible, but level 1 is farther than Frank's level 6",
        2: "eligible, but level 2 is farther than Frank's level 6",
        3: "eligible, but level 3 is farther than Frank's level 6",
        4: "eligible, but level 4 is farther than Frank's level 6",
        5: "eligible, but level 5 is farther than Frank's level 6",
        6: f"chosen: {NEAREST_RULE}",
        7: "is the submitter",
    }


def test_explain_gives_each_ineligibility_its_own_reason() -> None:
    finance = member(20, 6, team=2)
    away = member(21, 6, active=False)
    twin = member(22, 6)
    reasons = verdicts(0, FRANK, steps(6, 6), pool(*LADDER, finance, away, twin))
    assert reasons[7] == "level 7 is junior to the required level 6"
    assert reasons[20] == "is outside the submitter's team"
    assert reasons[21] == "is inactive"
    assert reasons[22] == "level 6 is not senior to the submitter's level 6"
    assert reasons[6] == "is the submitter"
    later = verdicts(1, FRANK, steps(6, 6), pool(*LADDER))
    assert later[5] == "already approves step 1 (four eyes)"
    assert later[4] == f"chosen: {NEAREST_RULE}"


def test_explain_says_when_a_tie_went_to_a_lower_id() -> None:
    reasons = verdicts(0, GRACE, steps(6), pool(*LADDER, member(9, 6)))
    assert reasons[9] == "eligible, but Frank has the same level and a lower user id"


def test_explain_says_why_the_chain_beat_everyone_else() -> None:
    grace = member(7, 7, manager=5)
    reasons = verdicts(0, grace, steps(6), pool(*LADDER, chain=(EVE, ALICE)))
    assert reasons[5] == f"chosen: {CHAIN_RULE}"
    assert reasons[6] == "eligible, but not in the reporting chain, where Eve is"
    assert reasons[1] == "eligible, but higher in the reporting chain than Eve"


def test_explain_never_raises_and_says_nobody_qualifies() -> None:
    (step,) = explain(ALICE, steps(6), pool(*LADDER))
    assert step.chosen is None
    assert step.rule == NOBODY_RULE
    assert all(not v.reason.startswith(("eligible", "chosen")) for v in step.considered)
    assert len(step.considered) == len(LADDER)


def test_explain_agrees_with_resolution() -> None:
    plan = steps(6, 5, 4)
    candidates = pool(*LADDER, chain=(EVE,))
    explained = explain(GRACE, plan, candidates)
    routed = resolve_approvers(GRACE, plan, candidates)
    assert [e.chosen for e in explained] == [r.approver for r in routed]
    assert [e.rule for e in explained] == [r.rule for r in routed]


# --- one pool, many resolutions --------------------------------------------------------------


def test_a_pool_resolves_each_submitter_and_each_set_of_steps_on_its_own() -> None:
    shared = pool(*LADDER)
    plan = steps(6, 5)
    assert chosen(GRACE, plan, shared) == [6, 5]
    assert chosen(FRANK, plan, shared) == [5, 4]
    assert chosen(GRACE, steps(4), shared) == [4]
    assert chosen(GRACE, plan, shared) == [6, 5]


def test_steps_in_a_list_are_read_afresh_each_time() -> None:
    shared = pool(*LADDER)
    plan = list(steps(6, 5))
    assert chosen(GRACE, plan, shared) == [6, 5]
    plan[1] = ApprovalStep(step_order=2, required_level=3)
    assert chosen(GRACE, plan, shared) == [6, 3]
