"""PostgreSQL's `org_version` (migration 0013): every statement that writes a table the approver
pool is read from moves it, in the statement's own transaction, so that a submission decided on
an organisation read earlier can tell whether it is still so (`adapters.sql.awaited`)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from adapters.sql.tables import ORG_TABLES
from tests.contract.support import tech_corp
from tests.sql.support import opened

pytestmark = pytest.mark.postgres

# One statement per table that changes nothing a test leans on but still writes.
TOUCH = {
    "companies": "UPDATE companies SET name = name",
    "teams": "UPDATE teams SET name = name",
    "hierarchy_levels": "UPDATE hierarchy_levels SET level_name = level_name",
    "users": "UPDATE users SET name = name",
    "policies": "UPDATE policies SET name = name",
    "approval_steps": "UPDATE approval_steps SET description = description",
}


@pytest.fixture
def conn(postgres_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with opened(postgres_url) as db:
        tech_corp(db.unit_of_work)
    url = postgres_url.replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


def _version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT version FROM org_version").fetchone()
    assert row is not None
    version = row[0]
    assert isinstance(version, int)
    return version


def test_every_table_of_the_organisation_has_a_statement_that_writes_it() -> None:
    assert set(TOUCH) == set(ORG_TABLES)


@pytest.mark.parametrize("table", ORG_TABLES)
def test_each_statement_writing_the_organisation_moves_its_version(
    conn: psycopg.Connection[tuple[object, ...]], table: str
) -> None:
    before = _version(conn)
    conn.execute(TOUCH[table])
    assert _version(conn) == before + 1
    conn.execute(f"DELETE FROM {table} WHERE false")  # noqa: S608 -- our own table names
    assert _version(conn) == before + 2


def test_a_truncation_moves_it_too(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    before = _version(conn)
    conn.execute("TRUNCATE approval_steps")
    assert _version(conn) == before + 1


def test_the_version_moves_with_the_change_it_counts(
    conn: psycopg.Connection[tuple[object, ...]], postgres_url: str
) -> None:
    before = _version(conn)
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as other:
        other.execute(TOUCH["users"])
        assert _version(conn) == before  # not yet committed: not yet seen
        other.rollback()
    assert _version(conn) == before
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as other:
        other.execute(TOUCH["users"])
        other.commit()
    assert _version(conn) == before + 1


def test_other_writes_leave_it_alone(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    before = _version(conn)
    conn.execute("UPDATE expenses SET description = description")
    conn.execute("DELETE FROM delegations WHERE false")
    assert _version(conn) == before
