"""A delivery no longer references its company or its notice by foreign key.

The worker writes a delivery with the company and notice ids of the notice it has just read,
so the checks found nothing wrong, and they cost most of each delivery's insert: a lookup of
the notice and a shared lock on the company's row, the row every request of the company locks
the same way. The outbox itself has no foreign keys for the same reason. The subscription's and
the people's references stay (a subscription's removal takes its deliveries with it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# PostgreSQL named 0007's unnamed keys; on SQLite batch mode names them by this convention.
REFERENCES = (("company_id", "companies"), ("outbox_id", "outbox"))
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("deliveries", naming_convention=SQLITE_NAMES) as table:
            for column, _ in REFERENCES:
                table.drop_constraint(f"fk_deliveries_{column}", type_="foreignkey")
        return
    for column, _ in REFERENCES:
        op.drop_constraint(f"deliveries_{column}_fkey", "deliveries", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("deliveries", naming_convention=SQLITE_NAMES) as table:
            for column, referred in REFERENCES:
                table.create_foreign_key(f"fk_deliveries_{column}", referred, [column], ["id"])
        return
    for column, referred in REFERENCES:
        op.create_foreign_key(f"deliveries_{column}_fkey", "deliveries", referred, [column], ["id"])
