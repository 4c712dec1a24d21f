"""The schema as SQLAlchemy Core tables: the seed's tables column for column, plus our additions.

One deliberate change: the seed's UNIQUE (company_id, category, min_amount) on `policies` is a
partial unique index on active policies instead (migration 0002). Additions: `users.manager_id`
and `users.role`; `company_id` on `approval_steps` and `approvals` (every tenant table carries
its tenant, ready for distribution by company); the tables `expense_events`,
`idempotency_keys` and `api_tokens`; for escalation (migration 0004),
`companies.fallback_approver_id`, `approval_steps.escalate_after_hours` and the approvals'
`escalate_after_hours` and `escalate_at`; `idempotency_keys.decision` (0005); and `delegations`
with `expense_events.on_behalf_of` (0006); the notification tables `outbox`, `webhooks` and
`deliveries` (0007); the tokens' `name`, `expires_at`, `last_used_at` and `revoked_at` (0008);
the `audit_log` (0009); indexes for a manager's reports and an e-mail in any case (0010); the
deliveries' references to their company and notice dropped (0011); `expenses.version` (0012);
and `org_version` (0013).
Constraints carry the names PostgreSQL gives the seed's unnamed ones. The migrations create
all this; these tables are what queries are built from, and a test holds the two to each other.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from adapters.sql.sqltypes import MoneyType, UtcDateTime

metadata = MetaData()

companies = Table(
    "companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    # users refer to companies too: the constraint is added after both tables (use_alter).
    Column(
        "fallback_approver_id",
        Integer,
        ForeignKey("users.id", use_alter=True, name="companies_fallback_approver_id_fkey"),
        nullable=True,
    ),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("is_company_wide", Boolean, server_default=text("false")),
    UniqueConstraint("company_id", "name", name="teams_company_id_name_key"),
    Index("ix_teams_company_id", "company_id"),
)

hierarchy_levels = Table(
    "hierarchy_levels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False),
    Column("level_number", Integer, nullable=False),
    Column("level_name", String(100), nullable=False),
    UniqueConstraint(
        "company_id",
        "team_id",
        "level_number",
        name="hierarchy_levels_company_id_team_id_level_number_key",
    ),
    Index("ix_hierarchy_levels_company_level", "company_id", "level_number"),
    Index("ix_hierarchy_levels_team_level", "team_id", "level_number"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=False),
    Column("email", String(100), nullable=False),
    Column("name", String(255), nullable=False),
    Column("hierarchy_level_id", Integer, ForeignKey("hierarchy_levels.id"), nullable=False),
    Column("active", Boolean, server_default=text("true")),
    Column("manager_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("role", String(20), nullable=False, server_default=text("'employee'")),
    UniqueConstraint("company_id", "email", name="users_company_id_email_key"),
    Index("ix_users_company_team", "company_id", "team_id"),
    Index("ix_users_hierarchy_level", "hierarchy_level_id"),
    Index("ix_users_team_hierarchy", "team_id", "hierarchy_level_id"),
    # A manager's reports: visibility walks the reporting chain down from the reader.
    Index("ix_users_company_manager", "company_id", "manager_id"),
)
# The user an OpenID Connect token's e-mail names, whatever its case: on PostgreSQL only (SQLite
# cannot reflect an index on an expression, so no schema comparison could see it there).
Index("ix_users_company_email_lower", users.c.company_id, func.lower(users.c.email)).ddl_if(
    dialect="postgresql"
)
POSTGRESQL_ONLY_INDEXES: Final = frozenset({"ix_users_company_email_lower"})

policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("category", String(50), nullable=False),
    Column("name", String(100), nullable=False),
    Column("description", Text),
    # Server defaults differ by dialect (cents on SQLite); the migrations set them.
    Column("min_amount", MoneyType, nullable=False),
    Column("max_amount", MoneyType, nullable=False),
    Column("created_at", UtcDateTime, server_default=text("CURRENT_TIMESTAMP")),
    Column("active", Boolean, server_default=text("true")),
    CheckConstraint("min_amount <= max_amount", name="policies_check"),
    Index("ix_policies_company_category", "company_id", "category"),
    Index("ix_policies_amount_range", "company_id", "min_amount", "max_amount"),
    # The one deliberate change to the seed's schema (migration 0002): its UNIQUE (company_id,
    # category, min_amount) binds active policies only, so a successor can take over a range.
    Index(
        "uq_policies_active_company_category_min_amount",
        "company_id",
        "category",
        "min_amount",
        unique=True,
        postgresql_where=text("active IS NOT false"),
        sqlite_where=text("active IS NOT false"),
    ),
)

approval_steps = Table(
    "approval_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("policy_id", Integer, ForeignKey("policies.id"), nullable=False),
    Column("step_order", Integer, nullable=False),
    Column("required_level", Integer, nullable=False),
    Column("team_scope", String(20), nullable=False, server_default=text("'submitter'")),
    Column("is_required", Boolean, server_default=text("true")),
    Column("description", String(255)),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("escalate_after_hours", Integer, nullable=True),
    UniqueConstraint("policy_id", "step_order", name="approval_steps_policy_id_step_order_key"),
    CheckConstraint("step_order > 0", name="approval_steps_step_order_check"),
    CheckConstraint("required_level BETWEEN 1 AND 10", name="approval_steps_required_level_check"),
    Index("ix_approval_steps_policy_order", "policy_id", "step_order"),
    Index("ix_approval_steps_level_scope", "required_level", "team_scope"),
)

expenses = Table(
    "expenses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("policy_id", Integer, ForeignKey("policies.id"), nullable=False),
    Column("amount", MoneyType, nullable=False),
    Column("description", Text),
    Column("status", String(20), server_default=text("'pending'")),
    Column("submitted_at", UtcDateTime, server_default=text("CURRENT_TIMESTAMP")),
    Column("completed_at", UtcDateTime, nullable=True),
    # Migration 0012: one more on every write to the expense or its approval rows, in the
    # same statement; a decision written without a lock checks it (`SqlExpenses.save`).
    Column("version", Integer, nullable=False, server_default=text("0")),
    Index("ix_expenses_company_user_submitted", "company_id", "user_id", "submitted_at"),
    Index("ix_expenses_company_status", "company_id", "status"),
    # Migration 0003: a company's list, and by status, read one page at any size.
    Index("ix_expenses_company_id", "company_id", "id"),
    Index("ix_expenses_company_status_id", "company_id", "status", "id"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("expense_id", Integer, ForeignKey("expenses.id"), nullable=False),
    Column("step_number", Integer, nullable=False),
    Column("approver_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("approver_level_id", Integer, ForeignKey("hierarchy_levels.id"), nullable=False),
    Column("required", Boolean, server_default=text("true")),
    Column("status", String(20), server_default=text("'pending'")),
    Column("approved_at", UtcDateTime, nullable=True),
    Column("comments", Text),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("escalate_after_hours", Integer, nullable=True),
    Column("escalate_at", UtcDateTime, nullable=True),
    UniqueConstraint(
        "expense_id",
        "step_number",
        "approver_id",
        name="approvals_expense_id_step_number_approver_id_key",
    ),
    Index("ix_approvals_approver_status", "approver_id", "status"),
    Index("ix_approvals_expense_step", "expense_id", "step_number"),
    # Migration 0003: an approver's pending steps, for the inbox.
    Index(
        "ix_approvals_pending_inbox",
        "company_id",
        "approver_id",
        "expense_id",
        "step_number",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    # Migration 0004: the steps a sweep escalates, by deadline; only current steps that may
    # escalate carry one.
    Index(
        "ix_approvals_escalate_at",
        "escalate_at",
        "expense_id",
        postgresql_where=text("escalate_at IS NOT NULL"),
        sqlite_where=text("escalate_at IS NOT NULL"),
    ),
)

expense_events = Table(
    "expense_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("expense_id", Integer, ForeignKey("expenses.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("step_number", Integer, nullable=True),
    Column("comment", Text, nullable=True),
    Column("approver_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("previous_approver_id", Integer, ForeignKey("users.id"), nullable=True),
    # Migration 0006: the absent approver a delegate decided for.
    Column("on_behalf_of", Integer, ForeignKey("users.id"), nullable=True),
    Index("ix_expense_events_company_expense", "company_id", "expense_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("expense_id", Integer, ForeignKey("expenses.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    # The decision a keyed decision made, as JSON (`replays.py`); NULL for a submission's key.
    Column("decision", Text, nullable=True),
    PrimaryKeyConstraint("user_id", "key", name="idempotency_keys_pkey"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("secret_hash", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    # Migration 0008: the token's lifecycle and its label.
    Column("name", String(100), nullable=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("last_used_at", UtcDateTime, nullable=True),
    Column("revoked_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("token_id", name="api_tokens_pkey"),
    Index("ix_api_tokens_company_user", "company_id", "user_id"),
)

# Migration 0006: who covers for whom, one delegation per absent user.
delegations = Table(
    "delegations",
    metadata,
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("delegate_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("note", Text, nullable=True),
    PrimaryKeyConstraint("company_id", "user_id", name="delegations_pkey"),
    CheckConstraint("ends_at > starts_at", name="delegations_period_check"),
    Index("ix_delegations_company_delegate", "company_id", "delegate_id"),
)

# Migration 0007: notifications. A big id that SQLite still assigns by itself (its rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")

# A notice written with the change it reports, with a copy of its event; `dispatched_at` is set
# once the worker has made its deliveries. No foreign keys: every submission and decision
# writes here, and each reference would cost a lookup of its row per notice; the same
# statement writes the expense and its events, which hold those references.
outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("expense_id", Integer, nullable=False),
    Column("topic", String(40), nullable=False),
    Column("recipient_id", Integer, nullable=True),
    Column("kind", String(20), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor_id", Integer, nullable=True),
    Column("step_number", Integer, nullable=True),
    Column("comment", Text, nullable=True),
    Column("approver_id", Integer, nullable=True),
    Column("previous_approver_id", Integer, nullable=True),
    Column("on_behalf_of", Integer, nullable=True),
    Column("dispatched_at", UtcDateTime, nullable=True),
    Index(
        "ix_outbox_undispatched",
        "id",
        postgresql_where=text("dispatched_at IS NULL"),
        sqlite_where=text("dispatched_at IS NULL"),
    ),
    # A claim asks, per delivery, whether an earlier notice of its expense still waits.
    Index(
        "ix_outbox_undispatched_expense",
        "expense_id",
        "id",
        postgresql_where=text("dispatched_at IS NULL"),
        sqlite_where=text("dispatched_at IS NULL"),
    ),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("url", Text, nullable=False),
    # The topics, comma-separated, or "*".
    Column("topics", Text, nullable=False),
    Column("secret", String(64), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_webhooks_company", "company_id", "id"),
)

# One notice on its way to one subscription or one mailbox. `target` names it ("webhook:3",
# "email:12"): one target's deliveries about one expense go out in outbox order. No foreign
# keys to the company or the notice (migration 0011): the worker copies both from the notice it
# has just read, and checking them cost most of a delivery's insert, the company's row locked
# by every delivery as by every request.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("company_id", Integer, nullable=False),
    Column("outbox_id", BigId, nullable=False),
    Column("expense_id", Integer, nullable=False),
    Column("topic", String(40), nullable=False),
    Column("channel", String(10), nullable=False),
    Column("target", String(40), nullable=False),
    Column(
        "webhook_id",
        Integer,
        ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("recipient_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("on_behalf_of", Integer, ForeignKey("users.id"), nullable=True),
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("leased_until", UtcDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UtcDateTime, nullable=True),
    Index("ix_deliveries_webhook", "webhook_id", "id"),
    # The queue a claim walks, in outbox order, stopping once it has enough.
    Index(
        "ix_deliveries_queue",
        "outbox_id",
        "id",
        postgresql_where=text("status IN ('pending', 'retrying')"),
        sqlite_where=text("status IN ('pending', 'retrying')"),
    ),
    Index(
        "ix_deliveries_unsettled",
        "expense_id",
        "target",
        "outbox_id",
        postgresql_where=text("status IN ('pending', 'retrying')"),
        sqlite_where=text("status IN ('pending', 'retrying')"),
    ),
)

# Migration 0009: one row per admin change, written with the change. `before` and `after` are
# JSON objects as text (the same on SQLite and PostgreSQL; nothing queries inside them).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True),
    Column("company_id", Integer, ForeignKey("companies.id"), nullable=False),
    Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Column("action", String(40), nullable=False),
    Column("target_type", String(20), nullable=False),
    Column("target_id", String(32), nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    # The listing, newest first by company; and one target's history.
    Index("ix_audit_log_company", "company_id", "id"),
    Index("ix_audit_log_company_target", "company_id", "target_type", "target_id", "id"),
)

# Migration 0013: the organisation's version, one row. On PostgreSQL every statement that
# writes a table a submission's approvers are worked out from adds one to it first (statement
# triggers), in its own transaction: a submission decided on an organisation read earlier is
# written only while the version is still the one read (`adapters.sql.awaited`). SQLite has
# the row but no triggers; nothing reads it there.
org_version = Table(
    "org_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    CheckConstraint("id = 1", name="org_version_one_row"),
)

# The tables whose writes move `org_version` on PostgreSQL.
ORG_TABLES: Final = (
    "companies",
    "teams",
    "hierarchy_levels",
    "users",
    "policies",
    "approval_steps",
)
