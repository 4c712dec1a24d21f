"""ExpenseService on the memory adapter: one unit of work per use case; refusals write nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from adapters.memory import MemoryStore
from expense_core.errors import (
    AmountOutsidePolicy,
    DomainError,
    ExpenseClosed,
    IdempotencyKeyReused,
    InactiveUser,
    InvalidAmount,
    InvalidInput,
    NoApproverForStep,
    NoPolicyFor,
    NotSubmitter,
    NotYourStep,
    OptionalStepCannotReject,
    PolicyChoiceRequired,
    PolicyInactive,
    ReasonRequired,
    SelfApproval,
    StepAlreadyDecided,
    StepNotReached,
    UnknownExpense,
    UnknownPolicy,
    UnknownUser,
)
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    EventKind,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    Money,
    Policy,
    PolicyId,
    UserId,
)
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    NewPolicy,
    OrgService,
    RejectExpense,
    SubmitExpense,
    Submitted,
    WithdrawExpense,
)
from expense_core.views import ExpenseView
from expense_core.visibility import Viewer
from tests.clocks import START
from tests.unit.support import (
    ALICE,
    BOB,
    BUSINESS_TRAVEL,
    CAROL,
    DAVID,
    EVE,
    FRANK,
    GRACE,
    LARGE_EQUIPMENT,
    SMALL_EQUIPMENT,
    TECHCORP,
    deactivate,
    money,
)


def submit(
    expenses: ExpenseService,
    user: UserId = GRACE,
    policy: PolicyId | None = LARGE_EQUIPMENT,
    amount: str = "4000.00",
    *,
    category: str | None = None,
    description: str | None = "workstation",
    key: str | None = None,
) -> Submitted:
    return expenses.submit(
        SubmitExpense(
            user_id=user,
            policy_id=policy,
            category=category,
            amount=money(amount),
            description=description,
            idempotency_key=key,
        )
    )


def approve(expenses: ExpenseService, expense_id: ExpenseId, *approvers: UserId) -> None:
    for approver in approvers:
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=approver, comments="ok"))


def snapshot(
    expenses: ExpenseService, expense_id: ExpenseId
) -> tuple[ExpenseView, tuple[ExpenseEvent, ...]]:
    return expenses.status(expense_id), expenses.history(expense_id, Viewer.whole_company(TECHCORP))


def stored_count(expenses: ExpenseService) -> int:
    return len(expenses.list_expenses(Viewer.whole_company(TECHCORP), limit=100).items)


@pytest.fixture
def training(org: OrgService) -> PolicyId:
    """A policy with an optional step: Manager, then an optional AD look, then SEM."""
    return org.create_policy(
        NewPolicy(
            company_id=TECHCORP,
            category="training",
            name="Training",
            min_amount=money("0.00"),
            max_amount=money("50000.00"),
            steps=(
                ApprovalStep(step_order=1, required_level=6),
                ApprovalStep(step_order=2, required_level=4, is_required=False),
                ApprovalStep(step_order=3, required_level=5),
            ),
        )
    ).id


# --- submit ----------------------------------------------------------------------------------


def test_submission_stores_the_expense_with_every_approval_row(expenses: ExpenseService) -> None:
    submitted = submit(expenses)
    assert submitted.expense.id == 1
    assert not submitted.replayed
    assert [m.user.name for m in submitted.approvers] == [
        "Frank Miller",
        "Eve Davis",
        "David Wilson",
    ]
    view = expenses.status(submitted.expense.id)
    assert (view.status, view.amount, view.user_name, view.policy_name) == (
        ExpenseStatus.PENDING,
        money("4000.00"),
        "Grace Taylor",
        "Large Equipment",
    )
    assert view.submitted_at == START
    assert [
        (a.step_number, a.approver_name, a.approver_level, a.required) for a in view.approvals
    ] == [
        (1, "Frank Miller", "Manager", True),
        (2, "Eve Davis", "SEM", True),
        (3, "David Wilson", "AD", True),
    ]
    (event,) = expenses.history(submitted.expense.id, Viewer.whole_company(TECHCORP))
    assert (event.kind, event.actor_id, event.expense_id) == (EventKind.SUBMITTED, GRACE, 1)


@pytest.mark.parametrize(
    ("amount", "policy"), [("1200.00", SMALL_EQUIPMENT), ("2000.00", LARGE_EQUIPMENT)]
)
def test_a_category_routes_to_the_policy_covering_the_amount(
    expenses: ExpenseService, amount: str, policy: PolicyId
) -> None:
    submitted = submit(expenses, policy=None, category="equipment", amount=amount)
    assert submitted.expense.policy_id == policy


@pytest.mark.parametrize(("policy", "category"), [(None, None), (SMALL_EQUIPMENT, "equipment")])
def test_a_submission_names_exactly_one_of_policy_and_category(
    expenses: ExpenseService, policy: PolicyId | None, category: str | None
) -> None:
    with pytest.raises(PolicyChoiceRequired):
        submit(expenses, policy=policy, category=category, amount="10.00")


def test_an_inactive_policy_cannot_be_submitted_against(
    store: MemoryStore, expenses: ExpenseService
) -> None:
    with store.unit_of_work() as uow:
        retired = uow.org.add_policy(
            Policy(
                id=PolicyId(0),
                company_id=TECHCORP,
                category="meals",
                name="Old Meals",
                steps=(ApprovalStep(step_order=1, required_level=6),),
                active=False,
            )
        )
        uow.commit()
    with pytest.raises(PolicyInactive):
        submit(expenses, policy=retired.id, amount="10.00")
    with pytest.raises(NoPolicyFor):
        submit(expenses, policy=None, category="meals", amount="10.00")


@pytest.mark.parametrize(
    ("submission", "error"),
    [
        (lambda e: submit(e, user=UserId(99)), UnknownUser),
        (lambda e: submit(e, policy=PolicyId(99)), UnknownPolicy),
        (lambda e: submit(e, policy=SMALL_EQUIPMENT, amount="4000.00"), AmountOutsidePolicy),
        (lambda e: submit(e, policy=None, category="meals", amount="12.50"), NoPolicyFor),
        (lambda e: submit(e, amount="0.00", policy=BUSINESS_TRAVEL), InvalidAmount),
        (lambda e: submit(e, description="d" * 2001), InvalidInput),
        (lambda e: submit(e, user=ALICE, policy=BUSINESS_TRAVEL), NoApproverForStep),
        (lambda e: submit(e, user=CAROL, policy=LARGE_EQUIPMENT), NoApproverForStep),
        (lambda e: submit(e, key=""), InvalidInput),
        (lambda e: submit(e, key="k" * 256), InvalidInput),
    ],
    ids=[
        "unknown-user",
        "unknown-policy",
        "amount-outside-policy",
        "no-policy-for",
        "zero-amount",
        "long-description",
        "no-approver",
        "no-approver-at-step-3",
        "empty-key",
        "long-key",
    ],
)
def test_a_refused_submission_writes_nothing(
    expenses: ExpenseService,
    submission: Callable[[ExpenseService], Submitted],
    error: type[DomainError],
) -> None:
    with pytest.raises(error):
        submission(expenses)
    assert stored_count(expenses) == 0


def test_an_inactive_person_cannot_submit(store: MemoryStore, expenses: ExpenseService) -> None:
    deactivate(store, GRACE)
    with pytest.raises(InactiveUser):
        submit(expenses)


def test_an_idempotency_key_of_255_characters_is_accepted(expenses: ExpenseService) -> None:
    assert not submit(expenses, key="k" * 255).replayed


# --- idempotency -----------------------------------------------------------------------------


def test_same_key_and_same_request_replays_the_same_expense(expenses: ExpenseService) -> None:
    first = submit(expenses, key="order-42")
    again = submit(expenses, key="order-42")
    assert again.replayed
    assert again.expense == first.expense
    assert again.approvers == first.approvers
    assert stored_count(expenses) == 1


def test_a_replay_shows_the_expense_as_it_is_now(expenses: ExpenseService) -> None:
    first = submit(expenses, key="order-42")
    approve(expenses, first.expense.id, FRANK)
    again = submit(expenses, key="order-42")
    assert again.expense.id == first.expense.id
    assert again.expense.approval(1).status is ApprovalStatus.APPROVED


def test_same_key_and_a_different_request_is_refused(expenses: ExpenseService) -> None:
    submit(expenses, key="order-42")
    with pytest.raises(IdempotencyKeyReused, match="order-42"):
        submit(expenses, key="order-42", amount="4000.01")
    with pytest.raises(IdempotencyKeyReused):
        submit(expenses, key="order-42", description="another workstation")
    assert stored_count(expenses) == 1


def test_keys_belong_to_their_user(expenses: ExpenseService) -> None:
    grace = submit(expenses, key="k1")
    frank = submit(expenses, user=FRANK, policy=BUSINESS_TRAVEL, key="k1")
    assert not frank.replayed
    assert frank.expense.id != grace.expense.id


def test_an_amount_written_with_fewer_places_is_the_same_request(
    expenses: ExpenseService,
) -> None:
    command = SubmitExpense(
        user_id=GRACE, policy_id=LARGE_EQUIPMENT, amount=money("4000.00"), idempotency_key="k"
    )
    same = SubmitExpense(
        user_id=GRACE, policy_id=LARGE_EQUIPMENT, amount=Money(Decimal("4000")), idempotency_key="k"
    )
    assert command == same
    first = expenses.submit(command)
    again = expenses.submit(same)
    assert again.replayed
    assert again.expense.id == first.expense.id


def test_no_description_and_the_word_none_are_different_requests(
    expenses: ExpenseService,
) -> None:
    submit(expenses, key="k", description=None)
    with pytest.raises(IdempotencyKeyReused):
        submit(expenses, key="k", description="None")


def test_a_separator_inside_a_field_does_not_make_two_requests_alike(
    expenses: ExpenseService,
) -> None:
    submit(expenses, policy=None, category="equipment", description="1.00\x1fd", key="k")
    with pytest.raises(IdempotencyKeyReused):
        submit(
            expenses,
            policy=None,
            category="equipment\x1f4000.00",
            amount="1.00",
            description="d",
            key="k",
        )


# --- decisions -------------------------------------------------------------------------------


def test_approving_answers_with_the_decided_step_and_the_expense(expenses: ExpenseService) -> None:
    submitted = submit(expenses)
    decision = expenses.approve(
        ApproveStep(expense_id=submitted.expense.id, user_id=FRANK, comments="fine")
    )
    assert decision.step_number == 1
    assert decision.expense.status is ExpenseStatus.PENDING
    assert decision.expense.pending_required == 2
    view = expenses.status(submitted.expense.id)
    assert (view.approvals[0].status, view.approvals[0].comments) == (
        ApprovalStatus.APPROVED,
        "fine",
    )
    assert view.approvals[0].approved_at is not None


def test_rejecting_closes_the_expense_with_the_reason(expenses: ExpenseService) -> None:
    submitted = submit(expenses)
    approve(expenses, submitted.expense.id, FRANK)
    decision = expenses.reject(
        RejectExpense(expense_id=submitted.expense.id, user_id=EVE, reason="over budget")
    )
    assert decision.expense.status is ExpenseStatus.REJECTED
    view = expenses.status(submitted.expense.id)
    assert [str(a.status) for a in view.approvals] == ["approved", "rejected", "skipped"]
    assert view.completed_at is not None
    assert view.approvals[1].comments == "over budget"


def test_withdrawing_closes_the_expense_and_skips_the_open_steps(expenses: ExpenseService) -> None:
    submitted = submit(expenses)
    approve(expenses, submitted.expense.id, FRANK)
    decision = expenses.withdraw(WithdrawExpense(expense_id=submitted.expense.id, user_id=GRACE))
    assert decision.expense.status is ExpenseStatus.WITHDRAWN
    kinds = [
        (str(e.kind), e.step_number)
        for e in expenses.history(submitted.expense.id, Viewer.whole_company(TECHCORP))
    ]
    assert kinds == [
        ("submitted", None),
        ("approved", 1),
        ("withdrawn", None),
        ("skipped", 2),
        ("skipped", 3),
    ]


def test_history_records_who_did_what_when_and_why(expenses: ExpenseService) -> None:
    submitted = submit(expenses)
    approve(expenses, submitted.expense.id, FRANK, EVE, DAVID)
    history = expenses.history(submitted.expense.id, Viewer.whole_company(TECHCORP))
    assert [(str(e.kind), e.actor_id, e.step_number, e.comment) for e in history] == [
        ("submitted", GRACE, None, None),
        ("approved", FRANK, 1, "ok"),
        ("approved", EVE, 2, "ok"),
        ("approved", DAVID, 3, "ok"),
    ]
    times = [e.at for e in history]
    assert times == sorted(times)
    assert len(set(times)) == len(times)
    assert all(e.expense_id == submitted.expense.id and e.company_id == TECHCORP for e in history)


def test_an_optional_step_shows_in_the_inbox_and_is_skipped_at_the_end(
    expenses: ExpenseService, training: PolicyId
) -> None:
    submitted = submit(expenses, policy=training, amount="300.00")
    assert [m.id for m in submitted.approvers] == [FRANK, DAVID, EVE]
    (item,) = expenses.inbox(DAVID).items
    assert (item.expense_id, item.step_number, item.required) == (submitted.expense.id, 2, False)
    approve(expenses, submitted.expense.id, FRANK, EVE)
    view = expenses.status(submitted.expense.id)
    assert view.status is ExpenseStatus.APPROVED
    assert [str(a.status) for a in view.approvals] == ["approved", "skipped", "approved"]
    assert expenses.inbox(DAVID).items == ()


@pytest.fixture
def pending(expenses: ExpenseService) -> ExpenseId:
    """Grace's Large Equipment expense, step 1 (Frank) approved, step 2 (Eve) current."""
    expense_id = submit(expenses).expense.id
    approve(expenses, expense_id, FRANK)
    return expense_id


