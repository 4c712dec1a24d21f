"""docs/security.md runs as written against a real server in token mode, with
`expense-tracker` on the server's own database, and does what its comments say."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.conftest import StartServer, cli_command
from tests.e2e.test_docs import ROOT, run_walkthrough

pytestmark = pytest.mark.e2e

DOC = ROOT / "docs" / "security.md"
TOKEN = re.compile(r"et_([0-9a-f]{16})_[A-Za-z0-9_-]+")


def test_the_token_walkthrough_does_what_its_comments_say(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(AUTH_MODE="token")
    # As a reader in the repository's virtualenv, with a home of their own for the tokens.
    scripts = str(Path(cli_command()[0]).parent)
    env = {
        **os.environ,
        "DATABASE_URL": server.env["DATABASE_URL"],
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOG_LEVEL": "WARNING",
        "HOME": str(tmp_path),
    }
    ran = run_walkthrough(DOC, server.base_url, env)
    outputs = [out for _, out in ran]
    assert len(outputs) == 11
    kept = tmp_path / ".expense-tracker"
    alice, grace = ((kept / name).read_text().strip() for name in ("alice", "grace"))
    alice_id, grace_id = (_id(token) for token in (alice, grace))
    assert oct((kept / "grace").stat().st_mode & 0o777) == "0o600"

    revoked_alice, table, deleted, issued_grace, issued_alice = (
        outputs.pop(i) for i in (8, 7, 5, 1, 0)
    )
    assert (issued_alice, issued_grace, revoked_alice) == ("", "", "")
    assert deleted.strip() == "204"
    grace_list, for_alice, company, refused, alice_refused, unknown = [
        json.loads(out) for out in outputs
    ]

    [listed] = grace_list["items"]
    assert (listed["id"], listed["user_id"], listed["name"]) == (grace_id, 7, "laptop")
    assert _at(listed["expires_at"]) - _at(listed["created_at"]) == timedelta(days=30)
    assert listed["last_used_at"] is not None
    assert listed["revoked_at"] is None
    assert "token" not in listed
    assert for_alice["code"] == "admin_only"
    assert {(t["id"], t["user_id"]) for t in company["items"]} == {(alice_id, 1), (grace_id, 7)}
    assert refused == {"detail": "the bearer token was revoked", "code": "token_revoked"}

    header, row = table.splitlines()
    assert header.split()[:4] == ["id", "user", "name", "created"]
    cells = re.split(r"\s{2,}", row)
    assert cells[:3] == [grace_id, "7", "laptop"]
    assert cells[6] != "-"  # revoked, and when

    assert alice_refused["code"] == "token_revoked"
    assert unknown == {"detail": "the bearer token is unknown", "code": "unauthenticated"}


def _id(token: str) -> str:
    found = TOKEN.fullmatch(token)
    assert found is not None, token
    return found.group(1)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_audit_walkthrough_does_what_its_comments_say(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(AUTH_MODE="token")
    scripts = str(Path(cli_command()[0]).parent)
    env = {
        **os.environ,
        "DATABASE_URL": server.env["DATABASE_URL"],
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOG_LEVEL": "WARNING",
        "HOME": str(tmp_path),
    }
    text = DOC.read_text(encoding="utf-8")
    block = text[: text.index("## Audit log")].count("```bash")
    ran = run_walkthrough(DOC, server.base_url, env, block=block)
    outputs = [out for _, out in ran]
    assert len(outputs) == 8
    kept = tmp_path / ".expense-tracker"
    alice_id, grace_id = (_id((kept / n).read_text().strip()) for n in ("alice", "grace"))
    issued_alice, issued_grace, changed, newest, frank, exported, bad, refused = outputs
    assert (issued_alice, issued_grace) == ("", "")
    assert json.loads(changed)["user"]["role"] == "admin"

    role, grace_token, alice_token = json.loads(newest)["items"]
    assert (role["action"], role["actor_id"], role["target_id"]) == ("user.updated", 1, "6")
    assert (role["before"]["role"], role["after"]["role"]) == ("employee", "admin")
    assert {k: v for k, v in role["before"].items() if k != "role"} == {
        k: v for k, v in role["after"].items() if k != "role"
    }
    assert [(e["action"], e["actor_id"], e["target_id"]) for e in (grace_token, alice_token)] == [
        ("token.issued", None, grace_id),
        ("token.issued", None, alice_id),
    ]

    history = json.loads(frank)["items"]
    assert [(e["action"], e["actor_id"]) for e in history] == [
        ("user.updated", 1),
        ("user.created", None),
    ]
    assert history[1]["before"] is None

    header, *rows = exported.splitlines()
    assert header == "id,at,company_id,actor_id,action,target_type,target_id,before,after"
    assert len(rows) == 2
    assert [row.split(",")[4:7] for row in rows] == [
        ["token.issued", "token", grace_id],
        ["token.issued", "token", alice_id],
    ]

    problem = json.loads(bad)
    assert problem["code"] == "invalid_input"
    assert "yesterday" in problem["detail"]
    assert json.loads(refused)["code"] == "admin_only"
