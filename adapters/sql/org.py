"""The organisation on SQL: companies, teams, levels, users, policies, and the approver pool.

The approver pool is one query for all steps: the submitter's reporting chain (a recursive CTE)
and, per step, the nearest eligible candidates (a LATERAL subquery with a LIMIT on PostgreSQL,
a ranking window on SQLite). Duplicate names and emails are caught with ON CONFLICT DO NOTHING,
which leaves the transaction usable, rather than by a failing INSERT.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement, Executable

from adapters.sql.link import Link, Query
from adapters.sql.tables import (
    approval_steps,
    approvals,
    companies,
    expenses,
    hierarchy_levels,
    org_version,
    policies,
    teams,
    users,
)
from expense_core.approvers import ApproverPool
from expense_core.errors import (
    DuplicateEmail,
    DuplicateName,
    UnknownCompany,
    UnknownLevel,
    UnknownPolicy,
    UnknownTeam,
    UnknownUser,
)
from expense_core.identity import email_key
from expense_core.model import (
    ApprovalStep,
    Company,
    CompanyId,
    ExpenseId,
    HierarchyLevel,
    LevelId,
    Member,
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

# --- statements, built once so their SQL text (and prepared statements) are reused ----------

MEMBER_COLUMNS = (
    users.c.id,
    users.c.company_id,
    users.c.team_id,
    users.c.email,
    users.c.name,
    users.c.hierarchy_level_id,
    users.c.active,
    users.c.manager_id,
    users.c.role,
    hierarchy_levels.c.team_id.label("level_team_id"),
    hierarchy_levels.c.level_number,
    hierarchy_levels.c.level_name,
)
MEMBERS = users.join(
    hierarchy_levels,
    and_(
        hierarchy_levels.c.id == users.c.hierarchy_level_id,
        hierarchy_levels.c.company_id == users.c.company_id,
    ),
)

_MEMBER = Query(
    select(*MEMBER_COLUMNS).select_from(MEMBERS).where(users.c.id == bindparam("user_id"))
)
_USER_BY_EMAIL = (
    select(*MEMBER_COLUMNS)
    .select_from(MEMBERS)
    .where(users.c.company_id == bindparam("company_id"), users.c.email == bindparam("email"))
)
# Narrowed by lower() in SQL, then by `email_key` here: PostgreSQL's lower() may fold letters
# beyond ASCII that SQLite's does not, and every store must answer alike.
_MEMBERS_BY_EMAIL = Query(
    select(*MEMBER_COLUMNS)
    .select_from(MEMBERS)
    .where(
        users.c.company_id == bindparam("company_id"),
        func.lower(users.c.email) == func.lower(bindparam("email")),
    )
    .order_by(users.c.id)
)


def _pool_parts(
    company: Any, submitter: Any, manager_id: Any, wanted: Any, steps: Any
) -> tuple[Any, Any, Any, Any]:
    """The parts of the approver pool's statement: the reporting chain, the candidates on
    PostgreSQL and on SQLite, the fallback approver; each row's `source` says which.

    `company`, `submitter`, `manager_id` and `wanted` (how many candidates per step) are SQL
    expressions: bound parameters, or values the same statement reads first. `steps` has a row
    per step, its `team` (None: any) and `top` (the most senior level allowed), for PostgreSQL;
    SQLite's part reads them from the `steps` parameter, JSON.
    """
    # The reporting chain as a set; Python puts it in order. UNION (not ALL) ends any cycle.
    manager = users.alias("manager")
    chain = (
        select(users.c.id, users.c.manager_id)
        .where(users.c.id == manager_id, users.c.company_id == company)
        .cte("chain", recursive=True)
    )
    chain = chain.union(
        select(manager.c.id, manager.c.manager_id)
        .join(chain, manager.c.id == chain.c.manager_id)
        .where(manager.c.company_id == company)
    )
    in_chain = (
        select(literal_column("'chain'").label("source"), *MEMBER_COLUMNS)
        .select_from(chain.join(MEMBERS, users.c.id == chain.c.id))
        .where(users.c.id != submitter)
    )

    # Auditors approve nothing: like inactive people, they never take a candidate's place.
    auditor = literal_column(f"'{Role.AUDITOR.value}'", String)

    def eligible(team: Any, top: Any) -> Any:
        return and_(
            users.c.company_id == company,
            or_(team.is_(None), users.c.team_id == team),
            hierarchy_levels.c.level_number <= top,
            users.c.active.is_not(false()),
            users.c.role != auditor,
            users.c.id != submitter,
        )

    nearest_first = (hierarchy_levels.c.level_number.desc(), users.c.id)

    # PostgreSQL: per step, the nearest `wanted` candidates. The company's levels are walked
    # from the most junior allowed one up (an index scan that the outer LIMIT stops early), and
    # each level's members come through users.hierarchy_level_id, `wanted` at most: no scan of
    # the company's users, and a plan simple enough to be cached (planning the scan it replaces
    # cost more than running it).
    level = hierarchy_levels.alias("level")
    member = users.alias("member")
    at_level = (
        select(member)
        .where(
            member.c.hierarchy_level_id == level.c.id,
            member.c.company_id == company,
            or_(steps.c.team.is_(None), member.c.team_id == steps.c.team),
            member.c.active.is_not(false()),
            member.c.role != auditor,
            member.c.id != submitter,
        )
        .correlate(steps, level)
        .order_by(member.c.id)
        .limit(wanted)
        .lateral("at_level")
    )
    nearest = (
        select(
            *(at_level.c[c.name] for c in users.columns),
            level.c.team_id.label("level_team_id"),
            level.c.level_number,
            level.c.level_name,
        )
        .select_from(level.join(at_level, true()))
        .where(level.c.company_id == company, level.c.level_number <= steps.c.top)
        .order_by(level.c.level_number.desc(), at_level.c.id)
        .limit(wanted)
        .lateral("nearest")
    )
    pg_candidates = (
        select(literal_column("'candidate'"), *(nearest.c[c.name] for c in MEMBER_COLUMNS))
        .select_from(steps)
        .join(nearest, true())
    )

    # SQLite has no LATERAL: rank every eligible member per step, keep the first `wanted`.
    json_steps = func.json_each(bindparam("steps", type_=String)).table_valued(
        "key", "value", name="step"
    )
    team = func.json_extract(json_steps.c.value, literal_column("'$[0]'"))
    top = func.json_extract(json_steps.c.value, literal_column("'$[1]'"))
    ranked = (
        select(
            *MEMBER_COLUMNS,
            func.row_number()
            .over(partition_by=json_steps.c.key, order_by=nearest_first)
            .label("rank"),
        )
        .select_from(json_steps.join(MEMBERS, eligible(team, top)))
        .subquery("ranked")
    )
    sqlite_candidates = select(
        literal_column("'candidate'"), *(c for c in ranked.c if c.name != "rank")
    ).where(ranked.c.rank <= wanted)
    # The company's fallback approver, whoever they are: resolution judges them itself.
    fallback = (
        select(literal_column("'fallback'").label("source"), *MEMBER_COLUMNS)
        .select_from(
            companies.join(
                MEMBERS,
                and_(
                    users.c.id == companies.c.fallback_approver_id,
                    users.c.company_id == companies.c.id,
                ),
            )
        )
        .where(companies.c.id == company)
    )
    return in_chain, pg_candidates, sqlite_candidates, fallback


def _pool_statements() -> tuple[Executable, Executable]:
    """The approver pool of a submitter and steps given as parameters."""
    in_chain, pg_candidates, sqlite_candidates, fallback = _pool_parts(
        bindparam("company_id", type_=Integer),
        bindparam("submitter_id", type_=Integer),
        bindparam("manager_id", type_=Integer),
        bindparam("wanted", type_=Integer),
        func.unnest(
            bindparam("teams", type_=ARRAY(Integer)), bindparam("tops", type_=ARRAY(Integer))
        )
        .table_valued(column("team", Integer), column("top", Integer))
        .render_derived("step"),
    )
    return (
        union_all(in_chain, pg_candidates, fallback),
        union_all(in_chain, sqlite_candidates, fallback),
    )


_POOL_PG, _POOL_SQLITE = (Query(statement) for statement in _pool_statements())

POLICY_COLUMNS = (
    policies.c.id,
    policies.c.company_id,
    policies.c.category,
    policies.c.name,
    policies.c.description,
    policies.c.min_amount,
    policies.c.max_amount,
    policies.c.created_at,
    policies.c.active,
    approval_steps.c.id.label("step_id"),
    approval_steps.c.step_order,
    approval_steps.c.required_level,
    approval_steps.c.team_scope,
    approval_steps.c.is_required,
    approval_steps.c.description.label("step_description"),
    approval_steps.c.escalate_after_hours,
)
_WITH_STEPS = policies.outerjoin(
    approval_steps,
    and_(
        approval_steps.c.policy_id == policies.c.id,
        approval_steps.c.company_id == policies.c.company_id,
    ),
)
_POLICY = Query(
    select(*POLICY_COLUMNS)
    .select_from(_WITH_STEPS)
    .where(
        policies.c.id == bindparam("policy_id"),
        policies.c.company_id == bindparam("company_id"),
    )
    .order_by(approval_steps.c.step_order)
)
_POLICIES = Query(
    select(*POLICY_COLUMNS)
    .select_from(_WITH_STEPS)
    .where(
        policies.c.company_id == bindparam("company_id"),
        policies.c.category == bindparam("category"),
        policies.c.active.is_not(false()),
    )
    .order_by(policies.c.id, approval_steps.c.step_order)
)


def _member_and_policies(*picked: ColumnElement[bool], versioned: bool = False) -> Query:
    """A submitter and the policies of their company that `picked` chooses: one row per policy
    step (or one row with no policy), the member's columns first, then the policy's, prefixed;
    `versioned`, and last the organisation's version read with them (`org_version`)."""
    version = [select(org_version.c.version).scalar_subquery().label("org_version")]
    return Query(
        select(
            *MEMBER_COLUMNS,
            *(column.label(f"policy_{column.key}") for column in POLICY_COLUMNS),
            *(version if versioned else ()),
        )
        .select_from(
            MEMBERS.outerjoin(
                _WITH_STEPS, and_(policies.c.company_id == users.c.company_id, *picked)
            )
        )
        .where(users.c.id == bindparam("user_id"))
        .order_by(policies.c.id, approval_steps.c.step_order)
    )


