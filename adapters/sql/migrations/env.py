"""Alembic's entry point: migrate on the connection `adapters.sql.database` hands over.

There is no alembic.ini: `SqlDatabase.upgrade()` builds the configuration, opens the
transaction (and takes the lock that keeps two migrating processes apart) and commits.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through adapters.sql.upgrade(), which supplies a connection")
context.configure(connection=connection, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
