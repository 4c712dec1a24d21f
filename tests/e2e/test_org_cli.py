"""`expense-tracker org import|export`: the shipped example imports, round-trips through export
into another database, and a second import changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import environment, run_cli

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).parents[2] / "examples" / "org.yaml"


def _migrated(url: str) -> dict[str, str]:
    env = environment(DATABASE_URL=url)
    assert run_cli("db", "upgrade", env=env).returncode == 0
    return env


def test_the_example_round_trips_through_export_and_import(tmp_path: Path) -> None:
    first = _migrated(f"sqlite:///{tmp_path / 'first.db'}")
    done = run_cli("org", "import", str(EXAMPLE), env=first)
    assert done.returncode == 0, done.stderr
    assert "41 user(s)" in done.stderr
    again = run_cli("org", "import", str(EXAMPLE), env=first)
    assert "created 0 team(s), 0 level(s), 0 user(s), 0 policies" in again.stderr
    exported = run_cli("org", "export", "--company-id", "1", env=first)
    assert exported.returncode == 0, exported.stderr
    assert "team_scope: team:Finance" in exported.stdout
    copy = tmp_path / "copy.yaml"
    copy.write_text(exported.stdout)

    second = _migrated(f"sqlite:///{tmp_path / 'second.db'}")
    assert run_cli("org", "import", str(copy), env=second).returncode == 0
    as_json = run_cli("org", "export", "--company-id", "1", "--json", env=second)
    (tmp_path / "copy.json").write_text(as_json.stdout)
    third = _migrated(f"sqlite:///{tmp_path / 'third.db'}")
    assert run_cli("org", "import", str(tmp_path / "copy.json"), env=third).returncode == 0
    assert run_cli("org", "export", "--company-id", "1", env=third).stdout == exported.stdout


def test_a_bad_file_is_refused_whole(tmp_path: Path) -> None:
    env = _migrated(f"sqlite:///{tmp_path / 'db.db'}")
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("team: Sales", "team: Marketing", 1))
    done = run_cli("org", "import", str(bad), env=env)
    assert done.returncode == 1
    assert "no team 'Marketing'" in done.stderr
    assert "invalid_org_file" in done.stderr
    assert "Traceback" not in done.stderr
    exported = run_cli("org", "export", "--company-id", "1", env=env)
    assert exported.returncode == 1
    assert "unknown_company" in exported.stderr