# The active policies of a category; one policy by id, active or not.
_OF_CATEGORY = (policies.c.category == bindparam("category"), policies.c.active.is_not(false()))
_MEMBER_WITH_POLICIES = _member_and_policies(*_OF_CATEGORY)
_VERSIONED_MEMBER_WITH_POLICIES = _member_and_policies(*_OF_CATEGORY, versioned=True)
_MEMBER_WITH_POLICY = _member_and_policies(policies.c.id == bindparam("policy_id"))


def _member_policy_and_pool(*, versioned: bool = False) -> Query:
    """PostgreSQL: a submitter, the policy they name (rows as `_MEMBER_WITH_POLICY`'s, their
    `source` 'member') and the approver pool of the policy's steps for them (rows as
    `_POOL_PG`'s, their policy columns empty), in one statement; `versioned`, and the
    organisation's version read with them (one row, `source` 'org_version', in `id`).

    Each step's team and most senior allowed level come from its stored scope as
    `SqlOrg.approver_pool` works them out from a parsed one: the submitter's team or the whole
    company below the submitter's level, or one named team at the step's level.
    """
    me = (
        select(*MEMBER_COLUMNS)
        .select_from(MEMBERS)
        .where(users.c.id == bindparam("user_id", type_=Integer))
        .cte("submitter")
    )
    scope = approval_steps.c.team_scope
    named_team = f"{ScopeKind.TEAM}:"
    steps = (
        select(
            case(
                (scope == str(ScopeKind.SUBMITTER), me.c.team_id),
                (scope == str(ScopeKind.COMPANY_WIDE), null()),
                else_=cast(func.substr(scope, len(named_team) + 1), Integer),
            ).label("team"),
            case(
                (scope.startswith(named_team), approval_steps.c.required_level),
                else_=func.least(approval_steps.c.required_level, me.c.level_number - 1),
            ).label("top"),
        )
        .select_from(approval_steps.join(me, approval_steps.c.company_id == me.c.company_id))
        .where(approval_steps.c.policy_id == bindparam("policy_id"))
        .cte("policy_step")
    )
    in_chain, candidates, _, fallback = _pool_parts(
        select(me.c.company_id).scalar_subquery(),
        bindparam("user_id", type_=Integer),
        select(me.c.manager_id).scalar_subquery(),
        select(func.count()).select_from(steps).scalar_subquery(),
        steps,
    )
    named = select(
        literal_column("'member'").label("source"),
        *(me.c[c.key] for c in MEMBER_COLUMNS),
        *(c.label(f"policy_{c.key}") for c in POLICY_COLUMNS),
    ).select_from(
        me.outerjoin(
            _WITH_STEPS,
            and_(policies.c.company_id == me.c.company_id, policies.c.id == bindparam("policy_id")),
        )
    )
    no_policy = [null() for _ in POLICY_COLUMNS]
    parts = [
        named,
        in_chain.add_columns(*no_policy),
        candidates.add_columns(*no_policy),
        fallback.add_columns(*no_policy),
    ]
    if versioned:
        no_member = [null() for _ in MEMBER_COLUMNS[1:]]
        parts.append(
            select(literal_column("'org_version'"), org_version.c.version, *no_member, *no_policy)
        )
    return Query(union_all(*parts))


