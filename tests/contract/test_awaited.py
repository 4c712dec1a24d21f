"""The awaited store (`AwaitedExpenses`), on memory and PostgreSQL: a decision is written only
over the state it read, and one overtaken between its read and its write is decided again by
the library, both decisions standing in the order they were made. A submission is written only
while the organisation is as it was read (PostgreSQL recalls what it read for the next
submission of the same person under the same policy): one that the organisation changed under
is decided again on the organisation as it is, refusals on a recalled read too.

Everything else the awaited path answers is held to the whole contract suite through the
`expenses` fixture (`tests.contract.paths`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest
from litestar.concurrency import sync_to_thread

from adapters.memory import MemoryStore
from adapters.memory.awaited import MemoryAwaitedExpenses
from adapters.sql import SqlDatabase
from adapters.sql.awaited import AwaitedPool, PgAwaitedExpenses
from entrypoints.ports import AwaitedStore
from expense_core import workflow
from expense_core.errors import ExpenseChanged, InactiveUser, OrgChanged, UnknownExpense
from expense_core.model import (
    ApprovalStatus,
    EventKind,
    ExpenseId,
    Member,
    PolicyId,
    Role,
    UserId,
)
from expense_core.notifications import notices
from expense_core.services import (
    AccessService,
    ApproveStep,
    AwaitedAccessService,
    AwaitedExpenseService,
    ChangeUser,
    ExpenseService,
    ListTokens,
    NewPolicy,
    OrgService,
    SubmitExpense,
    Submitted,
)
from expense_core.visibility import Viewer
from tests.clocks import MeddlingClock, SettableClock, TickingClock
from tests.contract.support import Org, money, steps, tech_corp
from tests.sql.support import opened, submitted_to_three_steps, while_open

FRANK, EVE, DAVID, GRACE = 6, 5, 4, 7  # step 1, step 2, optional step 3, the submitter

Backend = tuple[MemoryStore | SqlDatabase, AwaitedStore]
T = TypeVar("T")


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A store, and the awaited store on it."""
    if request.param == "memory":
        memory = MemoryStore()
        yield memory, MemoryAwaitedExpenses(memory)
        return
    with opened(request.getfixturevalue("shared_postgres_url"), pool_size=2) as db:
        yield db, PgAwaitedExpenses(AwaitedPool(db, size=2, timeout_s=10))


def test_a_decision_overtaken_between_its_read_and_its_write_is_decided_again(
    backend: Backend,
) -> None:
    store, awaited = backend
    org, expense_id = submitted_to_three_steps(store, "awaited", GRACE)
    other = ExpenseService(store.unit_of_work, TickingClock())
    # The awaited decision reads the clock once, after its read: Frank decides step 1 there.
    frank = ApproveStep(expense_id=expense_id, user_id=org.person(FRANK))
    clock = MeddlingClock(1, lambda: other.approve(frank))
    service = AwaitedExpenseService(
        ExpenseService(store.unit_of_work, clock), awaited, sync_to_thread
    )

    async def approve() -> workflow.Decision:
        return await service.approve(ApproveStep(expense_id=expense_id, user_id=org.person(DAVID)))

    decision = while_open(awaited, approve)

    assert [a.status for a in decision.expense.approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
        ApprovalStatus.APPROVED,
    ]
    viewer = Viewer.whole_company(org.id)
    stored = other.status(expense_id, viewer)
    assert [a.status for a in stored.approvals] == [a.status for a in decision.expense.approvals]
    history = other.history(expense_id, viewer)
    assert [(e.kind, e.actor_id) for e in history] == [
        (EventKind.SUBMITTED, org.person(GRACE)),
        (EventKind.APPROVED, org.person(FRANK)),
        (EventKind.APPROVED, org.person(DAVID)),
    ]


