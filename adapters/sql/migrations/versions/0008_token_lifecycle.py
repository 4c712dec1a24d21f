"""The tokens' lifecycle: an expiry, the last use, revocation, and a label.

`api_tokens` gains `expires_at` (required), `last_used_at`, `revoked_at` and `name`, and an
index by company and user for the lists. Tokens issued before get the default lifetime from
their issue: `expires_at` = `created_at` + 90 days, written here (a token older than that
stops working once this runs). SQLite adds the columns in place, then rebuilds the table
(Alembic's batch mode) to make `expires_at` NOT NULL once it is filled in.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INDEX = "ix_api_tokens_company_user"


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("name", sa.String(100), nullable=True))
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=False)))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=False)))
    op.add_column("api_tokens", sa.Column("revoked_at", sa.DateTime(timezone=False)))
    # 90 days: the default lifetime of a token (`expense_core.tokens.DEFAULT_TTL`) when written.
    if op.get_bind().dialect.name == "sqlite":
        # SQLite keeps timestamps as text: the date moves, the fraction of a second is kept.
        op.execute(
            "UPDATE api_tokens SET expires_at = "
            "strftime('%Y-%m-%d %H:%M:%S', created_at, '+90 days') || substr(created_at, 20)"
        )
    else:
        op.execute("UPDATE api_tokens SET expires_at = created_at + INTERVAL '90 days'")
    with op.batch_alter_table("api_tokens") as tokens:
        tokens.alter_column("expires_at", existing_type=sa.DateTime(timezone=False), nullable=False)
    op.create_index(INDEX, "api_tokens", ["company_id", "user_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as tokens:
        tokens.drop_column("revoked_at")
        tokens.drop_column("last_used_at")
        tokens.drop_column("expires_at")
        tokens.drop_column("name")
