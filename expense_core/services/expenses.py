"""Expenses: submit, decide on and read them; each use case one unit of work.

Commands name their actor by `user_id`; a `company_id`, when the caller already knows it (a
verified token), saves looking the actor up. Results carry what the API's responses need.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime

import attrs

from expense_core import approvers, workflow
from expense_core.approvers import StepExplanation
from expense_core.delegation import Cover
from expense_core.errors import (
    IdempotencyKeyRace,
    IdempotencyKeyReused,
    InvalidInput,
    PolicyChoiceRequired,
    UnknownExpense,
)
from expense_core.model import (
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    Member,
    Money,
    PolicyId,
    UserId,
)
from expense_core.policies import check_policy_covers, match_policy
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import actor, check_page, checked_actor, page_of
from expense_core.views import ExpenseSummary, ExpenseView, InboxItem, Page
from expense_core.workflow import Decision

KEY_LIMIT = 255


# --- commands and results --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubmitExpense:
    """Submit an expense under a named policy, or under the policy its category and amount pick."""

    user_id: UserId
    amount: Money
    description: str | None = None
    policy_id: PolicyId | None = None
    category: str | None = None
    company_id: CompanyId | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        """What makes two submissions the same request, for idempotency keys."""
        # JSON keeps None apart from "None" and separators apart from text; equal amounts
        # ("4000" and "4000.00") print alike.
        text = json.dumps(
            [
                self.user_id,
                self.policy_id,
                self.category,
                f"{self.amount.value:.2f}",
                self.description,
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()


@attrs.frozen(kw_only=True)
class ApproveStep:
    expense_id: ExpenseId
    user_id: UserId
    comments: str | None = None
    company_id: CompanyId | None = None


@attrs.frozen(kw_only=True)
class RejectExpense:
    expense_id: ExpenseId
    user_id: UserId
    reason: str | None
    company_id: CompanyId | None = None


@attrs.frozen(kw_only=True)
class WithdrawExpense:
    expense_id: ExpenseId
    user_id: UserId
    company_id: CompanyId | None = None


@attrs.frozen
class Submitted:
    """A stored submission: the expense and each approval's approver, in step order."""

    expense: Expense
    approvers: tuple[Member, ...]
    replayed: bool = False


@attrs.frozen
class RoutingExplanation:
    """Why an expense's steps went to whom, recomputed against today's organisation."""

    expense: Expense
    steps: tuple[StepExplanation, ...]


# --- the service -----------------------------------------------------------------------------