REFUSALS: list[tuple[str, Callable[[ExpenseService, ExpenseId], object], type[DomainError]]] = [
    (
        "step-already-decided",
        lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=FRANK)),
        StepAlreadyDecided,
    ),
    (
        "step-not-reached",
        lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=DAVID)),
        StepNotReached,
    ),
    ("not-your-step", lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=BOB)), NotYourStep),
    (
        "self-approval",
        lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=GRACE)),
        SelfApproval,
    ),
    (
        "reason-required",
        lambda s, e: s.reject(RejectExpense(expense_id=e, user_id=EVE, reason="  ")),
        ReasonRequired,
    ),
    (
        "reject-not-reached",
        lambda s, e: s.reject(RejectExpense(expense_id=e, user_id=DAVID, reason="no")),
        StepNotReached,
    ),
    (
        "self-rejection",
        lambda s, e: s.reject(RejectExpense(expense_id=e, user_id=GRACE, reason="no")),
        SelfApproval,
    ),
    (
        "not-submitter",
        lambda s, e: s.withdraw(WithdrawExpense(expense_id=e, user_id=EVE)),
        NotSubmitter,
    ),
    (
        "unknown-actor",
        lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=UserId(99))),
        UnknownUser,
    ),
    (
        "unknown-expense",
        lambda s, e: s.approve(ApproveStep(expense_id=ExpenseId(e + 1), user_id=EVE)),
        UnknownExpense,
    ),
    (
        "overlong-comment",
        lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=EVE, comments="c" * 2001)),
        InvalidInput,
    ),
]


