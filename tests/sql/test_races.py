"""Racing decisions from many threads, each on its own connection, never break the workflow;
twins of one keyed request (a submission, a decision) make it once.

For every expense, duplicate approvals of each step, a rejection and duplicate withdrawals race.
Afterwards, for every expense: DESIGN §2's invariant holds (approved exactly when no required
approval is pending and none is rejected), each group of duplicates has exactly one winner
(none when the expense closed first), and the history holds exactly the winners' events, each
decision's events together, in the order the decisions were made.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from adapters.sql import SqlDatabase
from expense_core.errors import DomainError, IdempotencyKeyReused
from expense_core.model import (
    ApprovalStatus,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
)
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    RejectExpense,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from expense_core.workflow import Decision
from tests.clocks import TickingClock
from tests.contract.support import money, tech_corp
from tests.sql.support import (
    Attempt,
    Outcome,
    check_each,
    race_database,
    race_params,
    run_race,
    side_by_side,
    three_steps,
)

# Per expense: step 1 (Frank), step 2 (Eve) and the optional step 3 (David), each approved three
# times at once; Frank's rejection races his approvals; Grace withdraws twice.
ATTEMPTS = (
    (6, "approve", "step 1"),
    (6, "approve", "step 1"),
    (6, "approve", "step 1"),
    (6, "reject", "step 1"),
    (5, "approve", "step 2"),
    (5, "approve", "step 2"),
    (4, "approve", "step 3"),
    (4, "approve", "step 3"),
    (7, "withdraw", "withdrawal"),
    (7, "withdraw", "withdrawal"),
)


@pytest.fixture(params=race_params(postgres=(240, 16), sqlite=(40, 8)))
def race(request: pytest.FixtureRequest) -> Iterator[tuple[SqlDatabase, int, int]]:
    with race_database(request) as opened:
        yield opened


def test_racing_decisions_keep_every_expense_consistent(
    race: tuple[SqlDatabase, int, int],
) -> None:
    db, how_many, threads = race
    org = tech_corp(db.unit_of_work)
    policy = three_steps(db, org.id, "race")
    service = ExpenseService(db.unit_of_work, TickingClock())
    ids = [
        service.submit(
            SubmitExpense(user_id=org.person(7), policy_id=policy.id, amount=money("50.00"))
        ).expense.id
        for _ in range(how_many)
    ]
    attempts = side_by_side(
        ids,
        lambda expense_id: [
            Attempt(expense_id, org.person(w), kind, group) for w, kind, group in ATTEMPTS
        ],
        seed=20250825,
    )

    outcomes = run_race(threads, attempts, functools.partial(_decide, service))

    check_each(db, org.id, ids, outcomes, _check)
    kinds = Counter(o.decision is not None for o in outcomes)
    assert kinds[True] >= how_many  # every expense saw at least one decision
    assert len(outcomes) == how_many * len(ATTEMPTS)


def _decide(service: ExpenseService, attempt: Attempt) -> Decision:
    if attempt.kind == "approve":
        return service.approve(
            ApproveStep(expense_id=attempt.expense_id, user_id=attempt.actor, comments="ok")
        )
    if attempt.kind == "reject":
        return service.reject(
            RejectExpense(expense_id=attempt.expense_id, user_id=attempt.actor, reason="no")
        )
    return service.withdraw(WithdrawExpense(expense_id=attempt.expense_id, user_id=attempt.actor))


def _check(expense: Expense, history: tuple[ExpenseEvent, ...], outcomes: list[Outcome]) -> None:
    status = {a.step_number: a.status for a in expense.approvals}
    required = [a for a in expense.approvals if a.required]
    # DESIGN §2: approved exactly when no required approval is pending and none is rejected;
    # a withdrawal instead skips what is pending, so it is the one other way to settle.
    settled = not any(a.is_pending for a in required)
    rejected = any(a.status is ApprovalStatus.REJECTED for a in expense.approvals)
    withdrawn = expense.status is ExpenseStatus.WITHDRAWN
    assert (expense.status is ExpenseStatus.APPROVED) == (
        settled and not rejected and not withdrawn
    )
    assert (expense.status is ExpenseStatus.APPROVED) == all(
        a.status is ApprovalStatus.APPROVED for a in required
    )
    assert (expense.status is ExpenseStatus.REJECTED) == rejected
    if withdrawn:
        assert any(a.status is ApprovalStatus.SKIPPED for a in required)
    if expense.is_terminal:
        assert expense.completed_at is not None
        assert not any(a.is_pending for a in expense.approvals)
    else:
        assert expense.completed_at is None
        assert not settled

    # Exactly one winner per group of duplicates, unless the expense closed before its turn.
    won = Counter(o.attempt.group for o in outcomes if o.decision is not None)
    decided = {ApprovalStatus.APPROVED, ApprovalStatus.REJECTED}
    assert won["step 1"] == (status[1] in decided)
    assert won["step 2"] == (status[2] is ApprovalStatus.APPROVED)
    assert won["step 3"] == (status[3] is ApprovalStatus.APPROVED)
    assert won["withdrawal"] == (expense.status is ExpenseStatus.WITHDRAWN)
    rejections = [o for o in outcomes if o.decision and o.attempt.kind == "reject"]
    assert len(rejections) == (status[1] is ApprovalStatus.REJECTED)

    # The history: the submission, then exactly the winners' events, each decision's together,
    # in the order the decisions were made (each read the clock while holding the lock).
    assert history[0].kind is EventKind.SUBMITTED
    winners = sorted((o.decision for o in outcomes if o.decision), key=lambda d: d.events[0].at)
    assert history[1:] == tuple(e for d in winners for e in d.events)
    assert [e.at for e in history] == sorted(e.at for e in history)
    skipped = {e.step_number for e in history if e.kind is EventKind.SKIPPED}
    assert skipped == {n for n, s in status.items() if s is ApprovalStatus.SKIPPED}
    if winners:
        assert winners[-1].expense == expense


def test_twin_submissions_with_one_key_store_one_expense(
    race: tuple[SqlDatabase, int, int],
) -> None:
    db, _, threads = race
    org = tech_corp(db.unit_of_work)
    service = ExpenseService(db.unit_of_work, TickingClock())
    keys = [f"twin-{k}" for k in range(20)]
    commands = [
        SubmitExpense(
            user_id=org.person(7),
            policy_id=org.small.id,
            amount=money("10.00"),
            idempotency_key=key,
        )
        for key in keys
        for _ in range(threads)  # all twins of one key side by side
    ]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(service.submit, commands))

    for key in keys:
        twins = [r for c, r in zip(commands, results, strict=True) if c.idempotency_key == key]
        assert len({r.expense.id for r in twins}) == 1
        assert sum(not r.replayed for r in twins) == 1
    stored = service.list_expenses(Viewer.whole_company(org.id), limit=100).items
    assert sorted(s.id for s in stored) == sorted({r.expense.id for r in results})
    assert len(stored) == len(keys)


def test_twin_decisions_with_one_key_decide_once(race: tuple[SqlDatabase, int, int]) -> None:
    """Twins of one keyed decision race, one of them with another body: one decides, its twins
    answer its decision again, and the odd one is refused (or decides, and the others are)."""
    db, _, threads = race
    org = tech_corp(db.unit_of_work)
    service = ExpenseService(db.unit_of_work, TickingClock())
    ids = [
        service.submit(
            SubmitExpense(user_id=org.person(7), policy_id=org.large.id, amount=money("2500.00"))
        ).expense.id
        for _ in range(10)
    ]

    def twins(expense_id: ExpenseId, step: str) -> list[ApproveStep | RejectExpense]:
        texts = ["same"] * (threads - 1) + ["odd"]
        if step == "approve":
            return [
                ApproveStep(
                    expense_id=expense_id,
                    user_id=org.person(6),
                    comments=text,
                    idempotency_key=f"approve-{expense_id}",
                )
                for text in texts
            ]
        return [
            RejectExpense(
                expense_id=expense_id,
                user_id=org.person(5),
                reason=text,
                idempotency_key=f"reject-{expense_id}",
            )
            for text in texts
        ]

    def decide(command: ApproveStep | RejectExpense) -> Decision | DomainError:
        try:
            if isinstance(command, ApproveStep):
                return service.approve(command)
            return service.reject(command)
        except DomainError as refusal:
            return refusal

    for step in ("approve", "reject"):
        commands = [c for expense_id in ids for c in twins(expense_id, step)]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            outcomes = list(pool.map(decide, commands))
        for expense_id in ids:
            mine = [
                (c, o)
                for c, o in zip(commands, outcomes, strict=True)
                if c.expense_id == expense_id
            ]
            winners = [(c, o) for c, o in mine if isinstance(o, Decision) and not o.replayed]
            assert len(winners) == 1
            ((won, decision),) = winners
            for command, outcome in mine:
                if command == won:
                    assert isinstance(outcome, Decision)
                    assert attrs.evolve(outcome, replayed=False) == decision
                else:
                    assert isinstance(outcome, IdempotencyKeyReused), outcome

    for expense_id in ids:
        history = service.history(expense_id, Viewer.whole_company(org.id))
        assert [e.kind for e in history] == [
            EventKind.SUBMITTED,
            EventKind.APPROVED,
            EventKind.REJECTED,
            EventKind.SKIPPED,
        ]
