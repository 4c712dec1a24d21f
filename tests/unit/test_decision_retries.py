"""Decisions under an idempotency key: a retry answers the first decision and changes nothing.

Examples on the memory adapter, and a property over random sequences of keyed decisions and
their retries: a retry of a decision that was made answers exactly that decision (the expense as
it stood right after it, whatever happened since) and leaves every expense as it was; a retry
of a refused one is a new attempt, since a refusal stores no key.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from expense_core.demo import install_demo
from expense_core.errors import (
    DomainError,
    IdempotencyKeyReused,
    InvalidInput,
    ReasonRequired,
    StepAlreadyDecided,
)
from expense_core.model import ApprovalStatus, EventKind, ExpenseEvent, ExpenseId, UserId
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    RejectExpense,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.views import ExpenseView
from expense_core.visibility import Viewer
from expense_core.workflow import Decision
from tests.clocks import TickingClock
from tests.unit.support import (
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

Snapshot = tuple[ExpenseView, tuple[ExpenseEvent, ...]]


def workstation(expenses: ExpenseService) -> ExpenseId:
    """Grace's Large Equipment expense: Frank, then Eve, then David."""
    command = SubmitExpense(user_id=GRACE, policy_id=LARGE_EQUIPMENT, amount=money("4000.00"))
    return expenses.submit(command).expense.id


def snapshot(expenses: ExpenseService, expense_id: ExpenseId) -> Snapshot:
    return expenses.status(expense_id), expenses.history(expense_id, Viewer.whole_company(TECHCORP))


def first_answer(decision: Decision) -> Decision:
    assert decision.replayed
    return attrs.evolve(decision, replayed=False)


Decide = Callable[[ExpenseService, ExpenseId, str], Decision]
DECISIONS: dict[str, Decide] = {
    "approve": lambda s, e, key: s.approve(
        ApproveStep(expense_id=e, user_id=FRANK, comments="fine", idempotency_key=key)
    ),
    "reject": lambda s, e, key: s.reject(
        RejectExpense(expense_id=e, user_id=FRANK, reason="too dear", idempotency_key=key)
    ),
    "withdraw": lambda s, e, key: s.withdraw(
        WithdrawExpense(expense_id=e, user_id=GRACE, idempotency_key=key)
    ),
}


@pytest.mark.parametrize("decide", DECISIONS.values(), ids=DECISIONS.keys())
def test_a_retried_decision_answers_the_first_one_and_changes_nothing(
    expenses: ExpenseService, decide: Decide
) -> None:
    expense_id = workstation(expenses)
    first = decide(expenses, expense_id, "k-1")
    after = snapshot(expenses, expense_id)

    again = decide(expenses, expense_id, "k-1")

    assert not first.replayed
    assert first_answer(again) == first
    assert snapshot(expenses, expense_id) == after


def test_a_replay_is_the_first_answer_even_after_the_expense_moved_on(
    expenses: ExpenseService,
) -> None:
    expense_id = workstation(expenses)
    first = DECISIONS["approve"](expenses, expense_id, "k-1")
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=EVE))
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=DAVID))
    now = snapshot(expenses, expense_id)

    again = DECISIONS["approve"](expenses, expense_id, "k-1")

    assert first_answer(again) == first
    assert (again.expense.pending_required, again.step_number) == (2, 1)
    assert now[0].pending_required == 0
    assert snapshot(expenses, expense_id) == now


@pytest.mark.parametrize(
    "other",
    [
        ApproveStep(expense_id=ExpenseId(1), user_id=FRANK, comments="other words"),
        ApproveStep(expense_id=ExpenseId(1), user_id=FRANK),
        RejectExpense(expense_id=ExpenseId(1), user_id=FRANK, reason="fine"),
        ApproveStep(expense_id=ExpenseId(2), user_id=FRANK, comments="fine"),
    ],
    ids=["other-comments", "no-comments", "a-rejection", "another-expense"],
)
def test_the_same_key_with_another_request_is_refused_and_changes_nothing(
    expenses: ExpenseService, other: ApproveStep | RejectExpense
) -> None:
    first, second = workstation(expenses), workstation(expenses)
    assert (first, second) == (1, 2)
    DECISIONS["approve"](expenses, first, "k-1")
    before = snapshot(expenses, first), snapshot(expenses, second)
    keyed = attrs.evolve(other, idempotency_key="k-1")

    refusal = run(expenses, keyed)

    assert isinstance(refusal, IdempotencyKeyReused)
    assert "k-1" in refusal.message
    # The other expense's step could have been approved: it was, then undone.
    assert (snapshot(expenses, first), snapshot(expenses, second)) == before


def test_a_refused_decision_stores_no_key_so_a_corrected_retry_decides(
    expenses: ExpenseService,
) -> None:
    expense_id = workstation(expenses)
    before = snapshot(expenses, expense_id)
    with pytest.raises(ReasonRequired):
        expenses.reject(
            RejectExpense(expense_id=expense_id, user_id=FRANK, reason=" ", idempotency_key="k")
        )
    assert snapshot(expenses, expense_id) == before

    fixed = expenses.reject(
        RejectExpense(expense_id=expense_id, user_id=FRANK, reason="no", idempotency_key="k")
    )

    assert not fixed.replayed
    assert fixed.expense.approval(1).status is ApprovalStatus.REJECTED


def test_a_refusal_without_a_stored_key_stays_that_refusal(expenses: ExpenseService) -> None:
    expense_id = workstation(expenses)
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=FRANK))

    with pytest.raises(StepAlreadyDecided):
        DECISIONS["approve"](expenses, expense_id, "never-stored")


