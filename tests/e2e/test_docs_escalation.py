"""The fallback-and-escalation walk-through runs as written against the real server, with
`expense-tracker escalate` on the server's own database, and does what its comments say."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import StartServer, cli_command
from tests.e2e.test_docs import ROOT, run_walkthrough

pytestmark = pytest.mark.e2e

DOC = ROOT / "docs" / "fallback-and-escalation.md"


def test_the_escalation_walkthrough_does_what_its_comments_say(start_server: StartServer) -> None:
    server = start_server()
    # As a reader in the repository's virtualenv: `expense-tracker` on the PATH, and the
    # DATABASE_URL the server was started with (`make run`'s default needs none).
    scripts = str(Path(cli_command()[0]).parent)
    env = {
        **os.environ,
        "DATABASE_URL": server.env["DATABASE_URL"],
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
        "LOG_LEVEL": "WARNING",
    }
    ran = run_walkthrough(DOC, server.base_url, env)
    commands = [line.split()[0] for line, _ in ran]
    assert commands.count("expense-tracker") == 2
    answers: list[Any] = [
        out if line.startswith("expense-tracker") else json.loads(out) for line, out in ran
    ]
    (
        refused,
        named,
        company,
        submitted,
        explained,
        approved,
        still_refused,
        policy,
        training,
        preview,
        swept,
        history,
        first,
        done,
    ) = answers

    assert refused["code"] == "no_approver_for_step"
    assert named["fallback_approver_id"] == company["fallback_approver_id"] == 2
    assert submitted["expense_id"] == 1
    assert [(a["approver_id"], a["approver"]) for a in submitted["approvals_required"]] == [
        (2, "Bob Smith")
    ]
    assert explained["steps"][0]["rule"].startswith("fallback")
    assert approved["expense_status"] == "approved"
    assert still_refused["code"] == "no_approver_for_step"
    assert "step 2" in still_refused["detail"]
    assert policy["steps"][0]["escalate_after_hours"] == 24
    assert training["expense_id"] == 2
    assert [a["approver_id"] for a in training["approvals_required"]] == [6, 5]

    # The dry run changed nothing: the sweep after it still finds the step overdue.
    [would] = preview.splitlines()
    assert would.startswith("would escalate expense 2 step 1: Frank Miller -> David Wilson, ")
    [moved] = swept.splitlines()
    assert moved.startswith("expense 2 step 1: Frank Miller -> David Wilson, overdue by ")
    escalated = [e for e in history["events"] if e["kind"] == "escalated"]
    assert [
        (e["step_number"], e["previous_approver_id"], e["approver_id"], e["actor_id"])
        for e in escalated
    ] == [(1, 6, 4, None)]
    assert escalated[0]["comment"].startswith("overdue by ")
    assert (first["step_approved"], first["expense_status"]) == (1, "pending")
    assert done["expense_status"] == "approved"
