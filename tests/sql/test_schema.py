"""The migrated schema keeps the seed's, table for table and column for column, plus additions.

The seed's DDL (from its README) is loaded into one fresh database, the migrations run on
another, and the two catalogs are compared: every seed column (type, length, precision,
nullability, default), constraint and index must exist identically in the migrated one.
"""
# The seed's DDL is kept verbatim, long comment line included.
# ruff: noqa: E501

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from adapters.sql import upgrade
from adapters.sql.database import alembic_config
from adapters.sql.tables import POSTGRESQL_ONLY_INDEXES, metadata
from tests.pg import PgServer
from tests.sql.support import opened

SEED_DDL = """
-- Companies table
CREATE TABLE companies (
    id SERIAL PRIMARY KEY,
    name VARCHAR(100) NOT NULL
);

-- Teams table
CREATE TABLE teams (
    id SERIAL PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    name VARCHAR(100) NOT NULL,
    is_company_wide BOOLEAN DEFAULT false,
    UNIQUE (company_id, name)
);
CREATE INDEX ix_teams_company_id ON teams(company_id);

-- Hierarchy levels table
CREATE TABLE hierarchy_levels (
    id SERIAL PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    team_id INTEGER NOT NULL REFERENCES teams(id),
    level_number INTEGER NOT NULL,
    level_name VARCHAR(100) NOT NULL,
    UNIQUE (company_id, team_id, level_number)
);
CREATE INDEX ix_hierarchy_levels_company_level ON hierarchy_levels(company_id, level_number);
CREATE INDEX ix_hierarchy_levels_team_level ON hierarchy_levels(team_id, level_number);

-- Users table
CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    team_id INTEGER NOT NULL REFERENCES teams(id),
    email VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL,
    hierarchy_level_id INTEGER NOT NULL REFERENCES hierarchy_levels(id),
    active BOOLEAN DEFAULT true,
    UNIQUE (company_id, email)
);
CREATE INDEX ix_users_company_team ON users(company_id, team_id);
CREATE INDEX ix_users_hierarchy_level ON users(hierarchy_level_id);
CREATE INDEX ix_users_team_hierarchy ON users(team_id, hierarchy_level_id);

-- Policies table
CREATE TABLE policies (
    id SERIAL PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    category VARCHAR(50) NOT NULL,
    name VARCHAR(100) NOT NULL,
    description TEXT,
    min_amount DECIMAL(12,2) NOT NULL DEFAULT 0.00,
    max_amount DECIMAL(12,2) NOT NULL DEFAULT 999999999.99,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    active BOOLEAN DEFAULT true,
    UNIQUE (company_id, category, min_amount),
    CHECK (min_amount <= max_amount)
);
CREATE INDEX ix_policies_company_category ON policies(company_id, category);
CREATE INDEX ix_policies_amount_range ON policies(company_id, min_amount, max_amount);

-- Approval steps table
-- With this, the approval step can incorporate dynamic operations like escalation, escalation time out and so on
CREATE TABLE approval_steps (
    id SERIAL PRIMARY KEY,
    policy_id INTEGER NOT NULL REFERENCES policies(id),
    step_order INTEGER NOT NULL,
    required_level INTEGER NOT NULL,
    team_scope VARCHAR(20) NOT NULL DEFAULT 'submitter',
    is_required BOOLEAN DEFAULT true,
    description VARCHAR(255),
    UNIQUE (policy_id, step_order),
    CHECK (step_order > 0),
    CHECK (required_level BETWEEN 1 AND 10)
);
CREATE INDEX ix_approval_steps_policy_order ON approval_steps(policy_id, step_order);
CREATE INDEX ix_approval_steps_level_scope ON approval_steps(required_level, team_scope);

-- Expenses table
CREATE TABLE expenses (
    id SERIAL PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    policy_id INTEGER NOT NULL REFERENCES policies(id),
    amount DECIMAL(12,2) NOT NULL,
    description TEXT,
    status VARCHAR(20) DEFAULT 'pending',
    submitted_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    completed_at TIMESTAMP NULL
);
CREATE INDEX ix_expenses_company_user_submitted ON expenses(company_id, user_id, submitted_at);
CREATE INDEX ix_expenses_company_status ON expenses(company_id, status);

-- Approvals table
CREATE TABLE approvals (
    id SERIAL PRIMARY KEY,
    expense_id INTEGER NOT NULL REFERENCES expenses(id),
    step_number INTEGER NOT NULL,
    approver_id INTEGER NOT NULL REFERENCES users(id),
    approver_level_id INTEGER NOT NULL REFERENCES hierarchy_levels(id),
    required BOOLEAN DEFAULT true,
    status VARCHAR(20) DEFAULT 'pending',
    approved_at TIMESTAMP NULL,
    comments TEXT,
    UNIQUE (expense_id, step_number, approver_id)
);
CREATE INDEX ix_approvals_approver_status ON approvals(approver_id, status);
CREATE INDEX ix_approvals_expense_step ON approvals(expense_id, step_number);
"""

