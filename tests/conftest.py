"""Shared test setup: Hypothesis profiles (`ci` runs at least 200 examples per property), and
databases: the session's throwaway PostgreSQL server and migrated SQLite files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from adapters.sql import upgrade
from tests import pg

settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


# --- databases: a throwaway PostgreSQL server and migrated SQLite files ---------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg.PgServer]:
    """The session's PostgreSQL server; in CI, not having one fails the run."""
    try:
        server = pg.server()
    except pg.PostgresUnavailable as exc:
        if _in_ci():
            pytest.fail(f"CI runs every PostgreSQL test, but no server can be had: {exc}")
        pytest.skip(
            f"!!! NO POSTGRESQL: {exc}. Set {pg.ENV_URL} or install the PostgreSQL 15 server "
            "binaries to run these tests (in CI their absence is a failure) !!!"
        )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: pg.PgServer) -> Iterator[str]:
    """A migrated database that fresh test databases are copied from."""
    name = postgres_server.create_database()
    upgrade(postgres_server.url(name))
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_server: pg.PgServer, postgres_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database of the test's own, dropped afterwards."""
    name = postgres_server.create_database(template=postgres_template)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_server: pg.PgServer, postgres_template: str) -> Iterator[str]:
    """One migrated PostgreSQL database for the session: tests on it work with fresh ids."""
    name = postgres_server.create_database(template=postgres_template)
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database of the test's own: a SQLite file, then one on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "expense_tracker.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite file of the test's own."""
    path = tmp_path / "expense_tracker.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


# --- the PostgreSQL tally: CI's log shows how many tests really ran on PostgreSQL -------------


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    ran = skipped = failed = 0
    for outcome, reports in terminalreporter.stats.items():
        for report in reports:
            # Deselected tests are listed as items, not reports: they did not run at all.
            if not isinstance(report, pytest.TestReport) or "postgres" not in report.keywords:
                continue
            if outcome == "skipped":
                skipped += 1
            elif report.when == "call":
                ran += 1
                failed += outcome == "failed"
    terminalreporter.write_line(
        f"PostgreSQL: {ran} tests ran on the throwaway server ({failed} of them failed), "
        f"{skipped} skipped"
    )
