"""Notifications: the outbox, webhook subscriptions and deliveries.

`outbox` holds each notice written with the change it reports (a copy of its event beside
it), fanned out by the worker into `deliveries`, one per subscription in `webhooks` (or per
person e-mailed). Partial indexes keep the worker's reads to what is still waiting.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WAITING = sa.text("status IN ('pending', 'retrying')")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("company_id", sa.Integer, nullable=False),
        sa.Column("expense_id", sa.Integer, nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("recipient_id", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("actor_id", sa.Integer, nullable=True),
        sa.Column("step_number", sa.Integer, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("approver_id", sa.Integer, nullable=True),
        sa.Column("previous_approver_id", sa.Integer, nullable=True),
        sa.Column("on_behalf_of", sa.Integer, nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index(
        "ix_outbox_undispatched",
        "outbox",
        ["id"],
        postgresql_where=sa.text("dispatched_at IS NULL"),
        sqlite_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_undispatched_expense",
        "outbox",
        ["expense_id", "id"],
        postgresql_where=sa.text("dispatched_at IS NULL"),
        sqlite_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("topics", sa.Text, nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
    )
    op.create_index("ix_webhooks_company", "webhooks", ["company_id", "id"])
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("outbox_id", BigId, sa.ForeignKey("outbox.id"), nullable=False),
        sa.Column("expense_id", sa.Integer, nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("target", sa.String(40), nullable=False),
        sa.Column(
            "webhook_id",
            sa.Integer,
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column("recipient_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("on_behalf_of", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=False), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=False), nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=False), nullable=True),
    )
    op.create_index("ix_deliveries_webhook", "deliveries", ["webhook_id", "id"])
    op.create_index(
        "ix_deliveries_queue",
        "deliveries",
        ["outbox_id", "id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    op.create_index(
        "ix_deliveries_unsettled",
        "deliveries",
        ["expense_id", "target", "outbox_id"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("webhooks")
    op.drop_table("outbox")
