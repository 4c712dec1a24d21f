"""Organisation files: whole organisations imported and exported by names, as
`expense-tracker org import|export` reads and writes them; an import is idempotent.

An import appends one audit entry per thing it creates (`company.created`, `team.created`,
`level.created`, `user.created`, `policy.created`, each with the thing as stored at the end of
the import), by nobody in particular (the command line): a target's history then starts with
its creation whichever way it was made, and a second run of the same file appends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import attrs

from expense_core.audit import (
    AuditEntry,
    Record,
    TargetType,
    company_record,
    entry,
    level_record,
    policy_record,
    team_record,
    user_record,
)
from expense_core.errors import (
    InvalidEscalation,
    InvalidInput,
    InvalidOrgFile,
    InvalidPolicy,
    OrgFileDisagrees,
    PolicyOverlap,
)
from expense_core.model import (
    MOST_JUNIOR,
    MOST_SENIOR,
    ApprovalStep,
    Company,
    CompanyId,
    HierarchyLevel,
    LevelId,
    Money,
    Policy,
    PolicyId,
    Role,
    ScopeKind,
    Team,
    TeamId,
    TeamScope,
    User,
)
from expense_core.policies import check_new_policy
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import MAX_PAGE, UtcClock
from expense_core.services.organisation import NEW_USER, check_email, check_name, check_user

# What an import may create, in the order its audit entries are written.
Created = Company | Team | HierarchyLevel | User | Policy

# --- the file's shape ------------------------------------------------------------------------


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
    escalate_after_hours: int | None = None


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
    """A whole organisation by names, as an organisation file describes it; the fallback
    approver by email."""

    company: str
    teams: tuple[TeamPlan, ...] = ()
    users: tuple[PersonPlan, ...] = ()
    policies: tuple[PolicyPlan, ...] = ()
    fallback_approver: str | None = None


@attrs.frozen(kw_only=True)
class ImportReport:
    """What an import created; a second run of the same file creates nothing."""

    company: Company
    company_created: bool
    teams: int
    levels: int
    users: int
    policies: int


# --- checks ----------------------------------------------------------------------------------


def check_plan(plan: OrgPlan) -> None:
    """Check an organisation file against every rule that needs no database.

    Raises:
        InvalidOrgFile: naming the first entry that breaks a rule (duplicate names, levels or
            emails, unknown teams, levels or managers, a loop in the reporting chains,
            malformed or overlapping policies, a scope naming an unknown team, a fallback
            approver who is not an active user of the file).
    """
    try:
        _check_plan(plan)
    except InvalidOrgFile:
        raise
    except InvalidInput as exc:
        raise InvalidOrgFile(exc.message) from None


def _check_plan(plan: OrgPlan) -> None:
    check_name("company name", plan.company)
    ladders: dict[str, set[int]] = {}
    for team in plan.teams:
        check_name("team name", team.name)
        if team.name in ladders:
            raise InvalidOrgFile(f"team '{team.name}' appears twice")
        numbers = [lv.number for lv in team.levels]
        if len(set(numbers)) != len(numbers):
            raise InvalidOrgFile(f"team '{team.name}' has a level number twice")
        for level in team.levels:
            check_name(f"team '{team.name}': level name", level.name)
            if not MOST_SENIOR <= level.number <= MOST_JUNIOR:
                raise InvalidOrgFile(
                    f"team '{team.name}': level {level.number} is not between 1 and 10"
                )
        ladders[team.name] = set(numbers)
    managers: dict[str, str | None] = {}
    for person in plan.users:
        where = f"user '{person.email}'"
        check_email(person.email)
        check_name(f"{where}: name", person.name, limit=255)
        if person.email in managers:
            raise InvalidOrgFile(f"{where} appears twice")
        if person.team not in ladders:
            raise InvalidOrgFile(f"{where}: no team '{person.team}' in the file")
        if person.level not in ladders[person.team]:
            raise InvalidOrgFile(f"{where}: team '{person.team}' has no level {person.level}")
        managers[person.email] = person.manager
    fallback = plan.fallback_approver
    if fallback is not None:
        named = next((p for p in plan.users if p.email == fallback), None)
        if named is None:
            raise InvalidOrgFile(f"fallback_approver '{fallback}' is not a user of the file")
        if not named.active:
            raise InvalidOrgFile(f"fallback_approver '{fallback}' is inactive")
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
        except (InvalidPolicy, InvalidEscalation, PolicyOverlap) as exc:
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
                escalate_after_hours=s.escalate_after_hours,
            )
            for i, s in enumerate(plan.steps, start=1)
        ),
    )


def _same_policy(a: Policy, b: Policy) -> bool:
    def shape(p: Policy) -> tuple[object, ...]:
        steps = tuple(attrs.evolve(s, id=0) for s in p.steps)
        return (p.category, p.name, p.description, p.min_amount, p.max_amount, p.active, steps)

    return shape(a) == shape(b)


# --- the service -----------------------------------------------------------------------------


@attrs.frozen
class OrgFiles:
    """Import and export whole organisations: what `expense-tracker org import|export` runs."""

    new_uow: Callable[[], UnitOfWork]
    clock: Clock = attrs.field(factory=UtcClock)

    def import_org(self, plan: OrgPlan) -> ImportReport:
        """Create what the plan describes and the database lacks, all in one unit of work.

        The plan is checked entirely first; then the company (by name), teams (by name),
        levels (by number), users (by email) and policies (by their whole shape) that already
        exist are kept, and the rest created, so a second run changes nothing.

        Raises:
            InvalidOrgFile: the plan breaks a rule; nothing is written.
            OrgFileDisagrees: the database holds a team level or user with other values, or
                the company has another fallback approver.
            Any error of `OrgService.create_*` found against the database (DuplicateEmail...).
        """
        check_plan(plan)
        counts = {"teams": 0, "levels": 0, "users": 0, "policies": 0}
        made: list[Created] = []
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
                    made.append(team)
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
                        made.append(level)
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
                    email=check_email(person.email),
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
                check_user(uow, changed)
                people[user.email] = uow.org.update_user(changed)
            made.extend(sorted((people[email] for email in created), key=lambda u: u.id))
            fallback = None if plan.fallback_approver is None else people[plan.fallback_approver]
            fallback_id = None if fallback is None else fallback.id
            if company.fallback_approver_id != fallback_id:
                # As managers: set on a company the file creates, else the same or refused.
                if found is not None:
                    raise OrgFileDisagrees(f"company '{company.name}'", "fallback_approver")
                company = uow.org.update_company(
                    attrs.evolve(company, fallback_approver_id=fallback_id)
                )
            stored = uow.org.company_policies(company.id)
            for plan_policy in plan.policies:
                policy = _policy_of(plan_policy, company.id, teams)
                if any(_same_policy(policy, p) for p in stored):
                    continue
                check_new_policy(policy, uow.org.policies(company.id, policy.category))
                stored = (*stored, uow.org.add_policy(policy))
                made.append(stored[-1])
                counts["policies"] += 1
            if found is None:
                made.insert(0, company)
            uow.audit.extend(_created(company.id, made, self.clock.now()))
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
        fallback = company.fallback_approver_id

        def scope(step: ApprovalStep) -> str:
            team = step.team_scope.team_id
            return str(step.team_scope) if team is None else f"team:{team_names[team]}"

        return OrgPlan(
            company=company.name,
            fallback_approver=None if fallback is None else emails[fallback],
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
                            escalate_after_hours=s.escalate_after_hours,
                        )
                        for s in p.steps
                    ),
                )
                for p in policies
            ),
        )


def _created(company_id: CompanyId, made: Sequence[Created], at: datetime) -> list[AuditEntry]:
    """The audit entries of what an import created, each as it stands at the end."""
    entries: list[AuditEntry] = []
    for thing in made:
        kind: TargetType
        record: Record
        match thing:
            case Company():
                kind, record = TargetType.COMPANY, company_record(thing)
            case Team():
                kind, record = TargetType.TEAM, team_record(thing)
            case HierarchyLevel():
                kind, record = TargetType.LEVEL, level_record(thing)
            case User():
                kind, record = TargetType.USER, user_record(thing)
            case Policy():
                kind, record = TargetType.POLICY, policy_record(thing)
        entries.append(
            entry(
                company_id=company_id,
                actor_id=None,
                at=at,
                action=f"{kind.value}.created",
                target_type=kind,
                target_id=thing.id,
                after=record,
            )
        )
    return entries


def _same_user(stored: User, wanted: User) -> None:
    differences = [
        field
        for field in ("name", "team_id", "hierarchy_level_id", "role", "active")
        if getattr(stored, field) != getattr(wanted, field)
    ]
    if differences:
        raise OrgFileDisagrees(f"user '{stored.email}'", ", ".join(differences))