def test_an_overtaken_write_changes_nothing(backend: Backend) -> None:
    store, awaited = backend
    org, expense_id = submitted_to_three_steps(store, "awaited", GRACE)
    david = UserId(org.person(DAVID))
    other = ExpenseService(store.unit_of_work, TickingClock())

    async def overtaken() -> None:
        basis = await awaited.basis_for_decision(org.id, david, expense_id)
        assert basis is not None
        assert basis.role is Role.EMPLOYEE
        # Frank decides step 1 meanwhile: nothing was locked to stop him.
        await asyncio.to_thread(
            other.approve, ApproveStep(expense_id=expense_id, user_id=org.person(FRANK))
        )
        before = basis.expense
        decision = workflow.approve(before, david, None, TickingClock().now(), basis.covers)
        after, events = decision.expense, decision.events
        with pytest.raises(ExpenseChanged):
            await awaited.save_decision(basis, after, events, notices(before, after, events))

    while_open(awaited, overtaken)

    viewer = Viewer.whole_company(org.id)
    assert [a.status for a in other.status(expense_id, viewer).approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
        ApprovalStatus.PENDING,
    ]
    assert [e.actor_id for e in other.history(expense_id, viewer)] == [
        org.person(GRACE),
        org.person(FRANK),
    ]
    with store.unit_of_work() as uow:
        told = {entry.event.actor_id for entry in uow.outbox.undispatched(100)}
    # Frank's notices are there; the overtaken write put none in the outbox.
    assert org.person(FRANK) in told
    assert org.person(DAVID) not in told


def test_reads_answer_as_the_library_does(backend: Backend) -> None:
    store, awaited = backend
    org, expense_id = submitted_to_three_steps(store, "awaited", GRACE)
    library = ExpenseService(store.unit_of_work, TickingClock())

    async def read() -> None:
        for viewer in (Viewer.whole_company(org.id), None):
            company = None if viewer is None else viewer.company_id
            assert await awaited.view(company, expense_id) == library.status(expense_id, viewer)
        with pytest.raises(UnknownExpense):
            await awaited.view(org.id, ExpenseId(expense_id + 10_000))
        missing = await awaited.basis_for_decision(
            org.id, UserId(org.person(DAVID)), ExpenseId(expense_id + 10_000)
        )
        assert missing is None

    while_open(awaited, read)


def _submitting(
    store: MemoryStore | SqlDatabase, awaited: AwaitedStore, clock: TickingClock | None = None
) -> AwaitedExpenseService:
    library = ExpenseService(store.unit_of_work, clock or TickingClock())
    return AwaitedExpenseService(library, awaited, sync_to_thread)


def _submit(
    awaited: AwaitedStore, service: AwaitedExpenseService, *commands: SubmitExpense
) -> list[Submitted]:
    """Each command submitted in turn through `service`, the store open meanwhile."""

    async def submit() -> list[Submitted]:
        return [await service.submit(command) for command in commands]

    return while_open(awaited, submit)


def _large(org: Org, amount: str = "2500.00") -> SubmitExpense:
    return SubmitExpense(user_id=org.person(GRACE), policy_id=org.large.id, amount=money(amount))


def _approver_ids(submitted: Submitted) -> list[UserId]:
    return [a.approver_id for a in submitted.expense.approvals]


def test_a_submission_the_organisation_changed_under_is_routed_on_the_organisation_as_it_is(
    backend: Backend,
) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    people = OrgService(store.unit_of_work)
    # The awaited submission reads the clock once, after its read: Frank leaves there.
    leaves = MeddlingClock(
        1, lambda: people.change_user(ChangeUser(user_id=org.person(FRANK), active=False))
    )

    [submitted] = _submit(awaited, _submitting(store, awaited, leaves), _large(org))

    assert org.person(FRANK) not in _approver_ids(submitted)
    library = ExpenseService(store.unit_of_work, TickingClock())
    again = library.submit(_large(org))
    assert _approver_ids(submitted) == _approver_ids(again)
    # As stored, too.
    viewer = Viewer.whole_company(org.id)
    stored = library.status(submitted.expense.id, viewer)
    assert [a.approver_id for a in stored.approvals] == _approver_ids(again)


def test_a_submission_after_the_organisation_changed_is_decided_on_it(backend: Backend) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    people = OrgService(store.unit_of_work)
    service = _submitting(store, awaited)
    [first] = _submit(awaited, service, _large(org))
    assert org.person(FRANK) in _approver_ids(first)

    # Frank leaves, then Grace does: submissions after each are decided on what is stored.
    people.change_user(ChangeUser(user_id=org.person(FRANK), active=False))
    [second] = _submit(awaited, service, _large(org))
    assert org.person(FRANK) not in _approver_ids(second)
    people.change_user(ChangeUser(user_id=org.person(GRACE), active=False))
    with pytest.raises(InactiveUser):
        _submit(awaited, service, _large(org))

    # Back again: a refusal on what was read before she came back is not the answer.
    people.change_user(ChangeUser(user_id=org.person(GRACE), active=True))
    [third] = _submit(awaited, service, _large(org))
    assert _approver_ids(third) == _approver_ids(second)
    viewer = Viewer.whole_company(org.id)
    library = ExpenseService(store.unit_of_work, TickingClock())
    assert [e.id for e in library.list_expenses(viewer).items] == [
        third.expense.id,
        second.expense.id,
        first.expense.id,
    ]