_MEMBER_POLICY_AND_POOL = _member_policy_and_pool()
_VERSIONED_MEMBER_POLICY_AND_POOL = _member_policy_and_pool(versioned=True)
# A row of `POLICY_COLUMNS`, made from the policy part of a `_MEMBER_WITH_POLICIES` row.
_PolicyRow = collections.namedtuple("_PolicyRow", [column.key for column in POLICY_COLUMNS])  # type: ignore[misc]
_COMPANY = select(companies.c.id, companies.c.name, companies.c.fallback_approver_id).where(
    companies.c.id == bindparam("company_id")
)
_TEAM = select(teams).where(
    teams.c.id == bindparam("team_id"), teams.c.company_id == bindparam("company_id")
)
_LEVEL = select(hierarchy_levels).where(
    hierarchy_levels.c.id == bindparam("level_id"),
    hierarchy_levels.c.company_id == bindparam("company_id"),
)
_COMPANY_POLICIES = Query(
    select(*POLICY_COLUMNS)
    .select_from(_WITH_STEPS)
    .where(policies.c.company_id == bindparam("company_id"))
    .order_by(policies.c.id, approval_steps.c.step_order)
)
_COMPANY_NAMED = (
    select(companies.c.id, companies.c.name, companies.c.fallback_approver_id)
    .where(companies.c.name == bindparam("name"))
    .order_by(companies.c.id)
    .limit(1)
)
_TEAM_COMPANY = select(teams.c.company_id).where(teams.c.id == bindparam("team_id"))
_POLICY_COMPANY = select(policies.c.company_id).where(policies.c.id == bindparam("policy_id"))
_TEAMS = select(teams).where(teams.c.company_id == bindparam("company_id")).order_by(teams.c.id)
_LEVELS = (
    select(hierarchy_levels)
    .where(
        hierarchy_levels.c.company_id == bindparam("company_id"),
        hierarchy_levels.c.team_id == bindparam("team_id"),
    )
    .order_by(hierarchy_levels.c.level_number)
)
_USERS = (
    select(*MEMBER_COLUMNS)
    .select_from(MEMBERS)
    .where(users.c.company_id == bindparam("company_id"), users.c.id > bindparam("after"))
    .order_by(users.c.id)
    .limit(bindparam("limit"))
)
_NAMES = select(users.c.id, users.c.name).where(
    users.c.company_id == bindparam("company_id"),
    users.c.id.in_(bindparam("users", expanding=True, type_=Integer)),
)
_UPDATE_USER = (
    update(users)
    .where(users.c.id == bindparam("b_user_id"), users.c.company_id == bindparam("b_company_id"))
    .values(
        team_id=bindparam("b_team_id"),
        email=bindparam("b_email"),
        name=bindparam("b_name"),
        hierarchy_level_id=bindparam("b_hierarchy_level_id"),
        active=bindparam("b_active"),
        manager_id=bindparam("b_manager_id"),
        role=bindparam("b_role"),
    )
)
_UPDATE_COMPANY = (
    update(companies)
    .where(companies.c.id == bindparam("b_company_id"))
    .values(name=bindparam("b_name"), fallback_approver_id=bindparam("b_fallback_approver_id"))
)
_DEACTIVATE_POLICY = (
    update(policies)
    .where(
        policies.c.id == bindparam("b_policy_id"),
        policies.c.company_id == bindparam("b_company_id"),
    )
    .values(active=False)
)
_POLICY_IN_USE = select(
    exists().where(
        expenses.c.company_id == bindparam("company_id"),
        expenses.c.policy_id == bindparam("policy_id"),
    )
)
_PENDING_HELD_BY = (
    select(approvals.c.expense_id)
    .distinct()
    .select_from(
        approvals.join(
            expenses,
            and_(
                expenses.c.id == approvals.c.expense_id,
                expenses.c.company_id == approvals.c.company_id,
            ),
        )
    )
    .where(
        approvals.c.company_id == bindparam("company_id"),
        approvals.c.approver_id == bindparam("user_id"),
        approvals.c.status == literal_column("'pending'"),
        expenses.c.status == literal_column("'pending'"),
    )
    .order_by(approvals.c.expense_id)
)
_PENDING_SUBMITTED_BY = (
    select(expenses.c.id)
    .where(
        expenses.c.company_id == bindparam("company_id"),
        expenses.c.user_id == bindparam("user_id"),
        expenses.c.status == literal_column("'pending'"),
    )
    .order_by(expenses.c.id)
)
_ADD_COMPANY = insert(companies).returning(companies.c.id)
_ADD_STEPS = insert(approval_steps).returning(approval_steps.c.id, sort_by_parameter_order=True)


