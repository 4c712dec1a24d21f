"""Delegations: who covers for whom while away, and whom a delegate's decision was for.

A table `delegations`, one row per absent user (the key carries the tenant, ready for
distribution by company), found by delegate for the inbox; and `expense_events.on_behalf_of`,
the absent approver a delegate decided for (null when people decide their own steps). SQLite
drops the column again by rebuilding `expense_events` (Alembic's batch mode).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("delegate_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("company_id", "user_id", name="delegations_pkey"),
        sa.CheckConstraint("ends_at > starts_at", name="delegations_period_check"),
    )
    op.create_index("ix_delegations_company_delegate", "delegations", ["company_id", "delegate_id"])
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a nullable column with its reference in place, without a rebuild.
        op.execute(
            "ALTER TABLE expense_events ADD COLUMN on_behalf_of INTEGER REFERENCES users (id)"
        )
    else:
        op.add_column(
            "expense_events",
            sa.Column("on_behalf_of", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        )


def downgrade() -> None:
    with op.batch_alter_table("expense_events") as events:
        events.drop_column("on_behalf_of")
    op.drop_index("ix_delegations_company_delegate", table_name="delegations")
    op.drop_table("delegations")
