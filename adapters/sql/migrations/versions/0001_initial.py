"""The seed's schema, table for table and column for column, plus our additions.

Additions: users.manager_id and users.role; company_id on approval_steps and approvals; the
tables expense_events, idempotency_keys and api_tokens. Constraints are named as PostgreSQL
names the seed's unnamed ones. Money is NUMERIC(12,2), or integer cents on SQLite.

Revision ID: 0001
Revises:
Create Date: 2025-08-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = (
    "api_tokens",
    "idempotency_keys",
    "expense_events",
    "approvals",
    "expenses",
    "approval_steps",
    "policies",
    "users",
    "hierarchy_levels",
    "teams",
    "companies",
)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True)


def _fk(name: str, target: str, *, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey(f"{target}.id"), nullable=nullable)


def upgrade() -> None:
    cents = op.get_bind().dialect.name == "sqlite"
    money: sa.types.TypeEngine[Any] = sa.Integer() if cents else sa.Numeric(12, 2)
    no_money, unbounded = ("0", "99999999999") if cents else ("0.00", "999999999.99")
    now = sa.text("CURRENT_TIMESTAMP")

    op.create_table(
        "companies",
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
    )
    op.create_table(
        "teams",
        _id(),
        _fk("company_id", "companies"),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("is_company_wide", sa.Boolean, server_default=sa.text("false")),
        sa.UniqueConstraint("company_id", "name", name="teams_company_id_name_key"),
    )
    op.create_index("ix_teams_company_id", "teams", ["company_id"])
    op.create_table(
        "hierarchy_levels",
        _id(),
        _fk("company_id", "companies"),
        _fk("team_id", "teams"),
        sa.Column("level_number", sa.Integer, nullable=False),
        sa.Column("level_name", sa.String(100), nullable=False),
        sa.UniqueConstraint(
            "company_id",
            "team_id",
            "level_number",
            name="hierarchy_levels_company_id_team_id_level_number_key",
        ),
    )
    op.create_index(
        "ix_hierarchy_levels_company_level", "hierarchy_levels", ["company_id", "level_number"]
    )
    op.create_index(
        "ix_hierarchy_levels_team_level", "hierarchy_levels", ["team_id", "level_number"]
    )
    op.create_table(
        "users",
        _id(),
        _fk("company_id", "companies"),
        _fk("team_id", "teams"),
        sa.Column("email", sa.String(100), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        _fk("hierarchy_level_id", "hierarchy_levels"),
        sa.Column("active", sa.Boolean, server_default=sa.text("true")),
        _fk("manager_id", "users", nullable=True),
        sa.Column("role", sa.String(20), nullable=False, server_default=sa.text("'employee'")),
        sa.UniqueConstraint("company_id", "email", name="users_company_id_email_key"),
    )
    op.create_index("ix_users_company_team", "users", ["company_id", "team_id"])
    op.create_index("ix_users_hierarchy_level", "users", ["hierarchy_level_id"])
    op.create_index("ix_users_team_hierarchy", "users", ["team_id", "hierarchy_level_id"])
    op.create_table(
        "policies",
        _id(),
        _fk("company_id", "companies"),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("min_amount", money, nullable=False, server_default=sa.text(no_money)),
        sa.Column("max_amount", money, nullable=False, server_default=sa.text(unbounded)),
        sa.Column("created_at", sa.DateTime(timezone=False), server_default=now),
        sa.Column("active", sa.Boolean, server_default=sa.text("true")),
        sa.UniqueConstraint(
            "company_id",
            "category",
            "min_amount",
            name="policies_company_id_category_min_amount_key",
        ),
        sa.CheckConstraint("min_amount <= max_amount", name="policies_check"),
    )
    op.create_index("ix_policies_company_category", "policies", ["company_id", "category"])
    op.create_index(
        "ix_policies_amount_range", "policies", ["company_id", "min_amount", "max_amount"]
    )
    op.create_table(
        "approval_steps",
        _id(),
        _fk("policy_id", "policies"),
        sa.Column("step_order", sa.Integer, nullable=False),
        sa.Column("required_level", sa.Integer, nullable=False),
        sa.Column(
            "team_scope", sa.String(20), nullable=False, server_default=sa.text("'submitter'")
        ),
        sa.Column("is_required", sa.Boolean, server_default=sa.text("true")),
        sa.Column("description", sa.String(255)),
        _fk("company_id", "companies"),
        sa.UniqueConstraint(
            "policy_id", "step_order", name="approval_steps_policy_id_step_order_key"
        ),
        sa.CheckConstraint("step_order > 0", name="approval_steps_step_order_check"),
        sa.CheckConstraint(
            "required_level BETWEEN 1 AND 10", name="approval_steps_required_level_check"
        ),
    )
    op.create_index("ix_approval_steps_policy_order", "approval_steps", ["policy_id", "step_order"])
    op.create_index(
        "ix_approval_steps_level_scope", "approval_steps", ["required_level", "team_scope"]
    )
    op.create_table(
        "expenses",
        _id(),
        _fk("company_id", "companies"),
        _fk("user_id", "users"),
        _fk("policy_id", "policies"),
        sa.Column("amount", money, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(20), server_default=sa.text("'pending'")),
        sa.Column("submitted_at", sa.DateTime(timezone=False), server_default=now),
        sa.Column("completed_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index(
        "ix_expenses_company_user_submitted",
        "expenses",
        ["company_id", "user_id", "submitted_at"],
    )
    op.create_index("ix_expenses_company_status", "expenses", ["company_id", "status"])
    op.create_table(
        "approvals",
        _id(),
        _fk("expense_id", "expenses"),
        sa.Column("step_number", sa.Integer, nullable=False),
        _fk("approver_id", "users"),
        _fk("approver_level_id", "hierarchy_levels"),
        sa.Column("required", sa.Boolean, server_default=sa.text("true")),
        sa.Column("status", sa.String(20), server_default=sa.text("'pending'")),
        sa.Column("approved_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("comments", sa.Text),
        _fk("company_id", "companies"),
        sa.UniqueConstraint(
            "expense_id",
            "step_number",
            "approver_id",
            name="approvals_expense_id_step_number_approver_id_key",
        ),
    )
    op.create_index("ix_approvals_approver_status", "approvals", ["approver_id", "status"])
    op.create_index("ix_approvals_expense_step", "approvals", ["expense_id", "step_number"])
    op.create_table(
        "expense_events",
        _id(),
        _fk("company_id", "companies"),
        _fk("expense_id", "expenses"),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=False), nullable=False),
        _fk("actor_id", "users", nullable=True),
        sa.Column("step_number", sa.Integer, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        _fk("approver_id", "users", nullable=True),
        _fk("previous_approver_id", "users", nullable=True),
    )
    op.create_index(
        "ix_expense_events_company_expense",
        "expense_events",
        ["company_id", "expense_id", "id"],
    )
    op.create_table(
        "idempotency_keys",
        _fk("user_id", "users"),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        _fk("expense_id", "expenses"),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False, server_default=now),
        sa.PrimaryKeyConstraint("user_id", "key", name="idempotency_keys_pkey"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(32), nullable=False),
        _fk("user_id", "users"),
        _fk("company_id", "companies"),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False, server_default=now),
        sa.PrimaryKeyConstraint("token_id", name="api_tokens_pkey"),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