def _insert_unless_taken(table: Any, *returning: Any) -> tuple[Executable, Executable]:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING, for PostgreSQL and for SQLite."""
    return (
        postgresql.insert(table).on_conflict_do_nothing().returning(*returning),
        sqlite.insert(table).on_conflict_do_nothing().returning(*returning),
    )


_ADD_TEAM = _insert_unless_taken(teams, teams.c.id)
_ADD_LEVEL = _insert_unless_taken(hierarchy_levels, hierarchy_levels.c.id)
_ADD_USER = _insert_unless_taken(users, users.c.id)
_ADD_POLICY = _insert_unless_taken(policies, policies.c.id)


# --- rows to entities ------------------------------------------------------------------------


def _user_from(row: Row[Any]) -> User:
    return User(
        id=UserId(row.id),
        company_id=CompanyId(row.company_id),
        team_id=TeamId(row.team_id),
        email=row.email,
        name=row.name,
        hierarchy_level_id=LevelId(row.hierarchy_level_id),
        # The seed's nullable flags read as their defaults.
        active=row.active is not False,
        manager_id=None if row.manager_id is None else UserId(row.manager_id),
        role=Role(row.role),
    )


def member_from(row: Row[Any]) -> Member:
    """A member from a row of `MEMBER_COLUMNS`."""
    level = HierarchyLevel(
        LevelId(row.hierarchy_level_id),
        CompanyId(row.company_id),
        TeamId(row.level_team_id),
        row.level_number,
        row.level_name,
    )
    return Member(_user_from(row), level)


def _step_from(row: Row[Any]) -> ApprovalStep:
    return ApprovalStep(
        id=row.step_id,
        step_order=row.step_order,
        required_level=row.required_level,
        team_scope=TeamScope.parse(row.team_scope),
        is_required=row.is_required is not False,
        description=row.step_description,
        escalate_after_hours=row.escalate_after_hours,
    )


def _policies_from(rows: Iterable[Any]) -> tuple[Policy, ...]:
    """Policies from rows of `POLICY_COLUMNS`, one per step, grouped by policy in order."""
    found: dict[int, tuple[Any, list[ApprovalStep]]] = {}
    for row in rows:
        _, steps = found.setdefault(row.id, (row, []))
        if row.step_id is not None:
            steps.append(_step_from(row))
    return tuple(
        Policy(
            id=PolicyId(row.id),
            company_id=CompanyId(row.company_id),
            category=row.category,
            name=row.name,
            description=row.description,
            min_amount=row.min_amount,
            max_amount=row.max_amount,
            steps=tuple(steps),
            active=row.active is not False,
            created_at=row.created_at,
        )
        for row, steps in found.values()
    )


def _company_from(row: Row[Any]) -> Company:
    fallback = row.fallback_approver_id
    return Company(CompanyId(row.id), row.name, None if fallback is None else UserId(fallback))


def _team_from(row: Row[Any]) -> Team:
    return Team(TeamId(row.id), CompanyId(row.company_id), row.name, row.is_company_wide is True)


def _level_from(row: Row[Any]) -> HierarchyLevel:
    return HierarchyLevel(
        LevelId(row.id),
        CompanyId(row.company_id),
        TeamId(row.team_id),
        row.level_number,
        row.level_name,
    )


# --- the repository --------------------------------------------------------------------------


class SqlOrg:
    """`OrgRepository` over the SQL tables."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def member(self, user_id: UserId) -> Member:
        row = self._link.read(_MEMBER, {"user_id": user_id}).first()
        if row is None:
            raise UnknownUser(user_id)
        return member_from(row)

    def member_with_policies(
        self, user_id: UserId, category: str
    ) -> tuple[Member, tuple[Policy, ...]]:
        return self._member_and(_MEMBER_WITH_POLICIES, user_id, {"category": category})

    def member_with_policy_and_pool(
        self, user_id: UserId, policy_id: PolicyId
    ) -> tuple[Member, Policy | None, ApproverPool | None]:
        params = {"user_id": user_id, "policy_id": policy_id}
        if self._link.is_sqlite:
            member, found = self._member_and(_MEMBER_WITH_POLICY, user_id, params)
            if not found:
                return member, None, None
            return member, found[0], self.approver_pool(member, found[0].steps)
        rows = self._link.read(_MEMBER_POLICY_AND_POOL, params).all()
        return member_policy_and_pool(rows, user_id)

    def _member_and(
        self, query: Query, user_id: UserId, params: dict[str, Any]
    ) -> tuple[Member, tuple[Policy, ...]]:
        """The member and the policies of a `_member_and_policies` query."""
        return member_and_policies(
            self._link.read(query, {"user_id": user_id, **params}).all(), user_id
        )

    def approver_pool(self, submitter: Member, steps: Sequence[ApprovalStep]) -> ApproverPool:
        # Each step's scope and most senior allowed level, as the memory adapter computes them.
        scopes: list[tuple[int | None, int]] = []
        for step in steps:
            scope = step.team_scope
            team = None if scope.kind is ScopeKind.COMPANY_WIDE else scope.team_id
            if scope.kind is ScopeKind.SUBMITTER:
                team = submitter.user.team_id
            top = step.required_level
            if scope.demands_seniority:
                top = min(top, submitter.level_number - 1)
            scopes.append((team, top))
        params: dict[str, Any] = {
            "company_id": submitter.user.company_id,
            "submitter_id": submitter.id,
            "manager_id": submitter.user.manager_id,
            "wanted": len(steps),
        }
        if self._link.is_sqlite:
            statement, params["steps"] = _POOL_SQLITE, json.dumps(scopes)
        else:
            statement = _POOL_PG
            params["teams"] = [team for team, _ in scopes]
            params["tops"] = [top for _, top in scopes]
        return _pool_from(submitter, self._link.read(statement, params).all())

    def policy(self, company_id: CompanyId, policy_id: PolicyId) -> Policy:
        rows = self._link.read(_POLICY, {"company_id": company_id, "policy_id": policy_id})
        found = _policies_from(rows)
        if not found:
            raise UnknownPolicy(policy_id)
        return found[0]

    def policies(self, company_id: CompanyId, category: str) -> tuple[Policy, ...]:
        rows = self._link.read(_POLICIES, {"company_id": company_id, "category": category})
        return _policies_from(rows)

    def company(self, company_id: CompanyId) -> Company:
        row = self._link.read(_COMPANY, {"company_id": company_id}).first()
        if row is None:
            raise UnknownCompany(company_id)
        return _company_from(row)

    def team(self, company_id: CompanyId, team_id: TeamId) -> Team:
        row = self._link.read(_TEAM, {"company_id": company_id, "team_id": team_id}).first()
        if row is None:
            raise UnknownTeam(team_id)
        return _team_from(row)

    def level(self, company_id: CompanyId, level_id: LevelId) -> HierarchyLevel:
        row = self._link.read(_LEVEL, {"company_id": company_id, "level_id": level_id}).first()
        if row is None:
            raise UnknownLevel(level_id)
        return _level_from(row)

    def members_by_email(self, company_id: CompanyId, email: str) -> tuple[Member, ...]:
        rows = self._link.read(_MEMBERS_BY_EMAIL, {"company_id": company_id, "email": email})
        key = email_key(email)
        return tuple(member_from(row) for row in rows if email_key(row.email) == key)

    def user_by_email(self, company_id: CompanyId, email: str) -> User | None:
        row = self._link.read(_USER_BY_EMAIL, {"company_id": company_id, "email": email}).first()
        return None if row is None else _user_from(row)

    def add_company(self, name: str) -> Company:
        company_id = self._link.write(_ADD_COMPANY, {"name": name}).scalar_one()
        return Company(CompanyId(company_id), name)

    def update_company(self, company: Company) -> Company:
        values = {
            "b_company_id": company.id,
            "b_name": company.name,
            "b_fallback_approver_id": company.fallback_approver_id,
        }
        if self._link.write(_UPDATE_COMPANY, values).rowcount != 1:
            raise UnknownCompany(company.id)
        return company

    def add_team(self, team: Team) -> Team:
        values = {
            "company_id": team.company_id,
            "name": team.name,
            "is_company_wide": team.is_company_wide,
        }
        team_id = self._insert(_ADD_TEAM, values)
        if team_id is None:
            raise DuplicateName("team", team.name)
        return Team(TeamId(team_id), team.company_id, team.name, team.is_company_wide)

    def add_level(self, level: HierarchyLevel) -> HierarchyLevel:
        values = {
            "company_id": level.company_id,
            "team_id": level.team_id,
            "level_number": level.level_number,
            "level_name": level.level_name,
        }
        level_id = self._insert(_ADD_LEVEL, values)
        if level_id is None:
            raise DuplicateName("level", f"{level.level_number} in team {level.team_id}")
        return HierarchyLevel(
            LevelId(level_id), level.company_id, level.team_id, level.level_number, level.level_name
        )

    def add_user(self, user: User) -> User:
        values = {
            "company_id": user.company_id,
            "team_id": user.team_id,
            "email": user.email,
            "name": user.name,
            "hierarchy_level_id": user.hierarchy_level_id,
            "active": user.active,
            "manager_id": user.manager_id,
            "role": str(user.role),
        }
        user_id = self._insert(_ADD_USER, values)
        if user_id is None:
            raise DuplicateEmail(user.email)
        return User(
            id=UserId(user_id),
            company_id=user.company_id,
            team_id=user.team_id,
            email=user.email,
            name=user.name,
            hierarchy_level_id=user.hierarchy_level_id,
            active=user.active,
            manager_id=user.manager_id,
            role=user.role,
        )

    def add_policy(self, policy: Policy) -> Policy:
        created_at = policy.created_at or datetime.now(UTC)
        values = {
            "company_id": policy.company_id,
            "category": policy.category,
            "name": policy.name,
            "description": policy.description,
            "min_amount": policy.min_amount,
            "max_amount": policy.max_amount,
            "created_at": created_at,
            "active": policy.active,
        }
        policy_id = self._insert(_ADD_POLICY, values)
        if policy_id is None:
            # One active policy per company, category and min_amount (migration 0002).
            raise DuplicateName("policy", f"{policy.category} from {policy.min_amount}")
        steps = [
            {
                "policy_id": policy_id,
                "company_id": policy.company_id,
                "step_order": s.step_order,
                "required_level": s.required_level,
                "team_scope": str(s.team_scope),
                "is_required": s.is_required,
                "description": s.description,
                "escalate_after_hours": s.escalate_after_hours,
            }
            for s in policy.steps
        ]
        ids = self._link.write(_ADD_STEPS, steps).scalars().all() if steps else []
        return Policy(
            id=PolicyId(policy_id),
            company_id=policy.company_id,
            category=policy.category,
            name=policy.name,
            description=policy.description,
            min_amount=policy.min_amount,
            max_amount=policy.max_amount,
            steps=tuple(
                ApprovalStep(
                    id=step_id,
                    step_order=s.step_order,
                    required_level=s.required_level,
                    team_scope=s.team_scope,
                    is_required=s.is_required,
                    description=s.description,
                    escalate_after_hours=s.escalate_after_hours,
                )
                for step_id, s in zip(ids, policy.steps, strict=True)
            ),
            active=policy.active,
            created_at=created_at,
        )

    def company_named(self, name: str) -> Company | None:
        row = self._link.read(_COMPANY_NAMED, {"name": name}).first()
        return None if row is None else _company_from(row)

    def company_of_team(self, team_id: TeamId) -> CompanyId:
        found = self._link.read(_TEAM_COMPANY, {"team_id": team_id}).scalar()
        if found is None:
            raise UnknownTeam(team_id)
        return CompanyId(found)

    def company_of_policy(self, policy_id: PolicyId) -> CompanyId:
        found = self._link.read(_POLICY_COMPANY, {"policy_id": policy_id}).scalar()
        if found is None:
            raise UnknownPolicy(policy_id)
        return CompanyId(found)

    def teams(self, company_id: CompanyId) -> tuple[Team, ...]:
        rows = self._link.read(_TEAMS, {"company_id": company_id})
        return tuple(_team_from(row) for row in rows)

    def levels(self, company_id: CompanyId, team_id: TeamId) -> tuple[HierarchyLevel, ...]:
        rows = self._link.read(_LEVELS, {"company_id": company_id, "team_id": team_id})
        return tuple(_level_from(row) for row in rows)

    def users(self, company_id: CompanyId, *, after: UserId | None, limit: int) -> tuple[User, ...]:
        params = {"company_id": company_id, "after": 0 if after is None else after, "limit": limit}
        return tuple(_user_from(row) for row in self._link.read(_USERS, params))

    def names(self, company_id: CompanyId, user_ids: Collection[UserId]) -> dict[UserId, str]:
        if not user_ids:
            return {}
        params = {"company_id": company_id, "users": sorted(set(user_ids))}
        return {UserId(row.id): row.name for row in self._link.read(_NAMES, params)}

    def update_user(self, user: User) -> User:
        current = self._link.read(_MEMBER, {"user_id": user.id}).first()
        if current is None or current.company_id != user.company_id:
            raise UnknownUser(user.id)
        owner = self.user_by_email(user.company_id, user.email)
        if owner is not None and owner.id != user.id:
            raise DuplicateEmail(user.email)
        values = {
            "b_user_id": user.id,
            "b_company_id": user.company_id,
            "b_team_id": user.team_id,
            "b_email": user.email,
            "b_name": user.name,
            "b_hierarchy_level_id": user.hierarchy_level_id,
            "b_active": user.active,
            "b_manager_id": user.manager_id,
            "b_role": str(user.role),
        }
        try:
            changed = self._link.write(_UPDATE_USER, values).rowcount
        except IntegrityError:
            # A concurrent twin took the email between the check and the update.
            raise DuplicateEmail(user.email) from None
        if changed != 1:
            raise UnknownUser(user.id)
        return user

    def company_policies(self, company_id: CompanyId) -> tuple[Policy, ...]:
        return _policies_from(self._link.read(_COMPANY_POLICIES, {"company_id": company_id}))

    def deactivate_policy(self, company_id: CompanyId, policy_id: PolicyId) -> None:
        params = {"b_company_id": company_id, "b_policy_id": policy_id}
        if self._link.write(_DEACTIVATE_POLICY, params).rowcount != 1:
            raise UnknownPolicy(policy_id)

    def policy_in_use(self, company_id: CompanyId, policy_id: PolicyId) -> bool:
        params = {"company_id": company_id, "policy_id": policy_id}
        return bool(self._link.read(_POLICY_IN_USE, params).scalar())

    def pending_held_by(self, company_id: CompanyId, user_id: UserId) -> tuple[ExpenseId, ...]:
        rows = self._link.read(_PENDING_HELD_BY, {"company_id": company_id, "user_id": user_id})
        return tuple(ExpenseId(i) for i in rows.scalars())

    def pending_submitted_by(self, company_id: CompanyId, user_id: UserId) -> tuple[ExpenseId, ...]:
        params = {"company_id": company_id, "user_id": user_id}
        rows = self._link.read(_PENDING_SUBMITTED_BY, params)
        return tuple(ExpenseId(i) for i in rows.scalars())

    def _insert(
        self, statements: tuple[Executable, Executable], values: dict[str, Any]
    ) -> int | None:
        statement = statements[1] if self._link.is_sqlite else statements[0]
        found: int | None = self._link.write(statement, values).scalar()
        return found