COLUMNS = """
    SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision,
           numeric_scale, is_nullable, column_default
    FROM information_schema.columns WHERE table_schema = 'public'
"""
CONSTRAINTS = """
    SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
"""
INDEXES = "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
SEQUENCES = """
    SELECT sequence_name, data_type, start_value, increment
    FROM information_schema.sequences WHERE sequence_schema = 'public'
"""


# The one deliberate deviation (migration 0002): the seed's UNIQUE (company_id, category,
# min_amount) on policies would keep a successor policy from taking over its deactivated
# predecessor's range; a partial unique index on active policies replaces it.
SEED_UNIQUE_POLICY_KEY = "policies_company_id_category_min_amount_key"
DEVIATIONS: dict[str, set[tuple[Any, ...]]] = {
    "columns": set(),
    "constraints": {
        ("policies", SEED_UNIQUE_POLICY_KEY, "u", "UNIQUE (company_id, category, min_amount)")
    },
    "indexes": {
        (
            "policies",
            SEED_UNIQUE_POLICY_KEY,
            f"CREATE UNIQUE INDEX {SEED_UNIQUE_POLICY_KEY} ON public.policies "
            "USING btree (company_id, category, min_amount)",
        )
    },
    "sequences": set(),
}


def _catalog(url: str) -> dict[str, set[tuple[Any, ...]]]:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        return {
            name: set(conn.execute(query).fetchall())
            for name, query in (
                ("columns", COLUMNS),
                ("constraints", CONSTRAINTS),
                ("indexes", INDEXES),
                ("sequences", SEQUENCES),
            )
        }


@pytest.mark.postgres
def test_the_migrated_schema_holds_the_seed_schema_exactly(postgres_server: PgServer) -> None:
    by_seed, by_migrations = postgres_server.create_database(), postgres_server.create_database()
    with postgres_server.connect(by_seed) as conn:
        conn.execute(SEED_DDL.encode())
    upgrade(postgres_server.url(by_migrations))
    seed = _catalog(postgres_server.url(by_seed))
    migrated = _catalog(postgres_server.url(by_migrations))
    assert len(seed["columns"]) == 52
    assert len(seed["indexes"]) == 28  # 8 primary keys, 6 unique constraints, 14 named
    for part in ("columns", "constraints", "indexes", "sequences"):
        assert seed[part] - migrated[part] - DEVIATIONS[part] == set(), part
        assert DEVIATIONS[part] <= seed[part], part  # each deviation still names a seed item
        assert migrated[part] & DEVIATIONS[part] == set(), part
    # What replaces it: the same key, binding active policies only.
    assert (
        "policies",
        "uq_policies_active_company_category_min_amount",
        "CREATE UNIQUE INDEX uq_policies_active_company_category_min_amount ON public.policies "
        "USING btree (company_id, category, min_amount) WHERE (active IS NOT FALSE)",
    ) in migrated["indexes"]


