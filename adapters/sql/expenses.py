"""Expenses on SQL: approval rows, history, the status page, lists and inboxes.

On PostgreSQL a submission is one statement (data-modifying CTEs insert the expense, all its
approvals and its events), a decision is one locking read and one write statement, and so is
writing a resubmission (a new round: the expense's fields and approval rows replaced). Lists of
rows travel as arrays (unnest), so the SQL text never depends on how many there are. SQLite
has no data-modifying CTEs: there the same writes take a few statements in one transaction.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    literal_column,
    not_,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Row
from sqlalchemy.sql import Executable, Select

from adapters.sql.link import Link, Query, Rows
from adapters.sql.sqltypes import UtcDateTime, naive_utc
from adapters.sql.tables import (
    approval_steps,
    approvals,
    delegations,
    expense_events,
    expenses,
    hierarchy_levels,
    org_version,
    outbox,
    policies,
    users,
)
from expense_core.delegation import Cover, Delegation
from expense_core.errors import ExpenseChanged, UnknownExpense
from expense_core.escalation import DueStep
from expense_core.model import (
    Approval,
    ApprovalStatus,
    CompanyId,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    LevelId,
    PolicyId,
    Role,
    UserId,
)
from expense_core.notifications import Notice
from expense_core.ports import DecisionBasis
from expense_core.views import ApprovalView, ExpenseSummary, ExpenseView, InboxItem
from expense_core.visibility import Sight

NO_CURSOR = 2**31 - 1  # above every id: "before nothing" keeps one statement per filter shape
# Constants are written into the SQL, where the planner sees them (not bound like values).
STEP_PENDING = literal_column(f"'{ApprovalStatus.PENDING}'", String)
EXPENSE_PENDING = literal_column(f"'{ExpenseStatus.PENDING}'", String)

# --- reading an expense with its approvals ---------------------------------------------------

EXPENSE_COLUMNS = (
    expenses.c.id,
    expenses.c.company_id,
    expenses.c.user_id,
    expenses.c.policy_id,
    expenses.c.amount,
    expenses.c.description,
    expenses.c.status,
    expenses.c.submitted_at,
    expenses.c.completed_at,
)
APPROVAL_COLUMNS = (
    approvals.c.step_number,
    approvals.c.approver_id,
    approvals.c.approver_level_id,
    approvals.c.required,
    approvals.c.status.label("approval_status"),
    approvals.c.approved_at,
    approvals.c.comments,
    approvals.c.escalate_after_hours,
    approvals.c.escalate_at,
)


def _its_approvals(expense: Any = expenses) -> Any:
    return and_(
        approvals.c.expense_id == expense.c.id, approvals.c.company_id == expense.c.company_id
    )


_THIS_EXPENSE = and_(
    expenses.c.id == bindparam("expense"), expenses.c.company_id == bindparam("company")
)
# The expense in the company of an active actor, found in the same statement: a decision
# that names only its actor needs no round trip to look them up first.
_ACTORS_COMPANY = (
    select(users.c.company_id)
    .where(users.c.id == bindparam("actor"), users.c.active.is_not(false()))
    .scalar_subquery()
)
_ACTORS_EXPENSE = and_(
    expenses.c.id == bindparam("expense"), expenses.c.company_id == _ACTORS_COMPANY
)


# The reads a write starts from carry the expense's version, which the write checks and bumps.
_VERSION = expenses.c.version


def _get(where: Any) -> Any:
    return (
        select(*EXPENSE_COLUMNS, _VERSION, *APPROVAL_COLUMNS)
        .select_from(expenses.outerjoin(approvals, _its_approvals()))
        .where(where)
        .order_by(approvals.c.step_number)
    )


# Locks the expense and its approval rows. Every decision on an expense runs this first, so
# decisions on one expense queue here; a waiter gets the rows as the winner left them (READ
# COMMITTED re-reads locked rows), never a snapshot taken before the lock was granted.
def _lock(where: Any) -> Any:
    return (
        select(*EXPENSE_COLUMNS, _VERSION, *APPROVAL_COLUMNS)
        .select_from(expenses.join(approvals, _its_approvals()))
        .where(where)
        .order_by(approvals.c.step_number, approvals.c.approver_id)
        .with_for_update()
    )


# An expense without approval rows (a policy stored without steps) needs no inner join; its
# one row says it has no step, as the outer join of `_get` does.
def _lock_bare(where: Any) -> Any:
    return (
        select(*EXPENSE_COLUMNS, _VERSION, cast(null(), Integer).label("step_number"))
        .where(where)
        .with_for_update()
    )


def _level_of(user: str) -> Any:
    """The level number of the user a bind parameter names."""
    return (
        select(hierarchy_levels.c.level_number)
        .select_from(
            users.join(
                hierarchy_levels,
                and_(
                    hierarchy_levels.c.id == users.c.hierarchy_level_id,
                    hierarchy_levels.c.company_id == users.c.company_id,
                ),
            )
        )
        .where(users.c.id == bindparam(user))
        .scalar_subquery()
    )


def _step_level() -> Any:
    """The level the policy requires for an approval row's step."""
    return (
        select(approval_steps.c.required_level)
        .where(
            approval_steps.c.policy_id == expenses.c.policy_id,
            approval_steps.c.company_id == expenses.c.company_id,
            approval_steps.c.step_order == approvals.c.step_number,
        )
        # Correlated to the expense and the approval row wherever they are in the statement.
        .correlate_except(approval_steps)
        .scalar_subquery()
    )


# A decision's locking read also finds, per approval row, the delegation from that step's
# approver to the actor, if any: a delegate's decision costs no round trip of its own. The
# levels eligibility weighs are read only on such a row (a CASE evaluates its subqueries only
# when their branch is taken), so an approver deciding their own step pays one index probe.
_ITS_DELEGATION = and_(
    delegations.c.company_id == approvals.c.company_id,
    delegations.c.user_id == approvals.c.approver_id,
    delegations.c.delegate_id == bindparam("actor"),
)
_COVERED = delegations.c.user_id.is_not(None)
COVER_COLUMNS = (
    delegations.c.user_id.label("cover_user_id"),
    delegations.c.starts_at.label("cover_starts_at"),
    delegations.c.ends_at.label("cover_ends_at"),
    delegations.c.note.label("cover_note"),
    case((_COVERED, _step_level())).label("cover_required_level"),
    case((_COVERED, _level_of("actor"))).label("cover_delegate_level"),
)


# The actor's role, for the rule that auditors change nothing: a subquery of its own, read once
# per statement by primary key.
_ACTOR_ROLE = (
    select(users.c.role)
    .where(users.c.id == bindparam("actor"))
    .scalar_subquery()
    .label("actor_role")
)


def _get_covering(where: Any) -> Any:
    return (
        select(*EXPENSE_COLUMNS, _VERSION, *APPROVAL_COLUMNS, *COVER_COLUMNS, _ACTOR_ROLE)
        .select_from(
            expenses.outerjoin(approvals, _its_approvals()).outerjoin(delegations, _ITS_DELEGATION)
        )
        .where(where)
        .order_by(approvals.c.step_number)
    )


