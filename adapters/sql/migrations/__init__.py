"""Alembic migrations of the SQL schema, shipped with the package and run by `upgrade()`."""
