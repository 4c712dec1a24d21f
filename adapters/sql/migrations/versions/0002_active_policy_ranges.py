"""One active policy per company, category and min_amount, instead of one policy ever.

The seed's UNIQUE (company_id, category, min_amount) on policies would keep a successor policy
from taking over its deactivated predecessor's range. It becomes a partial unique index on the
active policies (`active IS NOT false`, as the seed's nullable flag reads), on PostgreSQL and on
SQLite. SQLite cannot drop a table constraint: the table is rebuilt, its rows copied aside and
back, with foreign keys checked at commit (the rows come back with their ids).

Revision ID: 0002
Revises: 0001
Create Date: 2025-09-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_CONSTRAINT = "policies_company_id_category_min_amount_key"
NEW_INDEX = "uq_policies_active_company_category_min_amount"
ACTIVE = "active IS NOT false"
KEY = ["company_id", "category", "min_amount"]


def _create_unique_index() -> None:
    op.create_index(
        NEW_INDEX,
        "policies",
        KEY,
        unique=True,
        postgresql_where=sa.text(ACTIVE),
        sqlite_where=sa.text(ACTIVE),
    )


def _rebuild_sqlite_policies(*, seed_unique: bool) -> None:
    """Rebuild `policies` on SQLite, with or without the seed's table-level UNIQUE."""
    money: sa.types.TypeEngine[Any] = sa.Integer()
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TABLE _policies_copy AS SELECT * FROM policies")
    op.drop_table("policies")
    constraints: list[Any] = [sa.CheckConstraint("min_amount <= max_amount", name="policies_check")]
    if seed_unique:
        constraints.append(sa.UniqueConstraint(*KEY, name=OLD_CONSTRAINT))
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("category", sa.String(50), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("min_amount", money, nullable=False, server_default=sa.text("0")),
        sa.Column("max_amount", money, nullable=False, server_default=sa.text("99999999999")),
        sa.Column(
            "created_at", sa.DateTime(timezone=False), server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.Column("active", sa.Boolean, server_default=sa.text("true")),
        *constraints,
    )
    # Inserting the parents back settles the foreign keys the drop left dangling.
    op.execute("INSERT INTO policies SELECT * FROM _policies_copy")
    op.execute("DROP TABLE _policies_copy")
    op.create_index("ix_policies_company_category", "policies", ["company_id", "category"])
    op.create_index(
        "ix_policies_amount_range", "policies", ["company_id", "min_amount", "max_amount"]
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_policies(seed_unique=False)
    else:
        op.drop_constraint(OLD_CONSTRAINT, "policies", type_="unique")
    _create_unique_index()


def downgrade() -> None:
    op.drop_index(NEW_INDEX, table_name="policies")
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_policies(seed_unique=True)
    else:
        op.create_unique_constraint(OLD_CONSTRAINT, "policies", KEY)
