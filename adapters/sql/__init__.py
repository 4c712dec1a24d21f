"""The SQL adapter: every port on PostgreSQL (psycopg 3) or an embedded SQLite file.

SQLAlchemy Core only; the schema is created and upgraded by the Alembic migrations shipped in
`adapters/sql/migrations`.
"""

from adapters.sql.database import DEFAULT_URL, SqlDatabase, upgrade
from adapters.sql.uow import SqlUnitOfWork

__all__ = ["DEFAULT_URL", "SqlDatabase", "SqlUnitOfWork", "upgrade"]
