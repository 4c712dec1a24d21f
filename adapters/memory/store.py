"""The in-memory adapter: every port over dicts behind one lock; a shipped implementation.

A unit of work holds the store's lock from start to end, so units of work are serialisable.
Writes go straight into the dicts and are undone on rollback. Values are frozen, so handing
them out is as safe as copying them.
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_left
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import attrs

from adapters.memory.audit import MemoryAuditLog
from adapters.memory.notifications import MemoryOutbox, MemoryWebhooks
from adapters.memory.tokens import MemoryTokens
from adapters.memory.undo import ADDED as _ADDED
from adapters.memory.undo import APPENDED as _APPENDED
from adapters.memory.undo import MISSING as _MISSING
from adapters.memory.undo import REMOVED as _REMOVED
from adapters.memory.undo import Undo
from adapters.memory.undo import put as _put
from expense_core import workflow
from expense_core.approvers import ApproverPool, may_approve
from expense_core.audit import AuditEntry
from expense_core.delegation import Cover, Delegation, in_force
from expense_core.errors import (
    DuplicateEmail,
    DuplicateName,
    IdempotencyKeyRace,
    UnknownCompany,
    UnknownExpense,
    UnknownLevel,
    UnknownPolicy,
    UnknownTeam,
    UnknownUser,
)
from expense_core.escalation import DueStep
from expense_core.identity import email_key
from expense_core.model import (
    ApprovalStatus,
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
    ScopeKind,
    Team,
    TeamId,
    User,
    UserId,
    with_expense_id,
)
from expense_core.notifications import Notice, Topic
from expense_core.tokens import ApiToken, TokenId
from expense_core.views import ApprovalView, ExpenseSummary, ExpenseView, InboxItem
from expense_core.visibility import Sight, is_visible
from expense_core.webhooks import Delivery, DeliveryId, Webhook, WebhookId
from expense_core.workflow import Decision

# Looking a member up on its enum class costs more than most checks made with it.
_PENDING = ApprovalStatus.PENDING
# Pending expenses only: a returned one is not terminal, yet nobody can act on it.
_OPEN = ExpenseStatus.PENDING
_SUBMITTER, _COMPANY_WIDE = ScopeKind.SUBMITTER, ScopeKind.COMPANY_WIDE
# Pools remembered per store before they are all forgotten: one per submitter and policy.
POOL_CACHE_LIMIT = 100_000

OutboxRow = tuple[CompanyId, ExpenseId, Topic, ExpenseEvent, UserId | None]
# Ascending (-level_number, user id) keys beside their members: nearest level first.
Ladder = tuple[list[tuple[int, int]], list[Member]]
# A submitter's id and the ids of the steps: what a gathered pool is remembered by.
PoolKey = tuple[UserId, tuple[int, ...]]
PoolEntry = tuple[tuple[Member, tuple[ApprovalStep, ...]], ApproverPool]


@attrs.define
class _Tables:
    companies: dict[CompanyId, Company] = attrs.Factory(dict)
    teams: dict[TeamId, Team] = attrs.Factory(dict)
    levels: dict[LevelId, HierarchyLevel] = attrs.Factory(dict)
    users: dict[UserId, User] = attrs.Factory(dict)
    emails: dict[tuple[CompanyId, str], UserId] = attrs.Factory(dict)
    policies: dict[PolicyId, Policy] = attrs.Factory(dict)
    expenses: dict[ExpenseId, Expense] = attrs.Factory(dict)
    events: dict[ExpenseId, tuple[ExpenseEvent, ...]] = attrs.Factory(dict)
    # Ascending ids, appended to in place: copying the list per submission would grow with it.
    company_expenses: dict[CompanyId, list[ExpenseId]] = attrs.Factory(dict)
    # Who holds a pending approval of which expenses; the sets change in place (undone on
    # rollback), as copying them per decision would cost as much as they hold.
    waiting_on: dict[UserId, set[ExpenseId]] = attrs.Factory(dict)
    idempotency: dict[tuple[UserId, str], tuple[str, ExpenseId]] = attrs.Factory(dict)
    # What a key stored by a decision answers again; its key is in `idempotency` too.
    decisions: dict[tuple[UserId, str], Decision] = attrs.Factory(dict)
    # Each token's record beside its secret's hash.
    tokens: dict[TokenId, tuple[ApiToken, str]] = attrs.Factory(dict)
    # By the absent user: one delegation each.
    delegations: dict[UserId, Delegation] = attrs.Factory(dict)
    # The outbox in order, each notice as a tuple (company, expense, topic, event, recipient):
    # cheaper to make per write than an entry. A notice's id is its position plus one; the
    # first `dispatched` of them are fanned out (oldest first, one unit of work at a time).
    outbox: list[OutboxRow] = attrs.Factory(list)
    dispatched: dict[str, int] = attrs.Factory(lambda: {"count": 0})
    webhooks: dict[WebhookId, Webhook] = attrs.Factory(dict)
    deliveries: dict[DeliveryId, Delivery] = attrs.Factory(dict)
    # Who holds a delivery, until when (a worker's claim).
    leases: dict[DeliveryId, datetime] = attrs.Factory(dict)
    counters: dict[str, int] = attrs.Factory(dict)
    # The audit log in id order.
    audit: list[AuditEntry] = attrs.Factory(list)


def _on_ladder(user: User) -> bool:
    """Whether resolution may pick the user at all: active, and no auditor (auditors approve
    nothing)."""
    return user.active and user.role is not Role.AUDITOR


class _OrgIndex:
    """What approver resolution reads, derived from the tables and kept in step with them.

    Members (users with their level) by id; per company and per team, the active members who
    may approve (no auditors), nearest level first; and the pools already gathered, per
    submitter and policy steps, forgotten whenever a user changes.
    """

    def __init__(self, tables: _Tables) -> None:
        levels = tables.levels
        self.members = {
            u.id: Member(u, levels[u.hierarchy_level_id]) for u in tables.users.values()
        }
        self.ladders: dict[tuple[str, int], Ladder] = {}
        # One pass over everyone builds every ladder: building them one by one would scan all
        # users once per company and per team.
        for member in sorted(
            (m for m in self.members.values() if _on_ladder(m.user)),
            key=lambda m: (-m.level.level_number, m.user.id),
        ):
            for where in self._rungs(member.user):
                keys, members = self.ladders.setdefault(where, ([], []))
                keys.append((-member.level.level_number, member.user.id))
                members.append(member)
        self.pools: dict[PoolKey, PoolEntry] = {}

    @staticmethod
    def _rungs(user: User) -> tuple[tuple[str, int], tuple[str, int]]:
        return ("company", user.company_id), ("team", user.team_id)

    def ladder(self, kind: str, key: int) -> Ladder:
        return self.ladders.get((kind, key), ([], []))

    def put(self, user: User, level: HierarchyLevel) -> None:
        """Take in a stored user, new or changed."""
        before = self.members.get(user.id)
        if before is not None and _on_ladder(before.user):
            key = (-before.level.level_number, before.user.id)
            for where in self._rungs(before.user):
                keys, members = self.ladders[where]
                i = bisect_left(keys, key)
                del keys[i], members[i]
        member = Member(user, level)
        self.members[user.id] = member
        if _on_ladder(user):
            key = (-level.level_number, user.id)
            for where in self._rungs(user):
                keys, members = self.ladders.setdefault(where, ([], []))
                i = bisect_left(keys, key)
                keys.insert(i, key)
                members.insert(i, member)
        # Anyone's pool may hold this user, in its chain or among its candidates.
        self.pools.clear()


class MemoryStore:
    """All the data, shared by the units of work it hands out."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tables = _Tables()
        # Built on first use, then kept up to date by user writes; dropped on a rollback that
        # touched users, and after anyone writes the tables directly.
        self._org: _OrgIndex | None = None

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)

    def next_id(self, table: str) -> int:
        value = self.tables.counters.get(table, 0) + 1
        self.tables.counters[table] = value
        return value

    def org_index(self) -> _OrgIndex:
        index = self._org
        if index is None:
            index = self._org = _OrgIndex(self.tables)
        return index

    def ladder(self, kind: str, key: int) -> Ladder:
        """Active members of a company or team ("company" or "team") who may approve (no
        auditors), nearest level first."""
        return self.org_index().ladder(kind, key)

    def forget_ladders(self) -> None:
        """Drop what is derived from the users table; it is rebuilt when next needed."""
        self._org = None

    def took_in(self, user: User) -> None:
        """Bring what is derived from the users table up to date with a stored user."""
        index = self._org
        if index is None:
            return
        level = self.tables.levels.get(user.hierarchy_level_id)
        if level is None:
            self._org = None  # the rebuild will say what is wrong, as the first build would
        else:
            index.put(user, level)