def _lock_covering(where: Any) -> Any:
    """As `_lock`, with the actor's covers and role; the delegations are read, not locked."""
    return (
        select(*EXPENSE_COLUMNS, _VERSION, *APPROVAL_COLUMNS, *COVER_COLUMNS, _ACTOR_ROLE)
        .select_from(
            expenses.join(approvals, _its_approvals()).outerjoin(delegations, _ITS_DELEGATION)
        )
        .where(where)
        .order_by(approvals.c.step_number, approvals.c.approver_id)
        .with_for_update(of=[expenses, approvals])
    )


_GET = Query(_get(_THIS_EXPENSE))
_LOCK = Query(_lock(_THIS_EXPENSE))
_LOCK_BARE = Query(_lock_bare(_THIS_EXPENSE))
_GET_BY = Query(_get(_ACTORS_EXPENSE))
_LOCK_BY = Query(_lock(_ACTORS_EXPENSE))
_LOCK_BARE_BY = Query(_lock_bare(_ACTORS_EXPENSE))
_GET_COVERING = Query(_get_covering(_THIS_EXPENSE))
ROLE_OF = select(users.c.role).where(users.c.id == bindparam("actor"))
_LOCK_COVERING = Query(_lock_covering(_THIS_EXPENSE))
_GET_COVERING_BY = Query(_get_covering(_ACTORS_EXPENSE))
_LOCK_COVERING_BY = Query(_lock_covering(_ACTORS_EXPENSE))

# --- who sees what (`expense_core.visibility`) -----------------------------------------------
# A viewer who does not see the whole company sees an expense in the same statement that reads
# it: theirs, one where they approve a step or cover for its approver (a delegation in force
# `as_of`), or one submitted below them in the reporting chain. One expense walks the chain up
# from its submitter (a primary key probe per rung); a list walks it down from the viewer once.


def _approves_or_covers() -> Any:
    """Whether the viewer approves a step of the expense, or covers for who does (a
    correlated EXISTS)."""
    seen = approvals.alias("seen_step")
    covering = (
        select(delegations.c.user_id)
        .where(
            delegations.c.company_id == seen.c.company_id,
            delegations.c.user_id == seen.c.approver_id,
            delegations.c.delegate_id == bindparam("viewer"),
            # Two names for one instant: a prepared `Query` converts a value once per place.
            delegations.c.starts_at <= bindparam("seen_at"),
            delegations.c.ends_at > bindparam("seen_at_too"),
        )
        .exists()
    )
    return (
        select(seen.c.id)
        .where(
            seen.c.expense_id == expenses.c.id,
            seen.c.company_id == expenses.c.company_id,
            or_(seen.c.approver_id == bindparam("viewer"), covering),
        )
        .exists()
    )


def _sees_this_expense() -> Any:
    """Whether the viewer sees the expense the `expense` and `company` binds name."""
    submitted, submitter, up = (
        expenses.alias("submitted"),
        users.alias("chain_start"),
        users.alias("up"),
    )
    # UNION, not UNION ALL: a loop in manager ids ends the walk instead of running forever.
    bosses = (
        select(submitter.c.manager_id.label("id"))
        .select_from(
            submitted.join(
                submitter,
                and_(
                    submitter.c.id == submitted.c.user_id,
                    submitter.c.company_id == submitted.c.company_id,
                ),
            )
        )
        .where(
            submitted.c.id == bindparam("expense"), submitted.c.company_id == bindparam("company")
        )
        .cte("bosses", recursive=True)
    )
    bosses = bosses.union(
        select(up.c.manager_id).where(
            up.c.id == bosses.c.id, up.c.company_id == bindparam("company")
        )
    )
    return or_(
        expenses.c.user_id == bindparam("viewer"),
        _approves_or_covers(),
        bindparam("viewer", type_=Integer).in_(select(bosses.c.id)),
    )


def _sees_listed_expense() -> Any:
    """Whether the viewer sees an expense of a list of the `company` bind's expenses."""
    below = users.alias("below")
    reports = (
        select(users.c.id)
        .where(
            users.c.company_id == bindparam("company"), users.c.manager_id == bindparam("viewer")
        )
        .cte("reports", recursive=True)
    )
    reports = reports.union(
        select(below.c.id).where(
            below.c.manager_id == reports.c.id, below.c.company_id == bindparam("company")
        )
    )
    return or_(
        expenses.c.user_id == bindparam("viewer"),
        _approves_or_covers(),
        expenses.c.user_id.in_(select(reports.c.id)),
    )


def _sight_params(sight: Sight | None) -> dict[str, Any]:
    if sight is None:
        return {}
    return {"viewer": sight.viewer_id, "seen_at": sight.as_of, "seen_at_too": sight.as_of}


_GET_SIGHTED = Query(_get(and_(_THIS_EXPENSE, _sees_this_expense())))


# --- writing: PostgreSQL, one statement each -------------------------------------------------


def rows_of(name: str, alias: str, *columns: Any) -> Any:
    """Rows given as one JSON array of objects (`_json_rows`), typed by `columns`.

    One parameter per set of rows: psycopg adapts a string in a microsecond, where the same
    rows as one array per column took tens of microseconds per statement.
    """
    return (
        func.json_to_recordset(cast(bindparam(name, type_=Text), JSON))
        .table_valued(*columns)
        .render_derived(alias, with_types=True)
    )


# An event's own columns (beside its expense's id and company), in the history and the outbox.
_EVENT_ROW = (
    ("kind", String),
    ("at", DateTime),
    ("actor_id", Integer),
    ("step_number", Integer),
    ("comment", Text),
    ("approver_id", Integer),
    ("previous_approver_id", Integer),
    ("on_behalf_of", Integer),
)
EVENT_FIELDS = tuple(name for name, _ in _EVENT_ROW)


def _given_events(alias: str) -> Any:
    return rows_of(
        "events",
        alias,
        column("position", Integer),
        *(column(name, kind) for name, kind in _EVENT_ROW),
    )


def _event_rows(expense_id: Any, company_id: Any, new: Any = None) -> Any:
    """INSERT of the events given as JSON, in their order (their ids give history's order)."""
    given = _given_events("event")
    rows = select(expense_id, company_id, *(given.c[n] for n in EVENT_FIELDS))
    if new is not None:
        rows = rows.select_from(new).join(given, true())
    rows = rows.order_by(given.c.position)
    return insert(expense_events).from_select(["expense_id", "company_id", *EVENT_FIELDS], rows)


def _outbox_rows(expense_id: Any, company_id: Any, new: Any = None) -> Any:
    """INSERT of the notices given as JSON, each with a copy of its event, in their order."""
    notice = rows_of(
        "notices",
        "notice",
        column("position", Integer),
        column("event", Integer),
        column("topic", String),
        column("recipient_id", Integer),
    )
    event = _given_events("noticed_event")
    rows = select(
        expense_id,
        company_id,
        notice.c.topic,
        notice.c.recipient_id,
        *(event.c[n] for n in EVENT_FIELDS),
    )
    if new is not None:
        rows = rows.select_from(new).join(notice, true())
    else:
        rows = rows.select_from(notice)
    rows = rows.join(event, event.c.position == notice.c.event).order_by(notice.c.position)
    return insert(outbox).from_select(
        ["expense_id", "company_id", "topic", "recipient_id", *EVENT_FIELDS], rows
    )


