"""The HTTP API's busiest use cases, awaited: a submission, an approval and a status page on an
event loop, their reads and their one write awaited (`ports.AwaitedExpenses`) rather than
holding a thread each while the database answers.

Every decision comes from the same functions as `ExpenseService`'s (`submitter_of`,
`named_policy`, `submission`, `approving`, `check_decider`, `notices`); only the waiting
differs. What the quick path does not handle by itself is handed to `ExpenseService` as a
whole, off the loop (`Offload`), so that the answer is the synchronous service's own:

- a use case under an idempotency key;
- a decision whose expense is not found (which error it is takes more reads);
- a refused decision of a verified caller, who may not even see the expense
  (`ExpenseService._hidden`);
- a decision overtaken by another write between its read and its write (`ExpenseChanged`:
  nothing of it was written);
- a submission whose organisation changed between its read and its write (`OrgChanged`:
  nothing of it was written), and one refused on what the store recalled of an earlier read
  (`SubmissionBasis.recalled`): the organisation may have changed since;
- a submission by category whose choice of policy and that policy's approver pool were read at
  different states of the organisation.

A submission by category reads its category's policies first (`category_basis`), then what a
submission naming the policy they pick reads; a store may recall both.

A submission's or an approval's statements run on one connection held for the use case
(`AwaitedExpenses.held`), released before anything is handed over. Without a store that awaits
(`store` None: SQLite, or traced units of work), every use case is handed over.

In token mode every request first finds its bearer token's holder: `AwaitedAccessService`
reads the token and notes its use awaited (`ports.AwaitedTokens`), with the checks of
`AccessService.authenticate`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import attrs

from expense_core.errors import DomainError, ExpenseChanged, Forbidden, OrgChanged
from expense_core.model import ExpenseId, Member
from expense_core.notifications import notices
from expense_core.policies import match_policy
from expense_core.ports import AwaitedExpenses, AwaitedTokens, SubmissionBasis
from expense_core.services.access import AccessService, bearer, token_parts
from expense_core.services.expenses import (
    ApproveStep,
    ExpenseService,
    SubmitExpense,
    Submitted,
    approving,
    check_decider,
    named_policy,
    submission,
    submitter_of,
)
from expense_core.tokens import NOTE_USE_EVERY, use_worth_noting
from expense_core.views import ExpenseView
from expense_core.visibility import Viewer
from expense_core.workflow import Decision

T = TypeVar("T")


class Offload(Protocol):
    """Runs a synchronous call where it may block (a thread), and awaits its result."""

    def __call__(self, work: Callable[[], T], /) -> Awaitable[T]: ...


@attrs.frozen
class AwaitedExpenseService:
    """`ExpenseService`'s submit, approve and status, to be awaited."""

    expenses: ExpenseService
    store: AwaitedExpenses | None
    offload: Offload

    async def submit(self, cmd: SubmitExpense) -> Submitted:
        """As `ExpenseService.submit`."""
        store = self.store
        if (
            store is not None
            and (cmd.policy_id is None) != (cmd.category is None)
            and cmd.idempotency_key is None
        ):
            async with store.held():
                submitted = await self._submitted(store, cmd)
            if submitted is not None:
                return submitted
        return await self.offload(functools.partial(self.expenses.submit, cmd))

    async def _submitted(self, store: AwaitedExpenses, cmd: SubmitExpense) -> Submitted | None:
        """The submission stored, or None for the library to make."""
        basis = await self._basis(store, cmd)
        if basis is None:
            return None
        decided = None
        try:
            submitter = submitter_of(cmd, basis.member)
            policy = named_policy(cmd, basis.policy)
            if basis.pool is not None:
                now = self.expenses.clock.now()
                decided = submission(cmd, submitter, policy, basis.pool, now)
        except DomainError:
            if not basis.recalled:
                raise
            store.forget(basis)
        if decided is None:
            return None
        decision, routed = decided
        expense, events = decision.expense, decision.events
        try:
            stored = await store.add(basis, expense, events, notices(None, expense, events))
        except OrgChanged:
            return None
        return Submitted(stored, routed)

    async def _basis(self, store: AwaitedExpenses, cmd: SubmitExpense) -> SubmissionBasis | None:
        """What the submission is decided on: the policy it names, or the one its category
        picks for its amount, read with the submitter and the approver pool; None for the
        library to decide (a refusal on a recalled read, or reads of two states)."""
        if cmd.policy_id is not None:
            return await store.submission_basis(cmd.user_id, cmd.policy_id)
        assert cmd.category is not None  # noqa: S101 -- exactly one was checked by `submit`
        chosen = await store.category_basis(cmd.user_id, cmd.category)
        try:
            submitter_of(cmd, chosen.member)
            policy = match_policy(chosen.policies, cmd.category, cmd.amount)
        except DomainError:
            if not chosen.recalled:
                raise
            store.forget(chosen)
            return None
        basis = await store.submission_basis(cmd.user_id, policy.id)
        if basis.seen != chosen.seen or basis.policy is None:
            # The organisation moved between the two reads (or one was recalled from before a
            # move that the other saw): the choice may not hold, and nothing shows which read
            # is the older.
            store.forget(chosen)
            store.forget(basis)
            return None
        return basis

    async def approve(self, cmd: ApproveStep) -> Decision:
        """As `ExpenseService.approve`."""
        store = self.store
        if store is not None and cmd.idempotency_key is None:
            async with store.held():
                decision = await self._approved(store, cmd)
            if decision is not None:
                return decision
        return await self.offload(functools.partial(self.expenses.approve, cmd))

    async def _approved(self, store: AwaitedExpenses, cmd: ApproveStep) -> Decision | None:
        """The approval stored, or None for the library to make."""
        basis = await store.basis_for_decision(cmd.company_id, cmd.user_id, cmd.expense_id)
        if basis is None:
            return None
        check_decider(basis.role, cmd.user_id)
        before = basis.expense
        try:
            decision = approving(cmd)(before, basis.covers, self.expenses.clock.now())
        except Forbidden:
            if cmd.company_id is None:
                raise
            return None
        after, events = decision.expense, decision.events
        try:
            await store.save_decision(basis, after, events, notices(before, after, events))
        except ExpenseChanged:
            return None
        return decision

    async def status(self, expense_id: ExpenseId, viewer: Viewer | None = None) -> ExpenseView:
        """As `ExpenseService.status`."""
        store = self.store
        if store is None:
            return await self.offload(functools.partial(self.expenses.status, expense_id, viewer))
        if viewer is None:
            return await store.view(None, expense_id)
        return await store.view(viewer.company_id, expense_id, self.expenses.sight_of(viewer))


@attrs.frozen
class AwaitedAccessService:
    """`AccessService.authenticate`, to be awaited: in token mode every request asks it."""

    access: AccessService
    store: AwaitedTokens | None
    offload: Offload

    async def authenticate(self, token: str) -> Member:
        """As `AccessService.authenticate`, by the same checks (`access.bearer`)."""
        store = self.store
        if store is None:
            return await self.offload(functools.partial(self.access.authenticate, token))
        token_id, secret = token_parts(token)
        found = await store.holder(token_id)
        now = self.access.clock.now()
        checked = bearer(found, secret, now)
        if use_worth_noting(checked.token, now):
            await store.note_use(checked.token.id, now, now - NOTE_USE_EVERY)
        return checked.member