@pytest.mark.parametrize(
    ("command", "error"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_refused_decision_changes_nothing(
    expenses: ExpenseService,
    pending: ExpenseId,
    command: Callable[[ExpenseService, ExpenseId], object],
    error: type[DomainError],
) -> None:
    before = snapshot(expenses, pending)
    with pytest.raises(error):
        command(expenses, pending)
    assert snapshot(expenses, pending) == before


@pytest.mark.parametrize(
    "command",
    [
        lambda s, e: s.approve(ApproveStep(expense_id=e, user_id=EVE)),
        lambda s, e: s.reject(RejectExpense(expense_id=e, user_id=EVE, reason="late")),
        lambda s, e: s.withdraw(WithdrawExpense(expense_id=e, user_id=GRACE)),
    ],
    ids=["approve", "reject", "withdraw"],
)
@pytest.mark.parametrize("close", ["approve", "reject", "withdraw"])
def test_a_closed_expense_refuses_every_command_and_stays_as_it_is(
    expenses: ExpenseService,
    pending: ExpenseId,
    command: Callable[[ExpenseService, ExpenseId], object],
    close: str,
) -> None:
    if close == "approve":
        approve(expenses, pending, EVE, DAVID)
    elif close == "reject":
        expenses.reject(RejectExpense(expense_id=pending, user_id=EVE, reason="no"))
    else:
        expenses.withdraw(WithdrawExpense(expense_id=pending, user_id=GRACE))
    before = snapshot(expenses, pending)
    with pytest.raises(ExpenseClosed):
        command(expenses, pending)
    assert snapshot(expenses, pending) == before


def test_an_optional_step_cannot_reject_and_nothing_changes(
    expenses: ExpenseService, training: PolicyId
) -> None:
    expense_id = submit(expenses, policy=training, amount="300.00").expense.id
    before = snapshot(expenses, expense_id)
    with pytest.raises(OptionalStepCannotReject):
        expenses.reject(RejectExpense(expense_id=expense_id, user_id=DAVID, reason="no"))
    assert snapshot(expenses, expense_id) == before


def test_an_inactive_approver_cannot_decide(
    store: MemoryStore, expenses: ExpenseService, pending: ExpenseId
) -> None:
    deactivate(store, EVE)
    before = snapshot(expenses, pending)
    with pytest.raises(InactiveUser):
        approve(expenses, pending, EVE)
    assert snapshot(expenses, pending) == before


# --- reads -----------------------------------------------------------------------------------


def test_status_of_an_unknown_expense_is_refused(expenses: ExpenseService) -> None:
    with pytest.raises(UnknownExpense, match="expense 5 does not exist"):
        expenses.status(ExpenseId(5))
    with pytest.raises(UnknownExpense):
        expenses.history(ExpenseId(5), Viewer.whole_company(TECHCORP))
    with pytest.raises(UnknownExpense):
        expenses.explain(ExpenseId(5), Viewer.whole_company(TECHCORP))


def test_the_list_is_newest_first_and_filters_by_person_and_status(
    expenses: ExpenseService,
) -> None:
    ids = [
        submit(expenses).expense.id,
        submit(expenses, user=FRANK, policy=BUSINESS_TRAVEL).expense.id,
        submit(expenses, policy=SMALL_EQUIPMENT, amount="10.00").expense.id,
    ]
    approve(expenses, ids[2], FRANK)
    assert [s.id for s in expenses.list_expenses(Viewer.whole_company(TECHCORP)).items] == ids[::-1]
    assert [
        s.id for s in expenses.list_expenses(Viewer.whole_company(TECHCORP), user_id=GRACE).items
    ] == [ids[2], ids[0]]
    approved = expenses.list_expenses(
        Viewer.whole_company(TECHCORP), status=ExpenseStatus.APPROVED
    ).items
    assert [(s.id, s.status) for s in approved] == [(ids[2], ExpenseStatus.APPROVED)]
    assert approved[0].completed_at is not None
    pending = expenses.list_expenses(
        Viewer.whole_company(TECHCORP), user_id=GRACE, status=ExpenseStatus.PENDING
    )
    assert [s.id for s in pending.items] == [ids[0]]


def test_the_list_pages_by_keyset_until_there_is_no_next_cursor(expenses: ExpenseService) -> None:
    ids = [
        submit(expenses, policy=SMALL_EQUIPMENT, amount=f"{n}.00").expense.id for n in range(1, 6)
    ]
    seen: list[int] = []
    cursors: list[int | None] = []
    cursor = None
    while True:
        page = expenses.list_expenses(Viewer.whole_company(TECHCORP), cursor=cursor, limit=2)
        seen += [s.id for s in page.items]
        cursors.append(page.next_cursor)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids[::-1]
    assert cursors == [ids[3], ids[1], None]


def test_a_page_that_ends_the_list_has_no_next_cursor(expenses: ExpenseService) -> None:
    ids = [
        submit(expenses, policy=SMALL_EQUIPMENT, amount=f"{n}.00").expense.id for n in range(1, 5)
    ]
    first = expenses.list_expenses(Viewer.whole_company(TECHCORP), limit=2)
    assert first.next_cursor == ids[2]
    second = expenses.list_expenses(
        Viewer.whole_company(TECHCORP), cursor=first.next_cursor, limit=2
    )
    assert [s.id for s in second.items] == [ids[1], ids[0]]
    assert second.next_cursor is None


def test_a_page_keeps_its_place_when_newer_expenses_arrive(expenses: ExpenseService) -> None:
    ids = [
        submit(expenses, policy=SMALL_EQUIPMENT, amount=f"{n}.00").expense.id for n in range(1, 4)
    ]
    first = expenses.list_expenses(Viewer.whole_company(TECHCORP), limit=1)
    submit(expenses, policy=SMALL_EQUIPMENT, amount="99.00")
    second = expenses.list_expenses(
        Viewer.whole_company(TECHCORP), cursor=first.next_cursor, limit=1
    )
    assert [s.id for s in second.items] == [ids[1]]


@pytest.mark.parametrize(("cursor", "limit"), [(None, 0), (None, 101), (0, 10), (-3, 10)])
def test_a_bad_page_request_is_refused(
    expenses: ExpenseService, cursor: int | None, limit: int
) -> None:
    with pytest.raises(InvalidInput):
        expenses.list_expenses(Viewer.whole_company(TECHCORP), cursor=cursor, limit=limit)
    with pytest.raises(InvalidInput):
        expenses.inbox(FRANK, cursor=cursor, limit=limit)


def test_the_inbox_holds_what_an_approver_can_act_on_now(expenses: ExpenseService) -> None:
    first = submit(expenses).expense.id
    second = submit(expenses, policy=SMALL_EQUIPMENT, amount="10.00").expense.id
    (frank_first, frank_second) = expenses.inbox(FRANK).items
    assert (frank_first.expense_id, frank_first.step_number, frank_first.required) == (
        first,
        1,
        True,
    )
    assert (frank_second.submitter_name, frank_second.policy_name) == (
        "Grace Taylor",
        "Small Equipment",
    )
    assert frank_second.amount == money("10.00")
    assert expenses.inbox(EVE).items == ()  # step 2 waits for step 1
    approve(expenses, first, FRANK)
    assert [i.expense_id for i in expenses.inbox(FRANK).items] == [second]
    assert [(i.expense_id, i.step_number) for i in expenses.inbox(EVE).items] == [(first, 2)]
    approve(expenses, second, FRANK)
    assert expenses.inbox(FRANK).items == ()


def test_the_inbox_pages_oldest_first(expenses: ExpenseService) -> None:
    ids = [
        submit(expenses, policy=SMALL_EQUIPMENT, amount=f"{n}.00").expense.id for n in range(1, 6)
    ]
    page = expenses.inbox(FRANK, limit=3)
    assert [i.expense_id for i in page.items] == ids[:3]
    assert page.next_cursor == ids[2]
    rest = expenses.inbox(FRANK, cursor=page.next_cursor, limit=3)
    assert [i.expense_id for i in rest.items] == ids[3:]
    assert rest.next_cursor is None


def test_explain_recomputes_routing_against_todays_organisation(
    store: MemoryStore, expenses: ExpenseService
) -> None:
    submitted = submit(expenses)
    explained = expenses.explain(submitted.expense.id, Viewer.whole_company(TECHCORP))
    assert explained.expense.id == submitted.expense.id
    assert [s.chosen.id if s.chosen else None for s in explained.steps] == [FRANK, EVE, DAVID]
    deactivate(store, FRANK)
    again = expenses.explain(submitted.expense.id, Viewer.whole_company(TECHCORP))
    assert [s.chosen.id if s.chosen else None for s in again.steps] == [EVE, DAVID, CAROL]
    reasons = {v.member.id: v.reason for v in again.steps[0].considered}
    assert reasons[EVE].startswith("chosen: ")
    # The stored routing is what decides; explaining never rewrites it.
    assert [a.approver_id for a in expenses.status(submitted.expense.id).approvals] == [
        FRANK,
        EVE,
        DAVID,
    ]


def test_company_of_names_an_active_users_company(
    store: MemoryStore, expenses: ExpenseService
) -> None:
    assert expenses.company_of(GRACE) == TECHCORP
    with pytest.raises(UnknownUser):
        expenses.company_of(UserId(99))
    deactivate(store, GRACE)
    with pytest.raises(InactiveUser):
        expenses.company_of(GRACE)
