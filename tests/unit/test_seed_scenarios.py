"""The seed README's documented scenarios, and its slips (ERRATA 2-4) as regression tests.

Everything runs through `ExpenseService` on the memory adapter with the seed's demo data.
"""

from __future__ import annotations

import threading

import pytest

from expense_core.errors import (
    DomainError,
    NoApproverForStep,
    SelfApproval,
    StepAlreadyDecided,
    StepNotReached,
)
from expense_core.model import ApprovalStatus, EventKind, ExpenseId, ExpenseStatus, PolicyId, UserId
from expense_core.services import ApproveStep, ExpenseService, SubmitExpense, Submitted
from expense_core.visibility import Viewer
from tests.unit.support import (
    ALICE,
    BUSINESS_TRAVEL,
    DAVID,
    EVE,
    FRANK,
    GRACE,
    LARGE_EQUIPMENT,
    SMALL_EQUIPMENT,
    TECHCORP,
    money,
)


def submit(
    expenses: ExpenseService, user: UserId, policy: PolicyId, amount: str, description: str
) -> Submitted:
    return expenses.submit(
        SubmitExpense(user_id=user, policy_id=policy, amount=money(amount), description=description)
    )


def routed(submitted: Submitted) -> list[tuple[int, str, str]]:
    """(step, approver, level) per approval, as the seed's approvals_required lists them."""
    return [
        (a.step_number, m.user.name, m.level.level_name)
        for a, m in zip(submitted.expense.approvals, submitted.approvers, strict=True)
    ]


def approve(
    expenses: ExpenseService, expense_id: ExpenseId, approver: UserId, comments: str
) -> ExpenseStatus:
    decision = expenses.approve(
        ApproveStep(expense_id=expense_id, user_id=approver, comments=comments)
    )
    return decision.expense.status


# --- the documented flows --------------------------------------------------------------------


def test_small_equipment_goes_to_frank_alone_and_is_approved_by_him(
    expenses: ExpenseService,
) -> None:
    submitted = submit(
        expenses, GRACE, SMALL_EQUIPMENT, "1200.00", "New MacBook Pro for development"
    )
    assert submitted.expense.id == 1
    assert submitted.expense.status is ExpenseStatus.PENDING
    assert submitted.expense.amount == money("1200.00")
    assert routed(submitted) == [(1, "Frank Miller", "Manager")]

    status = approve(expenses, submitted.expense.id, FRANK, "Approved for team productivity")
    assert status is ExpenseStatus.APPROVED

    view = expenses.status(submitted.expense.id)
    assert (view.id, view.amount, view.description, view.status) == (
        1,
        money("1200.00"),
        "New MacBook Pro for development",
        ExpenseStatus.APPROVED,
    )
    assert (view.user_name, view.policy_name) == ("Grace Taylor", "Small Equipment")
    assert view.completed_at is not None
    assert view.completed_at > view.submitted_at
    (approval,) = view.approvals
    assert (
        approval.step_number,
        approval.approver_name,
        approval.approver_level,
        approval.status,
        approval.comments,
        approval.required,
    ) == (
        1,
        "Frank Miller",
        "Manager",
        ApprovalStatus.APPROVED,
        "Approved for team productivity",
        True,
    )
    assert approval.approved_at == view.completed_at


def test_case_1_a_development_laptop_needs_one_approval(expenses: ExpenseService) -> None:
    submitted = submit(expenses, GRACE, SMALL_EQUIPMENT, "800.00", "Development laptop")
    assert approve(expenses, submitted.expense.id, FRANK, "Standard equipment upgrade") is (
        ExpenseStatus.APPROVED
    )


def test_large_equipment_passes_manager_sem_and_ad_in_turn(expenses: ExpenseService) -> None:
    submitted = submit(
        expenses, GRACE, LARGE_EQUIPMENT, "4000.00", "High-end workstation for ML projects"
    )
    assert routed(submitted) == [
        (1, "Frank Miller", "Manager"),
        (2, "Eve Davis", "SEM"),
        (3, "David Wilson", "AD"),
    ]
    expense_id = submitted.expense.id
    progress = []
    for approver, comment in (
        (FRANK, "Justified for ML work"),
        (EVE, "Supports team goals"),
        (DAVID, "Final approval granted"),
    ):
        decision = expenses.approve(
            ApproveStep(expense_id=expense_id, user_id=approver, comments=comment)
        )
        progress.append(
            (decision.step_number, decision.expense.status, decision.expense.pending_required)
        )
        assert expenses.status(expense_id).pending_required == decision.expense.pending_required
    assert progress == [
        (1, ExpenseStatus.PENDING, 2),
        (2, ExpenseStatus.PENDING, 1),
        (3, ExpenseStatus.APPROVED, 0),
    ]
    view = expenses.status(expense_id)
    assert [(a.approver_name, a.status, a.comments) for a in view.approvals] == [
        ("Frank Miller", ApprovalStatus.APPROVED, "Justified for ML work"),
        ("Eve Davis", ApprovalStatus.APPROVED, "Supports team goals"),
        ("David Wilson", ApprovalStatus.APPROVED, "Final approval granted"),
    ]


