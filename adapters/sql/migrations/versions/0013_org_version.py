"""The organisation's version: `org_version`, one row, one more with every write to it.

A submission through the API decides its approvers in Python on the submitter, the policy and
the approver pool it read. A worker may keep those and decide the next submission of the same
person under the same policy on them, without reading them again, if the write checks that the
organisation has not changed since: the submission is written only while `org_version` still
holds the version read with them (`adapters.sql.awaited`). One round trip where two were made.

On PostgreSQL a statement trigger on each table the pool is read from adds one to the version
before any statement that inserts, updates, deletes or truncates there. It runs in the
statement's transaction, so the new version becomes visible with the change it counts. It runs
before the statement locks any row of the organisation, so a second change of the organisation
waits for the first at its first such statement, holding none of the rows the first may still
need. SQLite gets the row without the triggers: nothing reads the version there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As `adapters.sql.tables.ORG_TABLES` is now; a migration keeps its own copy.
ORG_TABLES = ("companies", "teams", "hierarchy_levels", "users", "policies", "approval_steps")

BUMP = """
CREATE FUNCTION org_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE org_version SET version = version + 1;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "org_version",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.CheckConstraint("id = 1", name="org_version_one_row"),
    )
    op.execute("INSERT INTO org_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(BUMP)
    for table in ORG_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_org_version BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION org_version_bump()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ORG_TABLES:
            op.execute(f"DROP TRIGGER {table}_org_version ON {table}")
        op.execute("DROP FUNCTION org_version_bump()")
    op.drop_table("org_version")