# An approval row's own columns (beside its expense's id and company), as every statement here
# writes them: one list, so that a new column is written everywhere or nowhere.
_APPROVAL_ROW = (
    ("step_number", Integer),
    ("approver_id", Integer),
    ("approver_level_id", Integer),
    ("required", Boolean),
    ("status", String),
    ("approved_at", DateTime),
    ("comments", Text),
    ("escalate_after_hours", Integer),
    ("escalate_at", DateTime),
)
_APPROVAL_FIELDS = tuple(name for name, _ in _APPROVAL_ROW)
# What a new round may change of a step, known by its number (a decision changes less: never
# whether a step is required, nor its hours; see `_pg_save`).
_APPROVAL_CHANGES = _APPROVAL_FIELDS[1:]


def _approval_arrays(name: str = "approvals", alias: str = "approval") -> Any:
    return rows_of(name, alias, *(column(field, kind) for field, kind in _APPROVAL_ROW))


_EXPENSE_FIELDS = (
    "company_id",
    "user_id",
    "policy_id",
    "amount",
    "description",
    "status",
    "submitted_at",
    "completed_at",
)


def _pg_add(*, checked: bool = False) -> Executable:
    """Insert an expense, its approvals, events and notices; `checked`, only if the
    organisation's version is still `org_seen` (no row returned when not)."""
    if checked:
        given = select(*(bindparam(f"e_{n}", type_=expenses.c[n].type) for n in _EXPENSE_FIELDS))
        version = select(org_version.c.version).scalar_subquery()
        inserted = insert(expenses).from_select(
            _EXPENSE_FIELDS, given.where(version == bindparam("org_seen", type_=BigInteger))
        )
    else:
        inserted = insert(expenses).values({n: bindparam(f"e_{n}") for n in _EXPENSE_FIELDS})
    new = inserted.returning(expenses.c.id, expenses.c.company_id).cte("new_expense")
    given = _approval_arrays()
    new_approvals = insert(approvals).from_select(
        ["expense_id", "company_id", *_APPROVAL_FIELDS],
        select(new.c.id, new.c.company_id, *(given.c[n] for n in _APPROVAL_FIELDS))
        .select_from(new)
        .join(given, true()),
    )
    return select(new.c.id).add_cte(
        new_approvals.cte("new_approvals"),
        _event_rows(new.c.id, new.c.company_id, new).cte("new_events"),
        _outbox_rows(new.c.id, new.c.company_id, new).cte("new_notices"),
    )


_PG_ADD = Query(_pg_add())
_PG_ADD_CHECKED = Query(_pg_add(checked=True))


def _touched(**values: Any) -> Any:
    """The CTE that bumps the expense's version if it is still the one read (`seen_version`),
    setting `values` too, and returns its id: no row when another write came first. Every
    other part of a write statement hangs on it, so that such a write changes nothing.

    Under READ COMMITTED an UPDATE that finds its row changed by a transaction that committed
    after the statement began re-reads the row and tests the version again: a write checked
    this way needs no lock taken before it.
    """
    return (
        update(expenses)
        .where(_THIS_EXPENSE, expenses.c.version == bindparam("seen_version"))
        .values(version=expenses.c.version + 1, **values)
        .returning(expenses.c.id)
        .cte("touched_expense")
    )


@functools.cache
def _pg_save(closes: bool) -> Query:
    """Update the expense (its version; its status if it closes) if it is as read, then the
    changed approvals, and append the events. One row when written, none when not."""
    closing: dict[str, Any] = {
        "status": bindparam("new_status"),
        "completed_at": bindparam("completed"),
    }
    touched = _touched(**(closing if closes else {}))
    given = _approval_arrays()
    changed = (
        update(approvals)
        .where(
            approvals.c.expense_id == touched.c.id,
            approvals.c.company_id == bindparam("company"),
            approvals.c.step_number == given.c.step_number,
        )
        .values(
            approver_id=given.c.approver_id,
            approver_level_id=given.c.approver_level_id,
            status=given.c.status,
            approved_at=given.c.approved_at,
            comments=given.c.comments,
            escalate_at=given.c.escalate_at,
        )
        .returning(approvals.c.id)
        .cte("changed_approvals")
    )
    return Query(select(touched.c.id).add_cte(changed, *_history_ctes(touched)))


def _history_ctes(touched: Any) -> tuple[Any, Any]:
    """The CTEs that append a saved expense's events and put its notices in the outbox, if
    the expense was `touched`."""
    expense_id = bindparam("expense", type_=Integer)
    company_id = bindparam("company", type_=Integer)
    return (
        _event_rows(expense_id, company_id, touched).cte("new_events"),
        _outbox_rows(expense_id, company_id, touched).cte("new_notices"),
    )


def _pg_new_round() -> Query:
    """Write a resubmitted expense if it is as read: its fields, its approval rows (steps kept
    are updated, new ones inserted, vanished ones deleted: disjoint step numbers, so no CTE sees
    another's rows and the unique key never meets a row about to go), and append the events.
    One row when written, none when not."""
    touched = _touched(**{name: bindparam(f"e_{name}") for name in _REVISED_FIELDS})
    kept = _approval_arrays()
    updated = (
        update(approvals)
        .where(
            approvals.c.expense_id == touched.c.id,
            approvals.c.company_id == bindparam("company"),
            approvals.c.step_number == kept.c.step_number,
        )
        .values({n: kept.c[n] for n in _APPROVAL_CHANGES})
        .returning(approvals.c.id)
        .cte("updated_approvals")
    )
    added = _approval_arrays("added", "added_approval")
    inserted = insert(approvals).from_select(
        ["expense_id", "company_id", *_APPROVAL_FIELDS],
        select(
            touched.c.id,
            bindparam("company", type_=Integer),
            *(added.c[n] for n in _APPROVAL_FIELDS),
        )
        .select_from(touched)
        .join(added, true()),
    )
    gone = rows_of("removed", "removed_step", column("step_number", Integer))
    deleted = delete(approvals).where(
        approvals.c.expense_id == touched.c.id,
        approvals.c.company_id == bindparam("company"),
        approvals.c.step_number.in_(select(gone.c.step_number)),
    )
    return Query(
        select(touched.c.id).add_cte(
            updated,
            inserted.cte("inserted_approvals"),
            deleted.cte("deleted_approvals"),
            *_history_ctes(touched),
        )
    )


# What a resubmission may change of the expense itself.
_REVISED_FIELDS = ("policy_id", "amount", "description", "status", "completed_at")
_PG_NEW_ROUND = _pg_new_round()

# --- writing: SQLite, a few statements in one transaction ------------------------------------

_SQLITE_ADD = insert(expenses).returning(expenses.c.id)
_SQLITE_ADD_APPROVALS = insert(approvals)
_SQLITE_ADD_EVENTS = insert(expense_events)
_SQLITE_ADD_NOTICES = insert(outbox)
_SQLITE_SAVE_APPROVAL = (
    update(approvals)
    .where(
        approvals.c.expense_id == bindparam("b_expense_id"),
        approvals.c.company_id == bindparam("b_company_id"),
        approvals.c.step_number == bindparam("b_step_number"),
    )
    .values(
        approver_id=bindparam("b_approver_id"),
        approver_level_id=bindparam("b_approver_level_id"),
        status=bindparam("b_status"),
        approved_at=bindparam("b_approved_at"),
        comments=bindparam("b_comments"),
        escalate_at=bindparam("b_escalate_at"),
    )
)
_SQLITE_TOUCH = (
    update(expenses)
    .where(_THIS_EXPENSE)
    .values(
        version=expenses.c.version + 1,
        status=bindparam("new_status"),
        completed_at=bindparam("completed"),
    )
)