def _pool_from(submitter: Member, rows: Iterable[Row[Any]]) -> ApproverPool:
    """The pool of the rows of a pool statement (`source`: chain, candidate, fallback)."""
    managers: dict[int, Member] = {}
    candidates: dict[int, Member] = {}
    fallback = None
    for row in rows:
        if row.source == "chain":
            managers[row.id] = member_from(row)
        elif row.source == "candidate":
            candidates[row.id] = member_from(row)
        elif row.source == "fallback":
            fallback = member_from(row)
    return ApproverPool(_chain(submitter, managers), tuple(candidates.values()), fallback)


def _chain(submitter: Member, managers: dict[int, Member]) -> tuple[Member, ...]:
    """The reporting chain, nearest manager first, up to the first repeat (a cycle)."""
    chain: list[Member] = []
    seen = {submitter.id}
    manager_id = submitter.user.manager_id
    while manager_id is not None and manager_id not in seen and manager_id in managers:
        manager = managers[manager_id]
        seen.add(manager_id)
        chain.append(manager)
        manager_id = manager.user.manager_id
    return tuple(chain)


# --- the hot statement, shared with the awaited adapter (`awaited.py`) ------------------------


def versioned_member_policy_and_pool_read(
    user_id: UserId, policy_id: PolicyId
) -> tuple[Query, dict[str, Any]]:
    """PostgreSQL: the one statement of `OrgRepository.member_with_policy_and_pool`, with the
    organisation's version read in the same snapshot (`org_version_of`), and its parameters."""
    return _VERSIONED_MEMBER_POLICY_AND_POOL, {"user_id": user_id, "policy_id": policy_id}


