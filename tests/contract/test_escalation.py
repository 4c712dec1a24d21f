"""The fallback approver and escalation on every adapter: the company and its fallback, policy
steps and approvals with their deadlines, the due steps a sweep reads, and sweeps themselves."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import attrs
import pytest

from expense_core.approvers import FALLBACK_RULE
from expense_core.errors import (
    FallbackApproverInactive,
    NoApproverForStep,
    PendingApprovalsStranded,
    UnknownCompany,
    UnknownFallbackApprover,
)
from expense_core.escalation import DueStep
from expense_core.model import (
    ApprovalStep,
    Company,
    CompanyId,
    EventKind,
    ExpenseId,
    Policy,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ApproveStep,
    ChangeUser,
    EscalationService,
    ExpenseService,
    OrgService,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START, TickingClock
from tests.contract.support import Org, add_policy, money, tech_corp

HOUR = timedelta(hours=1)
NOBODY = 2_000_000_000


def _training(new_uow: Callable[[], UnitOfWork], org: Org, hours: int = 24) -> Policy:
    """Manager then SEM; the manager's step escalates after `hours`."""
    return add_policy(
        new_uow,
        org.id,
        "training",
        (
            ApprovalStep(step_order=1, required_level=6, escalate_after_hours=hours),
            ApprovalStep(step_order=2, required_level=5, escalate_after_hours=48),
        ),
        name="Training",
    )


def _submit(expenses: ExpenseService, org: Org, who: int, policy: Policy) -> ExpenseId:
    command = SubmitExpense(user_id=org.person(who), policy_id=policy.id, amount=money("10.00"))
    return expenses.submit(command).expense.id


# --- the fallback approver -------------------------------------------------------------------