_SQLITE_ROUND_APPROVAL = _SQLITE_SAVE_APPROVAL.values(
    {n: bindparam(f"b_{n}") for n in _APPROVAL_CHANGES}
)
_SQLITE_DROP_APPROVAL = delete(approvals).where(
    approvals.c.expense_id == bindparam("b_expense_id"),
    approvals.c.company_id == bindparam("b_company_id"),
    approvals.c.step_number == bindparam("b_step_number"),
)
_SQLITE_REVISE = (
    update(expenses)
    .where(_THIS_EXPENSE)
    .values(
        {name: bindparam(f"e_{name}") for name in _REVISED_FIELDS}
        | {"version": expenses.c.version + 1}
    )
)

# --- the status page, lists, inbox, history --------------------------------------------------


def _same_tenant(target: Any, source: Any, reference: str) -> Any:
    """Join `source.<reference>` to `target.id` within one company (colocated if distributed)."""
    return and_(target.c.id == source.c[reference], target.c.company_id == source.c.company_id)


_approver = users.alias("approver")
_submitter = users.alias("submitter")


def _view_select() -> Select[Any]:
    """The status page's columns: the expense, its submitter and policy, each approval with
    its approver and level, in step order."""
    named_approvals = approvals.join(
        _approver, _same_tenant(_approver, approvals, "approver_id")
    ).join(hierarchy_levels, _same_tenant(hierarchy_levels, approvals, "approver_level_id"))
    return (
        select(
            *EXPENSE_COLUMNS,
            _submitter.c.name.label("user_name"),
            policies.c.name.label("policy_name"),
            policies.c.active.label("policy_active"),
            *APPROVAL_COLUMNS,
            _approver.c.name.label("approver_name"),
            hierarchy_levels.c.level_name,
        )
        .select_from(
            expenses.join(_submitter, _same_tenant(_submitter, expenses, "user_id"))
            .join(policies, _same_tenant(policies, expenses, "policy_id"))
            .outerjoin(named_approvals, _its_approvals())
        )
        .order_by(approvals.c.step_number)
    )


@functools.cache
def _view(any_company: bool, sighted: bool = False) -> Query:
    where = expenses.c.id == bindparam("expense") if any_company else _THIS_EXPENSE
    if sighted:
        where = and_(where, _sees_this_expense())
    return Query(_view_select().where(where))


@functools.cache
def _views(postgres: bool) -> Executable | Query:
    """`_view` of several expenses in any company, by id: on PostgreSQL one array parameter, a
    prepared statement like the status page's (the notification worker reads each batch's
    expenses so); on SQLite a list the driver expands."""
    by_expense = _view_select().order_by(None).order_by(expenses.c.id, approvals.c.step_number)
    if postgres:
        ids = bindparam("expenses", type_=ARRAY(Integer))
        return Query(by_expense.where(expenses.c.id == any_(ids)))
    return by_expense.where(expenses.c.id.in_(bindparam("expenses", expanding=True, type_=Integer)))


@functools.cache
def _summaries(by_user: bool, by_status: bool, sighted: bool = False) -> Executable:
    where = [expenses.c.company_id == bindparam("company"), expenses.c.id < bindparam("before")]
    if sighted:
        where.append(_sees_listed_expense())
    if by_user:
        where.append(expenses.c.user_id == bindparam("user"))
    if by_status:
        where.append(expenses.c.status == bindparam("wanted_status"))
    return (
        select(*EXPENSE_COLUMNS)
        .where(*where)
        .order_by(expenses.c.id.desc())
        .limit(bindparam("limit"))
    )


def _blocked_by_earlier_step() -> Any:
    """Whether an earlier required step of the `approvals` row's expense is still pending (a
    correlated EXISTS)."""
    earlier = approvals.alias("earlier")
    return (
        select(earlier.c.id)
        .where(
            earlier.c.expense_id == approvals.c.expense_id,
            earlier.c.company_id == approvals.c.company_id,
            earlier.c.required.is_not(false()),
            earlier.c.status == STEP_PENDING,
            earlier.c.step_number < approvals.c.step_number,
        )
        .exists()
    )


def _inbox() -> Executable:
    actionable = (
        select(
            approvals.c.expense_id,
            approvals.c.step_number,
            approvals.c.required,
            expenses.c.amount,
            expenses.c.description,
            expenses.c.submitted_at,
            expenses.c.user_id,
            _submitter.c.name.label("submitter_name"),
            policies.c.name.label("policy_name"),
            # An approver holds one step per expense (four eyes); should a reassignment give
            # them two, the inbox shows the first, as the memory adapter does.
            func.row_number()
            .over(partition_by=approvals.c.expense_id, order_by=approvals.c.step_number)
            .label("nth"),
        )
        .select_from(
            approvals.join(
                expenses,
                and_(
                    expenses.c.id == approvals.c.expense_id,
                    expenses.c.company_id == approvals.c.company_id,
                ),
            )
            .join(_submitter, _same_tenant(_submitter, expenses, "user_id"))
            .join(policies, _same_tenant(policies, expenses, "policy_id"))
        )
        .where(
            approvals.c.company_id == bindparam("company"),
            approvals.c.approver_id == bindparam("approver"),
            approvals.c.status == STEP_PENDING,
            expenses.c.status == EXPENSE_PENDING,
            approvals.c.expense_id > bindparam("after"),
            # Optional steps never wait; a required one waits for every earlier required one.
            or_(approvals.c.required.is_(false()), not_(_blocked_by_earlier_step())),
        )
        .subquery("actionable")
    )
    return (
        select(actionable)
        .where(actionable.c.nth == literal_column("1"))
        .order_by(actionable.c.expense_id)
        .limit(bindparam("limit"))
    )


_INBOX = _inbox()


