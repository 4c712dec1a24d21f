"""Two lookups on users that every request of a kind makes: a manager's reports (visibility
walks the reporting chain down from the reader) and a user by e-mail regardless of case (the
user an OpenID Connect token names).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_company_manager", "users", ["company_id", "manager_id"])
    if op.get_bind().dialect.name == "postgresql":
        # SQLite's reflection does not read an index on an expression: it goes without.
        op.create_index(
            "ix_users_company_email_lower", "users", ["company_id", sa.text("lower(email)")]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_company_email_lower", table_name="users")
    op.drop_index("ix_users_company_manager", table_name="users")
