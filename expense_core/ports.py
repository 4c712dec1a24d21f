"""Ports: what the engine needs from the outside world, as `typing.Protocol`s.

Adapters implement them without inheriting; they speak core types and core errors only.
Tenant data is always addressed with its `company_id`; an id of another company behaves as
unknown. `None` as a company id is only accepted where a port says so.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, Self

import attrs

from expense_core.approvers import ApproverPool
from expense_core.audit import AuditEntry, AuditFilter, AuditId
from expense_core.delegation import Cover, Delegation
from expense_core.escalation import DueStep
from expense_core.model import (
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
    Policy,
    PolicyId,
    Role,
    Team,
    TeamId,
    User,
    UserId,
)
from expense_core.notifications import Notice, OutboxEntry
from expense_core.tokens import ApiToken, TokenHolder, TokenId
from expense_core.views import ExpenseSummary, ExpenseView, InboxItem
from expense_core.visibility import Sight
from expense_core.webhooks import (
    Backlog,
    Claim,
    Delivery,
    DeliveryId,
    Outcome,
    Verdict,
    Webhook,
    WebhookId,
)
from expense_core.workflow import Decision


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class OrgRepository(Protocol):
    """Companies, teams, levels, users and policies: who may approve what."""

    def member(self, user_id: UserId) -> Member:
        """Identify a user by id alone (the actor of a command), with their level.

        Raises:
            UnknownUser: no such user.
        """
        ...

    def member_with_policies(
        self, user_id: UserId, category: str
    ) -> tuple[Member, tuple[Policy, ...]]:
        """`member(user_id)` and the active policies of `category` in that member's company
        (`policies`), read together: what a submission by category needs first.

        Raises:
            UnknownUser: no such user.
        """
        ...

    def member_with_policy_and_pool(
        self, user_id: UserId, policy_id: PolicyId
    ) -> tuple[Member, Policy | None, ApproverPool | None]:
        """`member(user_id)`, the policy `policy_id` of that member's company, active or not
        (`policy`; None when the company has no such policy), and that member's
        `approver_pool` for the policy's steps (None without a policy), read together: what a
        submission under a named policy needs. A store may gather the pool before anyone has
        checked the member or the policy: it is only read.

        Raises:
            UnknownUser: no such user.
        """
        ...

    def approver_pool(self, submitter: Member, steps: Sequence[ApprovalStep]) -> ApproverPool:
        """Gather the submitter's reporting chain and the candidates the steps may choose from."""
        ...

    def policy(self, company_id: CompanyId, policy_id: PolicyId) -> Policy:
        """A policy with its steps, active or not.

        Raises:
            UnknownPolicy: no such policy in this company.
        """
        ...

    def policies(self, company_id: CompanyId, category: str) -> tuple[Policy, ...]:
        """The active policies of one category, with their steps."""
        ...

    def company(self, company_id: CompanyId) -> Company:
        """Raises: UnknownCompany."""
        ...

    def team(self, company_id: CompanyId, team_id: TeamId) -> Team:
        """Raises: UnknownTeam (also for another company's team)."""
        ...

    def level(self, company_id: CompanyId, level_id: LevelId) -> HierarchyLevel:
        """Raises: UnknownLevel (also for another company's level)."""
        ...

    def user_by_email(self, company_id: CompanyId, email: str) -> User | None: ...

    def members_by_email(self, company_id: CompanyId, email: str) -> tuple[Member, ...]:
        """The company's users, inactive ones too, whose e-mail address is `email` apart from
        the case of ASCII letters (`identity.email_key`), with their levels, by id."""
        ...

    def add_company(self, name: str) -> Company: ...

    def update_company(self, company: Company) -> Company:
        """Overwrite a stored company's name and fallback approver.

        Raises:
            UnknownCompany: no such company.
        """
        ...

    def add_team(self, team: Team) -> Team:
        """Store a new team; its `id` is ignored and the stored one returned."""
        ...

    def add_level(self, level: HierarchyLevel) -> HierarchyLevel:
        """Store a new level; its `id` is ignored and the stored one returned."""
        ...

    def add_user(self, user: User) -> User:
        """Store a new user; its `id` is ignored and the stored one returned.

        Raises:
            DuplicateEmail: the company already has a user with this email.
        """
        ...

    def add_policy(self, policy: Policy) -> Policy:
        """Store a new policy and its steps; ids are ignored and the stored ones returned.

        Raises:
            DuplicateName: an active policy of the company and category has the same
                min_amount (the partial unique index of migration 0002).
        """
        ...

    def company_named(self, name: str) -> Company | None:
        """The first company (by id) with exactly this name, if any."""
        ...

    def company_of_team(self, team_id: TeamId) -> CompanyId:
        """The company a team belongs to, whichever it is (demo mode only).

        Raises:
            UnknownTeam: no such team.
        """
        ...

    def company_of_policy(self, policy_id: PolicyId) -> CompanyId:
        """The company a policy belongs to, whichever it is (demo mode only).

        Raises:
            UnknownPolicy: no such policy.
        """
        ...

    def teams(self, company_id: CompanyId) -> tuple[Team, ...]:
        """The company's teams, by id."""
        ...

    def levels(self, company_id: CompanyId, team_id: TeamId) -> tuple[HierarchyLevel, ...]:
        """A team's ladder, most senior (level 1) first."""
        ...

    def users(self, company_id: CompanyId, *, after: UserId | None, limit: int) -> tuple[User, ...]:
        """At most `limit` of the company's users with an id above `after`, by id."""
        ...

    def names(self, company_id: CompanyId, user_ids: Collection[UserId]) -> dict[UserId, str]:
        """The names of those of `user_ids` who are (or were: inactive too) of the company;
        an id of no user of the company is left out."""
        ...

    def update_user(self, user: User) -> User:
        """Overwrite a stored user's fields (its id and company stay).

        Raises:
            UnknownUser: no such user in the user's company.
            DuplicateEmail: another user of the company has this email.
        """
        ...

    def company_policies(self, company_id: CompanyId) -> tuple[Policy, ...]:
        """Every policy of the company, active or not, with its steps, by id."""
        ...

    def deactivate_policy(self, company_id: CompanyId, policy_id: PolicyId) -> None:
        """Mark a policy inactive; it keeps routing the expenses it already routed.

        Raises:
            UnknownPolicy: no such policy in this company.
        """
        ...

    def policy_in_use(self, company_id: CompanyId, policy_id: PolicyId) -> bool:
        """Whether some expense was routed by the policy."""
        ...

    def pending_held_by(self, company_id: CompanyId, user_id: UserId) -> tuple[ExpenseId, ...]:
        """Pending expenses in which the user holds a pending approval, by id."""
        ...

    def pending_submitted_by(self, company_id: CompanyId, user_id: UserId) -> tuple[ExpenseId, ...]:
        """The user's own pending expenses, by id."""
        ...