def _decidable(approver: Any, *, covering: bool, first_page: bool) -> Any:
    """The pending approval rows of `approver` (a bind parameter or a column) that can be
    decided now: by them, or (`covering`) by the delegate the `approver` bind parameter names,
    where the delegate is not the submitter, holds no step of the expense (four eyes) and is
    at the step's required level or more senior, as `workflow.covered_step` decides.

    Read from `approvals` alone, every other condition a correlated subquery, so the inbox
    index gives them in order; `first_page` (PostgreSQL) keeps each expense's first step and
    stops after `limit` expenses.
    """
    expense_allows = [expenses.c.status == EXPENSE_PENDING]
    if covering:
        expense_allows += [
            expenses.c.user_id != bindparam("approver"),
            _level_of("approver") <= _step_level(),
        ]
    # OFFSET 0 keeps PostgreSQL from turning this into a join, which hashed all the
    # company's pending expenses first: probed per row instead, the index order survives.
    pending_expense = (
        select(expenses.c.id)
        .where(
            expenses.c.id == approvals.c.expense_id,
            expenses.c.company_id == approvals.c.company_id,
            *expense_allows,
        )
        .offset(0)
        .exists()
    )
    where = [
        approvals.c.company_id == bindparam("company"),
        approvals.c.approver_id == approver,
        approvals.c.status == STEP_PENDING,
        approvals.c.expense_id > bindparam("after"),
        # Optional steps never wait; a required one waits for every earlier required one.
        or_(approvals.c.required.is_(false()), not_(_blocked_by_earlier_step())),
        pending_expense,
    ]
    on_behalf_of: Any = cast(null(), Integer)
    if covering:
        held = approvals.alias("held")
        where.append(
            ~select(held.c.id)
            .where(
                held.c.expense_id == approvals.c.expense_id,
                held.c.company_id == approvals.c.company_id,
                held.c.approver_id == bindparam("approver"),
            )
            .exists()
        )
        on_behalf_of = approvals.c.approver_id
    rows = select(
        approvals.c.expense_id,
        approvals.c.company_id,
        approvals.c.step_number,
        approvals.c.required,
        on_behalf_of.label("on_behalf_of"),
    ).where(*where)
    if not first_page:
        return rows
    return (
        rows.ext(distinct_on(approvals.c.expense_id))
        .order_by(approvals.c.expense_id, approvals.c.step_number)
        .limit(bindparam("limit"))
    )


@functools.cache
def _inbox_covering(postgres: bool) -> Executable:
    """As `_inbox`, with the steps the approver may decide for those they cover for now
    (`on_behalf_of`), one item per expense.

    Their own steps and the covered ones are two branches. On PostgreSQL each branch reads a
    page at most, the covered one per absent user (LATERAL) from the few delegations to the
    approver, each by the inbox index in its order (a page of the union is within the pages
    of its parts); names are joined to the page alone. One condition over "the approver or
    whom they cover for" had the planner start from all the company's pending expenses
    (150 ms against 0.1 ms for 10,000 of them), delegation or not, and joining expenses
    before the page read all of an absent approver's pending steps (120 ms for 3,000).
    """
    absent = (
        select(delegations.c.user_id)
        .where(
            delegations.c.company_id == bindparam("company"),
            delegations.c.delegate_id == bindparam("approver"),
            delegations.c.starts_at <= bindparam("as_of"),
            delegations.c.ends_at > bindparam("as_of"),
        )
        .subquery("absent")
    )
    own = _decidable(bindparam("approver"), covering=False, first_page=postgres)
    if postgres:
        theirs = _decidable(absent.c.user_id, covering=True, first_page=True).lateral("theirs")
        covered = select(theirs).select_from(absent.join(theirs, true()))
    else:
        covered = _decidable(absent.c.user_id, covering=True, first_page=False)
    both = union_all(own, covered).subquery("steps")
    ranked = select(
        both,
        func.row_number()
        .over(partition_by=both.c.expense_id, order_by=both.c.step_number)
        .label("nth"),
    ).subquery("ranked")
    page = (
        select(ranked)
        .where(ranked.c.nth == literal_column("1"))
        .order_by(ranked.c.expense_id)
        .limit(bindparam("limit"))
        .subquery("page")
    )
    return (
        select(
            page.c.expense_id,
            page.c.step_number,
            page.c.required,
            expenses.c.amount,
            expenses.c.description,
            expenses.c.submitted_at,
            expenses.c.user_id,
            _submitter.c.name.label("submitter_name"),
            policies.c.name.label("policy_name"),
            page.c.on_behalf_of,
        )
        .select_from(
            page.join(
                expenses,
                and_(
                    expenses.c.id == page.c.expense_id, expenses.c.company_id == page.c.company_id
                ),
            )
            .join(_submitter, _same_tenant(_submitter, expenses, "user_id"))
            .join(policies, _same_tenant(policies, expenses, "policy_id"))
        )
        .order_by(page.c.expense_id)
    )


def _history(sighted: bool) -> Query:
    where = and_(_THIS_EXPENSE, _sees_this_expense()) if sighted else _THIS_EXPENSE
    return Query(_history_of(where))


def _history_of(where: Any) -> Any:
    return (
        select(
            expenses.c.id.label("expense_id"),
            expenses.c.company_id,
            expense_events.c.id.label("event_id"),
            expense_events.c.kind,
            expense_events.c.at,
            expense_events.c.actor_id,
            expense_events.c.step_number,
            expense_events.c.comment,
            expense_events.c.approver_id,
            expense_events.c.previous_approver_id,
            expense_events.c.on_behalf_of,
        )
        .select_from(
            expenses.outerjoin(
                expense_events,
                and_(
                    expense_events.c.expense_id == expenses.c.id,
                    expense_events.c.company_id == expenses.c.company_id,
                ),
            )
        )
        .where(where)
        .order_by(expense_events.c.id)
    )


_HISTORY, _HISTORY_SIGHTED = _history(sighted=False), _history(sighted=True)


def _due(first_page: bool) -> Query:
    """Steps past their deadline in every company, most overdue first, a page after a cursor.

    The partial index on (escalate_at, expense_id) holds only the current steps that may
    escalate, in this order: a page is the start of one range of it, however many approvals
    the database holds. Measured on PostgreSQL with 200,000 approvals, 20,000 of them with a
    deadline (generic plans, as the adapter runs them): 0.07 ms a page of 100; in expense id
    order the planner filtered all 200,000 rows instead (35 ms).
    """
    where = [
        approvals.c.escalate_at.is_not(None),
        approvals.c.escalate_at <= bindparam("as_of", type_=UtcDateTime),
        approvals.c.status == STEP_PENDING,
    ]
    if not first_page:
        where.append(
            tuple_(approvals.c.escalate_at, approvals.c.expense_id)
            > tuple_(bindparam("after_at", type_=UtcDateTime), bindparam("after_id"))
        )
    return Query(
        select(
            approvals.c.escalate_at,
            approvals.c.expense_id,
            approvals.c.company_id,
            approvals.c.step_number,
        )
        .where(*where)
        .order_by(approvals.c.escalate_at, approvals.c.expense_id)
        .limit(bindparam("limit"))
    )


_DUE_FIRST, _DUE_NEXT = _due(first_page=True), _due(first_page=False)

# --- rows to entities ------------------------------------------------------------------------


def _user_id(value: int | None) -> UserId | None:
    return None if value is None else UserId(value)


def _approval_from(row: Row[Any]) -> Approval:
    return Approval(
        step_number=row.step_number,
        approver_id=UserId(row.approver_id),
        approver_level_id=LevelId(row.approver_level_id),
        required=row.required is not False,
        status=ApprovalStatus(row.approval_status or ApprovalStatus.PENDING),
        approved_at=row.approved_at,
        comments=row.comments,
        escalate_after_hours=row.escalate_after_hours,
        escalate_at=row.escalate_at,
    )


def _expense_from(rows: Sequence[Row[Any]]) -> Expense:
    """An expense from rows of `EXPENSE_COLUMNS` + `APPROVAL_COLUMNS`, one per approval."""
    first = rows[0]
    return Expense(
        id=ExpenseId(first.id),
        company_id=CompanyId(first.company_id),
        user_id=UserId(first.user_id),
        policy_id=PolicyId(first.policy_id),
        amount=first.amount,
        description=first.description,
        status=ExpenseStatus(first.status or ExpenseStatus.PENDING),
        submitted_at=first.submitted_at,
        completed_at=first.completed_at,
        approvals=tuple(_approval_from(r) for r in rows if r.step_number is not None),
    )


