"""`expense-tracker delegation set|show|clear` on a migrated, seeded database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import environment, run_cli

pytestmark = pytest.mark.e2e


def test_a_delegation_is_set_shown_and_cleared(tmp_path: Path) -> None:
    env = environment(DATABASE_URL=f"sqlite:///{tmp_path / 'db.db'}")
    for command in (("db", "upgrade"), ("seed", "demo")):
        assert run_cli(*command, env=env).returncode == 0
    period = ("--from", "2026-12-01T00:00:00Z", "--until", "2026-12-15T00:00:00+01:00")

    setting = ("delegation", "set", "--user-id", "6")
    done = run_cli(*setting, "--delegate-id", "5", *period, "--note", "holiday", env=env)
    shown = run_cli("delegation", "show", "--user-id", "6", env=env)
    to_self = run_cli(*setting, "--delegate-id", "6", *period, env=env)
    naive = run_cli(*setting, "--delegate-id", "5", "--from", "2026-12-01T00:00:00",
                    "--until", "2026-12-15T00:00:00Z", env=env)  # fmt: skip
    cleared = run_cli("delegation", "clear", "--user-id", "6", env=env)
    again = run_cli("delegation", "clear", "--user-id", "6", env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        "user 6: user 5 acts for them from 2026-12-01T00:00:00+00:00 until "
        "2026-12-14T23:00:00+00:00 (holiday)"
    )
    assert shown.stdout == done.stdout
    assert (to_self.returncode, "self_delegation" in to_self.stderr) == (1, True)
    assert (naive.returncode, "naive_timestamp" in naive.stderr) == (1, True)
    assert cleared.returncode == 0, cleared.stderr
    assert (again.returncode, "no_delegation" in again.stderr) == (1, True)
    assert "Traceback" not in to_self.stderr + naive.stderr + again.stderr
