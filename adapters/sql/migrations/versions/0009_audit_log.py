"""The audit log: one row per admin change, written in the change's transaction.

A table `audit_log` (company, actor, time, action, target, and the target before and after
as JSON text), read newest first per company (`ix_audit_log_company`) and per target
(`ix_audit_log_company_target`), both by id for keyset pages.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target_type", sa.String(20), nullable=False),
        sa.Column("target_id", sa.String(32), nullable=False),
        sa.Column("before", sa.Text, nullable=True),
        sa.Column("after", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_company", "audit_log", ["company_id", "id"])
    op.create_index(
        "ix_audit_log_company_target",
        "audit_log",
        ["company_id", "target_type", "target_id", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_company_target", table_name="audit_log")
    op.drop_index("ix_audit_log_company", table_name="audit_log")
    op.drop_table("audit_log")