def _summary_from(row: Row[Any]) -> ExpenseSummary:
    return ExpenseSummary(
        id=ExpenseId(row.id),
        company_id=CompanyId(row.company_id),
        user_id=UserId(row.user_id),
        policy_id=PolicyId(row.policy_id),
        amount=row.amount,
        description=row.description,
        status=ExpenseStatus(row.status or ExpenseStatus.PENDING),
        submitted_at=row.submitted_at,
        completed_at=row.completed_at,
    )


def _view_from(rows: Sequence[Row[Any]]) -> ExpenseView:
    first = rows[0]
    return ExpenseView(
        id=ExpenseId(first.id),
        company_id=CompanyId(first.company_id),
        amount=first.amount,
        description=first.description,
        status=ExpenseStatus(first.status or ExpenseStatus.PENDING),
        submitted_at=first.submitted_at,
        completed_at=first.completed_at,
        user_id=UserId(first.user_id),
        user_name=first.user_name,
        policy_id=PolicyId(first.policy_id),
        policy_name=first.policy_name,
        policy_active=first.policy_active is not False,
        approvals=tuple(
            ApprovalView(
                step_number=r.step_number,
                approver_id=UserId(r.approver_id),
                approver_name=r.approver_name,
                approver_level=r.level_name,
                status=ApprovalStatus(r.approval_status or ApprovalStatus.PENDING),
                approved_at=r.approved_at,
                comments=r.comments,
                required=r.required is not False,
            )
            for r in rows
            if r.step_number is not None
        ),
    )


def _inbox_item_from(row: Row[Any]) -> InboxItem:
    return InboxItem(
        expense_id=ExpenseId(row.expense_id),
        step_number=row.step_number,
        required=row.required is not False,
        amount=row.amount,
        description=row.description,
        submitted_at=row.submitted_at,
        submitter_id=UserId(row.user_id),
        submitter_name=row.submitter_name,
        policy_name=row.policy_name,
        on_behalf_of=_user_id(getattr(row, "on_behalf_of", None)),
    )


def _covers_from(rows: Sequence[Row[Any]], actor_id: UserId) -> tuple[Cover, ...]:
    """The covers among rows of `_lock_covering`: those with a delegation whose step and
    delegate levels are known. Rows of `_lock_bare` (an expense without steps) have none."""
    covers = []
    for row in rows:
        if (
            getattr(row, "cover_user_id", None) is None
            or row.cover_required_level is None
            or row.cover_delegate_level is None
        ):
            continue
        delegation = Delegation(
            company_id=CompanyId(row.company_id),
            user_id=UserId(row.cover_user_id),
            delegate_id=actor_id,
            starts_at=row.cover_starts_at,
            ends_at=row.cover_ends_at,
            note=row.cover_note,
        )
        covers.append(
            Cover(
                step_number=row.step_number,
                delegation=delegation,
                required_level=row.cover_required_level,
                delegate_level=row.cover_delegate_level,
            )
        )
    return tuple(covers)


def _event_from(row: Row[Any]) -> ExpenseEvent:
    return ExpenseEvent(
        expense_id=ExpenseId(row.expense_id),
        company_id=CompanyId(row.company_id),
        kind=EventKind(row.kind),
        at=row.at,
        actor_id=_user_id(row.actor_id),
        step_number=row.step_number,
        comment=row.comment,
        approver_id=_user_id(row.approver_id),
        previous_approver_id=_user_id(row.previous_approver_id),
        on_behalf_of=_user_id(row.on_behalf_of),
    )


# --- entities to parameters ------------------------------------------------------------------

_JSON = msgspec.json.Encoder()


def _approval_values(a: Approval) -> dict[str, Any]:
    """An approval's values by the names of `_APPROVAL_FIELDS`, its status as stored."""
    values = {field: getattr(a, field) for field in _APPROVAL_FIELDS}
    values["status"] = str(a.status)
    return values


def _approval_params(items: Iterable[Approval]) -> dict[str, str]:
    rows = []
    for a in items:
        row = _approval_values(a)
        row["approved_at"], row["escalate_at"] = naive_iso(a.approved_at), naive_iso(a.escalate_at)
        rows.append(row)
    return {"approvals": _JSON.encode(rows).decode()}


def _history_params(events: Sequence[ExpenseEvent], notices: Sequence[Notice]) -> dict[str, str]:
    """The events and notices of a write, as the JSON parameters of `_history_ctes`."""
    rows = [
        {
            "position": position,
            "kind": str(e.kind),
            "at": naive_iso(e.at),
            "actor_id": e.actor_id,
            "step_number": e.step_number,
            "comment": e.comment,
            "approver_id": e.approver_id,
            "previous_approver_id": e.previous_approver_id,
            "on_behalf_of": e.on_behalf_of,
        }
        for position, e in enumerate(events)
    ]
    noticed = [
        {
            "position": position,
            "event": n.event,
            "topic": str(n.topic),
            "recipient_id": n.recipient_id,
        }
        for position, n in enumerate(notices)
    ]
    return {"events": _JSON.encode(rows).decode(), "notices": _JSON.encode(noticed).decode()}


def naive_iso(value: datetime | None) -> str | None:
    """A timestamp as JSON gives it to a TIMESTAMP column: naive UTC, ISO 8601."""
    return None if value is None else naive_utc(value).isoformat()


def _event_rows_params(expense: Expense, events: Sequence[ExpenseEvent]) -> list[dict[str, Any]]:
    return [
        {
            "expense_id": expense.id,
            "company_id": expense.company_id,
            "kind": str(e.kind),
            "at": e.at,
            "actor_id": e.actor_id,
            "step_number": e.step_number,
            "comment": e.comment,
            "approver_id": e.approver_id,
            "previous_approver_id": e.previous_approver_id,
            "on_behalf_of": e.on_behalf_of,
        }
        for e in events
    ]


def _notice_rows_params(
    expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
) -> list[dict[str, Any]]:
    rows = _event_rows_params(expense, [events[n.event] for n in notices])
    for row, n in zip(rows, notices, strict=True):
        row["topic"], row["recipient_id"] = str(n.topic), n.recipient_id
    return rows


# --- the hot statements, shared with the awaited adapter (`awaited.py`) ----------------------


def add_write(
    expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
) -> tuple[Query, dict[str, Any]]:
    """PostgreSQL: the one statement that stores a new expense, its approvals, its events and
    its notices (`ExpenseRepository.add`), and its parameters."""
    params = {f"e_{name}": value for name, value in _expense_values(expense).items()}
    params |= _approval_params(expense.approvals) | _history_params(events, notices)
    return _PG_ADD, params


def checked_add_write(
    org_seen: int | None,
    expense: Expense,
    events: Sequence[ExpenseEvent],
    notices: Sequence[Notice],
) -> tuple[Query, dict[str, Any]]:
    """As `add_write`, storing them only if the organisation's version (`org_version`) is still
    `org_seen` (None never is): no row comes back when it is not."""
    _, params = add_write(expense, events, notices)
    return _PG_ADD_CHECKED, params | {"org_seen": org_seen}