def test_an_add_over_a_changed_organisation_writes_nothing(backend: Backend) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    service = _submitting(store, awaited)
    [first] = _submit(awaited, service, _large(org))

    async def overtaken() -> None:
        basis = await awaited.submission_basis(UserId(org.person(GRACE)), org.large.id)
        OrgService(store.unit_of_work).change_user(
            ChangeUser(user_id=org.person(EVE), name="Eve Davis-Moreau")
        )
        with pytest.raises(OrgChanged):
            await awaited.add(basis, first.expense, (), ())

    while_open(awaited, overtaken)

    viewer = Viewer.whole_company(org.id)
    library = ExpenseService(store.unit_of_work, TickingClock())
    assert [e.id for e in library.list_expenses(viewer).items] == [first.expense.id]
    with store.unit_of_work() as uow:
        told = {e.expense_id for e in uow.outbox.undispatched(100_000) if e.company_id == org.id}
    assert told == {first.expense.id}


def test_what_is_recalled_is_a_submission_under_a_policy_that_exists(backend: Backend) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    grace = UserId(org.person(GRACE))
    missing = PolicyId(org.large.id + 10_000)

    async def read_twice() -> tuple[bool, bool]:
        for policy_id in (org.large.id, missing):
            await awaited.submission_basis(grace, policy_id)
        named = await awaited.submission_basis(grace, org.large.id)
        unknown = await awaited.submission_basis(grace, missing)
        assert unknown.policy is None
        return named.recalled, unknown.recalled

    recalled = while_open(awaited, read_twice)
    # Memory reads every time; PostgreSQL recalls the read of the policy found only.
    assert recalled == ((False, False) if isinstance(store, MemoryStore) else (True, False))


def _by_category(org: Org, amount: str) -> SubmitExpense:
    return SubmitExpense(user_id=org.person(GRACE), category="equipment", amount=money(amount))


def _no_thread(work: Callable[[], T]) -> Awaitable[T]:
    raise AssertionError("handed to a thread")


def test_a_submission_by_category_is_decided_without_a_thread(backend: Backend) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    library = ExpenseService(store.unit_of_work, TickingClock())
    service = AwaitedExpenseService(library, awaited, _no_thread)
    # Twice each: the second time PostgreSQL recalls what it read the first.
    commands = [_by_category(org, amount) for amount in ("10.00", "2500.00") for _ in (1, 2)]

    submitted = _submit(awaited, service, *commands)

    assert [s.expense.policy_id for s in submitted] == [org.small.id] * 2 + [org.large.id] * 2
    for made, command in zip(submitted, commands, strict=True):
        assert _approver_ids(made) == _approver_ids(library.submit(command))


def test_a_submission_by_category_picks_among_the_policies_as_they_are(backend: Backend) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    service = _submitting(store, awaited)
    # Small equipment first: the category's policies as they are now are read (and recalled
    # on PostgreSQL), not yet the large policy's approvers.
    [small] = _submit(awaited, service, _by_category(org, "10.00"))
    assert small.expense.policy_id == org.small.id

    # Large equipment is replaced by a policy of one step; the large submission after it goes
    # to the new policy, not to the one the earlier read of the category saw.
    replacement = OrgService(store.unit_of_work).create_policy(
        NewPolicy(
            company_id=org.id,
            category="equipment",
            name="Large Equipment, one step",
            min_amount=money("2000.00"),
            max_amount=org.large.max_amount,
            steps=steps(6),
            replaces=org.large.id,
        )
    )
    [large] = _submit(awaited, service, _by_category(org, "2500.00"))

    assert large.expense.policy_id == replacement.id
    assert _approver_ids(large) == [org.person(FRANK)]


def test_a_bearer_token_is_checked_and_its_use_noted_without_a_thread(backend: Backend) -> None:
    store, awaited = backend
    org = tech_corp(store.unit_of_work)
    clock = SettableClock()
    library = AccessService(store.unit_of_work, clock)
    token = library.issue_token(org.person(GRACE))

    service = AwaitedAccessService(library, awaited, _no_thread)

    async def authenticate() -> Member:
        return await service.authenticate(token)

    member = while_open(awaited, authenticate)

    assert member.id == org.person(GRACE)
    [record] = library.tokens(ListTokens(user_id=org.person(GRACE)))
    assert record.last_used_at == clock.at
