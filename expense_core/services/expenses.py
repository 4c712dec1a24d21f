"""Expenses: submit, decide on and read them; each use case one unit of work.

Commands name their actor by `user_id`; a `company_id`, when the caller already knows it (a
verified token), saves looking the actor up. Results carry what the API's responses need.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import attrs

from expense_core import approvers, workflow
from expense_core.approvers import ApproverPool, StepExplanation
from expense_core.delegation import Cover
from expense_core.errors import (
    DomainError,
    ExpenseChanged,
    Forbidden,
    IdempotencyKeyRace,
    IdempotencyKeyReused,
    InvalidBulkSize,
    InvalidInput,
    PolicyChoiceRequired,
    ReadOnlyRole,
    Unavailable,
    UnknownExpense,
    UnknownPolicy,
    UnknownUser,
)
from expense_core.model import (
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    Member,
    Money,
    Policy,
    PolicyId,
    Role,
    UserId,
)
from expense_core.notifications import notices
from expense_core.policies import check_policy_covers, match_policy
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import (
    actor,
    check_page,
    check_writer,
    checked_actor,
    page_of,
    save_decision,
)
from expense_core.views import ExpenseSummary, ExpenseView, InboxItem, Page
from expense_core.visibility import Sight, Viewer
from expense_core.workflow import Decision

KEY_LIMIT = 255
BULK_LIMIT = 100


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
        # It names no use case, as the keys already stored were fingerprinted: its first item,
        # a user id, keeps it apart from a decision's.
        return _fingerprint(
            self.user_id, self.policy_id, self.category, _cents(self.amount), self.description
        )


class Keyed(Protocol):
    """A command a client may retry under an idempotency key."""

    @property
    def idempotency_key(self) -> str | None: ...

    def fingerprint(self) -> str:
        """What makes two requests the same; it names the use case, so a key used for one
        request is never taken for another's."""
        ...


@attrs.frozen(kw_only=True)
class ApproveStep:
    expense_id: ExpenseId
    user_id: UserId
    comments: str | None = None
    company_id: CompanyId | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        return _fingerprint("approve", self.expense_id, self.user_id, self.comments)


@attrs.frozen(kw_only=True)
class RejectExpense:
    expense_id: ExpenseId
    user_id: UserId
    reason: str | None
    company_id: CompanyId | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        return _fingerprint("reject", self.expense_id, self.user_id, self.reason)


@attrs.frozen(kw_only=True)
class WithdrawExpense:
    expense_id: ExpenseId
    user_id: UserId
    company_id: CompanyId | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        return _fingerprint("withdraw", self.expense_id, self.user_id)


class BulkAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@attrs.frozen(kw_only=True)
class BulkDecision:
    """One decision of a bulk call: approve with comments, or reject with a reason."""

    expense_id: ExpenseId
    action: BulkAction
    comment: str | None = None  # the approval's comments, or the rejection's reason


@attrs.frozen(kw_only=True)
class DecideInBulk:
    """Up to `BULK_LIMIT` decisions of one approver, each made on its own."""

    user_id: UserId
    decisions: tuple[BulkDecision, ...]
    company_id: CompanyId | None = None


@attrs.frozen(kw_only=True)
class SendBack:
    """The current step's approver returns the expense to its submitter, saying why."""

    expense_id: ExpenseId
    user_id: UserId
    reason: str | None
    company_id: CompanyId | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        return _fingerprint("send_back", self.expense_id, self.user_id, self.reason)


@attrs.frozen(kw_only=True)
class ResubmitExpense:
    """The submitter resubmits a returned expense; fields left out keep their values.

    A new `policy_id`, or a `category` whose policy covers the amount, moves it to another
    policy; neither keeps its policy, which must still be active and cover the amount.
    """

    expense_id: ExpenseId
    user_id: UserId
    amount: Money | None = None
    description: str | None = None
    policy_id: PolicyId | None = None
    category: str | None = None
    company_id: CompanyId | None = None
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        return _fingerprint(
            "resubmit",
            self.expense_id,
            self.user_id,
            _cents(self.amount),
            self.description,
            self.policy_id,
            self.category,
        )


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