def _expense_values(expense: Expense) -> dict[str, Any]:
    return {
        "company_id": expense.company_id,
        "user_id": expense.user_id,
        "policy_id": expense.policy_id,
        "amount": expense.amount,
        "description": expense.description,
        "status": str(expense.status),
        "submitted_at": expense.submitted_at,
        "completed_at": expense.completed_at,
    }


def added(expense: Expense, rows: Sequence[Row[Any]]) -> Expense:
    """The expense as `add_write` stored it (its rows hold its new id)."""
    if len(rows) != 1:
        raise ValueError(f"expected one row, got {len(rows)}")
    return expense.with_id(ExpenseId(rows[0][0]))


def view_read(
    company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None
) -> tuple[Query, dict[str, Any]]:
    """The statement and parameters of an expense's status page (`ExpenseRepository.view`)."""
    params = {"company": company_id, "expense": expense_id, **_sight_params(sight)}
    return _view(company_id is None, sighted=sight is not None and company_id is not None), params


def view_of(rows: Sequence[Row[Any]], expense_id: ExpenseId) -> ExpenseView:
    """The status page the rows of `view_read` make.

    Raises:
        UnknownExpense: there are none.
    """
    if not rows:
        raise UnknownExpense(expense_id)
    return _view_from(rows)


def decision_read(
    company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
) -> tuple[Query, dict[str, Any]]:
    """The unlocked read of an expense for a decision, with the actor's covers and role, and
    its parameters (`ExpenseRepository.get_for_decision`; the outer join also finds an
    expense without steps, then without a role)."""
    if company_id is None:
        return _GET_COVERING_BY, {"actor": actor_id, "expense": expense_id}
    return _GET_COVERING, {"company": company_id, "actor": actor_id, "expense": expense_id}


def decision_basis(rows: Sequence[Row[Any]], actor_id: UserId) -> DecisionBasis:
    """The expense, the actor's covers and role (None: read it with `ROLE_OF`) and the version
    the rows of `decision_read` show."""
    role = getattr(rows[0], "actor_role", None)
    return DecisionBasis(
        _expense_from(rows),
        _covers_from(rows, actor_id),
        None if role is None else Role(role),
        seen=rows[0].version,
    )


def decision_write(
    before: Expense,
    version: int,
    expense: Expense,
    events: Sequence[ExpenseEvent],
    notices: Sequence[Notice],
) -> tuple[Query, dict[str, Any]]:
    """PostgreSQL: the one statement that writes what a decision changed of `before` (the
    same steps; not a new round) if the expense is still at `version`, and its parameters. It
    returns the expense's id, or no row when the version has moved on."""
    target: dict[str, Any] = {
        "company": expense.company_id,
        "expense": expense.id,
        "seen_version": version,
    }
    old = {a.step_number: a for a in before.approvals}
    changed = [a for a in expense.approvals if old.get(a.step_number) != a]
    closes = (expense.status, expense.completed_at) != (before.status, before.completed_at)
    if closes:
        target |= {"new_status": str(expense.status), "completed": expense.completed_at}
    return _pg_save(closes), target | _approval_params(changed) | _history_params(events, notices)


def is_new_round(before: Expense, after: Expense) -> bool:
    """Whether a save changes more than a decision can: the expense's own fields (amount,
    description, policy) or which steps it has. Only a resubmission does."""
    # Cheapest first: every decision asks, and a decision changes none of these.
    return (
        after.policy_id != before.policy_id
        or len(after.approvals) != len(before.approvals)
        or after.amount != before.amount
        or after.description != before.description
    )


# --- the repository --------------------------------------------------------------------------