class ExpenseRepository(Protocol):
    """Expenses with their approval rows, and their append-only history."""

    def add(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> Expense:
        """Store a new expense, all its approvals, its events and its notices (in the outbox)
        at once; return it as stored, under its new id."""
        ...

    def get_for_update(self, company_id: CompanyId, expense_id: ExpenseId) -> Expense:
        """Load an expense and hold it against concurrent decisions until the unit of work ends.

        Raises:
            UnknownExpense: no such expense in this company.
        """
        ...

    def get_for_update_by(self, actor_id: UserId, expense_id: ExpenseId) -> Expense | None:
        """As `get_for_update`, in the company of an active user, found in the same step.

        None when the user is unknown or inactive, or the expense is not in their company:
        the caller tells these apart (they are rare) through `UnitOfWork.org`.
        """
        ...

    def get_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> tuple[Expense, tuple[Cover, ...], Role | None] | None:
        """As `get_for_update` (or `get_for_update_by` when `company_id` is None), with, read
        in the same step, a `Cover` for each step of the expense whose approver has named the
        actor as delegate, whatever the delegation's period, and the actor's role (None for
        nobody by that id).

        None when the expense is not found, as `get_for_update_by` says.

        After `UnitOfWork.commit_next_write` a store that makes that write by itself may read
        the expense here without locking it; `save` then checks that it is unchanged.
        """
        ...

    def save(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> None:
        """Write a decided expense (loaded with `get_for_update`), append its events and put
        its notices in the outbox.

        Raises:
            ExpenseChanged: the expense was read without a lock (`get_for_decision` after
                `UnitOfWork.commit_next_write`) and something else wrote it since; nothing
                was written. Only then.
        """
        ...

    def get(
        self, company_id: CompanyId, expense_id: ExpenseId, sight: Sight | None = None
    ) -> Expense:
        """Raises: UnknownExpense (also one the `sight` does not see)."""
        ...

    def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> ExpenseView:
        """The status page of an expense; `None` looks in every company (demo mode only). With
        a `sight`, only an expense `visibility.is_visible` lets its viewer see, decided in the
        same read.

        Raises:
            UnknownExpense: no such expense (in this company), or one the sight does not see.
        """
        ...

    def views(self, expense_ids: Sequence[ExpenseId]) -> tuple[ExpenseView, ...]:
        """The status pages of those of `expense_ids` that exist, in any company, by id (the
        notification worker's read: one for a batch of deliveries)."""
        ...

    def summaries(
        self,
        company_id: CompanyId,
        *,
        user_id: UserId | None,
        status: ExpenseStatus | None,
        before: ExpenseId | None,
        limit: int,
        sight: Sight | None = None,
    ) -> tuple[ExpenseSummary, ...]:
        """Newest first: at most `limit` expenses with an id below `before`, filtered (and, with
        a `sight`, only those its viewer sees)."""
        ...

    def inbox(
        self,
        company_id: CompanyId,
        approver_id: UserId,
        *,
        after: ExpenseId | None,
        limit: int,
        as_of: datetime | None = None,
    ) -> tuple[InboxItem, ...]:
        """Oldest first: pending expenses whose current required step, or a pending optional
        step, belongs to the approver, with an id above `after`; one item per expense.

        With `as_of`, also those whose step the approver may decide then for someone absent
        (`workflow.covered_step` under the delegations in force then), marked `on_behalf_of`.
        """
        ...

    def history(
        self, company_id: CompanyId, expense_id: ExpenseId, sight: Sight | None = None
    ) -> tuple[ExpenseEvent, ...]:
        """The events of an expense in the order they happened.

        Raises:
            UnknownExpense: no such expense in this company, or one the `sight` does not see.
        """
        ...

    def due_for_escalation(
        self, as_of: datetime, *, after: DueStep | None, limit: int
    ) -> tuple[DueStep, ...]:
        """In every company, most overdue first (by `escalate_at`, then expense id): at most
        `limit` pending steps whose `escalate_at` is at or before `as_of`, and after `after`
        in that order. What a sweep reads before it locks each expense and looks again."""
        ...


class DelegationRepository(Protocol):
    """Who covers for whom: at most one delegation per user."""

    def get(self, company_id: CompanyId, user_id: UserId) -> Delegation | None:
        """The user's delegation, whatever its period, if they named a delegate."""
        ...

    def put(self, delegation: Delegation) -> None:
        """Store a delegation in place of the user's previous one, if any."""
        ...

    def remove(self, company_id: CompanyId, user_id: UserId) -> bool:
        """End the user's delegation; whether there was one."""
        ...


class IdempotencyRecords(Protocol):
    """Remembers what a client's idempotency key produced: a submission, or a decision.

    A user's keys share one space, whatever request stored them; the fingerprint tells requests
    apart.
    """

    def recall(self, user_id: UserId, key: str) -> tuple[str, ExpenseId] | None:
        """The fingerprint and expense id stored under this user's key, if any."""
        ...

    def remember(self, user_id: UserId, key: str, fingerprint: str, expense_id: ExpenseId) -> None:
        """Store a key; a concurrent twin raises `IdempotencyKeyRace`, at commit at the latest."""
        ...

    def recall_decision(self, user_id: UserId, key: str) -> tuple[str, Decision | None] | None:
        """The fingerprint stored under this user's key and, if a decision stored it, that
        decision as it was made (a submission's key has none); None for an unknown key."""
        ...

    def remember_decision(
        self, user_id: UserId, key: str, fingerprint: str, decision: Decision
    ) -> None:
        """Store a key with the decision it made (about `decision.expense`); a key already
        stored, or a concurrent twin's, raises `IdempotencyKeyRace`, at commit at the latest."""
        ...


class ApiTokens(Protocol):
    """Bearer tokens: a public record, and only the hash of the secret part. Lists are newest
    first (by `created_at`, then id)."""

    def add(self, token: ApiToken, secret_hash: str) -> None: ...

    def holder(self, token_id: TokenId) -> TokenHolder | None:
        """The token, its secret's hash and its holder, or None if unknown; revoked and expired
        tokens too."""
        ...

    def note_use(self, token_id: TokenId, at: datetime, unless_since: datetime) -> None:
        """Set the token's `last_used_at` to `at`, unless a use after `unless_since` is noted
        already (by a concurrent request): one conditional write, no read."""
        ...

    def get(self, company_id: CompanyId | None, token_id: TokenId) -> ApiToken:
        """A token of the company (any company's when None).

        Raises: UnknownToken (also for another company's).
        """
        ...

    def of_user(self, company_id: CompanyId, user_id: UserId) -> tuple[ApiToken, ...]:
        """A user's tokens, revoked and expired ones too."""
        ...

    def of_company(self, company_id: CompanyId) -> tuple[ApiToken, ...]:
        """Every token of the company's users, revoked and expired ones too."""
        ...

    def revoke(self, token_id: TokenId, at: datetime) -> None:
        """Mark the token revoked at `at`, unless it was revoked already."""
        ...

    def spend(self, token_id: TokenId, at: datetime) -> bool:
        """Revoke the token at `at` if nobody has yet (one conditional write), and say whether
        this call did: of two concurrent calls, one only gets True (a single-use token)."""
        ...


class WebhookRepository(Protocol):
    """A company's webhook subscriptions and their deliveries. A `company_id` of None looks in
    every company (demo mode only)."""

    def add(self, webhook: Webhook) -> Webhook:
        """Store a new subscription; its `id` is ignored and the stored one returned."""
        ...

    def of_company(self, company_id: CompanyId) -> tuple[Webhook, ...]:
        """The company's subscriptions, active or disabled, by id."""
        ...

    def get(self, company_id: CompanyId | None, webhook_id: WebhookId) -> Webhook:
        """Raises: UnknownWebhook (also for another company's)."""
        ...

    def remove(self, company_id: CompanyId | None, webhook_id: WebhookId) -> bool:
        """Delete a subscription and its deliveries; whether there was one."""
        ...

    def disable(self, webhook_id: WebhookId) -> None:
        """Stop a subscription (its receiver answered 410 Gone); it stays listed."""
        ...

    def active(self, company_ids: Sequence[CompanyId]) -> tuple[Webhook, ...]:
        """The active subscriptions of these companies, by id."""
        ...

    def deliveries(
        self,
        company_id: CompanyId | None,
        webhook_id: WebhookId,
        *,
        before: DeliveryId | None,
        limit: int,
    ) -> tuple[Delivery, ...]:
        """Newest first: at most `limit` of the subscription's deliveries with an id below
        `before`."""
        ...

    def delivery(
        self, company_id: CompanyId | None, webhook_id: WebhookId, delivery_id: DeliveryId
    ) -> Delivery:
        """Raises: UnknownDelivery (also another subscription's)."""
        ...

    def requeue(self, delivery: Delivery, at: datetime) -> Delivery:
        """Queue a delivery again, due at `at`, its attempts counted afresh."""
        ...


class Outbox(Protocol):
    """The worker's side of the outbox: fan notices out into deliveries, then take, attempt
    and settle each delivery. Several workers may share one store; none takes what another
    holds."""

    def undispatched(self, limit: int) -> tuple[OutboxEntry, ...]:
        """Oldest first: at most `limit` notices not yet fanned out, held against other workers
        until the unit of work ends (another worker skips them)."""
        ...

    def dispatch(self, entries: Sequence[OutboxEntry], deliveries: Sequence[Delivery]) -> None:
        """Store the deliveries made of `entries` (their ids ignored) and mark the entries
        fanned out."""
        ...

    def claim(self, at: datetime, lease_until: datetime, limit: int) -> tuple[Claim, ...]:
        """Take at most `limit` deliveries due at `at` that nobody holds, counting an attempt
        for each, and hold them until `lease_until` (a worker that dies lets go then). Of one
        target's deliveries about one expense, only the earliest unsettled is ever taken: they
        go out in order."""
        ...

    def settle(self, results: Sequence[tuple[Claim, Outcome, Verdict]], at: datetime) -> None:
        """Record what the attempts came to and let go of the deliveries. A claim taken over
        meanwhile (its lease ran out and another claim counted a further attempt) settles
        nothing: what it came to is no longer the delivery's."""
        ...

    def backlog(self) -> Backlog: ...


class AuditLog(Protocol):
    """Admin changes, appended in the unit of work that makes them; never changed after."""

    def append(self, entry: AuditEntry) -> None:
        """Store an entry; its `id` is ignored (ids grow with each append)."""
        ...

    def extend(self, entries: Sequence[AuditEntry]) -> None:
        """Store several entries, in order, as `append` would one by one."""
        ...

    def page(
        self,
        company_id: CompanyId,
        *,
        where: AuditFilter,
        before: AuditId | None,
        limit: int,
    ) -> tuple[AuditEntry, ...]:
        """Newest first (by id): at most `limit` of the company's entries matching `where`,
        with an id below `before`."""
        ...


class UnitOfWork(Protocol):
    """One transaction: everything done through it is committed together or not at all."""

    @property
    def org(self) -> OrgRepository: ...

    @property
    def expenses(self) -> ExpenseRepository: ...

    @property
    def idempotency(self) -> IdempotencyRecords: ...

    @property
    def tokens(self) -> ApiTokens: ...

    @property
    def delegations(self) -> DelegationRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def audit(self) -> AuditLog: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None:
        """Roll back unless committed."""
        ...

    def commit(self) -> None: ...

    def commit_next_write(self) -> None:
        """Say that the next write is this unit of work's only one: a store that can make one
        write durable by itself, atomically, may do so as it runs (PostgreSQL: one statement
        outside a transaction, saving the BEGIN and COMMIT round trips). `commit` is still
        called after it, as always; nothing may be written after it.

        No lock can be held until such a write: a decision read after it (`get_for_decision`)
        may come unlocked, and its `save` raise `ExpenseChanged` when the expense was written
        meanwhile; the caller decides again in a new unit of work."""
        ...


@attrs.frozen
class DecisionBasis:
    """An expense read unlocked for a decision (`AwaitedExpenses.basis_for_decision`), with
    what `get_for_decision` reads beside it, and the store's mark of the state read: the
    decision is written only over that state."""

    expense: Expense
    covers: tuple[Cover, ...]
    role: Role | None  # the actor's; None for nobody by that id
    seen: object  # opaque to the core: what the store checks the expense against


@attrs.frozen
class SubmissionBasis:
    """What a submission under a named policy is decided on (`AwaitedExpenses.submission_basis`):
    as `OrgRepository.member_with_policy_and_pool` reads it, with the store's mark of the
    organisation read. The submission is written only while the organisation is still so."""

    member: Member
    policy: Policy | None
    pool: ApproverPool | None
    seen: object  # opaque to the core: what the store checks the organisation against
    # Kept from an earlier read rather than read for this submission: a refusal decided on it
    # is not final, since the organisation may have changed since (`AwaitedExpenses.forget`).
    recalled: bool = False


@attrs.frozen
class CategoryBasis:
    """What a submission by category chooses its policy from (`AwaitedExpenses.category_basis`):
    as `OrgRepository.member_with_policies` reads them, with the store's mark of the
    organisation read. The policy chosen is then read with its pool (`submission_basis`); the
    two reads count only if they saw the organisation at the same mark."""

    member: Member
    category: str
    policies: tuple[Policy, ...]  # the category's active policies
    seen: object  # as `SubmissionBasis.seen`
    recalled: bool = False  # as `SubmissionBasis.recalled`


class AwaitedTokens(Protocol):
    """The bearer token reads and writes of every request in token mode, awaited on an event
    loop (`services.awaited.AwaitedAccessService`). Each call is one step of its own, committed
    when it returns; the same answers as the `ApiTokens` methods named below."""

    async def holder(self, token_id: TokenId) -> TokenHolder | None:
        """As `ApiTokens.holder`."""
        ...

    async def note_use(self, token_id: TokenId, at: datetime, unless_since: datetime) -> None:
        """As `ApiTokens.note_use`, committed."""
        ...


class AwaitedExpenses(Protocol):
    """The expense reads and writes of the HTTP API's busiest requests, awaited on an event
    loop instead of holding a thread (`services.awaited`).

    Each call is one step of its own, with no unit of work around it: a read sees committed
    data, a write is atomic by itself and committed when it returns. The same answers and
    errors as the `ExpenseRepository` methods named below.
    """

    def held(self) -> AbstractAsyncContextManager[None]:
        """Hold what the calls made within the block wait for (PostgreSQL: one connection)
        until it ends, so that a read and the write after it wait once. Nothing that waits on
        anything else (another store, a thread) belongs within."""
        ...

    async def submission_basis(self, user_id: UserId, policy_id: PolicyId) -> SubmissionBasis:
        """As `OrgRepository.member_with_policy_and_pool`. A store may recall what it read for
        an earlier submission (`recalled`), since `add` checks it: the organisation changes
        seldom, and the same people submit under the same policies again and again."""
        ...

    async def category_basis(self, user_id: UserId, category: str) -> CategoryBasis:
        """As `OrgRepository.member_with_policies`, which a store may recall as
        `submission_basis` does."""
        ...

    def forget(self, basis: SubmissionBasis | CategoryBasis) -> None:
        """Recall `basis` no more: a submission refused on it is decided again on a fresh
        read, and the next one should read afresh too."""
        ...

    async def add(
        self,
        basis: SubmissionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> Expense:
        """As `ExpenseRepository.add`, committed, if the organisation is still as `basis`
        read it.

        Raises:
            OrgChanged: it changed since; nothing was written.
        """
        ...

    async def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> ExpenseView:
        """As `ExpenseRepository.view`."""
        ...

    async def basis_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> DecisionBasis | None:
        """As `ExpenseRepository.get_for_decision`, unlocked; None as it says."""
        ...

    async def save_decision(
        self,
        basis: DecisionBasis,
        expense: Expense,
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> None:
        """Write `expense`, decided from `basis.expense`, with its events and notices, if the
        expense is still as read; as `ExpenseRepository.save` otherwise.

        Raises:
            ExpenseChanged: something else wrote the expense since it was read; nothing was
                written.
        """
        ...