class MemoryUnitOfWork:
    """One serialisable transaction over a `MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._undo: Undo = []
        self._committed = False
        # Made up front: a repository holds a few references, cheaper to make than to make lazily.
        self.org = MemoryOrg(store, self._undo)
        self.expenses = MemoryExpenses(store, self._undo)
        self.idempotency = MemoryIdempotency(store, self._undo)
        self.tokens = MemoryTokens(store, self._undo)
        self.delegations = MemoryDelegations(store, self._undo)

    # Made when first asked for: only the worker and the webhook routes use them.
    @functools.cached_property
    def webhooks(self) -> MemoryWebhooks:
        return MemoryWebhooks(self._store, self._undo)

    @functools.cached_property
    def outbox(self) -> MemoryOutbox:
        return MemoryOutbox(self._store, self._undo)

    @functools.cached_property
    def audit(self) -> MemoryAuditLog:
        return MemoryAuditLog(self._store, self._undo)

    def __enter__(self) -> Self:
        self._store.lock.acquire()
        self._undo.clear()
        self._committed = False
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self._committed:
                self.rollback()
        finally:
            self._store.lock.release()

    def commit(self) -> None:
        self._undo.clear()
        self._committed = True

    def commit_next_write(self) -> None:
        """Nothing to save: the store's lock already makes the unit of work's writes one."""

    def rollback(self) -> None:
        users, companies = self._store.tables.users, self._store.tables.companies
        # Pools hold users and their company's fallback approver.
        if any(table is users or table is companies for table, _, _ in self._undo):
            self._store.forget_ladders()
        for table, key, old in reversed(self._undo):
            if old is _APPENDED:
                # An item appended to the list under a key, or to the list itself (key None).
                (table if key is None else table[key]).pop()
            elif old is _ADDED:
                table.discard(key)
            elif old is _REMOVED:
                table.add(key)
            elif old is _MISSING:
                del table[key]
            else:
                table[key] = old
        self._undo.clear()


class MemoryOrg:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._store = store
        self._t = store.tables
        self._undo = undo

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        _put(self._undo, table, key, value)

    def member(self, user_id: UserId) -> Member:
        member = self._store.org_index().members.get(user_id)
        if member is None:
            raise UnknownUser(user_id)
        return member

    def member_with_policies(
        self, user_id: UserId, category: str
    ) -> tuple[Member, tuple[Policy, ...]]:
        member = self.member(user_id)
        return member, self.policies(member.user.company_id, category)

    def member_with_policy_and_pool(
        self, user_id: UserId, policy_id: PolicyId
    ) -> tuple[Member, Policy | None, ApproverPool | None]:
        member = self.member(user_id)
        policy = self._t.policies.get(policy_id)
        if policy is None or policy.company_id != member.user.company_id:
            return member, None, None
        return member, policy, self.approver_pool(member, policy.steps)

    def approver_pool(self, submitter: Member, steps: Sequence[ApprovalStep]) -> ApproverPool:
        index = self._store.org_index()
        # A pool depends on the submitter, the steps, and users and their levels, whose every
        # write forgets all pools. Found by ids, far cheaper to hash than whole steps, and used
        # only for the same values: steps not stored yet all have id 0.
        steps = tuple(steps)
        key = (submitter.id, tuple([s.id for s in steps]))
        found = index.pools.get(key)
        if found is not None and found[0] == (submitter, steps):
            return found[1]
        pool = self._gather(index, submitter, steps)
        if len(index.pools) >= POOL_CACHE_LIMIT:
            index.pools.clear()
        index.pools[key] = ((submitter, steps), pool)
        return pool

    def _gather(
        self, index: _OrgIndex, submitter: Member, steps: Sequence[ApprovalStep]
    ) -> ApproverPool:
        members = index.members
        chain: list[Member] = []
        seen = {submitter.user.id}
        manager_id = submitter.user.manager_id
        while manager_id is not None and manager_id not in seen:
            seen.add(manager_id)
            manager = members.get(manager_id)
            if manager is None:
                raise UnknownUser(manager_id)
            chain.append(manager)
            manager_id = manager.user.manager_id
        wanted = len(steps)
        candidates: dict[UserId, Member] = {}
        for step in steps:
            self._nearest(index, submitter, step, wanted, candidates)
        company = self._t.companies.get(submitter.user.company_id)
        fallback_id = None if company is None else company.fallback_approver_id
        fallback = None if fallback_id is None else members.get(fallback_id)
        return ApproverPool(tuple(chain), tuple(candidates.values()), fallback)

    @staticmethod
    def _nearest(
        index: _OrgIndex,
        submitter: Member,
        step: ApprovalStep,
        wanted: int,
        into: dict[UserId, Member],
    ) -> None:
        """Add the `wanted` nearest members eligible for the step (before four eyes)."""
        scope = step.team_scope
        kind = scope.kind
        user = submitter.user
        if kind is _COMPANY_WIDE:
            keys, members = index.ladder("company", user.company_id)
        else:
            team = user.team_id if scope.team_id is None else scope.team_id
            keys, members = index.ladder("team", team)
        top = step.required_level
        if kind is _SUBMITTER or kind is _COMPANY_WIDE:
            top = min(top, submitter.level.level_number - 1)
            # The ladder already holds only active non-auditors of the scope, and the bisection
            # only those senior enough: what is left to check is who they are and their company.
            found = 0
            for i in range(bisect_left(keys, (-top, 0)), len(members)):
                if found >= wanted:
                    return
                member = members[i]
                if member.user.id != user.id and member.user.company_id == user.company_id:
                    found += 1
                    into.setdefault(member.user.id, member)
            return
        if scope.demands_seniority:
            top = min(top, submitter.level.level_number - 1)
        found = 0
        for i in range(bisect_left(keys, (-top, 0)), len(members)):
            if found >= wanted:
                return
            member = members[i]
            if may_approve(step, submitter, member, {}):
                found += 1
                into.setdefault(member.user.id, member)

    def policy(self, company_id: CompanyId, policy_id: PolicyId) -> Policy:
        policy = self._t.policies.get(policy_id)
        if policy is None or policy.company_id != company_id:
            raise UnknownPolicy(policy_id)
        return policy

    def policies(self, company_id: CompanyId, category: str) -> tuple[Policy, ...]:
        return tuple(
            p
            for p in self._t.policies.values()
            if p.company_id == company_id and p.category == category and p.active
        )

    def company(self, company_id: CompanyId) -> Company:
        company = self._t.companies.get(company_id)
        if company is None:
            raise UnknownCompany(company_id)
        return company

    def team(self, company_id: CompanyId, team_id: TeamId) -> Team:
        team = self._t.teams.get(team_id)
        if team is None or team.company_id != company_id:
            raise UnknownTeam(team_id)
        return team

    def level(self, company_id: CompanyId, level_id: LevelId) -> HierarchyLevel:
        level = self._t.levels.get(level_id)
        if level is None or level.company_id != company_id:
            raise UnknownLevel(level_id)
        return level

    def user_by_email(self, company_id: CompanyId, email: str) -> User | None:
        user_id = self._t.emails.get((company_id, email))
        return None if user_id is None else self._t.users[user_id]

    def members_by_email(self, company_id: CompanyId, email: str) -> tuple[Member, ...]:
        key = email_key(email)
        found = sorted(
            user_id
            for (company, address), user_id in self._t.emails.items()
            if company == company_id and email_key(address) == key
        )
        members = self._store.org_index().members
        return tuple(members[user_id] for user_id in found)

    def add_company(self, name: str) -> Company:
        company = Company(CompanyId(self._store.next_id("companies")), name)
        self._put(self._t.companies, company.id, company)
        return company

    def update_company(self, company: Company) -> Company:
        if company.id not in self._t.companies:
            raise UnknownCompany(company.id)
        self._put(self._t.companies, company.id, company)
        # Every pool of the company holds its fallback approver.
        self._store.org_index().pools.clear()
        return company

    def add_team(self, team: Team) -> Team:
        if any(
            t.company_id == team.company_id and t.name == team.name for t in self._t.teams.values()
        ):
            raise DuplicateName("team", team.name)
        team = attrs.evolve(team, id=TeamId(self._store.next_id("teams")))
        self._put(self._t.teams, team.id, team)
        return team

    def add_level(self, level: HierarchyLevel) -> HierarchyLevel:
        if any(
            lv.team_id == level.team_id and lv.level_number == level.level_number
            for lv in self._t.levels.values()
        ):
            raise DuplicateName("level", f"{level.level_number} in team {level.team_id}")
        level = attrs.evolve(level, id=LevelId(self._store.next_id("levels")))
        self._put(self._t.levels, level.id, level)
        return level

    def add_user(self, user: User) -> User:
        if (user.company_id, user.email) in self._t.emails:
            raise DuplicateEmail(user.email)
        user = attrs.evolve(user, id=UserId(self._store.next_id("users")))
        self._put(self._t.users, user.id, user)
        self._put(self._t.emails, (user.company_id, user.email), user.id)
        self._store.took_in(user)
        return user

    def add_policy(self, policy: Policy) -> Policy:
        if policy.active and any(
            p.active
            and (p.company_id, p.category, p.min_amount)
            == (policy.company_id, policy.category, policy.min_amount)
            for p in self._t.policies.values()
        ):
            # As the SQL schema's partial unique index on active policies.
            raise DuplicateName("policy", f"{policy.category} from {policy.min_amount}")
        policy_id = PolicyId(self._store.next_id("policies"))
        steps = tuple(
            attrs.evolve(s, id=self._store.next_id("approval_steps")) for s in policy.steps
        )
        policy = attrs.evolve(
            policy,
            id=policy_id,
            steps=steps,
            created_at=policy.created_at or datetime.now(UTC),
        )
        self._put(self._t.policies, policy.id, policy)
        return policy

    def company_named(self, name: str) -> Company | None:
        return next((c for _, c in sorted(self._t.companies.items()) if c.name == name), None)

    def company_of_team(self, team_id: TeamId) -> CompanyId:
        team = self._t.teams.get(team_id)
        if team is None:
            raise UnknownTeam(team_id)
        return team.company_id

    def company_of_policy(self, policy_id: PolicyId) -> CompanyId:
        policy = self._t.policies.get(policy_id)
        if policy is None:
            raise UnknownPolicy(policy_id)
        return policy.company_id

    def teams(self, company_id: CompanyId) -> tuple[Team, ...]:
        return tuple(
            sorted(
                (t for t in self._t.teams.values() if t.company_id == company_id),
                key=lambda t: t.id,
            )
        )

    def levels(self, company_id: CompanyId, team_id: TeamId) -> tuple[HierarchyLevel, ...]:
        return tuple(
            sorted(
                (
                    lv
                    for lv in self._t.levels.values()
                    if lv.company_id == company_id and lv.team_id == team_id
                ),
                key=lambda lv: lv.level_number,
            )
        )

    def users(self, company_id: CompanyId, *, after: UserId | None, limit: int) -> tuple[User, ...]:
        found = sorted(
            u.id
            for u in self._t.users.values()
            if u.company_id == company_id and (after is None or u.id > after)
        )
        return tuple(self._t.users[i] for i in found[:limit])

    def names(self, company_id: CompanyId, user_ids: Collection[UserId]) -> dict[UserId, str]:
        found = (self._t.users.get(i) for i in user_ids)
        return {u.id: u.name for u in found if u is not None and u.company_id == company_id}

    def update_user(self, user: User) -> User:
        before = self._t.users.get(user.id)
        if before is None or before.company_id != user.company_id:
            raise UnknownUser(user.id)
        if user.email != before.email:
            if (user.company_id, user.email) in self._t.emails:
                raise DuplicateEmail(user.email)
            self._put(self._t.emails, (user.company_id, user.email), user.id)
            self._put(self._t.emails, (user.company_id, before.email), _MISSING)
            del self._t.emails[(user.company_id, before.email)]
        self._put(self._t.users, user.id, user)
        self._store.took_in(user)
        return user

    def company_policies(self, company_id: CompanyId) -> tuple[Policy, ...]:
        return tuple(p for _, p in sorted(self._t.policies.items()) if p.company_id == company_id)

    def deactivate_policy(self, company_id: CompanyId, policy_id: PolicyId) -> None:
        policy = self.policy(company_id, policy_id)
        self._put(self._t.policies, policy_id, attrs.evolve(policy, active=False))

    def policy_in_use(self, company_id: CompanyId, policy_id: PolicyId) -> bool:
        return any(
            self._t.expenses[e].policy_id == policy_id
            for e in self._t.company_expenses.get(company_id, ())
        )

    def pending_held_by(self, company_id: CompanyId, user_id: UserId) -> tuple[ExpenseId, ...]:
        return tuple(
            sorted(
                e
                for e in self._t.waiting_on.get(user_id, ())
                if self._t.expenses[e].company_id == company_id
                and self._t.expenses[e].status is _OPEN
            )
        )

    def pending_submitted_by(self, company_id: CompanyId, user_id: UserId) -> tuple[ExpenseId, ...]:
        return tuple(
            e
            for e in self._t.company_expenses.get(company_id, ())
            if self._t.expenses[e].user_id == user_id and self._t.expenses[e].status is _OPEN
        )


class MemoryExpenses:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._store = store
        self._t = store.tables
        self._undo = undo

    def add(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> Expense:
        t, undo = self._t, self._undo
        expense_id = ExpenseId(self._store.next_id("expenses"))
        expense = expense.with_id(expense_id)
        _put(undo, t.expenses, expense_id, expense)
        stamped = with_expense_id(events, expense_id)
        _put(undo, t.events, expense_id, stamped)
        self._notify(expense, stamped, notices)
        listed = t.company_expenses.get(expense.company_id)
        if listed is None:
            _put(undo, t.company_expenses, expense.company_id, [expense_id])
        else:
            listed.append(expense_id)
            undo.append((t.company_expenses, expense.company_id, _APPENDED))
        self._index_waiting(None, expense)
        return expense

    def get_for_update(self, company_id: CompanyId, expense_id: ExpenseId) -> Expense:
        # The unit of work already holds the store's lock: nobody else can decide meanwhile.
        return self.get(company_id, expense_id)

    def get_for_update_by(self, actor_id: UserId, expense_id: ExpenseId) -> Expense | None:
        actor = self._t.users.get(actor_id)
        expense = self._t.expenses.get(expense_id)
        if actor is None or not actor.active or expense is None:
            return None
        return expense if expense.company_id == actor.company_id else None

    def get_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> tuple[Expense, tuple[Cover, ...], Role | None] | None:
        if company_id is None:
            expense = self.get_for_update_by(actor_id, expense_id)
        else:
            expense = self._t.expenses.get(expense_id)
            if expense is not None and expense.company_id != company_id:
                expense = None
        if expense is None:
            return None
        actor = self._t.users.get(actor_id)
        return expense, self._covers(expense, actor_id), None if actor is None else actor.role

    def _covers(self, expense: Expense, actor_id: UserId) -> tuple[Cover, ...]:
        """A cover per step whose approver named the actor as delegate, as the SQL adapter's
        locking read finds them: only where the step's and the actor's levels are known."""
        delegations = self._t.delegations
        if not delegations:
            return ()
        covers: list[Cover] = []
        for a in expense.approvals:
            d = delegations.get(a.approver_id)
            if d is None or d.delegate_id != actor_id or d.company_id != expense.company_id:
                continue
            policy = self._t.policies.get(expense.policy_id)
            step = None
            if policy is not None:
                step = next((s for s in policy.steps if s.step_order == a.step_number), None)
            delegate = self._store.org_index().members.get(actor_id)
            if step is None or delegate is None:
                continue
            covers.append(
                Cover(
                    step_number=a.step_number,
                    delegation=d,
                    required_level=step.required_level,
                    delegate_level=delegate.level.level_number,
                )
            )
        return tuple(covers)

    def save(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> None:
        t, undo = self._t, self._undo
        expense_id = expense.id
        before = t.expenses.get(expense_id)
        if before is None or before.company_id != expense.company_id:
            raise UnknownExpense(expense_id)
        t.expenses[expense_id] = expense
        undo.append((t.expenses, expense_id, before))
        history = t.events[expense_id]
        t.events[expense_id] = (*history, *events)
        undo.append((t.events, expense_id, history))
        self._index_waiting(before, expense)
        self._notify(expense, events, notices)

    def _notify(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> None:
        """Put the notices in the outbox, each with its event."""
        outbox, undo = self._t.outbox, self._undo
        company_id, expense_id = expense.company_id, expense.id
        for topic, event, recipient_id in notices:
            outbox.append((company_id, expense_id, topic, events[event], recipient_id))
            undo.append((outbox, None, _APPENDED))

    def _index_waiting(self, before: Expense | None, after: Expense) -> None:
        expense_id = after.id
        waiting_on, undo = self._t.waiting_on, self._undo
        old = []
        if before is not None:
            for a in before.approvals:
                if a.status is _PENDING:
                    old.append(a.approver_id)
        new = []
        for a in after.approvals:
            if a.status is _PENDING:
                new.append(a.approver_id)
        for user_id in old:
            if user_id not in new:
                held = waiting_on.get(user_id)
                if held is not None and expense_id in held:
                    held.remove(expense_id)
                    undo.append((held, expense_id, _REMOVED))
        for user_id in new:
            if user_id not in old:
                held = waiting_on.get(user_id)
                if held is None:
                    _put(undo, waiting_on, user_id, {expense_id})
                elif expense_id not in held:
                    held.add(expense_id)
                    undo.append((held, expense_id, _ADDED))

    def _waiting(self, user_id: UserId) -> set[ExpenseId]:
        return self._t.waiting_on.get(user_id) or set()

    def get(
        self, company_id: CompanyId, expense_id: ExpenseId, sight: Sight | None = None
    ) -> Expense:
        expense = self._t.expenses.get(expense_id)
        if expense is None or expense.company_id != company_id:
            raise UnknownExpense(expense_id)
        if sight is not None and not self._sees(sight, expense, self._covered(sight, company_id)):
            raise UnknownExpense(expense_id)
        return expense

    def views(self, expense_ids: Sequence[ExpenseId]) -> tuple[ExpenseView, ...]:
        found = sorted(set(expense_ids) & self._t.expenses.keys())
        return tuple(self.view(None, expense_id) for expense_id in found)

    def _covered(self, sight: Sight, company_id: CompanyId) -> frozenset[UserId]:
        """Who has a delegation to the sight's viewer in force."""
        return frozenset(
            d.user_id
            for d in self._t.delegations.values()
            if d.delegate_id == sight.viewer_id
            and d.company_id == company_id
            and d.is_active(sight.as_of)
        )

    def _sees(self, sight: Sight, expense: Expense, covered: frozenset[UserId]) -> bool:
        users = self._t.users
        bosses: set[UserId] = set()
        boss = users[expense.user_id].manager_id
        # A chain is walked once however it loops (manager ids are not checked for cycles).
        while boss is not None and boss not in bosses:
            bosses.add(boss)
            above = users.get(boss)
            boss = None if above is None else above.manager_id
        return is_visible(expense, sight.viewer_id, bosses=bosses, covered=covered)

    def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> ExpenseView:
        expense = self._t.expenses.get(expense_id)
        if expense is None or company_id not in (None, expense.company_id):
            raise UnknownExpense(expense_id)
        if sight is not None and not self._sees(
            sight, expense, self._covered(sight, expense.company_id)
        ):
            raise UnknownExpense(expense_id)
        t = self._t
        return ExpenseView(
            id=expense.id,
            company_id=expense.company_id,
            amount=expense.amount,
            description=expense.description,
            status=expense.status,
            submitted_at=expense.submitted_at,
            completed_at=expense.completed_at,
            user_id=expense.user_id,
            user_name=t.users[expense.user_id].name,
            policy_id=expense.policy_id,
            policy_name=t.policies[expense.policy_id].name,
            policy_active=t.policies[expense.policy_id].active,
            approvals=tuple(
                ApprovalView(
                    step_number=a.step_number,
                    approver_id=a.approver_id,
                    approver_name=t.users[a.approver_id].name,
                    approver_level=t.levels[a.approver_level_id].level_name,
                    status=a.status,
                    approved_at=a.approved_at,
                    comments=a.comments,
                    required=a.required,
                )
                for a in expense.approvals
            ),
        )

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
        ids = self._t.company_expenses.get(company_id, ())
        end = len(ids) if before is None else bisect_left(ids, before)
        covered = frozenset[UserId]() if sight is None else self._covered(sight, company_id)
        found: list[ExpenseSummary] = []
        for i in range(end - 1, -1, -1):
            if len(found) >= limit:
                break
            e = self._t.expenses[ids[i]]
            if (
                (user_id is None or e.user_id == user_id)
                and (status is None or e.status == status)
                and (sight is None or self._sees(sight, e, covered))
            ):
                found.append(_summary(e))
        return tuple(found)

    def inbox(
        self,
        company_id: CompanyId,
        approver_id: UserId,
        *,
        after: ExpenseId | None,
        limit: int,
        as_of: datetime | None = None,
    ) -> tuple[InboxItem, ...]:
        absent = []
        if as_of is not None:
            absent = [
                d.user_id
                for d in self._t.delegations.values()
                if d.delegate_id == approver_id
                and d.company_id == company_id
                and d.is_active(as_of)
            ]
        if absent:
            return self._inbox_covering(company_id, approver_id, absent, after, limit, as_of)
        items: list[InboxItem] = []
        for expense_id in sorted(self._waiting(approver_id)):
            if after is not None and expense_id <= after:
                continue
            expense = self._t.expenses[expense_id]
            if expense.company_id != company_id or expense.status is not _OPEN:
                continue
            current = expense.current_step
            for a in expense.approvals:
                if (
                    a.approver_id == approver_id
                    and a.is_pending
                    and (not a.required or a == current)
                ):
                    items.append(self._inbox_item(expense, a.step_number, a.required))
                    break
            if len(items) >= limit:
                break
        return tuple(items)

    def _inbox_covering(
        self,
        company_id: CompanyId,
        approver_id: UserId,
        absent: list[UserId],
        after: ExpenseId | None,
        limit: int,
        as_of: datetime | None,
    ) -> tuple[InboxItem, ...]:
        """The inbox of someone who covers for the `absent`: their own steps and the steps
        they may decide for them, one item per expense."""
        assert as_of is not None  # noqa: S101 -- only called with a moment
        candidates = set(self._waiting(approver_id))
        for user_id in absent:
            candidates |= self._waiting(user_id)
        items: list[InboxItem] = []
        for expense_id in sorted(candidates):
            if after is not None and expense_id <= after:
                continue
            expense = self._t.expenses[expense_id]
            if expense.company_id != company_id or expense.is_terminal:
                continue
            current = expense.current_step
            own = next(
                (
                    a
                    for a in expense.approvals
                    if a.approver_id == approver_id
                    and a.is_pending
                    and (not a.required or a == current)
                ),
                None,
            )
            if own is not None:
                items.append(self._inbox_item(expense, own.step_number, own.required))
            else:
                covers = in_force(self._covers(expense, approver_id), approver_id, as_of)
                covered = workflow.covered_step(expense, approver_id, covers)
                if covered is None:
                    continue
                item = self._inbox_item(expense, covered.step_number, covered.required)
                items.append(attrs.evolve(item, on_behalf_of=covered.approver_id))
            if len(items) >= limit:
                break
        return tuple(items)

    def _inbox_item(self, expense: Expense, step: int, required: bool) -> InboxItem:
        return InboxItem(
            expense_id=expense.id,
            step_number=step,
            required=required,
            amount=expense.amount,
            description=expense.description,
            submitted_at=expense.submitted_at,
            submitter_id=expense.user_id,
            submitter_name=self._t.users[expense.user_id].name,
            policy_name=self._t.policies[expense.policy_id].name,
        )

    def history(
        self, company_id: CompanyId, expense_id: ExpenseId, sight: Sight | None = None
    ) -> tuple[ExpenseEvent, ...]:
        self.get(company_id, expense_id, sight)
        return self._t.events[expense_id]

    def due_for_escalation(
        self, as_of: datetime, *, after: DueStep | None, limit: int
    ) -> tuple[DueStep, ...]:
        found: list[DueStep] = []
        for expense in self._t.expenses.values():
            for a in expense.approvals:
                if a.status is _PENDING and a.escalate_at is not None and a.escalate_at <= as_of:
                    due = DueStep(a.escalate_at, expense.id, expense.company_id, a.step_number)
                    if after is None or due > after:
                        found.append(due)
        return tuple(sorted(found)[:limit])