def versioned_member_with_policies_read(
    user_id: UserId, category: str
) -> tuple[Query, dict[str, Any]]:
    """PostgreSQL: the statement of `OrgRepository.member_with_policies`, with the organisation's
    version read in the same snapshot (each row's `org_version`), and its parameters."""
    return _VERSIONED_MEMBER_WITH_POLICIES, {"user_id": user_id, "category": category}


def member_and_policies(
    rows: Sequence[Row[Any]], user_id: UserId
) -> tuple[Member, tuple[Policy, ...]]:
    """What the rows of a `_member_and_policies` statement say (versioned or not).

    Raises:
        UnknownUser: no such user.
    """
    if not rows:
        raise UnknownUser(user_id)
    start = len(MEMBER_COLUMNS)
    end = start + len(POLICY_COLUMNS)
    found = [_PolicyRow._make(row[start:end]) for row in rows if row[start] is not None]
    return member_from(rows[0]), _policies_from(found)


def org_version_of(rows: Sequence[Row[Any]]) -> int | None:
    """The organisation's version among the rows of `versioned_member_policy_and_pool_read`;
    None if its row is missing (then no check against it can pass)."""
    return next((row.id for row in rows if row.source == "org_version"), None)


def member_policy_and_pool(
    rows: Sequence[Row[Any]], user_id: UserId
) -> tuple[Member, Policy | None, ApproverPool | None]:
    """What the rows of `versioned_member_policy_and_pool_read` (or of the statement without the
    version) say.

    Raises:
        UnknownUser: no such user.
    """
    own = [row for row in rows if row.source == "member"]
    if not own:
        raise UnknownUser(user_id)
    member = member_from(own[0])
    width = 1 + len(MEMBER_COLUMNS)
    # A union's rows come in no promised order: the policy's steps are put in theirs.
    own.sort(key=lambda row: row.policy_step_order or 0)
    found = _policies_from(_PolicyRow._make(row[width:]) for row in own if row[width] is not None)
    if not found:
        return member, None, None
    return member, found[0], _pool_from(member, rows)