def test_a_company_keeps_its_fallback_approver(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    with new_uow() as uow:
        assert uow.org.company(org.id).fallback_approver_id is None
        named = uow.org.update_company(
            attrs.evolve(org.company, fallback_approver_id=org.person(2))
        )
        uow.commit()
    assert named.fallback_approver_id == org.person(2)
    with new_uow() as uow:
        assert uow.org.company(org.id) == named
        assert uow.org.company_named(org.company.name) == named
        with pytest.raises(UnknownCompany):
            uow.org.update_company(Company(CompanyId(NOBODY), "Nobody"))


def test_the_fallback_approver_is_an_active_user_of_the_company(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    other = tech_corp(new_uow)
    for stranger in (UserId(NOBODY), other.person(2)):
        with pytest.raises(UnknownFallbackApprover):
            org_service.set_fallback_approver(org.id, stranger)
    org_service.change_user(ChangeUser(user_id=org.person(3), active=False))
    with pytest.raises(FallbackApproverInactive):
        org_service.set_fallback_approver(org.id, org.person(3))
    assert org_service.company(org.id).fallback_approver_id is None
    assert org_service.set_fallback_approver(org.id, org.person(2)).fallback_approver_id == (
        org.person(2)
    )
    assert org_service.set_fallback_approver(org.id, None).fallback_approver_id is None
    assert org_service.company(org.id).fallback_approver_id is None


def test_the_pool_carries_the_fallback_approver(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    with new_uow() as uow:
        cto = uow.org.member(org.person(1))
        assert uow.org.approver_pool(cto, org.small.steps).fallback is None
    org_service.set_fallback_approver(org.id, org.person(2))
    with new_uow() as uow:
        pool = uow.org.approver_pool(cto, org.small.steps)
        assert pool.fallback == uow.org.member(org.person(2))


def test_the_ctos_expense_goes_to_the_fallback_approver(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    org_service: OrgService,
    expenses: ExpenseService,
) -> None:
    with pytest.raises(NoApproverForStep):
        _submit(expenses, org, 1, org.small)
    org_service.set_fallback_approver(org.id, org.person(2))
    expense_id = _submit(expenses, org, 1, org.small)
    with new_uow() as uow:
        assert [a.approver_id for a in uow.expenses.get(org.id, expense_id).approvals] == [
            org.person(2)
        ]
    assert expenses.explain(expense_id, Viewer.whole_company(org.id)).steps[0].rule == FALLBACK_RULE
    approved = expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(2)))
    assert approved.expense.status == "approved"
    # One step per expense: Business Travel's second step has nobody.
    with pytest.raises(NoApproverForStep):
        _submit(expenses, org, 1, org.travel)


def test_a_vacancy_goes_to_the_fallback_approver_when_someone_leaves(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    expense_id = _submit(expenses, org, 2, org.small)  # Bob's: Alice is the only one above him
    leaving = ChangeUser(user_id=org.person(1), active=False)
    with pytest.raises(PendingApprovalsStranded):
        org_service.change_user(leaving)
    org_service.set_fallback_approver(org.id, org.person(3))
    moved = org_service.change_user(leaving).reassignments
    assert [(r.expense_id, r.approver_id) for r in moved] == [(expense_id, org.person(3))]


# --- deadlines -------------------------------------------------------------------------------


def test_policy_steps_keep_their_hours(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    policy = _training(new_uow, org)
    assert [s.escalate_after_hours for s in policy.steps] == [24, 48]
    with new_uow() as uow:
        for stored in (
            uow.org.policy(org.id, policy.id),
            *[p for p in uow.org.company_policies(org.id) if p.id == policy.id],
            *uow.org.policies(org.id, "training"),
            *uow.org.member_with_policies(org.person(7), "training")[1],
        ):
            assert stored == policy


def test_approvals_keep_their_hours_and_the_current_one_its_deadline(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, clock: TickingClock
) -> None:
    policy = _training(new_uow, org)
    submitted = expenses.submit(
        SubmitExpense(user_id=org.person(7), category="training", amount=money("10.00"))
    ).expense
    at = submitted.submitted_at
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, submitted.id)
    assert stored == submitted
    assert stored.policy_id == policy.id
    assert [(a.escalate_after_hours, a.escalate_at) for a in stored.approvals] == [
        (24, at + 24 * HOUR),
        (48, None),
    ]
    decided = expenses.approve(ApproveStep(expense_id=submitted.id, user_id=org.person(6)))
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, submitted.id)
    assert stored == decided.expense
    decided_at = stored.approval(1).approved_at
    assert decided_at is not None
    assert [a.escalate_at for a in stored.approvals] == [None, decided_at + 48 * HOUR]


def test_due_steps_are_those_past_their_deadline_most_overdue_first(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService
) -> None:
    policy = _training(new_uow, org, hours=1)
    other = tech_corp(new_uow)
    other_policy = _training(new_uow, other, hours=1)
    first = _submit(expenses, org, 7, policy)
    plain = _submit(expenses, org, 7, org.small)  # no deadline
    elsewhere = _submit(expenses, other, 7, other_policy)
    last = _submit(expenses, org, 7, policy)
    ours = {first: org.id, elsewhere: other.id, last: org.id}
    with new_uow() as uow:
        due_at = {e: uow.expenses.get(c, e).approval(1).escalate_at for e, c in ours.items()}
        assert uow.expenses.get(org.id, plain).approval(1).escalate_at is None
        latest = max(at for at in due_at.values() if at is not None)

        def due(as_of: datetime, after: DueStep | None = None) -> list[ExpenseId]:
            found = uow.expenses.due_for_escalation(as_of, after=after, limit=100)
            assert list(found) == sorted(found)  # most overdue first
            return [d.expense_id for d in found if d.expense_id in ours]

        assert due(latest) == [first, elsewhere, last]
        assert due(latest - timedelta(microseconds=1)) == [first, elsewhere]
        after_first = DueStep(due_at[first], first, org.id, 1)
        assert due(latest, after=after_first) == [elsewhere, last]
        # A page of one, just before the first: the first.
        just_before = DueStep(due_at[first], ExpenseId(first - 1), org.id, 1)
        found = uow.expenses.due_for_escalation(latest, after=just_before, limit=1)
        assert found == (after_first,)


# --- sweeps ----------------------------------------------------------------------------------


def test_a_sweep_escalates_past_the_other_steps_approver_and_restarts_the_clock(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, clock: TickingClock
) -> None:
    policy = _training(new_uow, org)
    expense_id = _submit(expenses, org, 7, policy)
    sweeps = EscalationService(new_uow, clock)
    late = START + 30 * HOUR
    preview = [e for e in sweeps.sweep(late, dry_run=True) if e.expense_id == expense_id]
    assert [(e.previous.id, e.approver.id if e.approver else None) for e in preview] == [
        (org.person(6), org.person(4))
    ]
    with new_uow() as uow:
        assert uow.expenses.get(org.id, expense_id).approval(1).approver_id == org.person(6)
    done = [e for e in sweeps.sweep(late) if e.expense_id == expense_id]
    assert done == preview
    assert [e for e in sweeps.sweep(late) if e.expense_id == expense_id] == []
    with new_uow() as uow:
        step = uow.expenses.get(org.id, expense_id).approval(1)
        assert (step.approver_id, step.approver_level_id) == (org.person(4), org.levels[4].id)
        assert step.escalate_at == late + 24 * HOUR
    [escalated] = [
        e
        for e in expenses.history(expense_id, Viewer.whole_company(org.id))
        if e.kind == "escalated"
    ]
    assert (escalated.step_number, escalated.previous_approver_id, escalated.approver_id) == (
        1,
        org.person(6),
        org.person(4),
    )
    assert escalated.actor_id is None
    assert escalated.comment is not None
    assert escalated.comment.startswith("overdue by ")
    # David can act on it; Frank no longer can.
    decided = expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(4)))
    assert decided.expense.approval(2).escalate_at is not None