def _summary(e: Expense) -> ExpenseSummary:
    return ExpenseSummary(
        id=e.id,
        company_id=e.company_id,
        user_id=e.user_id,
        policy_id=e.policy_id,
        amount=e.amount,
        description=e.description,
        status=e.status,
        submitted_at=e.submitted_at,
        completed_at=e.completed_at,
    )


class MemoryIdempotency:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._t = store.tables
        self._undo = undo

    def recall(self, user_id: UserId, key: str) -> tuple[str, ExpenseId] | None:
        return self._t.idempotency.get((user_id, key))

    def remember(self, user_id: UserId, key: str, fingerprint: str, expense_id: ExpenseId) -> None:
        if (user_id, key) in self._t.idempotency:
            raise IdempotencyKeyRace(key)
        _put(self._undo, self._t.idempotency, (user_id, key), (fingerprint, expense_id))

    def recall_decision(self, user_id: UserId, key: str) -> tuple[str, Decision | None] | None:
        found = self._t.idempotency.get((user_id, key))
        if found is None:
            return None
        return found[0], self._t.decisions.get((user_id, key))

    def remember_decision(
        self, user_id: UserId, key: str, fingerprint: str, decision: Decision
    ) -> None:
        self.remember(user_id, key, fingerprint, decision.expense.id)
        _put(self._undo, self._t.decisions, (user_id, key), decision)


class MemoryDelegations:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._t = store.tables
        self._undo = undo

    def get(self, company_id: CompanyId, user_id: UserId) -> Delegation | None:
        found = self._t.delegations.get(user_id)
        return found if found is not None and found.company_id == company_id else None

    def put(self, delegation: Delegation) -> None:
        _put(self._undo, self._t.delegations, delegation.user_id, delegation)

    def remove(self, company_id: CompanyId, user_id: UserId) -> bool:
        if self.get(company_id, user_id) is None:
            return False
        _put(self._undo, self._t.delegations, user_id, _MISSING)
        del self._t.delegations[user_id]
        return True
