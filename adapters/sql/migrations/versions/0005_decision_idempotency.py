"""Idempotent decisions: an idempotency key stored by a decision keeps the decision it made.

`idempotency_keys.decision` holds it as JSON text, to answer a retry with exactly the first
answer whatever happened to the expense since; a submission's key leaves it NULL. Submissions
and decisions share the table, so a user's key names one request, whichever it was.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("idempotency_keys", sa.Column("decision", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite rebuilds the table to drop a column; PostgreSQL drops it in place.
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("decision")
