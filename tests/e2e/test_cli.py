"""`expense-tracker` as operators meet it: help, exit codes, and clear errors without tracebacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import environment, run_cli

pytestmark = pytest.mark.e2e

UNREACHABLE = "postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing"
TOKEN = re.compile(r"^et_[0-9a-f]{16}_[A-Za-z0-9_-]+$")


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("serve", "--help"),
        ("db", "upgrade", "--help"),
        ("seed", "demo", "--help"),
        ("token", "issue", "--help"),
    ],
)
def test_help_is_available_for_every_command(args: tuple[str, ...]) -> None:
    done = run_cli(*args, env=environment())

    assert done.returncode == 0
    assert "usage: expense-tracker" in done.stdout


@pytest.mark.parametrize(
    "args", [(), ("launch",), ("db",), ("token", "issue"), ("token", "issue", "--user-id", "x")]
)
def test_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    done = run_cli(*args, env=environment())

    assert done.returncode == 2
    assert "usage:" in done.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "http"), ("PORT", "70000"), ("WORKERS", "0"), ("AUTH_MODE", "open")],
)
def test_bad_settings_exit_2_naming_the_variable(name: str, value: str) -> None:
    done = run_cli("db", "upgrade", env=environment(**{name: value}))

    assert done.returncode == 2
    assert name in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args", [("db", "upgrade"), ("seed", "demo"), ("token", "issue", "--user-id", "7"), ("serve",)]
)
def test_an_unreachable_database_is_a_clear_error(args: tuple[str, ...]) -> None:
    done = run_cli(*args, env=environment(DATABASE_URL=UNREACHABLE, PORT="1"))

    assert done.returncode == 1
    assert "error:" in done.stderr
    assert "unavailable" in done.stderr.lower()
    assert "Traceback" not in done.stderr
    assert "secret" not in done.stderr


def test_an_unsupported_database_is_a_settings_error() -> None:
    done = run_cli("db", "upgrade", env=environment(DATABASE_URL="mysql://db/expenses"))

    assert done.returncode == 2
    assert "DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_seed_demo_is_idempotent_and_keeps_the_seeds_ids(sqlite_url: str) -> None:
    env = environment(DATABASE_URL=sqlite_url)

    first = run_cli("seed", "demo", env=env)
    second = run_cli("seed", "demo", env=env)

    assert first.returncode == second.returncode == 0
    assert first.stderr == second.stderr
    for user_id, name in ((1, "Alice Chen"), (6, "Frank Miller"), (7, "Grace Taylor")):
        assert re.search(rf"\b{user_id}\b.*{name}", first.stderr)
    assert "policy 1: Small Equipment" in first.stderr
    assert "policy 2: Large Equipment" in first.stderr
    assert "policy 3: Business Travel" in first.stderr


def test_db_upgrade_creates_the_default_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    done = run_cli("db", "upgrade", env=environment(DATABASE_URL=url))
    again = run_cli("db", "upgrade", env=environment(DATABASE_URL=url))

    assert done.returncode == again.returncode == 0
    assert (tmp_path / "fresh.db").exists()


def test_token_issue_prints_the_token_alone_on_the_last_line(sqlite_url: str) -> None:
    env = environment(DATABASE_URL=sqlite_url)
    run_cli("seed", "demo", env=env)

    done = run_cli("token", "issue", "--user-id", "7", env=env)
    other = run_cli("token", "issue", "--user-id", "7", env=env)

    assert done.returncode == 0
    token = done.stdout.splitlines()[-1]
    assert TOKEN.fullmatch(token)
    assert token != other.stdout.splitlines()[-1]


def test_token_issue_for_an_unknown_user_fails(sqlite_url: str) -> None:
    done = run_cli("token", "issue", "--user-id", "99", env=environment(DATABASE_URL=sqlite_url))

    assert done.returncode == 1
    assert "user 99 does not exist" in done.stderr
    assert done.stdout == ""


def test_memory_cannot_be_served_by_several_workers() -> None:
    done = run_cli("serve", "--workers", "2", env=environment(DATABASE_URL="memory://"))

    assert done.returncode == 2
    assert "1 worker" in done.stderr
