"""The organisation: companies, teams, levels, users and policies, each checked before it is
stored; a user change re-routes the pending approvals it affects in the same unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from enum import Enum
from typing import Final, TypeVar

import attrs

from expense_core import approvers, workflow
from expense_core.audit import (
    AuditEntry,
    TargetType,
    company_record,
    entry,
    level_record,
    policy_record,
    team_record,
    user_record,
)
from expense_core.errors import (
    FallbackApproverAuditor,
    FallbackApproverInactive,
    InvalidOrgChange,
    LevelOutsideTeam,
    ManagerCycle,
    NoApproverForStep,
    PendingApprovalsStranded,
    ReplacementNotEligible,
    UnknownFallbackApprover,
    UnknownManager,
    UnknownUser,
)
from expense_core.model import (
    MOST_JUNIOR,
    MOST_SENIOR,
    ApprovalStep,
    Company,
    CompanyId,
    ExpenseEvent,
    ExpenseId,
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
from expense_core.notifications import notices
from expense_core.policies import check_new_policy
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import UtcClock, check_page, page_of
from expense_core.views import Page

T = TypeVar("T")

# --- commands and results --------------------------------------------------------------------


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
    # Who creates them, for the audit log (None: the command line, demo mode).
    actor_id: UserId | None = None


@attrs.frozen(kw_only=True)
class NewPolicy:
    """A policy to create; `replaces` names the policy it succeeds, deactivated in the same
    unit of work (a used policy never changes: it is replaced). `actor_id` is who creates it,
    for the audit log."""

    company_id: CompanyId
    category: str
    name: str
    min_amount: Money
    max_amount: Money
    steps: tuple[ApprovalStep, ...]
    description: str | None = None
    replaces: PolicyId | None = None
    active: bool = True
    actor_id: UserId | None = None


@attrs.frozen(kw_only=True)
class ChangeUser:
    """Change some of a user's fields; those left `UNCHANGED` keep their value.

    `company_id` confines the change to one company (a verified admin's); `actor_id` is who
    changes it, recorded on the `reassigned` events and in the audit log;
    `replacement_approver_id` takes over the
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
class ChangePreview:
    """What a user change would do if confirmed now: the user as changed, the pending steps
    that would move and to whom, and those nobody would be eligible for (the change is then
    refused unless a replacement approver is named)."""

    user: User
    reassignments: tuple[Reassignment, ...]
    stranded: tuple[tuple[ExpenseId, int], ...]


@attrs.frozen
class PolicyInfo:
    """A policy, and whether some expense was routed by it (then it can only be replaced)."""

    policy: Policy
    in_use: bool


# --- the service -----------------------------------------------------------------------------


@attrs.frozen
class OrgService:
    """Set up and change companies, teams, levels, users and policies, each checked before it
    is stored; a user change re-routes the pending approvals it affects in the same unit of work.

    A `company_id` of `None` reads or changes any company (demo mode); otherwise an id of
    another company is unknown. Every change appends to the audit log in its unit of work,
    naming `actor_id` (None: the command line, demo mode); a change that changes nothing
    appends nothing.
    """

    new_uow: Callable[[], UnitOfWork]
    clock: Clock = attrs.field(factory=UtcClock)

    # --- companies, teams, levels

    def create_company(self, name: str, *, actor_id: UserId | None = None) -> Company:
        """Raises: InvalidOrgChange for an empty or over-long name."""
        check_name("company name", name)
        with self.new_uow() as uow:
            company = uow.org.add_company(name)
            uow.audit.append(
                entry(
                    company_id=company.id,
                    actor_id=actor_id,
                    at=self.clock.now(),
                    action="company.created",
                    target_type=TargetType.COMPANY,
                    target_id=company.id,
                    after=company_record(company),
                )
            )
            uow.commit()
        return company

    def company(self, company_id: CompanyId) -> Company:
        """Raises: UnknownCompany."""
        with self.new_uow() as uow:
            return uow.org.company(company_id)

    def set_fallback_approver(
        self, company_id: CompanyId, user_id: UserId | None, *, actor_id: UserId | None = None
    ) -> Company:
        """Name who takes the steps nobody else is eligible for (None: nobody); it applies to
        expenses submitted, re-routed or escalated from now on.

        Raises:
            UnknownCompany.
            UnknownFallbackApprover: no such user in the company.
            FallbackApproverInactive: the user is inactive.
            FallbackApproverAuditor: the user is an auditor.
        """
        with self.new_uow() as uow:
            company = uow.org.company(company_id)
            if user_id is not None:
                check_fallback(uow, company_id, user_id)
            updated = uow.org.update_company(attrs.evolve(company, fallback_approver_id=user_id))
            if updated != company:
                uow.audit.append(
                    entry(
                        company_id=company_id,
                        actor_id=actor_id,
                        at=self.clock.now(),
                        action="company.updated",
                        target_type=TargetType.COMPANY,
                        target_id=company_id,
                        before=company_record(company),
                        after=company_record(updated),
                    )
                )
            uow.commit()
        return updated

    def create_team(
        self,
        company_id: CompanyId,
        name: str,
        *,
        is_company_wide: bool = False,
        actor_id: UserId | None = None,
    ) -> Team:
        """Raises: UnknownCompany, InvalidOrgChange, DuplicateName."""
        check_name("team name", name)
        with self.new_uow() as uow:
            uow.org.company(company_id)
            team = uow.org.add_team(Team(TeamId(0), company_id, name, is_company_wide))
            uow.audit.append(
                entry(
                    company_id=company_id,
                    actor_id=actor_id,
                    at=self.clock.now(),
                    action="team.created",
                    target_type=TargetType.TEAM,
                    target_id=team.id,
                    after=team_record(team),
                )
            )
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
        self,
        company_id: CompanyId,
        team_id: TeamId,
        level_number: int,
        level_name: str,
        *,
        actor_id: UserId | None = None,
    ) -> HierarchyLevel:
        """Raises: UnknownTeam, InvalidOrgChange (a number outside 1..10), DuplicateName."""
        check_name("level name", level_name)
        if not MOST_SENIOR <= level_number <= MOST_JUNIOR:
            raise InvalidOrgChange(
                f"level_number must be between {MOST_SENIOR} and {MOST_JUNIOR}, got {level_number}"
            )
        with self.new_uow() as uow:
            uow.org.team(company_id, team_id)
            level = uow.org.add_level(
                HierarchyLevel(LevelId(0), company_id, team_id, level_number, level_name)
            )
            uow.audit.append(
                entry(
                    company_id=company_id,
                    actor_id=actor_id,
                    at=self.clock.now(),
                    action="level.created",
                    target_type=TargetType.LEVEL,
                    target_id=level.id,
                    after=level_record(level),
                )
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
        check_name("user name", new.name, limit=255)
        email = check_email(new.email)
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
            check_user(uow, user)
            stored = uow.org.add_user(user)
            uow.audit.append(
                entry(
                    company_id=stored.company_id,
                    actor_id=new.actor_id,
                    at=self.clock.now(),
                    action="user.created",
                    target_type=TargetType.USER,
                    target_id=stored.id,
                    after=user_record(stored),
                )
            )
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
        check_page(cursor, limit)
        with self.new_uow() as uow:
            uow.org.company(company_id)
            after = UserId(cursor) if cursor is not None else None
            items = uow.org.users(company_id, after=after, limit=limit + 1)
        return page_of(items, limit, lambda u: u.id)

    def names(self, company_id: CompanyId, user_ids: Collection[UserId]) -> dict[UserId, str]:
        """The names of those of `user_ids` who are or were of the company, in one read."""
        if not user_ids:
            return {}
        with self.new_uow() as uow:
            return uow.org.names(company_id, user_ids)

    def change_user(self, cmd: ChangeUser) -> UserChanged:
        """Change a user; when they leave, move team or level, or become an auditor, re-route
        what it affects.

        Each pending approval the user holds is resolved again under the current rules
        (seniority, four eyes against the expense's other approvers, reporting chain); on the
        user's own pending expenses, approvers who are no longer eligible are replaced. Every
        move is a `reassigned` event, written with the change in one unit of work, as is the
        audit entry (`user.deactivated` when the user leaves, else `user.updated`, with the
        whole user before and after; a role change is an update).

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
            check_user(uow, user)
            stored = uow.org.update_user(user)
            reassignments: tuple[Reassignment, ...] = ()
            if _moves_routing(before, stored):
                reassignments = _reroute(uow, stored, cmd, self.clock.now())
            if stored != before:
                uow.audit.append(
                    entry(
                        company_id=stored.company_id,
                        actor_id=cmd.actor_id,
                        at=self.clock.now(),
                        action="user.deactivated"
                        if before.active and not stored.active
                        else "user.updated",
                        target_type=TargetType.USER,
                        target_id=stored.id,
                        before=user_record(before),
                        after=user_record(stored),
                    )
                )
            uow.commit()
        return UserChanged(stored, reassignments)

    def preview_change_user(self, cmd: ChangeUser) -> ChangePreview:
        """What `change_user(cmd)` would do now, changing nothing: the steps it would move and
        to whom, and those it would strand.

        A dry run of the same rules in a unit of work that is never committed, so the preview
        is exactly what confirming would do while the organisation stays as it is.

        Raises:
            As `change_user`, but for PendingApprovalsStranded: stranded steps are listed.
        """
        with self.new_uow() as uow:
            before = uow.org.member(cmd.user_id).user
            if cmd.company_id is not None and before.company_id != cmd.company_id:
                raise UnknownUser(cmd.user_id)
            user = _apply(before, cmd)
            check_user(uow, user)
            stored = uow.org.update_user(user)
            moved: tuple[Reassignment, ...] = ()
            stranded: tuple[tuple[ExpenseId, int], ...] = ()
            if _moves_routing(before, stored):
                moved, stranded = _rerouting(uow, stored, cmd, self.clock.now())
            # Leaving without a commit rolls every write of the dry run back.
        return ChangePreview(stored, moved, stranded)

    # --- policies

    def create_policy(self, new: NewPolicy) -> Policy:
        """Create a policy, deactivating the one it replaces in the same unit of work (an
        audit entry each: `policy.deactivated` when the replaced one was active, then
        `policy.created`).

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
            at = self.clock.now()
            if new.replaces is not None:
                replaced = uow.org.policy(new.company_id, new.replaces)
                uow.org.deactivate_policy(new.company_id, new.replaces)
                if replaced.active:
                    uow.audit.append(_policy_deactivated(replaced, new.actor_id, at))
            check_new_policy(policy, uow.org.policies(new.company_id, new.category))
            stored = uow.org.add_policy(policy)
            uow.audit.append(
                entry(
                    company_id=stored.company_id,
                    actor_id=new.actor_id,
                    at=at,
                    action="policy.created",
                    target_type=TargetType.POLICY,
                    target_id=stored.id,
                    after=policy_record(stored),
                )
            )
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
        self,
        policy_id: PolicyId,
        company_id: CompanyId | None = None,
        *,
        actor_id: UserId | None = None,
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
                uow.audit.append(_policy_deactivated(policy, actor_id, self.clock.now()))
                policy = attrs.evolve(policy, active=False)
            in_use = uow.org.policy_in_use(company, policy_id)
            uow.commit()
        return PolicyInfo(policy, in_use)


def _policy_deactivated(policy: Policy, actor_id: UserId | None, at: datetime) -> AuditEntry:
    return entry(
        company_id=policy.company_id,
        actor_id=actor_id,
        at=at,
        action="policy.deactivated",
        target_type=TargetType.POLICY,
        target_id=policy.id,
        before=policy_record(policy),
        after=policy_record(attrs.evolve(policy, active=False)),
    )


# --- rules, shared with organisation files ---------------------------------------------------


def check_name(what: str, name: str, limit: int = 100) -> None:
    """Raises: InvalidOrgChange for a blank name or one longer than `limit`."""
    if not name.strip() or len(name) > limit:
        raise InvalidOrgChange(f"{what} must be 1 to {limit} characters")


def check_email(raw: str) -> str:
    """The address without surrounding blanks.

    Raises:
        InvalidOrgChange: no '@' inside, a blank inside, or not 3 to 100 characters.
    """
    email = raw.strip()
    if (
        not 3 <= len(email) <= EMAIL_LIMIT
        or "@" not in email[1:-1]
        or any(c.isspace() for c in email)
    ):
        raise InvalidOrgChange(f"'{raw}' is not a valid email address")
    return email


def _moves_routing(before: User, after: User) -> bool:
    """Whether a change of a user re-routes what they hold or submitted: they leave, move team
    or level, or become (or stop being) an auditor, who approves nothing."""
    return (
        before.active,
        before.team_id,
        before.hierarchy_level_id,
        before.role is Role.AUDITOR,
    ) != (after.active, after.team_id, after.hierarchy_level_id, after.role is Role.AUDITOR)


def check_fallback(uow: UnitOfWork, company_id: CompanyId, user_id: UserId) -> None:
    """A fallback approver is an active user of the company, and no auditor.

    Raises:
        UnknownFallbackApprover: no such user in the company.
        FallbackApproverInactive: the user is inactive.
        FallbackApproverAuditor: the user is an auditor (auditors approve nothing).
    """
    try:
        user = uow.org.member(user_id).user
    except UnknownUser:
        raise UnknownFallbackApprover(user_id) from None
    if user.company_id != company_id:
        raise UnknownFallbackApprover(user_id)
    if not user.active:
        raise FallbackApproverInactive(user_id)
    if user.role is Role.AUDITOR:
        raise FallbackApproverAuditor(user_id)


def _apply(user: User, cmd: ChangeUser) -> User:
    """The user with the command's changed fields, each checked on its own."""
    if not isinstance(cmd.name, Unchanged):
        check_name("user name", cmd.name, limit=255)
    return attrs.evolve(
        user,
        name=_keep(cmd.name, user.name),
        email=user.email if isinstance(cmd.email, Unchanged) else check_email(cmd.email),
        team_id=_keep(cmd.team_id, user.team_id),
        hierarchy_level_id=_keep(cmd.hierarchy_level_id, user.hierarchy_level_id),
        manager_id=_keep(cmd.manager_id, user.manager_id),
        role=_keep(cmd.role, user.role),
        active=_keep(cmd.active, user.active),
    )


def _keep(value: T | Unchanged, old: T) -> T:
    return old if isinstance(value, Unchanged) else value


def check_user(uow: UnitOfWork, user: User) -> None:
    """Check a user against the organisation before storing them.

    Their team and level are of their company, the level of their team, and their manager a
    user of the same company whose reporting chain does not lead back to them.

    Raises:
        UnknownCompany, UnknownTeam, UnknownLevel, LevelOutsideTeam, UnknownManager,
        ManagerCycle.
    """
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
    moved, stranded = _rerouting(uow, user, cmd, at)
    if stranded:
        raise PendingApprovalsStranded(user.id, stranded)
    return moved


def _rerouting(
    uow: UnitOfWork, user: User, cmd: ChangeUser, at: datetime
) -> tuple[tuple[Reassignment, ...], tuple[tuple[ExpenseId, int], ...]]:
    """Re-route what the change of `user` affects: the steps moved, and those left with nobody
    eligible (moved to the replacement instead, when the command names one)."""
    company = user.company_id
    replacement: Member | None = None
    if cmd.replacement_approver_id is not None:
        replacement = uow.org.member(cmd.replacement_approver_id)
        if replacement.user.company_id != company:
            raise UnknownUser(cmd.replacement_approver_id)
    touched = set(uow.org.pending_held_by(company, user.id))
    touched |= set(uow.org.pending_submitted_by(company, user.id))
    stranded: list[tuple[ExpenseId, int]] = []
    moved: list[Reassignment] = []
    # Locks are taken in id order, as every other unit of work that locks several would.
    for expense_id in sorted(touched):
        expense = uow.expenses.get_for_update(company, expense_id)
        if expense.is_terminal:
            continue
        submitter = uow.org.member(expense.user_id)
        steps = {s.step_order: s for s in uow.org.policy(company, expense.policy_id).steps}
        events: list[ExpenseEvent] = []
        before = expense
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
            uow.expenses.save(expense, events, notices(before, expense, events))
    return tuple(moved), tuple(stranded)
