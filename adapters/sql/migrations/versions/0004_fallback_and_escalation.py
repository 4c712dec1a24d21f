"""A fallback approver per company, and escalation deadlines on policy steps and approvals.

`companies.fallback_approver_id` names who takes a step nobody else is eligible for.
`approval_steps.escalate_after_hours` says how long a required step may stay current; each
approval copies it at submission, as it fixes the approver, and `approvals.escalate_at` holds
the instant its step is due: set while the step is current and may escalate, cleared once it is
decided, closed or its escalation failed. A partial index on (`escalate_at`, `expense_id`) of
those steps alone gives a sweep the due ones, most overdue first, as the start of one index
range, however many approvals the database holds. Every column is nullable: existing rows keep
routing and never escalate.

SQLite adds a foreign key to an existing table only inside the new column's definition, so
there the column is added with its reference in raw DDL.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

FALLBACK_FK = "companies_fallback_approver_id_fkey"
DUE = "escalate_at IS NOT NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a reference only inside the column's definition, never as a constraint.
        op.execute(
            "ALTER TABLE companies ADD COLUMN fallback_approver_id INTEGER REFERENCES users (id)"
        )
    else:
        op.add_column("companies", sa.Column("fallback_approver_id", sa.Integer))
        op.create_foreign_key(FALLBACK_FK, "companies", "users", ["fallback_approver_id"], ["id"])
    op.add_column("approval_steps", sa.Column("escalate_after_hours", sa.Integer, nullable=True))
    op.add_column("approvals", sa.Column("escalate_after_hours", sa.Integer, nullable=True))
    op.add_column("approvals", sa.Column("escalate_at", sa.DateTime(timezone=False), nullable=True))
    op.create_index(
        "ix_approvals_escalate_at",
        "approvals",
        ["escalate_at", "expense_id"],
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )


def downgrade() -> None:
    op.drop_index("ix_approvals_escalate_at", table_name="approvals")
    with op.batch_alter_table("approvals") as approvals:
        approvals.drop_column("escalate_at")
        approvals.drop_column("escalate_after_hours")
    with op.batch_alter_table("approval_steps") as steps:
        steps.drop_column("escalate_after_hours")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(FALLBACK_FK, "companies", type_="foreignkey")
    with op.batch_alter_table("companies") as companies:
        companies.drop_column("fallback_approver_id")