def test_an_escalation_that_cannot_happen_says_so_once(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, clock: TickingClock
) -> None:
    # Carol's expense: step 1 goes to Bob, the only one above her but Alice, who has step 2.
    policy = add_policy(
        new_uow,
        org.id,
        "board",
        (
            ApprovalStep(step_order=1, required_level=2, escalate_after_hours=1),
            ApprovalStep(step_order=2, required_level=1),
        ),
        name="Board",
    )
    expense_id = _submit(expenses, org, 3, policy)
    sweeps = EscalationService(new_uow, clock)
    for hours in (2, 3, 50):
        sweeps.sweep(START + hours * HOUR)
    failed = [
        e
        for e in expenses.history(expense_id, Viewer.whole_company(org.id))
        if e.kind == "escalation_failed"
    ]
    assert [(e.step_number, e.approver_id) for e in failed] == [(1, org.person(2))]
    assert failed[0].comment is not None
    assert "no fallback approver" in failed[0].comment
    with new_uow() as uow:
        step = uow.expenses.get(org.id, expense_id).approval(1)
    assert (step.approver_id, step.escalate_at) == (org.person(2), None)


def test_past_the_ladder_a_step_goes_to_the_fallback_approver(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    org_service: OrgService,
    expenses: ExpenseService,
    clock: TickingClock,
) -> None:
    policy = add_policy(
        new_uow,
        org.id,
        "board",
        (ApprovalStep(step_order=1, required_level=1, escalate_after_hours=1),),
        name="Board",
    )
    expense_id = _submit(expenses, org, 2, policy)  # Bob's: to Alice
    org_service.set_fallback_approver(org.id, org.person(3))
    sweeps = EscalationService(new_uow, clock)
    [moved] = [e for e in sweeps.sweep(START + 2 * HOUR) if e.expense_id == expense_id]
    assert moved.approver is not None
    assert (moved.previous.id, moved.approver.id, moved.rule) == (
        org.person(1),
        org.person(3),
        FALLBACK_RULE,
    )
    # The fallback approver is the top: the next sweep leaves the step with Carol, once.
    [stays] = [e for e in sweeps.sweep(START + 100 * HOUR) if e.expense_id == expense_id]
    assert stays.approver is None
    kinds = [e.kind for e in expenses.history(expense_id, Viewer.whole_company(org.id))]
    assert kinds == [EventKind.SUBMITTED, EventKind.ESCALATED, EventKind.ESCALATION_FAILED]


@pytest.mark.parametrize("change", ["same policy", "another policy"])
def test_a_resubmitted_round_is_stored_with_its_deadlines(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, change: str
) -> None:
    training = _training(new_uow, org, hours=8)
    submitted = _submit(expenses, org, 7, org.travel)
    expenses.send_back(SendBack(expense_id=submitted, user_id=org.person(6), reason="which?"))
    policy = training if change == "another policy" else None
    again = expenses.resubmit(
        ResubmitExpense(
            expense_id=submitted,
            user_id=org.person(7),
            policy_id=None if policy is None else policy.id,
        )
    ).expense
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, submitted)
    assert stored == again
    if policy is not None:
        at = again.approval(1).escalate_at
        assert at is not None
        assert [(a.escalate_after_hours, a.escalate_at) for a in stored.approvals] == [
            (8, at),
            (48, None),
        ]