@attrs.frozen
class ExpenseService:
    """Submit, decide on and read expenses."""

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def submit(self, cmd: SubmitExpense) -> Submitted:
        """Route a new expense to its approvers and store it with all its approval rows.

        Raises:
            UnknownUser, InactiveUser: the submitter does not exist or is inactive.
            PolicyChoiceRequired: neither or both of policy_id and category were given.
            UnknownPolicy, PolicyInactive, AmountOutsidePolicy, NoPolicyFor: no usable policy.
            NoApproverForStep: some step has nobody eligible; nothing is written.
            IdempotencyKeyReused: the key was used for a different request.
            InvalidAmount, InvalidText: a zero amount, an over-long description.
        """
        if (cmd.policy_id is None) == (cmd.category is None):
            raise PolicyChoiceRequired
        if cmd.idempotency_key is not None and not 0 < len(cmd.idempotency_key) <= KEY_LIMIT:
            raise InvalidInput(f"Idempotency-Key must be 1 to {KEY_LIMIT} characters")
        try:
            return self._submit(cmd)
        except IdempotencyKeyRace:
            # A twin request committed first: answer with what it stored.
            replay = self._replay(cmd)
            if replay is None:
                raise
            return replay

    def _submit(self, cmd: SubmitExpense) -> Submitted:
        with self.new_uow() as uow:
            if cmd.category is not None:
                # By category: the submitter and the category's policies come in one read.
                member, candidates = uow.org.member_with_policies(cmd.user_id, cmd.category)
                submitter = checked_actor(member, cmd.user_id, cmd.company_id)
            else:
                submitter = actor(uow, cmd.user_id, cmd.company_id)
            if cmd.idempotency_key is not None:
                replay = _recall(uow, cmd, submitter)
                if replay is not None:
                    return replay
            if cmd.category is not None:
                policy = match_policy(candidates, cmd.category, cmd.amount)
            else:
                assert cmd.policy_id is not None  # noqa: S101 -- exactly one was checked above
                company = submitter.user.company_id
                policy = check_policy_covers(uow.org.policy(company, cmd.policy_id), cmd.amount)
            pool = uow.org.approver_pool(submitter, policy.steps)
            routing = approvers.resolve_approvers(submitter, policy.steps, pool)
            decision = workflow.submit(
                submitter=submitter,
                policy=policy,
                amount=cmd.amount,
                description=cmd.description,
                routing=routing,
                at=self.clock.now(),
            )
            stored = uow.expenses.add(decision.expense, decision.events)
            if cmd.idempotency_key is not None:
                uow.idempotency.remember(
                    submitter.id, cmd.idempotency_key, cmd.fingerprint(), stored.id
                )
            uow.commit()
        return Submitted(stored, tuple([r.approver for r in routing]))

    def _replay(self, cmd: SubmitExpense) -> Submitted | None:
        with self.new_uow() as uow:
            return _recall(uow, cmd, actor(uow, cmd.user_id, cmd.company_id))

    def approve(self, cmd: ApproveStep) -> Decision:
        """Approve the actor's step of an expense, or, as a delegate, an absent approver's.

        Raises:
            UnknownUser, InactiveUser: no such actor, or an inactive one.
            UnknownExpense: no such expense in the actor's company.
            ExpenseClosed, SelfApproval, NotYourStep, StepAlreadyDecided, StepNotReached,
            DelegateNotEligible, InvalidText: see `workflow.approve`.
        """
        return self._decide_as(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, covers, at: workflow.approve(e, cmd.user_id, cmd.comments, at, covers),
        )

    def reject(self, cmd: RejectExpense) -> Decision:
        """Reject an expense at the actor's current step, or, as a delegate, an absent
        approver's.

        Raises:
            As `approve`, plus ReasonRequired and OptionalStepCannotReject.
        """
        return self._decide_as(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, covers, at: workflow.reject(e, cmd.user_id, cmd.reason, at, covers),
        )

    def withdraw(self, cmd: WithdrawExpense) -> Decision:
        """Withdraw a pending expense on its submitter's word.

        Raises:
            UnknownUser, UnknownExpense, NotSubmitter, ExpenseClosed.
        """
        return self._decide(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, at: workflow.withdraw(e, cmd.user_id, at),
        )

    def _decide(
        self,
        expense_id: ExpenseId,
        user_id: UserId,
        company_id: CompanyId | None,
        decide: Callable[[Expense, datetime], Decision],
    ) -> Decision:
        """Apply one decision to the expense, locked, and store what it changed."""
        with self.new_uow() as uow:
            expense = _locked(uow, expense_id, user_id, company_id)
            decision = decide(expense, self.clock.now())
            uow.expenses.save(decision.expense, decision.events)
            uow.commit()
        return decision

    def _decide_as(
        self,
        expense_id: ExpenseId,
        user_id: UserId,
        company_id: CompanyId | None,
        decide: Callable[[Expense, tuple[Cover, ...], datetime], Decision],
    ) -> Decision:
        """As `_decide`, for a decision a delegate may take for an absent approver: the
        expense comes locked with the covers its approvers' delegations give the actor, read
        in the same step (no extra round trip)."""
        with self.new_uow() as uow:
            found = uow.expenses.get_for_decision(company_id, user_id, expense_id)
            if found is None:
                if company_id is None:
                    actor(uow, user_id, None)  # as `_locked`: an unknown actor says so first
                raise UnknownExpense(expense_id)
            expense, covers = found
            decision = decide(expense, covers, self.clock.now())
            uow.expenses.save(decision.expense, decision.events)
            uow.commit()
        return decision

    def status(self, expense_id: ExpenseId, company_id: CompanyId | None = None) -> ExpenseView:
        """The status page of an expense; without a company, any company's (demo mode).

        Raises:
            UnknownExpense: no such expense (in that company).
        """
        with self.new_uow() as uow:
            return uow.expenses.view(company_id, expense_id)

    def list_expenses(
        self,
        company_id: CompanyId,
        *,
        user_id: UserId | None = None,
        status: ExpenseStatus | None = None,
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[ExpenseSummary]:
        """A page of a company's expenses, newest first; `cursor` continues a previous page.

        Raises:
            InvalidInput: a limit outside 1..100 or a cursor that is not a positive id.
        """
        check_page(cursor, limit)
        with self.new_uow() as uow:
            items = uow.expenses.summaries(
                company_id,
                user_id=user_id,
                status=status,
                before=ExpenseId(cursor) if cursor is not None else None,
                limit=limit + 1,
            )
        return page_of(items, limit, lambda s: s.id)

    def inbox(
        self,
        approver_id: UserId,
        company_id: CompanyId | None = None,
        *,
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[InboxItem]:
        """The steps an approver can act on now, oldest expense first: their own, and those
        they may decide for an absent approver who named them delegate (`on_behalf_of`).

        Raises:
            UnknownUser: no such approver. InvalidInput: a bad limit or cursor.
        """
        check_page(cursor, limit)
        with self.new_uow() as uow:
            company = (
                company_id
                if company_id is not None
                else actor(uow, approver_id, None).user.company_id
            )
            items = uow.expenses.inbox(
                company,
                approver_id,
                after=ExpenseId(cursor) if cursor is not None else None,
                limit=limit + 1,
                as_of=self.clock.now(),
            )
        return page_of(items, limit, lambda i: i.expense_id)

    def history(self, expense_id: ExpenseId, company_id: CompanyId) -> tuple[ExpenseEvent, ...]:
        """Every change of an expense, oldest first.

        Raises:
            UnknownExpense: no such expense in this company.
        """
        with self.new_uow() as uow:
            return uow.expenses.history(company_id, expense_id)

    def explain(self, expense_id: ExpenseId, company_id: CompanyId) -> RoutingExplanation:
        """Say, step by step, who today's organisation routes the expense to, and why.

        Raises:
            UnknownExpense: no such expense in this company.
        """
        with self.new_uow() as uow:
            expense = uow.expenses.get(company_id, expense_id)
            submitter = uow.org.member(expense.user_id)
            policy = uow.org.policy(company_id, expense.policy_id)
            pool = uow.org.approver_pool(submitter, policy.steps)
        return RoutingExplanation(expense, approvers.explain(submitter, policy.steps, pool))

    def company_of(self, user_id: UserId) -> CompanyId:
        """The company of an active user: who a caller acts for.

        Raises:
            UnknownUser, InactiveUser.
        """
        with self.new_uow() as uow:
            return actor(uow, user_id, None).user.company_id


def _locked(
    uow: UnitOfWork, expense_id: ExpenseId, user_id: UserId, company_id: CompanyId | None
) -> Expense:
    """The expense a decision is about, held against concurrent decisions."""
    if company_id is not None:
        return uow.expenses.get_for_update(company_id, expense_id)
    # The actor's company and the expense in one step; on a miss, the actor decides the error
    # as if looked up first (unknown, inactive), else the expense is not in their company.
    found = uow.expenses.get_for_update_by(user_id, expense_id)
    if found is None:
        actor(uow, user_id, None)
        raise UnknownExpense(expense_id)
    return found


def _recall(uow: UnitOfWork, cmd: SubmitExpense, submitter: Member) -> Submitted | None:
    assert cmd.idempotency_key is not None  # noqa: S101 -- only called with a key
    found = uow.idempotency.recall(submitter.id, cmd.idempotency_key)
    if found is None:
        return None
    fingerprint, expense_id = found
    if fingerprint != cmd.fingerprint():
        raise IdempotencyKeyReused(cmd.idempotency_key)
    expense = uow.expenses.get(submitter.user.company_id, expense_id)
    people = tuple(uow.org.member(a.approver_id) for a in expense.approvals)
    return Submitted(expense, people, replayed=True)
