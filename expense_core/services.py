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
from datetime import UTC, datetime
from enum import Enum
from typing import Final, TypeVar

import attrs

from expense_core import approvers, workflow
from expense_core.approvers import StepExplanation
from expense_core.errors import (
    IdempotencyKeyRace,
    IdempotencyKeyReused,
    InactiveUser,
    InvalidInput,
    InvalidOrgChange,
    InvalidOrgFile,
    InvalidPolicy,
    LevelOutsideTeam,
    ManagerCycle,
    NoApproverForStep,
    OrgFileDisagrees,
    PendingApprovalsStranded,
    PolicyChoiceRequired,
    PolicyOverlap,
    ReplacementNotEligible,
    Unauthenticated,
    UnknownExpense,
    UnknownManager,
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
    ScopeKind,
    Team,
    TeamId,
    TeamScope,
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
            if cmd.category is not None:
                # By category: the submitter and the category's policies come in one read.
                member, candidates = uow.org.member_with_policies(cmd.user_id, cmd.category)
                submitter = _checked_actor(member, cmd.user_id, cmd.company_id)
            else:
                submitter = _actor(uow, cmd.user_id, cmd.company_id)
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
            expense_id = uow.expenses.add(decision.expense, decision.events)
            if cmd.idempotency_key is not None:
                uow.idempotency.remember(
                    submitter.id, cmd.idempotency_key, cmd.fingerprint(), expense_id
                )
            uow.commit()
        return Submitted(decision.expense.with_id(expense_id), tuple([r.approver for r in routing]))

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
        # As `_decide`, spelled out: approval is the most frequent decision.
        with self.new_uow() as uow:
            expense = _locked(uow, cmd.expense_id, cmd.user_id, cmd.company_id)
            decision = workflow.approve(expense, cmd.user_id, cmd.comments, self.clock.now())
            uow.expenses.save(decision.expense, decision.events)
            uow.commit()
        return decision

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
            expense = _locked(uow, expense_id, user_id, company_id)
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
        _actor(uow, user_id, None)
        raise UnknownExpense(expense_id)
    return found


def _actor(uow: UnitOfWork, user_id: UserId, company_id: CompanyId | None) -> Member:
    return _checked_actor(uow.org.member(user_id), user_id, company_id)


def _checked_actor(member: Member, user_id: UserId, company_id: CompanyId | None) -> Member:
    """The member acting, if they may: in `company_id` (when confined to one) and active."""
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


class Unchanged(Enum):
    """The value of a field a change leaves as it is."""

    UNCHANGED = "unchanged"


UNCHANGED: Final = Unchanged.UNCHANGED
EMAIL_LIMIT = 100
NEW_USER: Final = UserId(0)
"""The id of a user who has not been stored yet."""


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
    """A policy to create; `replaces` names the policy it succeeds, deactivated in the same
    unit of work (a used policy never changes: it is replaced)."""

    company_id: CompanyId
    category: str
    name: str
    min_amount: Money
    max_amount: Money
    steps: tuple[ApprovalStep, ...]
    description: str | None = None
    replaces: PolicyId | None = None
    active: bool = True


@attrs.frozen(kw_only=True)
class ChangeUser:
    """Change some of a user's fields; those left `UNCHANGED` keep their value.

    `company_id` confines the change to one company (a verified admin's); `actor_id` is who
    changes it, recorded on the `reassigned` events; `replacement_approver_id` takes over the
    pending approvals nobody else would be eligible for.
    """

    user_id: UserId
    company_id: CompanyId | None = None
    actor_id: UserId | None = None
    name: str | Unchanged = UNCHANGED
    email: str | Unchanged = UNCHANGED
    team_id: TeamId | Unchanged = UNCHANGED
    hierarchy_level_id: LevelId | Unchanged = UNCHANGED
    manager_id: UserId | Unchanged | None = UNCHANGED
    role: Role | Unchanged = UNCHANGED
    active: bool | Unchanged = UNCHANGED
    replacement_approver_id: UserId | None = None


@attrs.frozen
class Reassignment:
    """A pending step moved from one approver to another."""

    expense_id: ExpenseId
    step_number: int
    previous_approver_id: UserId
    approver_id: UserId


@attrs.frozen
class UserChanged:
    user: User
    reassignments: tuple[Reassignment, ...]


@attrs.frozen
class PolicyInfo:
    """A policy, and whether some expense was routed by it (then it can only be replaced)."""

    policy: Policy
    in_use: bool


class _UtcClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@attrs.frozen
class OrgService:
    """Set up and change companies, teams, levels, users and policies, each checked before it
    is stored; a user change re-routes the pending approvals it affects in the same unit of work.

    A `company_id` of `None` reads or changes any company (demo mode); otherwise an id of
    another company is unknown.
    """

    new_uow: Callable[[], UnitOfWork]
    clock: Clock = attrs.field(factory=_UtcClock)

    # --- companies, teams, levels

    def create_company(self, name: str) -> Company:
        """Raises: InvalidOrgChange for an empty or over-long name."""
        _check_name("company name", name)
        with self.new_uow() as uow:
            company = uow.org.add_company(name)
            uow.commit()
        return company

    def company(self, company_id: CompanyId) -> Company:
        """Raises: UnknownCompany."""
        with self.new_uow() as uow:
            return uow.org.company(company_id)

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

    def teams(self, company_id: CompanyId) -> tuple[Team, ...]:
        """Raises: UnknownCompany."""
        with self.new_uow() as uow:
            uow.org.company(company_id)
            return uow.org.teams(company_id)

    def team_company(self, team_id: TeamId, company_id: CompanyId | None) -> CompanyId:
        """The company a team belongs to, confined to `company_id` when given.

        Raises:
            UnknownTeam: no such team (in that company).
        """
        with self.new_uow() as uow:
            if company_id is None:
                return uow.org.company_of_team(team_id)
            return uow.org.team(company_id, team_id).company_id

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

    def levels(self, company_id: CompanyId, team_id: TeamId) -> tuple[HierarchyLevel, ...]:
        """A team's ladder, most senior first.

        Raises:
            UnknownTeam: no such team in the company.
        """
        with self.new_uow() as uow:
            uow.org.team(company_id, team_id)
            return uow.org.levels(company_id, team_id)

    # --- users

    def create_user(self, new: NewUser) -> User:
        """Raises: UnknownCompany, UnknownTeam, UnknownLevel, LevelOutsideTeam, UnknownManager,
        InvalidOrgChange, DuplicateEmail."""
        _check_name("user name", new.name, limit=255)
        email = _check_email(new.email)
        user = User(
            id=NEW_USER,
            company_id=new.company_id,
            team_id=new.team_id,
            email=email,
            name=new.name,
            hierarchy_level_id=new.hierarchy_level_id,
            active=new.active,
            manager_id=new.manager_id,
            role=new.role,
        )
        with self.new_uow() as uow:
            _check_user(uow, user)
            stored = uow.org.add_user(user)
            uow.commit()
        return stored

    def user(self, user_id: UserId, company_id: CompanyId | None = None) -> Member:
        """A user with their level.

        Raises:
            UnknownUser: no such user (in that company).
        """
        with self.new_uow() as uow:
            member = uow.org.member(user_id)
        if company_id is not None and member.user.company_id != company_id:
            raise UnknownUser(user_id)
        return member

    def users(
        self, company_id: CompanyId, *, cursor: int | None = None, limit: int = 50
    ) -> Page[User]:
        """A page of the company's users by id; `cursor` continues a previous page.

        Raises:
            UnknownCompany. InvalidInput: a bad limit or cursor.
        """
        _check_page(cursor, limit)
        with self.new_uow() as uow:
            uow.org.company(company_id)
            after = UserId(cursor) if cursor is not None else None
            items = uow.org.users(company_id, after=after, limit=limit + 1)
        return _page(items, limit, lambda u: u.id)

    def change_user(self, cmd: ChangeUser) -> UserChanged:
        """Change a user; when they leave, or move team or level, re-route what it affects.

        Each pending approval the user holds is resolved again under the current rules
        (seniority, four eyes against the expense's other approvers, reporting chain); on the
        user's own pending expenses, approvers who are no longer eligible are replaced. Every
        move is a `reassigned` event, written with the change in one unit of work.

        Raises:
            UnknownUser: no such user (in that company), or an unknown replacement.
            UnknownTeam, UnknownLevel, LevelOutsideTeam, UnknownManager, ManagerCycle,
            InvalidOrgChange, DuplicateEmail: the changed user breaks a rule.
            PendingApprovalsStranded: some pending approval would have nobody eligible and no
                replacement was named; lists them.
            ReplacementNotEligible: the named replacement may not take one of them.
        """
        with self.new_uow() as uow:
            before = uow.org.member(cmd.user_id).user
            if cmd.company_id is not None and before.company_id != cmd.company_id:
                raise UnknownUser(cmd.user_id)
            user = _apply(before, cmd)
            _check_user(uow, user)
            stored = uow.org.update_user(user)
            reassignments: tuple[Reassignment, ...] = ()
            if (before.active, before.team_id, before.hierarchy_level_id) != (
                stored.active,
                stored.team_id,
                stored.hierarchy_level_id,
            ):
                reassignments = _reroute(uow, stored, cmd, self.clock.now())
            uow.commit()
        return UserChanged(stored, reassignments)

    # --- policies

    def create_policy(self, new: NewPolicy) -> Policy:
        """Create a policy, deactivating the one it replaces in the same unit of work.

        Raises:
            UnknownCompany, UnknownTeam (of a step scope), UnknownPolicy (the replaced one),
            InvalidPolicy, PolicyOverlap, DuplicateName.
        """
        policy = Policy(
            id=PolicyId(0),
            company_id=new.company_id,
            category=new.category,
            name=new.name,
            description=new.description,
            min_amount=new.min_amount,
            max_amount=new.max_amount,
            steps=new.steps,
            active=new.active,
        )
        with self.new_uow() as uow:
            uow.org.company(new.company_id)
            for step in new.steps:
                if step.team_scope.team_id is not None:
                    uow.org.team(new.company_id, step.team_scope.team_id)
            if new.replaces is not None:
                uow.org.policy(new.company_id, new.replaces)
                uow.org.deactivate_policy(new.company_id, new.replaces)
            check_new_policy(policy, uow.org.policies(new.company_id, new.category))
            stored = uow.org.add_policy(policy)
            uow.commit()
        return stored

    def policy(self, policy_id: PolicyId, company_id: CompanyId | None = None) -> PolicyInfo:
        """Raises: UnknownPolicy (also another company's)."""
        with self.new_uow() as uow:
            company = company_id if company_id is not None else uow.org.company_of_policy(policy_id)
            policy = uow.org.policy(company, policy_id)
            return PolicyInfo(policy, uow.org.policy_in_use(company, policy_id))

    def policies(self, company_id: CompanyId) -> tuple[PolicyInfo, ...]:
        """Every policy of the company, active or not, by id.

        Raises:
            UnknownCompany.
        """
        with self.new_uow() as uow:
            uow.org.company(company_id)
            return tuple(
                PolicyInfo(p, uow.org.policy_in_use(company_id, p.id))
                for p in uow.org.company_policies(company_id)
            )

    def deactivate_policy(
        self, policy_id: PolicyId, company_id: CompanyId | None = None
    ) -> PolicyInfo:
        """Stop a policy routing new expenses; those it routed keep it. Deactivating an
        inactive policy changes nothing.

        Raises:
            UnknownPolicy (also another company's).
        """
        with self.new_uow() as uow:
            company = company_id if company_id is not None else uow.org.company_of_policy(policy_id)
            policy = uow.org.policy(company, policy_id)
            if policy.active:
                uow.org.deactivate_policy(company, policy_id)
                policy = attrs.evolve(policy, active=False)
            in_use = uow.org.policy_in_use(company, policy_id)
            uow.commit()
        return PolicyInfo(policy, in_use)


def _check_name(what: str, name: str, limit: int = 100) -> None:
    if not name.strip() or len(name) > limit:
        raise InvalidOrgChange(f"{what} must be 1 to {limit} characters")


def _check_email(raw: str) -> str:
    email = raw.strip()
    if (
        not 3 <= len(email) <= EMAIL_LIMIT
        or "@" not in email[1:-1]
        or any(c.isspace() for c in email)
    ):
        raise InvalidOrgChange(f"'{raw}' is not a valid email address")
    return email


def _apply(user: User, cmd: ChangeUser) -> User:
    """The user with the command's changed fields, each checked on its own."""
    if not isinstance(cmd.name, Unchanged):
        _check_name("user name", cmd.name, limit=255)
    return attrs.evolve(
        user,
        name=_keep(cmd.name, user.name),
        email=user.email if isinstance(cmd.email, Unchanged) else _check_email(cmd.email),
        team_id=_keep(cmd.team_id, user.team_id),
        hierarchy_level_id=_keep(cmd.hierarchy_level_id, user.hierarchy_level_id),
        manager_id=_keep(cmd.manager_id, user.manager_id),
        role=_keep(cmd.role, user.role),
        active=_keep(cmd.active, user.active),
    )


def _keep(value: T | Unchanged, old: T) -> T:
    return old if isinstance(value, Unchanged) else value


def _check_user(uow: UnitOfWork, user: User) -> None:
    """A user's team and level are of their company, the level of their team, and their
    manager a user of the same company whose reporting chain does not lead back to them."""
    uow.org.company(user.company_id)
    uow.org.team(user.company_id, user.team_id)
    level = uow.org.level(user.company_id, user.hierarchy_level_id)
    if level.team_id != user.team_id:
        raise LevelOutsideTeam(user.hierarchy_level_id, user.team_id)
    if user.manager_id is None:
        return
    if user.manager_id == user.id:
        raise ManagerCycle(user.id, user.manager_id)
    try:
        manager = uow.org.member(user.manager_id).user
    except UnknownUser:
        raise UnknownManager(user.manager_id) from None
    if manager.company_id != user.company_id:
        raise UnknownManager(user.manager_id)
    if user.id == NEW_USER:
        return  # nobody reports to a user who does not exist yet
    seen = {manager.id}
    above = manager.manager_id
    while above is not None and above not in seen:
        if above == user.id:
            raise ManagerCycle(user.id, user.manager_id)
        seen.add(above)
        above = uow.org.member(above).user.manager_id


def _reroute(
    uow: UnitOfWork, user: User, cmd: ChangeUser, at: datetime
) -> tuple[Reassignment, ...]:
    company = user.company_id
    replacement: Member | None = None
    if cmd.replacement_approver_id is not None:
        replacement = uow.org.member(cmd.replacement_approver_id)
        if replacement.user.company_id != company:
            raise UnknownUser(cmd.replacement_approver_id)
    touched = set(uow.org.pending_held_by(company, user.id))
    touched |= set(uow.org.pending_submitted_by(company, user.id))
    stranded: list[tuple[int, int]] = []
    moved: list[Reassignment] = []
    # Locks are taken in id order, as every other unit of work that locks several would.
    for expense_id in sorted(touched):
        expense = uow.expenses.get_for_update(company, expense_id)
        if expense.is_terminal:
            continue
        submitter = uow.org.member(expense.user_id)
        steps = {s.step_order: s for s in uow.org.policy(company, expense.policy_id).steps}
        events: list[ExpenseEvent] = []
        for number in [a.step_number for a in expense.approvals if a.is_pending]:
            approval = expense.approval(number)
            step = steps[number]
            taken = {
                a.approver_id: a.step_number for a in expense.approvals if a.step_number != number
            }
            if approval.approver_id != user.id:
                if expense.user_id != user.id:
                    continue
                # The submitter moved: only approvers who lost their eligibility are replaced.
                holder = uow.org.member(approval.approver_id)
                if approvers.ineligibility(step, submitter, holder, taken) is None:
                    continue
            # Enough candidates that four eyes against the other steps always leaves one.
            pool = uow.org.approver_pool(submitter, [step] * len(expense.approvals))
            try:
                chosen = approvers.resolve_step(submitter, step, pool, taken).approver
            except NoApproverForStep:
                if replacement is None:
                    stranded.append((expense.id, number))
                    continue
                why = approvers.ineligibility(step, submitter, replacement, taken)
                if why is not None:
                    raise ReplacementNotEligible(replacement.id, expense.id, number, why) from None
                chosen = replacement
            if chosen.id == approval.approver_id:
                continue
            decision = workflow.reassign(expense, number, chosen, cmd.actor_id, at)
            expense = decision.expense
            events.extend(decision.events)
            moved.append(Reassignment(expense.id, number, approval.approver_id, chosen.id))
        if events:
            uow.expenses.save(expense, events)
    if stranded:
        raise PendingApprovalsStranded(user.id, tuple(stranded))
    return tuple(moved)


# --- organisation files ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LevelPlan:
    number: int
    name: str


@attrs.frozen(kw_only=True)
class TeamPlan:
    name: str
    company_wide: bool = False
    levels: tuple[LevelPlan, ...] = ()


@attrs.frozen(kw_only=True)
class PersonPlan:
    """A user; `team` is a team name, `level` a level number of that team, `manager` an email."""

    email: str
    name: str
    team: str
    level: int
    manager: str | None = None
    role: Role = Role.EMPLOYEE
    active: bool = True


@attrs.frozen(kw_only=True)
class StepPlan:
    """A policy step; `team_scope` names a team by name: 'team:Finance'."""

    required_level: int
    team_scope: str = "submitter"
    is_required: bool = True
    description: str | None = None


@attrs.frozen(kw_only=True)
class PolicyPlan:
    name: str
    category: str
    min_amount: Money
    max_amount: Money
    steps: tuple[StepPlan, ...]
    description: str | None = None
    active: bool = True


@attrs.frozen(kw_only=True)
class OrgPlan:
    """A whole organisation by names, as an organisation file describes it."""

    company: str
    teams: tuple[TeamPlan, ...] = ()
    users: tuple[PersonPlan, ...] = ()
    policies: tuple[PolicyPlan, ...] = ()


@attrs.frozen(kw_only=True)
class ImportReport:
    """What an import created; a second run of the same file creates nothing."""

    company: Company
    company_created: bool
    teams: int
    levels: int
    users: int
    policies: int


def check_plan(plan: OrgPlan) -> None:
    """Check an organisation file against every rule that needs no database.

    Raises:
        InvalidOrgFile: naming the first entry that breaks a rule (duplicate names, levels or
            emails, unknown teams, levels or managers, a loop in the reporting chains,
            malformed or overlapping policies, a scope naming an unknown team).
    """
    try:
        _check_plan(plan)
    except InvalidOrgFile:
        raise
    except InvalidInput as exc:
        raise InvalidOrgFile(exc.message) from None


def _check_plan(plan: OrgPlan) -> None:
    _check_name("company name", plan.company)
    ladders: dict[str, set[int]] = {}
    for team in plan.teams:
        _check_name("team name", team.name)
        if team.name in ladders:
            raise InvalidOrgFile(f"team '{team.name}' appears twice")
        numbers = [lv.number for lv in team.levels]
        if len(set(numbers)) != len(numbers):
            raise InvalidOrgFile(f"team '{team.name}' has a level number twice")
        for level in team.levels:
            _check_name(f"team '{team.name}': level name", level.name)
            if not MOST_SENIOR <= level.number <= MOST_JUNIOR:
                raise InvalidOrgFile(
                    f"team '{team.name}': level {level.number} is not between 1 and 10"
                )
        ladders[team.name] = set(numbers)
    managers: dict[str, str | None] = {}
    for person in plan.users:
        where = f"user '{person.email}'"
        _check_email(person.email)
        _check_name(f"{where}: name", person.name, limit=255)
        if person.email in managers:
            raise InvalidOrgFile(f"{where} appears twice")
        if person.team not in ladders:
            raise InvalidOrgFile(f"{where}: no team '{person.team}' in the file")
        if person.level not in ladders[person.team]:
            raise InvalidOrgFile(f"{where}: team '{person.team}' has no level {person.level}")
        managers[person.email] = person.manager
    for email, manager in managers.items():
        if manager is not None and manager not in managers:
            raise InvalidOrgFile(f"user '{email}': manager '{manager}' is not in the file")
        seen = {email}
        while manager is not None:
            if manager in seen:
                raise InvalidOrgFile(f"user '{email}': the reporting chain loops")
            seen.add(manager)
            manager = managers[manager]
    checked: list[Policy] = []
    for number, plan_policy in enumerate(plan.policies, start=1):
        for step in plan_policy.steps:
            _scope_by_name(step.team_scope, {name: TeamId(1) for name in ladders})
        policy = _policy_of(plan_policy, CompanyId(0), {n: TeamId(1) for n in ladders})
        try:
            checked.append(check_new_policy(attrs.evolve(policy, id=PolicyId(number)), checked))
        except (InvalidPolicy, PolicyOverlap) as exc:
            raise InvalidOrgFile(f"policy '{plan_policy.name}': {exc.message}") from None


def _scope_by_name(raw: str, teams: dict[str, TeamId]) -> TeamScope:
    prefix, sep, name = raw.partition(":")
    if sep and prefix == ScopeKind.TEAM:
        if name not in teams:
            raise InvalidOrgFile(f"team_scope '{raw}' names no team of the file")
        return TeamScope(ScopeKind.TEAM, teams[name])
    if raw in (ScopeKind.SUBMITTER, ScopeKind.COMPANY_WIDE):
        return TeamScope.parse(raw)
    raise InvalidOrgFile(
        f"invalid team_scope '{raw}': use 'submitter', 'company_wide' or 'team:<team name>'"
    )


def _policy_of(plan: PolicyPlan, company: CompanyId, teams: dict[str, TeamId]) -> Policy:
    return Policy(
        id=PolicyId(0),
        company_id=company,
        category=plan.category,
        name=plan.name,
        description=plan.description,
        min_amount=plan.min_amount,
        max_amount=plan.max_amount,
        active=plan.active,
        steps=tuple(
            ApprovalStep(
                step_order=i,
                required_level=s.required_level,
                team_scope=_scope_by_name(s.team_scope, teams),
                is_required=s.is_required,
                description=s.description,
            )
            for i, s in enumerate(plan.steps, start=1)
        ),
    )


def _same_policy(a: Policy, b: Policy) -> bool:
    def shape(p: Policy) -> tuple[object, ...]:
        steps = tuple(attrs.evolve(s, id=0) for s in p.steps)
        return (p.category, p.name, p.description, p.min_amount, p.max_amount, p.active, steps)

    return shape(a) == shape(b)


@attrs.frozen
class OrgFiles:
    """Import and export whole organisations: what `expense-tracker org import|export` runs."""

    new_uow: Callable[[], UnitOfWork]

    def import_org(self, plan: OrgPlan) -> ImportReport:
        """Create what the plan describes and the database lacks, all in one unit of work.

        The plan is checked entirely first; then the company (by name), teams (by name),
        levels (by number), users (by email) and policies (by their whole shape) that already
        exist are kept, and the rest created, so a second run changes nothing.

        Raises:
            InvalidOrgFile: the plan breaks a rule; nothing is written.
            OrgFileDisagrees: the database holds a team level or user with other values.
            Any error of `OrgService.create_*` found against the database (DuplicateEmail...).
        """
        check_plan(plan)
        counts = {"teams": 0, "levels": 0, "users": 0, "policies": 0}
        with self.new_uow() as uow:
            found = uow.org.company_named(plan.company)
            company = found or uow.org.add_company(plan.company)
            existing_teams = {t.name: t for t in uow.org.teams(company.id)}
            teams: dict[str, TeamId] = {}
            levels: dict[tuple[str, int], LevelId] = {}
            for team_plan in plan.teams:
                team = existing_teams.get(team_plan.name)
                if team is None:
                    team = uow.org.add_team(
                        Team(TeamId(0), company.id, team_plan.name, team_plan.company_wide)
                    )
                    counts["teams"] += 1
                elif team.is_company_wide != team_plan.company_wide:
                    raise OrgFileDisagrees(f"team '{team.name}'", "company_wide")
                teams[team.name] = team.id
                ladder = {lv.level_number: lv for lv in uow.org.levels(company.id, team.id)}
                for level_plan in team_plan.levels:
                    level = ladder.get(level_plan.number)
                    if level is None:
                        level = uow.org.add_level(
                            HierarchyLevel(
                                LevelId(0), company.id, team.id, level_plan.number, level_plan.name
                            )
                        )
                        counts["levels"] += 1
                    elif level.level_name != level_plan.name:
                        raise OrgFileDisagrees(
                            f"level {level.level_number} of team '{team.name}'", "level_name"
                        )
                    levels[(team.name, level_plan.number)] = level.id
            people: dict[str, User] = {}
            created: set[str] = set()
            for person in plan.users:
                wanted = User(
                    id=NEW_USER,
                    company_id=company.id,
                    team_id=teams[person.team],
                    email=_check_email(person.email),
                    name=person.name,
                    hierarchy_level_id=levels[(person.team, person.level)],
                    active=person.active,
                    role=person.role,
                )
                user = uow.org.user_by_email(company.id, wanted.email)
                if user is None:
                    user = uow.org.add_user(wanted)
                    created.add(user.email)
                    counts["users"] += 1
                else:
                    _same_user(user, attrs.evolve(wanted, id=user.id, manager_id=user.manager_id))
                people[user.email] = user
            # Managers once everyone exists: a file may name a manager further down.
            for person in plan.users:
                user = people[person.email]
                manager = None if person.manager is None else people[person.manager].id
                if user.manager_id == manager:
                    continue
                if user.email not in created:
                    raise OrgFileDisagrees(f"user '{user.email}'", "manager")
                changed = attrs.evolve(user, manager_id=manager)
                _check_user(uow, changed)
                people[user.email] = uow.org.update_user(changed)
            stored = uow.org.company_policies(company.id)
            for plan_policy in plan.policies:
                policy = _policy_of(plan_policy, company.id, teams)
                if any(_same_policy(policy, p) for p in stored):
                    continue
                check_new_policy(policy, uow.org.policies(company.id, policy.category))
                stored = (*stored, uow.org.add_policy(policy))
                counts["policies"] += 1
            uow.commit()
        return ImportReport(company=company, company_created=found is None, **counts)

    def export_org(self, company_id: CompanyId) -> OrgPlan:
        """The company as an organisation plan, by names: what `import_org` reads back.

        Raises:
            UnknownCompany.
        """
        with self.new_uow() as uow:
            company = uow.org.company(company_id)
            teams = uow.org.teams(company_id)
            ladders = {t.id: uow.org.levels(company_id, t.id) for t in teams}
            users: list[User] = []
            while True:
                after = users[-1].id if users else None
                page = uow.org.users(company_id, after=after, limit=MAX_PAGE)
                users.extend(page)
                if len(page) < MAX_PAGE:
                    break
            policies = uow.org.company_policies(company_id)
        team_names = {t.id: t.name for t in teams}
        level_numbers = {lv.id: lv.level_number for ladder in ladders.values() for lv in ladder}
        emails = {u.id: u.email for u in users}

        def scope(step: ApprovalStep) -> str:
            team = step.team_scope.team_id
            return str(step.team_scope) if team is None else f"team:{team_names[team]}"

        return OrgPlan(
            company=company.name,
            teams=tuple(
                TeamPlan(
                    name=t.name,
                    company_wide=t.is_company_wide,
                    levels=tuple(
                        LevelPlan(number=lv.level_number, name=lv.level_name)
                        for lv in ladders[t.id]
                    ),
                )
                for t in teams
            ),
            users=tuple(
                PersonPlan(
                    email=u.email,
                    name=u.name,
                    team=team_names[u.team_id],
                    level=level_numbers[u.hierarchy_level_id],
                    manager=None if u.manager_id is None else emails[u.manager_id],
                    role=u.role,
                    active=u.active,
                )
                for u in users
            ),
            policies=tuple(
                PolicyPlan(
                    name=p.name,
                    category=p.category,
                    description=p.description,
                    min_amount=p.min_amount,
                    max_amount=p.max_amount,
                    active=p.active,
                    steps=tuple(
                        StepPlan(
                            required_level=s.required_level,
                            team_scope=scope(s),
                            is_required=s.is_required,
                            description=s.description,
                        )
                        for s in p.steps
                    ),
                )
                for p in policies
            ),
        )


def _same_user(stored: User, wanted: User) -> None:
    differences = [
        field
        for field in ("name", "team_id", "hierarchy_level_id", "role", "active")
        if getattr(stored, field) != getattr(wanted, field)
    ]
    if differences:
        raise OrgFileDisagrees(f"user '{stored.email}'", ", ".join(differences))


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
