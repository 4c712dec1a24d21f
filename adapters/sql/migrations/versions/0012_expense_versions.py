"""Every expense counts its writes: `expenses.version`.

Each write to an expense or to its approval rows adds one to it, in the same statement. A
decision on PostgreSQL reads the expense without a lock and writes it in one statement, outside
a transaction, only if the version is still the one it read (`SqlExpenses.save`): two round
trips where a locking read took four (BEGIN, the read, the write, COMMIT). Existing expenses
start at 0; adding a column with a constant default rewrites no table.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "expenses",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("expenses") as table:
        table.drop_column("version")