def test_submissions_and_decisions_share_the_actors_keys(expenses: ExpenseService) -> None:
    travel = SubmitExpense(
        user_id=FRANK,
        policy_id=BUSINESS_TRAVEL,
        amount=money("300.00"),
        idempotency_key="frank-1",
    )
    expenses.submit(travel)
    expense_id = workstation(expenses)

    with pytest.raises(IdempotencyKeyReused):
        DECISIONS["approve"](expenses, expense_id, "frank-1")
    DECISIONS["approve"](expenses, expense_id, "frank-2")
    with pytest.raises(IdempotencyKeyReused):
        expenses.submit(attrs.evolve(travel, idempotency_key="frank-2"))
    assert expenses.submit(travel).replayed


def test_keys_belong_to_their_actor(expenses: ExpenseService) -> None:
    expense_id = workstation(expenses)
    franks = ApproveStep(expense_id=expense_id, user_id=FRANK, idempotency_key="k")
    eves = ApproveStep(expense_id=expense_id, user_id=EVE, idempotency_key="k")

    first, second = expenses.approve(franks), expenses.approve(eves)

    assert [first.replayed, second.replayed] == [False, False]
    assert (first.step_number, second.step_number) == (1, 2)


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_a_key_must_be_1_to_255_characters(expenses: ExpenseService, key: str) -> None:
    expense_id = workstation(expenses)
    before = snapshot(expenses, expense_id)
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        DECISIONS["approve"](expenses, expense_id, key)
    assert snapshot(expenses, expense_id) == before
    assert not DECISIONS["approve"](expenses, expense_id, "k" * 255).replayed


# --- the property ----------------------------------------------------------------------------

Command = ApproveStep | RejectExpense | WithdrawExpense
PEOPLE = (DAVID, EVE, FRANK, GRACE)
# Expenses (as numbered below) and the people who may act on them: the approvers (and the
# submitter, who may withdraw), so that decisions are often made.
PLAUSIBLE = ((1, FRANK), (1, EVE), (1, DAVID), (1, GRACE), (2, FRANK), (2, GRACE), (3, EVE),
             (3, DAVID), (3, FRANK))  # fmt: skip


def commands(expense_ids: int) -> st.SearchStrategy[Command]:
    anyone = st.tuples(st.integers(1, expense_ids), st.sampled_from(PEOPLE))
    pair = st.one_of(st.sampled_from(PLAUSIBLE), anyone)
    text = st.sampled_from([None, "", "ok", "over budget"])

    def command(pair: tuple[int, UserId], kind: int, text: str | None) -> Command:
        expense_id, person = ExpenseId(pair[0]), pair[1]
        if kind == 0:
            return ApproveStep(expense_id=expense_id, user_id=person, comments=text)
        if kind == 1:
            return RejectExpense(expense_id=expense_id, user_id=person, reason=text)
        return WithdrawExpense(expense_id=expense_id, user_id=person)

    return st.builds(command, pair, st.sampled_from([0, 0, 1, 2]), text)


def run(expenses: ExpenseService, command: Command) -> Decision | DomainError:
    try:
        if isinstance(command, ApproveStep):
            return expenses.approve(command)
        if isinstance(command, RejectExpense):
            return expenses.reject(command)
        return expenses.withdraw(command)
    except DomainError as refusal:
        return refusal


@given(
    steps=st.lists(
        st.one_of(
            commands(3).map(lambda c: ("new", c)),
            st.integers(0, 30).map(lambda i: ("retry", i)),
        ),
        min_size=2,
        max_size=30,
    )
)
def test_retrying_any_keyed_decision_answers_its_first_decision_and_changes_nothing(
    steps: list[tuple[str, Command | int]],
) -> None:
    store = MemoryStore()
    install_demo(store.unit_of_work)
    expenses = ExpenseService(store.unit_of_work, TickingClock())
    ids = [
        workstation(expenses),
        expenses.submit(
            SubmitExpense(user_id=GRACE, policy_id=SMALL_EQUIPMENT, amount=money("10.00"))
        ).expense.id,
        expenses.submit(
            SubmitExpense(user_id=FRANK, policy_id=BUSINESS_TRAVEL, amount=money("300.00"))
        ).expense.id,
    ]
    sent: list[Command] = []
    made: dict[int, Decision] = {}  # what each key (by its command's place) decided first

    def everything() -> list[Snapshot]:
        return [snapshot(expenses, e) for e in ids]

    for kind, what in steps:
        if kind == "new":
            assert not isinstance(what, int)
            command = attrs.evolve(what, idempotency_key=f"key-{len(sent)}")
            sent.append(command)
        elif sent:
            assert isinstance(what, int)
            # Half of the retries are of a decision that was made, the others of a latest one.
            decided = sorted(made)
            if what % 2 and decided:
                command = sent[decided[what // 2 % len(decided)]]
            else:
                command = sent[-1 - what // 2 % min(len(sent), 4)]
        else:
            continue
        place = sent.index(command)
        before = everything()
        outcome = run(expenses, command)
        if place in made:
            event("a decision was retried")
            assert isinstance(outcome, Decision)
            assert first_answer(outcome) == made[place]
            assert everything() == before
        elif isinstance(outcome, Decision):
            assert not outcome.replayed
            made[place] = outcome
        else:
            assert everything() == before  # a refusal changes nothing and stores no key

    # Four eyes held throughout: each step was decided by its own approver, never the submitter.
    for expense_id in ids:
        view, history = snapshot(expenses, expense_id)
        approvers = {a.step_number: a.approver_id for a in view.approvals}
        for change in history:
            if change.kind in (EventKind.APPROVED, EventKind.REJECTED):
                assert change.step_number is not None
                assert change.actor_id == approvers[change.step_number] != view.user_id