@pytest.mark.postgres
def test_the_additions_are_there(postgres_url: str) -> None:
    catalog = _catalog(postgres_url)
    columns = {(row[0], row[1]): (row[2], row[6], row[7]) for row in catalog["columns"]}
    assert columns["users", "manager_id"] == ("integer", "YES", None)
    assert columns["users", "role"] == ("character varying", "NO", "'employee'::character varying")
    assert columns["approvals", "company_id"] == ("integer", "NO", None)
    assert columns["approval_steps", "company_id"] == ("integer", "NO", None)
    events = {c for t, c in columns if t == "expense_events"}
    assert events == {
        "id",
        "company_id",
        "expense_id",
        "kind",
        "at",
        "actor_id",
        "step_number",
        "comment",
        "approver_id",
        "previous_approver_id",
        "on_behalf_of",
    }
    assert {c for t, c in columns if t == "delegations"} == {
        "company_id",
        "user_id",
        "delegate_id",
        "starts_at",
        "ends_at",
        "note",
    }
    assert {c for t, c in columns if t == "idempotency_keys"} == {
        "user_id",
        "key",
        "fingerprint",
        "expense_id",
        "created_at",
        "decision",
    }
    assert columns["idempotency_keys", "decision"] == ("text", "YES", None)
    assert {c for t, c in columns if t == "api_tokens"} == {
        "token_id",
        "user_id",
        "company_id",
        "secret_hash",
        "created_at",
        "name",
        "expires_at",
        "last_used_at",
        "revoked_at",
    }
    assert columns["api_tokens", "expires_at"][1] == "NO"
    definitions = {(t, d) for t, _, _, d in catalog["constraints"]}
    assert ("idempotency_keys", "PRIMARY KEY (user_id, key)") in definitions
    assert ("api_tokens", "PRIMARY KEY (token_id)") in definitions
    assert ("users", "FOREIGN KEY (manager_id) REFERENCES users(id)") in definitions
    assert ("delegations", "PRIMARY KEY (company_id, user_id)") in definitions
    assert ("delegations", "CHECK ((ends_at > starts_at))") in definitions
    assert ("expense_events", "FOREIGN KEY (on_behalf_of) REFERENCES users(id)") in definitions
    assert (
        "expense_events",
        "ix_expense_events_company_expense",
        "CREATE INDEX ix_expense_events_company_expense ON public.expense_events "
        "USING btree (company_id, expense_id, id)",
    ) in catalog["indexes"]
    assert (
        "users",
        "ix_users_company_manager",
        "CREATE INDEX ix_users_company_manager ON public.users USING btree (company_id, manager_id)",
    ) in catalog["indexes"]
    assert (
        "users",
        "ix_users_company_email_lower",
        "CREATE INDEX ix_users_company_email_lower ON public.users "
        "USING btree (company_id, lower((email)::text))",
    ) in catalog["indexes"]


def _drift(url: str) -> list[Any]:
    with opened(url) as db, db.engine.connect() as conn, warnings.catch_warnings():
        if db.is_sqlite:
            # Alembic says it cannot compare them on SQLite, where they are not made anyway.
            for name in POSTGRESQL_ONLY_INDEXES:
                warnings.filterwarnings("ignore", f".*expression-based index '{name}'")
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def test_the_tables_module_matches_the_migrations(database_url: str) -> None:
    assert _drift(database_url) == []


def test_sqlite_migrations_go_down_and_up_again(sqlite_url: str) -> None:
    with opened(sqlite_url) as db:
        db.upgrade()  # already at head: nothing to do
        with db.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            command.downgrade(alembic_config(conn), "base")
            conn.commit()
            tables = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
            assert {name for (name,) in tables} == {"alembic_version"}
        db.upgrade()
        assert _drift(sqlite_url) == []


def test_the_migrations_ship_inside_the_package() -> None:
    from adapters.sql import database

    shipped = Path(database.__file__).parent / "migrations"
    assert (shipped / "env.py").is_file()
    assert (shipped / "versions" / "__init__.py").is_file()
    assert (shipped / "script.py.mako").is_file()