def test_business_travel_goes_to_the_manager_then_the_sem(expenses: ExpenseService) -> None:
    submitted = submit(expenses, GRACE, BUSINESS_TRAVEL, "650.00", "Conference trip")
    assert routed(submitted) == [(1, "Frank Miller", "Manager"), (2, "Eve Davis", "SEM")]
    assert approve(expenses, submitted.expense.id, FRANK, "ok") is ExpenseStatus.PENDING
    assert approve(expenses, submitted.expense.id, EVE, "ok") is ExpenseStatus.APPROVED


# --- the seed's slips ------------------------------------------------------------------------


def test_errata_2_the_nearest_level_is_chosen_not_the_cto(expenses: ExpenseService) -> None:
    submitted = submit(expenses, GRACE, SMALL_EQUIPMENT, "1200.00", "laptop")
    assert [m.id for m in submitted.approvers] == [FRANK]
    assert ALICE not in [m.id for m in submitted.approvers]


def test_errata_3_approval_out_of_order_is_refused(expenses: ExpenseService) -> None:
    expense_id = submit(expenses, GRACE, LARGE_EQUIPMENT, "4000.00", "workstation").expense.id
    for early in (EVE, DAVID):
        with pytest.raises(StepNotReached):
            approve(expenses, expense_id, early, "too early")
    approve(expenses, expense_id, FRANK, "ok")
    with pytest.raises(StepNotReached, match="waits for step 2"):
        approve(expenses, expense_id, DAVID, "still too early")
    view = expenses.status(expense_id)
    assert [a.status for a in view.approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
        ApprovalStatus.PENDING,
    ]


def test_errata_3_self_approval_is_impossible(expenses: ExpenseService) -> None:
    grace = submit(expenses, GRACE, LARGE_EQUIPMENT, "4000.00", "workstation")
    assert GRACE not in [m.id for m in grace.approvers]
    with pytest.raises(SelfApproval):
        approve(expenses, grace.expense.id, GRACE, "mine")
    frank = submit(expenses, FRANK, BUSINESS_TRAVEL, "300.00", "client visit")
    assert FRANK not in [m.id for m in frank.approvers]
    with pytest.raises(SelfApproval):
        approve(expenses, frank.expense.id, FRANK, "mine")


def test_frank_submitting_travel_gets_eve_then_david_never_eve_twice(
    expenses: ExpenseService,
) -> None:
    submitted = submit(expenses, FRANK, BUSINESS_TRAVEL, "300.00", "client visit")
    assert routed(submitted) == [(1, "Eve Davis", "SEM"), (2, "David Wilson", "AD")]
    assert approve(expenses, submitted.expense.id, EVE, "ok") is ExpenseStatus.PENDING
    with pytest.raises(StepAlreadyDecided):
        approve(expenses, submitted.expense.id, EVE, "again")
    assert approve(expenses, submitted.expense.id, DAVID, "ok") is ExpenseStatus.APPROVED


def test_alice_finds_nobody_senior_in_her_team_and_is_refused_clearly(
    expenses: ExpenseService,
) -> None:
    with pytest.raises(NoApproverForStep) as refused:
        submit(expenses, ALICE, BUSINESS_TRAVEL, "300.00", "board meeting")
    assert str(refused.value) == (
        "no eligible approver for step 1 (level 6 or more senior, scope 'submitter')"
    )
    assert expenses.list_expenses(Viewer.whole_company(TECHCORP)).items == ()


def test_errata_4_racing_approvals_of_one_step_decide_it_once(expenses: ExpenseService) -> None:
    expense_id = submit(expenses, GRACE, SMALL_EQUIPMENT, "1200.00", "laptop").expense.id
    racers = 8
    start = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race() -> None:
        start.wait()
        try:
            approve(expenses, expense_id, FRANK, "ok")
            result = "approved"
        except DomainError as refused:
            result = refused.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approved"] + ["expense_closed"] * (racers - 1)
    history = expenses.history(expense_id, Viewer.whole_company(TECHCORP))
    assert [e.kind for e in history] == [EventKind.SUBMITTED, EventKind.APPROVED]
    assert expenses.status(expense_id).status is ExpenseStatus.APPROVED
