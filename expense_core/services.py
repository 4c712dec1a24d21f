"""Use cases: each wraps one pure decision in one unit of work, or answers one query.

Commands name their actor by `user_id`; a `company_id`, when the caller already knows it (a
verified token), saves looking the actor up. Results carry what the API's responses need.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import attrs

from expense_core import approvers, workflow
from expense_core.approvers import StepExplanation
from expense_core.errors import (
    IdempotencyKeyRace,
    IdempotencyKeyReused,
    InactiveUser,
    InvalidInput,
    InvalidOrgChange,
    PolicyChoiceRequired,
    Unauthenticated,
    UnknownLevel,
    UnknownUser,
)
from expense_core.model import (
    MOST_JUNIOR,
    MOST_SENIOR,
    ApprovalStep,
    Company,
    CompanyId,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    HierarchyLevel,
    LevelId,
    Member,
    Money,
    Policy,
    PolicyId,
    Role,
    Team,
    TeamId,
    User,
    UserId,
)
from expense_core.policies import check_new_policy, check_policy_covers, match_policy
from expense_core.ports import Clock, UnitOfWork
from expense_core.views import ExpenseSummary, ExpenseView, InboxItem, Page
from expense_core.workflow import Decision

MAX_PAGE = 100
KEY_LIMIT = 255
T = TypeVar("T")


# --- commands --------------------------------------------------------------------------------


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


# --- expenses --------------------------------------------------------------------------------


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
            submitter = _actor(uow, cmd.user_id, cmd.company_id)
            if cmd.idempotency_key is not None:
                replay = _recall(uow, cmd, submitter)
                if replay is not None:
                    return replay
            company = submitter.user.company_id
            if cmd.policy_id is not None:
                policy = check_policy_covers(uow.org.policy(company, cmd.policy_id), cmd.amount)
            else:
                assert cmd.category is not None  # noqa: S101 -- exactly one was checked above
                policy = match_policy(
                    uow.org.policies(company, cmd.category), cmd.category, cmd.amount
                )
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
            expense_id = uow.expenses.add(decision.expense, decision.events)
            if cmd.idempotency_key is not None:
                uow.idempotency.remember(
                    submitter.id, cmd.idempotency_key, cmd.fingerprint(), expense_id
                )
            uow.commit()
        return Submitted(
            attrs.evolve(decision.expense, id=expense_id), tuple(r.approver for r in routing)
        )

    def _replay(self, cmd: SubmitExpense) -> Submitted | None:
        with self.new_uow() as uow:
            return _recall(uow, cmd, _actor(uow, cmd.user_id, cmd.company_id))

    def approve(self, cmd: ApproveStep) -> Decision:
        """Approve the actor's step of an expense.

        Raises:
            UnknownUser, InactiveUser: no such actor, or an inactive one.
            UnknownExpense: no such expense in the actor's company.
            ExpenseClosed, SelfApproval, NotYourStep, StepAlreadyDecided, StepNotReached,
            InvalidText: see `workflow.approve`.
        """
        return self._decide(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, at: workflow.approve(e, cmd.user_id, cmd.comments, at),
        )

    def reject(self, cmd: RejectExpense) -> Decision:
        """Reject an expense at the actor's current step.

        Raises:
            As `approve`, plus ReasonRequired and OptionalStepCannotReject.
        """
        return self._decide(
            cmd.expense_id,
            cmd.user_id,
            cmd.company_id,
            lambda e, at: workflow.reject(e, cmd.user_id, cmd.reason, at),
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
        with self.new_uow() as uow:
            company = (
                company_id if company_id is not None else _actor(uow, user_id, None).user.company_id
            )
            expense = uow.expenses.get_for_update(company, expense_id)
            decision = decide(expense, self.clock.now())
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
        _check_page(cursor, limit)
        with self.new_uow() as uow:
            items = uow.expenses.summaries(
                company_id,
                user_id=user_id,
                status=status,
                before=ExpenseId(cursor) if cursor is not None else None,
                limit=limit + 1,
            )
        return _page(items, limit, lambda s: s.id)

    def inbox(
        self,
        approver_id: UserId,
        company_id: CompanyId | None = None,
        *,
        cursor: int | None = None,
        limit: int = 50,
    ) -> Page[InboxItem]:
        """The steps an approver can act on now, oldest expense first.

        Raises:
            UnknownUser: no such approver. InvalidInput: a bad limit or cursor.
        """
        _check_page(cursor, limit)
        with self.new_uow() as uow:
            company = (
                company_id
                if company_id is not None
                else _actor(uow, approver_id, None).user.company_id
            )
            items = uow.expenses.inbox(
                company,
                approver_id,
                after=ExpenseId(cursor) if cursor is not None else None,
                limit=limit + 1,
            )
        return _page(items, limit, lambda i: i.expense_id)

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
            return _actor(uow, user_id, None).user.company_id


def _actor(uow: UnitOfWork, user_id: UserId, company_id: CompanyId | None) -> Member:
    member = uow.org.member(user_id)
    if company_id is not None and member.user.company_id != company_id:
        raise UnknownUser(user_id)
    if not member.user.active:
        raise InactiveUser(user_id)
    return member


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


def _check_page(cursor: int | None, limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if cursor is not None and cursor < 1:
        raise InvalidInput(f"cursor must be a positive id, got {cursor}")


def _page(items: Sequence[T], limit: int, key: Callable[[T], int]) -> Page[T]:
    if len(items) > limit:
        return Page(tuple(items[:limit]), key(items[limit - 1]))
    return Page(tuple(items), None)


# --- organisation ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NewUser:
    company_id: CompanyId
    team_id: TeamId
    email: str
    name: str
    hierarchy_level_id: LevelId
    manager_id: UserId | None = None
    role: Role = Role.EMPLOYEE
    active: bool = True


@attrs.frozen(kw_only=True)
class NewPolicy:
    company_id: CompanyId
    category: str
    name: str
    min_amount: Money
    max_amount: Money
    steps: tuple[ApprovalStep, ...]
    description: str | None = None


@attrs.frozen
class OrgService:
    """Set up companies, teams, levels, users and policies, each checked before it is stored."""

    new_uow: Callable[[], UnitOfWork]

    def create_company(self, name: str) -> Company:
        """Raises: InvalidOrgChange for an empty or over-long name."""
        _check_name("company name", name)
        with self.new_uow() as uow:
            company = uow.org.add_company(name)
            uow.commit()
        return company

    def create_team(
        self, company_id: CompanyId, name: str, *, is_company_wide: bool = False
    ) -> Team:
        """Raises: UnknownCompany, InvalidOrgChange, DuplicateName."""
        _check_name("team name", name)
        with self.new_uow() as uow:
            uow.org.company(company_id)
            team = uow.org.add_team(Team(TeamId(0), company_id, name, is_company_wide))
            uow.commit()
        return team

    def create_level(
        self, company_id: CompanyId, team_id: TeamId, level_number: int, level_name: str
    ) -> HierarchyLevel:
        """Raises: UnknownTeam, InvalidOrgChange (a number outside 1..10), DuplicateName."""
        _check_name("level name", level_name)
        if not MOST_SENIOR <= level_number <= MOST_JUNIOR:
            raise InvalidOrgChange(
                f"level_number must be between {MOST_SENIOR} and {MOST_JUNIOR}, got {level_number}"
            )
        with self.new_uow() as uow:
            uow.org.team(company_id, team_id)
            level = uow.org.add_level(
                HierarchyLevel(LevelId(0), company_id, team_id, level_number, level_name)
            )
            uow.commit()
        return level

    def create_user(self, new: NewUser) -> User:
        """Raises: UnknownTeam, UnknownLevel, UnknownUser (manager), InvalidOrgChange,
        DuplicateEmail."""
        _check_name("user name", new.name, limit=255)
        email = new.email.strip()
        if not 3 <= len(email) <= 100 or "@" not in email[1:-1]:
            raise InvalidOrgChange(f"'{new.email}' is not a valid email address")
        with self.new_uow() as uow:
            uow.org.team(new.company_id, new.team_id)
            level = uow.org.level(new.company_id, new.hierarchy_level_id)
            if level.team_id != new.team_id:
                raise UnknownLevel(new.hierarchy_level_id)
            if new.manager_id is not None:
                manager = uow.org.member(new.manager_id)
                if manager.user.company_id != new.company_id:
                    raise UnknownUser(new.manager_id)
            user = uow.org.add_user(
                User(
                    id=UserId(0),
                    company_id=new.company_id,
                    team_id=new.team_id,
                    email=email,
                    name=new.name,
                    hierarchy_level_id=new.hierarchy_level_id,
                    active=new.active,
                    manager_id=new.manager_id,
                    role=new.role,
                )
            )
            uow.commit()
        return user

    def create_policy(self, new: NewPolicy) -> Policy:
        """Raises: UnknownCompany, UnknownTeam (of a step scope), InvalidPolicy, PolicyOverlap."""
        policy = Policy(
            id=PolicyId(0),
            company_id=new.company_id,
            category=new.category,
            name=new.name,
            description=new.description,
            min_amount=new.min_amount,
            max_amount=new.max_amount,
            steps=new.steps,
        )
        with self.new_uow() as uow:
            uow.org.company(new.company_id)
            for step in new.steps:
                if step.team_scope.team_id is not None:
                    uow.org.team(new.company_id, step.team_scope.team_id)
            check_new_policy(policy, uow.org.policies(new.company_id, new.category))
            stored = uow.org.add_policy(policy)
            uow.commit()
        return stored


def _check_name(what: str, name: str, limit: int = 100) -> None:
    if not name.strip() or len(name) > limit:
        raise InvalidOrgChange(f"{what} must be 1 to {limit} characters")


# --- access ----------------------------------------------------------------------------------


TOKEN_PREFIX = "et"  # noqa: S105 -- a public marker, not a secret


def _hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a plain digest is as good as a slow password hash.
    return hashlib.sha256(secret.encode()).hexdigest()


@attrs.frozen
class AccessService:
    """Issue bearer tokens to users and tell who holds one.

    A token reads `et_<id>_<secret>`: the id finds the row, the secret's hash is compared in
    constant time, and the secret itself is never stored.
    """

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def issue_token(self, user_id: UserId) -> str:
        """Issue a new token for an active user.

        Raises:
            UnknownUser, InactiveUser.
        """
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self.new_uow() as uow:
            member = _actor(uow, user_id, None)
            uow.tokens.add(token_id, member.id, _hash_secret(secret), self.clock.now())
            uow.commit()
        return f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def authenticate(self, token: str) -> Member:
        """The active user holding a token.

        Raises:
            Unauthenticated: a malformed or unknown token, or one of an inactive user.
        """
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or len(token_id) != 16 or not secret:
            raise Unauthenticated("the bearer token is malformed")
        with self.new_uow() as uow:
            found = uow.tokens.holder(token_id)
        if found is None:
            raise Unauthenticated("the bearer token is unknown or revoked")
        secret_hash, holder = found
        if not hmac.compare_digest(secret_hash, _hash_secret(secret)):
            raise Unauthenticated("the bearer token is unknown or revoked")
        if not holder.user.active:
            raise Unauthenticated(f"user {holder.id} is inactive")
        return holder
