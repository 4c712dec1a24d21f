"""Auditors approve nothing: resolution skips them as it skips inactive people, in the reporting
chain, among the nearest, as the fallback approver and in explanations."""

from __future__ import annotations

import attrs
import pytest

from expense_core.approvers import (
    CHAIN_RULE,
    FALLBACK_RULE,
    NEAREST_RULE,
    ApproverPool,
    explain,
    ineligibility,
    may_approve,
    resolve_approvers,
    resolve_step,
)
from expense_core.errors import NoApproverForStep
from expense_core.model import ApprovalStep, Member, Role
from tests.unit.support import member

ALICE, BOB, CAROL, DAVID, EVE, FRANK, GRACE = (member(n, n) for n in range(1, 8))


def auditor(m: Member) -> Member:
    return attrs.evolve(m, user=attrs.evolve(m.user, role=Role.AUDITOR))


def step(level: int, order: int = 1) -> ApprovalStep:
    return ApprovalStep(step_order=order, required_level=level)


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.AUDITOR])
def test_every_other_role_may_approve(role: Role) -> None:
    frank = attrs.evolve(FRANK, user=attrs.evolve(FRANK.user, role=role))
    assert may_approve(step(6), GRACE, frank, {})
    assert ineligibility(step(6), GRACE, frank, {}) is None


def test_an_auditor_may_not_approve_and_is_told_why() -> None:
    assert not may_approve(step(6), GRACE, auditor(FRANK), {})
    assert ineligibility(step(6), GRACE, auditor(FRANK), {}) == (
        "is an auditor (auditors approve nothing)"
    )


def test_the_next_person_up_the_chain_takes_an_auditors_place() -> None:
    frank = auditor(FRANK)
    routed = resolve_approvers(GRACE, [step(6)], ApproverPool(chain=(frank, EVE)))
    assert [(r.approver.id, r.rule) for r in routed] == [(EVE.id, CHAIN_RULE)]


def test_the_next_nearest_takes_an_auditors_place() -> None:
    pool = ApproverPool(candidates=(auditor(FRANK), EVE, DAVID))
    routed = resolve_approvers(GRACE, [step(6), step(5, 2)], pool)
    assert [(r.approver.id, r.rule) for r in routed] == [
        (EVE.id, NEAREST_RULE),
        (DAVID.id, NEAREST_RULE),
    ]


def test_the_fallback_takes_a_step_only_auditors_could_take() -> None:
    pool = ApproverPool(candidates=(auditor(FRANK),), fallback=ALICE)
    routed = resolve_approvers(GRACE, [step(6)], pool)
    assert [(r.approver.id, r.rule) for r in routed] == [(ALICE.id, FALLBACK_RULE)]


def test_a_fallback_approver_who_is_an_auditor_takes_nothing() -> None:
    pool = ApproverPool(candidates=(auditor(FRANK),), fallback=auditor(ALICE))
    with pytest.raises(NoApproverForStep):
        resolve_approvers(GRACE, [step(6)], pool)
    with pytest.raises(NoApproverForStep):
        resolve_step(GRACE, step(6), pool, {})


def test_explain_says_an_auditor_was_passed_over() -> None:
    pool = ApproverPool(candidates=(auditor(FRANK), EVE), fallback=auditor(ALICE))
    (explained,) = explain(GRACE, [step(6)], pool)
    assert explained.chosen == EVE
    verdicts = {v.member.id: v.reason for v in explained.considered}
    assert verdicts[FRANK.id] == "is an auditor (auditors approve nothing)"
    assert verdicts[ALICE.id] == "fallback approver, not needed: User 5 is eligible"


def test_explain_says_an_auditor_fallback_approver_may_not_take_the_step() -> None:
    pool = ApproverPool(candidates=(), fallback=auditor(ALICE))
    (explained,) = explain(GRACE, [step(6)], pool)
    assert explained.chosen is None
    verdicts = {v.member.id: v.reason for v in explained.considered}
    assert verdicts[ALICE.id] == ("fallback approver, but is an auditor (auditors approve nothing)")