class SqlExpenses:
    """`ExpenseRepository` over the SQL tables.

    Remembers what `get_for_update` loaded, and its version, so `save` writes only the
    approvals that changed, and only over the expense as it was read.
    """

    def __init__(self, link: Link) -> None:
        self._link = link
        self._loaded: dict[ExpenseId, tuple[Expense, int]] = {}

    def add(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> Expense:
        if not self._link.is_sqlite:
            return added(expense, self._link.write(*add_write(expense, events, notices)).all())
        values = _expense_values(expense)
        expense_id = ExpenseId(self._link.write(_SQLITE_ADD, values).scalar_one())
        stored = expense.with_id(expense_id)
        if expense.approvals:
            rows = [
                {"expense_id": expense_id, "company_id": expense.company_id, **_approval_values(a)}
                for a in expense.approvals
            ]
            self._link.write(_SQLITE_ADD_APPROVALS, rows)
        self._append_history(stored, events, notices)
        return stored

    def _append_history(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> None:
        """SQLite: append the events and put the notices in the outbox."""
        if events:
            self._link.write(_SQLITE_ADD_EVENTS, _event_rows_params(expense, events))
        if notices:
            self._link.write(_SQLITE_ADD_NOTICES, _notice_rows_params(expense, events, notices))

    def get_for_update(self, company_id: CompanyId, expense_id: ExpenseId) -> Expense:
        params = {"company": company_id, "expense": expense_id}
        expense = self._lock_one(params, _GET, _LOCK, _LOCK_BARE)
        if expense is None:
            raise UnknownExpense(expense_id)
        return expense

    def get_for_update_by(self, actor_id: UserId, expense_id: ExpenseId) -> Expense | None:
        params = {"actor": actor_id, "expense": expense_id}
        return self._lock_one(params, _GET_BY, _LOCK_BY, _LOCK_BARE_BY)

    def get_for_decision(
        self, company_id: CompanyId | None, actor_id: UserId, expense_id: ExpenseId
    ) -> tuple[Expense, tuple[Cover, ...], Role | None] | None:
        unlocked, params = decision_read(company_id, actor_id, expense_id)
        if self._link.next_write_alone:
            # The decision's write will run by itself, with no transaction to hold a lock in:
            # read unlocked (the outer join also finds an expense without steps); `save`
            # writes only over the version read.
            rows = self._link.read(unlocked, params).all()
        elif company_id is None:
            rows = self._lock_rows(params, _GET_COVERING_BY, _LOCK_COVERING_BY, _LOCK_BARE_BY)
        else:
            rows = self._lock_rows(params, _GET_COVERING, _LOCK_COVERING, _LOCK_BARE)
        if not rows:
            return None
        role = getattr(rows[0], "actor_role", None)
        if role is None:
            # Rows of `_lock_bare` (an expense without steps) carry no role: read it alone.
            role = self._link.read(ROLE_OF, {"actor": actor_id}).scalar()
        return self._took(rows), _covers_from(rows, actor_id), None if role is None else Role(role)

    def _lock_one(
        self, params: dict[str, Any], get: Query, lock: Query, lock_bare: Query
    ) -> Expense | None:
        rows = self._lock_rows(params, get, lock, lock_bare)
        return self._took(rows) if rows else None

    def _lock_rows(
        self, params: dict[str, Any], get: Query, lock: Query, lock_bare: Query
    ) -> list[Row[Any]]:
        self._link.begin()
        if self._link.is_sqlite:
            # BEGIN IMMEDIATE already holds the database's write lock.
            return self._link.write(get, params).all()
        rows = self._link.write(lock, params).all()
        if not rows:
            rows = self._link.write(lock_bare, params).all()
        return rows

    def _took(self, rows: Sequence[Row[Any]]) -> Expense:
        """The expense of rows read for a write, remembered with its version for `save`."""
        expense = _expense_from(rows)
        self._loaded[expense.id] = (expense, rows[0].version)
        return expense

    def save(
        self, expense: Expense, events: Sequence[ExpenseEvent], notices: Sequence[Notice]
    ) -> None:
        if expense.id not in self._loaded:
            self.get_for_update(expense.company_id, expense.id)
        before, version = self._loaded[expense.id]
        target: dict[str, Any] = {"company": expense.company_id, "expense": expense.id}
        if not self._link.is_sqlite:
            target["seen_version"] = version
        if is_new_round(before, expense):
            self._save_round(before, expense, target, events, notices)
            self._loaded[expense.id] = (expense, version + 1)
            return
        if not self._link.is_sqlite:
            written = self._link.write(*decision_write(before, version, expense, events, notices))
            self._written(written, expense.id)
        else:
            old = {a.step_number: a for a in before.approvals}
            changed = [a for a in expense.approvals if old.get(a.step_number) != a]
            if changed:
                rows = [
                    {
                        "b_expense_id": expense.id,
                        "b_company_id": expense.company_id,
                        "b_step_number": a.step_number,
                        "b_approver_id": a.approver_id,
                        "b_approver_level_id": a.approver_level_id,
                        "b_status": str(a.status),
                        "b_approved_at": a.approved_at,
                        "b_comments": a.comments,
                        "b_escalate_at": a.escalate_at,
                    }
                    for a in changed
                ]
                self._link.write(_SQLITE_SAVE_APPROVAL, rows)
            # Within BEGIN IMMEDIATE nothing else writes: the version is only counted.
            self._link.write(
                _SQLITE_TOUCH,
                target | {"new_status": str(expense.status), "completed": expense.completed_at},
            )
            self._append_history(expense, events, notices)
        self._loaded[expense.id] = (expense, version + 1)

    def _written(self, rows: Rows, expense_id: ExpenseId) -> None:
        """Raise `ExpenseChanged` if a checked write found the expense changed (no row)."""
        if rows.first() is None:
            del self._loaded[expense_id]
            raise ExpenseChanged(expense_id)

    def _save_round(
        self,
        before: Expense,
        expense: Expense,
        target: dict[str, Any],
        events: Sequence[ExpenseEvent],
        notices: Sequence[Notice],
    ) -> None:
        """Write an expense whose own fields or set of steps changed (a resubmission)."""
        old = {a.step_number: a for a in before.approvals}
        steps = {a.step_number for a in expense.approvals}
        kept = [a for a in expense.approvals if a.step_number in old and old[a.step_number] != a]
        added = [a for a in expense.approvals if a.step_number not in old]
        removed = [n for n in old if n not in steps]
        fields = {
            "e_policy_id": expense.policy_id,
            "e_amount": expense.amount,
            "e_description": expense.description,
            "e_status": str(expense.status),
            "e_completed_at": expense.completed_at,
        }
        if not self._link.is_sqlite:
            params = target | fields | _approval_params(kept) | _history_params(events, notices)
            params["added"] = _approval_params(added)["approvals"]
            params["removed"] = _JSON.encode([{"step_number": n} for n in removed]).decode()
            self._written(self._link.write(_PG_NEW_ROUND, params), expense.id)
            return
        key: dict[str, Any] = {"b_expense_id": expense.id, "b_company_id": expense.company_id}
        if removed:
            self._link.write(_SQLITE_DROP_APPROVAL, [key | {"b_step_number": n} for n in removed])
        if kept:
            rows = [
                key | {f"b_{field}": value for field, value in _approval_values(a).items()}
                for a in kept
            ]
            self._link.write(_SQLITE_ROUND_APPROVAL, rows)
        if added:
            self._link.write(
                _SQLITE_ADD_APPROVALS,
                [
                    {"expense_id": expense.id, "company_id": expense.company_id}
                    | _approval_values(a)
                    for a in added
                ],
            )
        self._link.write(_SQLITE_REVISE, target | fields)
        self._append_history(expense, events, notices)

    def forget(self) -> None:
        """Drop what was loaded: the unit of work is over, its locks with it."""
        self._loaded.clear()

    def get(
        self, company_id: CompanyId, expense_id: ExpenseId, sight: Sight | None = None
    ) -> Expense:
        params = {"company": company_id, "expense": expense_id, **_sight_params(sight)}
        rows = self._link.read(_GET if sight is None else _GET_SIGHTED, params).all()
        if not rows:
            raise UnknownExpense(expense_id)
        return _expense_from(rows)

    def view(
        self, company_id: CompanyId | None, expense_id: ExpenseId, sight: Sight | None = None
    ) -> ExpenseView:
        rows = self._link.read(*view_read(company_id, expense_id, sight)).all()
        return view_of(rows, expense_id)

    def views(self, expense_ids: Sequence[ExpenseId]) -> tuple[ExpenseView, ...]:
        if not expense_ids:
            return ()
        wanted = {"expenses": sorted(set(expense_ids))}
        rows = self._link.read(_views(not self._link.is_sqlite), wanted).all()
        return tuple(
            _view_from(list(group)) for _, group in itertools.groupby(rows, lambda r: r.id)
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
        statement = _summaries(user_id is not None, status is not None, sight is not None)
        params: dict[str, Any] = {
            "company": company_id,
            "before": NO_CURSOR if before is None else before,
            "limit": limit,
            **_sight_params(sight),
        }
        if user_id is not None:
            params["user"] = user_id
        if status is not None:
            params["wanted_status"] = str(status)
        return tuple(_summary_from(row) for row in self._link.read(statement, params))

    def inbox(
        self,
        company_id: CompanyId,
        approver_id: UserId,
        *,
        after: ExpenseId | None,
        limit: int,
        as_of: datetime | None = None,
    ) -> tuple[InboxItem, ...]:
        params: dict[str, Any] = {
            "company": company_id,
            "approver": approver_id,
            "after": 0 if after is None else after,
            "limit": limit,
        }
        statement = _INBOX
        if as_of is not None:
            params["as_of"] = as_of
            statement = _inbox_covering(not self._link.is_sqlite)
        return tuple(_inbox_item_from(row) for row in self._link.read(statement, params))

    def history(
        self, company_id: CompanyId, expense_id: ExpenseId, sight: Sight | None = None
    ) -> tuple[ExpenseEvent, ...]:
        params = {"company": company_id, "expense": expense_id, **_sight_params(sight)}
        rows = self._link.read(_HISTORY if sight is None else _HISTORY_SIGHTED, params).all()
        if not rows:
            raise UnknownExpense(expense_id)
        return tuple(_event_from(row) for row in rows if row.event_id is not None)

    def due_for_escalation(
        self, as_of: datetime, *, after: DueStep | None, limit: int
    ) -> tuple[DueStep, ...]:
        params: dict[str, Any] = {"as_of": as_of, "limit": limit}
        if after is not None:
            params |= {"after_at": after.escalate_at, "after_id": after.expense_id}
        rows = self._link.read(_DUE_FIRST if after is None else _DUE_NEXT, params)
        return tuple(
            DueStep(
                row.escalate_at,
                ExpenseId(row.expense_id),
                CompanyId(row.company_id),
                row.step_number,
            )
            for row in rows
        )