@attrs.frozen
class _Decided:
    """A decision as its unit of work made it; a resubmission made just now carries the
    approvers it was routed to, in step order (a replay, made earlier, carries none)."""

    decision: Decision
    routed: tuple[Member, ...] | None = None


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
            ReadOnlyRole: the submitter is an auditor.
            PolicyChoiceRequired: neither or both of policy_id and category were given.
            UnknownPolicy, PolicyInactive, AmountOutsidePolicy, NoPolicyFor: no usable policy.
            NoApproverForStep: some step has nobody eligible; nothing is written.
            IdempotencyKeyReused: the key was used for a different request.
            InvalidAmount, InvalidText: a zero amount, an over-long description.
        """
        if (cmd.policy_id is None) == (cmd.category is None):
            raise PolicyChoiceRequired
        if cmd.idempotency_key is not None:
            _check_key(cmd.idempotency_key)
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
            # The submitter and the policies to choose from come in one read; with a policy
            # named, the approvers its steps may choose from too.
            named: Policy | None = None
            pool: ApproverPool | None = None
            policy_id = cmd.policy_id
            if policy_id is None:
                assert cmd.category is not None  # noqa: S101 -- exactly one was checked above
                member, candidates = uow.org.member_with_policies(cmd.user_id, cmd.category)
            else:
                member, named, pool = uow.org.member_with_policy_and_pool(cmd.user_id, policy_id)
            submitter = submitter_of(cmd, member)
            if cmd.idempotency_key is not None:
                replay = _recall(uow, cmd, submitter)
                if replay is not None:
                    return replay
            if policy_id is None:
                assert cmd.category is not None  # noqa: S101 -- as above
                policy = match_policy(candidates, cmd.category, cmd.amount)
            else:
                policy = named_policy(cmd, named)
            if pool is None:
                pool = uow.org.approver_pool(submitter, policy.steps)
            decision, routed = submission(cmd, submitter, policy, pool, self.clock.now())
            if cmd.idempotency_key is None:
                uow.commit_next_write()  # the expense, its steps, events and notices: one write
            stored = uow.expenses.add(
                decision.expense, decision.events, notices(None, decision.expense, decision.events)
            )
            if cmd.idempotency_key is not None:
                uow.idempotency.remember(
                    submitter.id, cmd.idempotency_key, cmd.fingerprint(), stored.id
                )
            uow.commit()
        return Submitted(stored, routed)

    def _replay(self, cmd: SubmitExpense) -> Submitted | None:
        with self.new_uow() as uow:
            return _recall(uow, cmd, actor(uow, cmd.user_id, cmd.company_id))

    def approve(self, cmd: ApproveStep) -> Decision:
        """Approve the actor's step of an expense, or, as a delegate, an absent approver's; with
        an idempotency key, at most once.

        Raises:
            UnknownUser, InactiveUser: no such actor, or an inactive one.
            UnknownExpense: no such expense in the actor's company, or (with a company given)
                a refusal on one the actor does not see (`visibility`).
            ReadOnlyRole: the actor is an auditor.
            ExpenseClosed, SelfApproval, NotYourStep, StepAlreadyDecided, StepNotReached,
            DelegateNotEligible, InvalidText: see `workflow.approve`.
            IdempotencyKeyReused, InvalidInput: see `_once`.
        """
        return self._decide(cmd.expense_id, cmd.user_id, cmd.company_id, approving(cmd), cmd)

    def reject(self, cmd: RejectExpense) -> Decision:
        """Reject an expense at the actor's current step, or, as a delegate, an absent
        approver's; with an idempotency key, at most once.

        Raises:
            As `approve`, plus ReasonRequired and OptionalStepCannotReject.
        """
        return self._decide(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, covers, at: workflow.reject(e, cmd.user_id, cmd.reason, at, covers),
            cmd,
        )

    def withdraw(self, cmd: WithdrawExpense) -> Decision:
        """Withdraw a pending expense on its submitter's word; with an idempotency key, at
        most once.

        Raises:
            UnknownUser, UnknownExpense, NotSubmitter, ExpenseClosed.
            ReadOnlyRole: the actor is an auditor (one who submitted it before becoming one).
            IdempotencyKeyReused, InvalidInput: see `_once`.
        """
        return self._decide(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, _covers, at: workflow.withdraw(e, cmd.user_id, at),
            cmd,
        )

    def decide_in_bulk(self, cmd: DecideInBulk) -> tuple[Decision | DomainError, ...]:
        """Make each decision on its own, in order, exactly as `approve` or `reject` would: one
        unit of work each, so a refused decision undoes none of the others.

        Answers each decision, or the domain error that refused it, in input order. Once the
        store is unavailable the decisions left are not tried: each answers that same error.

        Raises:
            InvalidBulkSize: no decisions, or more than BULK_LIMIT; nothing is decided.
            ReadOnlyRole: the approver is an auditor; nothing is decided.
        """
        if not 1 <= len(cmd.decisions) <= BULK_LIMIT:
            raise InvalidBulkSize(len(cmd.decisions), BULK_LIMIT)
        results: list[Decision | DomainError] = []
        unavailable: Unavailable | None = None
        try:
            self._check_bulk_writer(cmd)
        except Unavailable as exc:
            unavailable = exc
        for item in cmd.decisions:
            if unavailable is not None:
                results.append(unavailable)
                continue
            try:
                results.append(self._decide_item(cmd, item))
            except Unavailable as exc:
                unavailable = exc
                results.append(exc)
            except DomainError as refusal:
                results.append(refusal)
        return tuple(results)

    def _check_bulk_writer(self, cmd: DecideInBulk) -> None:
        """Refuse an auditor's bulk call as a whole; an actor who is unknown (or of another
        company) or inactive is told so by each decision, as before."""
        with self.new_uow() as uow:
            try:
                member = uow.org.member(cmd.user_id)
            except UnknownUser:
                return
        if cmd.company_id is None or member.user.company_id == cmd.company_id:
            check_writer(member, "decide on expenses")

    def _decide_item(self, cmd: DecideInBulk, item: BulkDecision) -> Decision:
        if item.action is BulkAction.APPROVE:
            return self.approve(
                ApproveStep(
                    expense_id=item.expense_id,
                    user_id=cmd.user_id,
                    comments=item.comment,
                    company_id=cmd.company_id,
                )
            )
        return self.reject(
            RejectExpense(
                expense_id=item.expense_id,
                user_id=cmd.user_id,
                reason=item.comment,
                company_id=cmd.company_id,
            )
        )

    def send_back(self, cmd: SendBack) -> Decision:
        """Send an expense back to its submitter from the actor's current step.

        Raises:
            As `approve`, plus ReasonRequired and OptionalStepCannotSendBack.
        """
        return self._decide(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, covers, at: workflow.send_back(e, cmd.user_id, cmd.reason, at, covers),
            cmd,
        )

    def resubmit(self, cmd: ResubmitExpense) -> Submitted:
        """Route a returned expense again from step 1 under today's organisation and policies.

        PostgreSQL: five statements (the submitter, the locking read, the policy, the pool, the
        write); four by category, whose policies come with the submitter.

        Raises:
            PolicyChoiceRequired: both policy_id and category were given.
            UnknownUser, InactiveUser: the actor does not exist or is inactive.
            ReadOnlyRole: the actor is an auditor.
            UnknownExpense: no such expense in the actor's company, or (with a company given)
                a refusal on one the actor does not see.
            NotSubmitter, ExpenseNotReturned: see `workflow.check_resubmission`.
            UnknownPolicy, PolicyInactive, AmountOutsidePolicy, NoPolicyFor: no usable policy.
            NoApproverForStep: some step has nobody eligible; nothing is written.
            InvalidAmount, InvalidText: a zero amount, an over-long description.
        """
        if cmd.policy_id is not None and cmd.category is not None:
            raise PolicyChoiceRequired("at most one")

        def run(uow: UnitOfWork) -> _Decided:
            if cmd.category is not None:
                member, candidates = uow.org.member_with_policies(cmd.user_id, cmd.category)
                submitter = checked_actor(member, cmd.user_id, cmd.company_id)
            else:
                submitter = actor(uow, cmd.user_id, cmd.company_id)
            company = submitter.user.company_id
            expense = uow.expenses.get_for_update(company, cmd.expense_id)
            # After the lookup: another company's expense stays unknown, to an auditor too.
            check_writer(submitter, "resubmit expenses")
            # Refuse a wrong actor or state before routing can fail for another reason.
            try:
                workflow.check_resubmission(expense, submitter.id)
            except Forbidden:
                if cmd.company_id is not None and self._hidden(uow, expense, submitter.id):
                    raise UnknownExpense(cmd.expense_id) from None
                raise
            amount = expense.amount if cmd.amount is None else cmd.amount
            if cmd.category is not None:
                policy = match_policy(candidates, cmd.category, amount)
            else:
                policy_id = expense.policy_id if cmd.policy_id is None else cmd.policy_id
                policy = check_policy_covers(uow.org.policy(company, policy_id), amount)
            pool = uow.org.approver_pool(submitter, policy.steps)
            routing = approvers.resolve_approvers(submitter, policy.steps, pool)
            decision = workflow.resubmit(
                expense,
                submitter=submitter,
                policy=policy,
                amount=amount,
                description=expense.description if cmd.description is None else cmd.description,
                routing=routing,
                at=self.clock.now(),
            )
            save_decision(uow, expense, decision)
            return _Decided(decision, tuple([r.approver for r in routing]))

        decided = self._commit_decision(cmd.user_id, cmd, run)
        decision, routed = decided.decision, decided.routed
        if routed is None:
            # A replay: the first request's approvers, as stored.
            with self.new_uow() as uow:
                routed = tuple([uow.org.member(a.approver_id) for a in decision.expense.approvals])
        return Submitted(decision.expense, routed, replayed=decision.replayed)

    def _decide(
        self,
        expense_id: ExpenseId,
        user_id: UserId,
        company_id: CompanyId | None,
        decide: Decide,
        keyed: Keyed | None = None,
    ) -> Decision:
        """Apply one decision to the expense, store what it changed and commit; with an
        idempotency key, at most once.

        Without a key the decision's one write is said to be the only one (PostgreSQL: the
        expense is read unlocked and written in one statement, if unchanged, outside a
        transaction). If another write came between the two (`ExpenseChanged`), it is decided
        again on the expense locked, which cannot fail that way.
        """

        def run(uow: UnitOfWork) -> _Decided:
            return _Decided(self._apply(uow, expense_id, user_id, company_id, decide))

        if keyed is not None and keyed.idempotency_key is not None:
            return self._commit_decision(user_id, keyed, run).decision
        try:
            return self._commit_decision(user_id, None, run, alone=True).decision
        except ExpenseChanged:
            return self._commit_decision(user_id, None, run).decision

    def _commit_decision(
        self,
        user_id: UserId,
        keyed: Keyed | None,
        run: Callable[[UnitOfWork], _Decided],
        *,
        alone: bool = False,
    ) -> _Decided:
        """Run a decision's writes (`run`, uncommitted) in a unit of work and commit them; a
        command with an idempotency key goes through `_once`, to be decided at most once.
        `alone` says the decision's one write is its unit of work's only one
        (`UnitOfWork.commit_next_write`)."""
        key = None if keyed is None else keyed.idempotency_key
        if keyed is not None and key is not None:
            return self._once(user_id, key, keyed.fingerprint(), run)
        with self.new_uow() as uow:
            if alone:
                uow.commit_next_write()
            decision = run(uow)
            uow.commit()
        return decision

    def _apply(
        self,
        uow: UnitOfWork,
        expense_id: ExpenseId,
        user_id: UserId,
        company_id: CompanyId | None,
        decide: Decide,
    ) -> Decision:
        """Apply one decision to the expense, locked, and write what it changed, uncommitted.
        The expense comes with the covers its approvers' delegations give the actor, read in
        the same step (no extra round trip), for a decision a delegate may take."""
        found = uow.expenses.get_for_decision(company_id, user_id, expense_id)
        if found is None:
            if company_id is None:
                # The actor's company and the expense come in one step; on a miss, the actor
                # decides the error as if looked up first (unknown, inactive).
                actor(uow, user_id, None)
            raise UnknownExpense(expense_id)
        expense, covers, role = found
        check_decider(role, user_id)
        try:
            decision = decide(expense, covers, self.clock.now())
        except Forbidden:
            if company_id is not None and self._hidden(uow, expense, user_id):
                raise UnknownExpense(expense_id) from None
            raise
        save_decision(uow, expense, decision)
        return decision

    def _hidden(self, uow: UnitOfWork, expense: Expense, user_id: UserId) -> bool:
        """Whether a verified actor refused on an expense may not see it: then the refusal says
        the expense is unknown, as a read would, rather than that it exists. Only a refusal
        pays these reads. Demo mode (no company given) keeps the seed's answers."""
        sight = Viewer.of(uow.org.member(user_id)).sight(self.clock.now())
        if sight is None:
            return False
        try:
            uow.expenses.get(expense.company_id, expense.id, sight)
        except UnknownExpense:
            return True
        return False

    def _once(
        self,
        user_id: UserId,
        key: str,
        fingerprint: str,
        run: Callable[[UnitOfWork], _Decided],
    ) -> _Decided:
        """Make a keyed decision at most once. The first request with the key runs `run` (which
        writes, uncommitted) and stores its decision under the key in the same transaction; a
        retry answers that decision again, `replayed`, and changes nothing.

        The decision is tried before the key is read: a retry is usually refused (its first
        request decided the step), and only then is the key looked up; a retry that would pass
        again, or a twin that waited for the first to commit, fails to store the key and is
        undone. So a decision under a new key costs one statement more than without one.

        Raises:
            IdempotencyKeyReused: the user's key was stored by another request.
            InvalidInput: the key is empty or longer than KEY_LIMIT.
            Whatever `run` raises, when the key is not stored; then nothing is stored.
        """
        _check_key(key)
        try:
            with self.new_uow() as uow:
                try:
                    decided = run(uow)
                except Unavailable:
                    raise
                except DomainError:
                    replay = _replayed(uow, user_id, key, fingerprint)
                    if replay is None:
                        raise
                    return _Decided(replay)
                uow.idempotency.remember_decision(user_id, key, fingerprint, decided.decision)
                uow.commit()
            return decided
        except IdempotencyKeyRace:
            # Stored first, by an earlier request or by a twin that committed meanwhile.
            with self.new_uow() as uow:
                replay = _replayed(uow, user_id, key, fingerprint)
            if replay is None:
                raise
            return _Decided(replay)

    def status(self, expense_id: ExpenseId, viewer: Viewer | None = None) -> ExpenseView:
        """The status page of an expense, if the viewer sees it; without a viewer, any
        company's (demo mode, the command line).

        Raises:
            UnknownExpense: no such expense in the viewer's company, or one they do not see.
        """
        with self.new_uow() as uow:
            if viewer is None:
                return uow.expenses.view(None, expense_id)
            return uow.expenses.view(viewer.company_id, expense_id, self.sight_of(viewer))

    def statuses(self, expense_ids: Sequence[ExpenseId]) -> dict[ExpenseId, ExpenseView]:
        """The status pages of those of `expense_ids` that exist, in any company, read at once
        (what the notification worker tells of a batch of deliveries)."""
        with self.new_uow() as uow:
            return {view.id: view for view in uow.expenses.views(expense_ids)}

    def list_expenses(
        self,
        viewer: Viewer,
        *,
        user_id: UserId | None = None,
        status: ExpenseStatus | None = None,
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[ExpenseSummary]:
        """A page of the expenses of the viewer's company they see, newest first; `cursor`
        continues a previous page. Expenses the viewer does not see are not counted.

        Raises:
            InvalidInput: a limit outside 1..100 or a cursor that is not a positive id.
        """
        check_page(cursor, limit)
        with self.new_uow() as uow:
            items = uow.expenses.summaries(
                viewer.company_id,
                user_id=user_id,
                status=status,
                before=ExpenseId(cursor) if cursor is not None else None,
                limit=limit + 1,
                sight=self.sight_of(viewer),
            )
        return page_of(items, limit, lambda s: s.id)

    def inbox(
        self,
        approver_id: UserId,
        viewer: Viewer | None = None,
        *,
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[InboxItem]:
        """The steps an approver can act on now, oldest expense first: their own, and those
        they may decide for an absent approver who named them delegate (`on_behalf_of`).

        An inbox is its approver's own; others' are read only by a viewer who sees the whole
        company. Without a viewer, any approver's (demo mode).

        Raises:
            UnknownUser: no such approver (in the viewer's company), or someone else's inbox to
                a viewer who does not see the whole company.
            InvalidInput: a bad limit or cursor.
        """
        check_page(cursor, limit)
        if viewer is not None and not viewer.sees_company and viewer.user_id != approver_id:
            raise UnknownUser(approver_id)
        with self.new_uow() as uow:
            company = (
                viewer.company_id
                if viewer is not None
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

    def history(self, expense_id: ExpenseId, viewer: Viewer) -> tuple[ExpenseEvent, ...]:
        """Every change of an expense the viewer sees, oldest first.

        Raises:
            UnknownExpense: no such expense in the viewer's company, or one they do not see.
        """
        with self.new_uow() as uow:
            return uow.expenses.history(viewer.company_id, expense_id, self.sight_of(viewer))

    def explain(self, expense_id: ExpenseId, viewer: Viewer) -> RoutingExplanation:
        """Say, step by step, who today's organisation routes the expense to, and why.

        Raises:
            UnknownExpense: no such expense in the viewer's company, or one they do not see.
        """
        company_id = viewer.company_id
        with self.new_uow() as uow:
            expense = uow.expenses.get(company_id, expense_id, self.sight_of(viewer))
            submitter = uow.org.member(expense.user_id)
            policy = uow.org.policy(company_id, expense.policy_id)
            pool = uow.org.approver_pool(submitter, policy.steps)
        return RoutingExplanation(expense, approvers.explain(submitter, policy.steps, pool))

    def sight_of(self, viewer: Viewer) -> Sight | None:
        """What the viewer sees of their company's expenses now (None: all of them)."""
        # Delegations count while in force: read the clock only for someone it may concern.
        return None if viewer.sees_company else viewer.sight(self.clock.now())

    def company_of(self, user_id: UserId) -> CompanyId:
        """The company of an active user: who a caller acts for.

        Raises:
            UnknownUser, InactiveUser.
        """
        with self.new_uow() as uow:
            return actor(uow, user_id, None).user.company_id


Decide = Callable[[Expense, tuple[Cover, ...], datetime], Decision]


def submitter_of(cmd: SubmitExpense, member: Member) -> Member:
    """The member submitting, if they may.

    Raises:
        UnknownUser, InactiveUser: see `checked_actor`. ReadOnlyRole: an auditor.
    """
    submitter = checked_actor(member, cmd.user_id, cmd.company_id)
    check_writer(submitter, "submit expenses")
    return submitter


def named_policy(cmd: SubmitExpense, named: Policy | None) -> Policy:
    """The policy the submission names, found in the submitter's company, if it covers the
    amount.

    Raises:
        UnknownPolicy: none was found. PolicyInactive, AmountOutsidePolicy.
    """
    if named is None:
        assert cmd.policy_id is not None  # noqa: S101 -- only asked of a named policy
        raise UnknownPolicy(cmd.policy_id)
    return check_policy_covers(named, cmd.amount)


def submission(
    cmd: SubmitExpense, submitter: Member, policy: Policy, pool: ApproverPool, at: datetime
) -> tuple[Decision, tuple[Member, ...]]:
    """The new expense, routed to an approver per step from `pool`, and those approvers in
    step order.

    Raises:
        NoApproverForStep, InvalidAmount, InvalidText: see `workflow.submit`.
    """
    routing = approvers.resolve_approvers(submitter, policy.steps, pool)
    decision = workflow.submit(
        submitter=submitter,
        policy=policy,
        amount=cmd.amount,
        description=cmd.description,
        routing=routing,
        at=at,
    )
    return decision, tuple([r.approver for r in routing])


def approving(cmd: ApproveStep) -> Decide:
    """The decision an approval makes on an expense, with the covers the actor holds."""
    return lambda e, covers, at: workflow.approve(e, cmd.user_id, cmd.comments, at, covers)


def check_decider(role: Role | None, user_id: UserId) -> None:
    """Refuse a decision by an auditor: auditors change nothing, not even a step still assigned
    to them or an expense they submitted before becoming one (the role comes with the read of
    the expense).

    Raises:
        ReadOnlyRole.
    """
    if role is Role.AUDITOR:
        raise ReadOnlyRole(user_id, "decide on or withdraw expenses")


def _fingerprint(*request: object) -> str:
    # JSON keeps None apart from "None" and separators apart from text.
    return hashlib.sha256(json.dumps(request).encode()).hexdigest()


def _cents(amount: Money | None) -> str | None:
    """An amount as fingerprinted: equal amounts ("4000" and "4000.00") print alike."""
    return None if amount is None else f"{amount.value:.2f}"


def _check_key(key: str) -> None:
    if not 0 < len(key) <= KEY_LIMIT:
        raise InvalidInput(f"Idempotency-Key must be 1 to {KEY_LIMIT} characters")


def _replayed(uow: UnitOfWork, user_id: UserId, key: str, fingerprint: str) -> Decision | None:
    """The decision stored under the user's key, answered again; None for a key not stored.

    Raises:
        IdempotencyKeyReused: another request (another decision, a submission) stored the key.
    """
    found = uow.idempotency.recall_decision(user_id, key)
    if found is None:
        return None
    stored, decision = found
    if stored != fingerprint or decision is None:
        raise IdempotencyKeyReused(key)
    return attrs.evolve(decision, replayed=True)


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
