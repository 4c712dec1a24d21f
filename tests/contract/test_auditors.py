"""Auditors read and change nothing, on every adapter: no step is routed to them (the next
eligible person or the fallback approver takes it), the fallback approver is never one, and
every command they give is refused (403 `read_only_role`), leaving the expense as it was. A
token for themselves they may still get: a credential, not a change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from expense_core.errors import FallbackApproverAuditor, NoApproverForStep, ReadOnlyRole
from expense_core.model import ApprovalStep, ExpenseId, ExpenseStatus, Role, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import (
    AccessService,
    ApproveStep,
    BulkAction,
    BulkDecision,
    ChangeUser,
    ClearDelegation,
    DecideInBulk,
    DelegationService,
    EscalationService,
    ExpenseService,
    OrgService,
    RejectExpense,
    ResubmitExpense,
    SendBack,
    SetDelegation,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START, TickingClock
from tests.contract.support import Org, add_policy, money, tech_corp


def _make_auditor(org_service: OrgService, user_id: UserId) -> None:
    org_service.change_user(ChangeUser(user_id=user_id, role=Role.AUDITOR))


def _submit(expenses: ExpenseService, org: Org, who: int, policy: str = "large") -> ExpenseId:
    amount = {"small": "10.00", "large": "2500.00", "travel": "100.00"}[policy]
    return expenses.submit(
        SubmitExpense(
            user_id=org.person(who), policy_id=getattr(org, policy).id, amount=money(amount)
        )
    ).expense.id


def _approvers(expenses: ExpenseService, expense_id: ExpenseId) -> list[UserId]:
    return [a.approver_id for a in expenses.status(expense_id).approvals]


# --- routing ---------------------------------------------------------------------------------


def test_an_auditor_is_passed_over_for_the_next_nearest(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    _make_auditor(org_service, org.person(6))  # Frank, the nearest to Grace
    assert _approvers(expenses, _submit(expenses, org, 7, "small")) == [org.person(5)]
    # Three steps still get three people, none of them Frank: four eyes moves up past him.
    assert _approvers(expenses, _submit(expenses, org, 7, "large")) == [
        org.person(5),
        org.person(4),
        org.person(3),
    ]


def test_an_auditor_in_the_reporting_chain_is_passed_over(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService
) -> None:
    org = tech_corp(new_uow, managers=True)
    _make_auditor(OrgService(new_uow), org.person(6))
    assert _approvers(expenses, _submit(expenses, org, 7, "travel")) == [
        org.person(5),
        org.person(4),
    ]
    explained = expenses.explain(_submit(expenses, org, 7, "small"), Viewer.whole_company(org.id))
    verdicts = {v.member.id: v.reason for v in explained.steps[0].considered}
    assert verdicts[org.person(6)] == "is an auditor (auditors approve nothing)"


def test_a_step_only_auditors_could_take_goes_to_the_fallback_approver(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    for level in (6, 5, 4, 3, 2):
        _make_auditor(org_service, org.person(level))
    org_service.set_fallback_approver(org.id, org.person(1))
    assert _approvers(expenses, _submit(expenses, org, 7, "small")) == [org.person(1)]


def test_no_auditor_is_named_fallback_approver(org: Org, org_service: OrgService) -> None:
    _make_auditor(org_service, org.person(2))
    with pytest.raises(FallbackApproverAuditor, match="auditor"):
        org_service.set_fallback_approver(org.id, org.person(2))
    assert org_service.company(org.id).fallback_approver_id is None


def test_a_fallback_approver_who_became_an_auditor_takes_nothing(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    org_service.set_fallback_approver(org.id, org.person(2))
    _make_auditor(org_service, org.person(2))
    # Alice, the CTO, has nobody senior: only the fallback approver could take her step.
    with pytest.raises(NoApproverForStep):
        _submit(expenses, org, 1, "small")


def test_an_escalation_passes_over_an_auditor(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    org_service: OrgService,
    expenses: ExpenseService,
    clock: TickingClock,
) -> None:
    training = add_policy(
        new_uow,
        org.id,
        "training",
        (
            ApprovalStep(step_order=1, required_level=6, escalate_after_hours=1),
            ApprovalStep(step_order=2, required_level=5),
        ),
    )
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=training.id, amount=money("10.00"))
    ).expense.id
    assert _approvers(expenses, expense_id) == [org.person(6), org.person(5)]
    # Above Frank, Eve has step 2 (four eyes); David, next up, is an auditor: Carol takes it.
    _make_auditor(org_service, org.person(4))
    [moved] = [
        e
        for e in EscalationService(new_uow, clock).sweep(START + 2 * timedelta(hours=1))
        if e.expense_id == expense_id
    ]
    assert moved.approver is not None
    assert (moved.previous.id, moved.approver.id) == (org.person(6), org.person(3))


# --- commands --------------------------------------------------------------------------------


def test_an_auditor_submits_nothing(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    _make_auditor(org_service, org.person(7))
    for cmd in (
        SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00")),
        SubmitExpense(user_id=org.person(7), category="equipment", amount=money("10.00")),
        SubmitExpense(
            user_id=org.person(7),
            policy_id=org.small.id,
            amount=money("10.00"),
            company_id=org.id,
            idempotency_key="k",
        ),
    ):
        with pytest.raises(ReadOnlyRole, match="auditors read, they change nothing"):
            expenses.submit(cmd)
    assert expenses.list_expenses(Viewer.whole_company(org.id)).items == ()


def test_becoming_an_auditor_hands_on_the_steps_one_holds(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    small, large = _submit(expenses, org, 7, "small"), _submit(expenses, org, 7, "large")
    changed = org_service.change_user(ChangeUser(user_id=org.person(6), role=Role.AUDITOR))
    moved = {(r.expense_id, r.previous_approver_id, r.approver_id) for r in changed.reassignments}
    # Four eyes: Eve and David keep steps 2 and 3 of the large one; Carol takes Frank's.
    assert moved == {
        (small, org.person(6), org.person(5)),
        (large, org.person(6), org.person(3)),
    }
    assert _approvers(expenses, small) == [org.person(5)]
    assert _approvers(expenses, large) == [org.person(3), org.person(5), org.person(4)]


def _stored_as_auditor(new_uow: Callable[[], UnitOfWork], user_id: UserId) -> None:
    """Make someone an auditor in the store alone, as data from before auditors were passed
    over would have it: the steps they hold stay theirs."""
    with new_uow() as uow:
        user = uow.org.member(user_id).user
        uow.org.update_user(attrs.evolve(user, role=Role.AUDITOR))
        uow.commit()


@pytest.mark.parametrize("company", [False, True], ids=["demo", "verified"])
def test_an_auditor_decides_no_step_still_assigned_to_them(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    org_service: OrgService,
    expenses: ExpenseService,
    company: bool,
) -> None:
    expense_id = _submit(expenses, org, 7, "large")  # Frank, Eve, David
    _stored_as_auditor(new_uow, org.person(6))
    frank, company_id = org.person(6), org.id if company else None
    before = expenses.status(expense_id)
    for command in (
        lambda: expenses.approve(
            ApproveStep(expense_id=expense_id, user_id=frank, company_id=company_id)
        ),
        lambda: expenses.reject(
            RejectExpense(expense_id=expense_id, user_id=frank, reason="no", company_id=company_id)
        ),
        lambda: expenses.send_back(
            SendBack(expense_id=expense_id, user_id=frank, reason="why", company_id=company_id)
        ),
        lambda: expenses.approve(
            ApproveStep(
                expense_id=expense_id, user_id=frank, company_id=company_id, idempotency_key="k"
            )
        ),
    ):
        with pytest.raises(ReadOnlyRole) as refused:
            command()
        assert refused.value.code == "read_only_role"
    assert expenses.status(expense_id) == before
    # Back in another role, the step is theirs to decide again.
    org_service.change_user(ChangeUser(user_id=frank, role=Role.MANAGER))
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=frank, company_id=company_id))


def test_an_auditor_decides_nothing_as_a_delegate(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    expense_id = _submit(expenses, org, 7, "small")  # Frank's
    DelegationService(new_uow, TickingClock()).set(
        SetDelegation(
            user_id=org.person(6),
            delegate_id=org.person(5),
            starts_at=START - timedelta(days=1),
            ends_at=START + timedelta(days=30),
        )
    )
    _make_auditor(org_service, org.person(5))
    with pytest.raises(ReadOnlyRole):
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(5)))
    assert expenses.status(expense_id).status is ExpenseStatus.PENDING


def test_an_auditor_decides_nothing_in_bulk(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService
) -> None:
    expense_id = _submit(expenses, org, 7, "small")
    _stored_as_auditor(new_uow, org.person(6))
    bulk = DecideInBulk(
        user_id=org.person(6),
        decisions=(BulkDecision(expense_id=expense_id, action=BulkAction.APPROVE),),
        company_id=org.id,
    )
    with pytest.raises(ReadOnlyRole):
        expenses.decide_in_bulk(bulk)
    assert expenses.status(expense_id).status is ExpenseStatus.PENDING


def test_an_auditor_neither_withdraws_nor_resubmits_what_they_submitted_before(
    org: Org, org_service: OrgService, expenses: ExpenseService
) -> None:
    pending = _submit(expenses, org, 7, "small")
    returned = _submit(expenses, org, 7, "small")
    expenses.send_back(SendBack(expense_id=returned, user_id=org.person(6), reason="receipt?"))
    _make_auditor(org_service, org.person(7))
    grace = org.person(7)
    with pytest.raises(ReadOnlyRole):
        expenses.withdraw(WithdrawExpense(expense_id=pending, user_id=grace))
    with pytest.raises(ReadOnlyRole):
        expenses.resubmit(ResubmitExpense(expense_id=returned, user_id=grace))
    with pytest.raises(ReadOnlyRole):
        expenses.resubmit(ResubmitExpense(expense_id=returned, user_id=grace, category="travel"))
    assert expenses.status(pending).status is ExpenseStatus.PENDING
    assert expenses.status(returned).status is ExpenseStatus.RETURNED


def test_an_auditor_reads_their_delegation_but_neither_sets_nor_clears_it(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    delegations = DelegationService(new_uow, TickingClock())
    otto = org.person(5)

    def set_one(actor: UserId | None = None) -> SetDelegation:
        return SetDelegation(
            user_id=otto,
            delegate_id=org.person(4),
            starts_at=START,
            ends_at=START + timedelta(days=2),
            actor_id=actor,
        )

    delegations.set(set_one())
    _make_auditor(org_service, otto)
    with pytest.raises(ReadOnlyRole, match="delegation"):
        delegations.set(set_one())
    with pytest.raises(ReadOnlyRole):
        delegations.clear(ClearDelegation(user_id=otto, company_id=org.id))
    assert delegations.get(otto, org.id).delegation.delegate_id == org.person(4)
    # Their admin still may: the organisation is the admin's to change.
    org_service.change_user(ChangeUser(user_id=org.person(1), role=Role.ADMIN))
    delegations.clear(ClearDelegation(user_id=otto, actor_id=org.person(1)))


def test_an_auditor_still_gets_a_token_for_themselves(
    org: Org, org_service: OrgService, access: AccessService
) -> None:
    _make_auditor(org_service, org.person(5))
    token = access.issue_token(org.person(5))
    assert access.authenticate(token).id == org.person(5)
