"""docs/delegation.md runs as written against the real server, and does what its comments say."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.test_docs import ROOT, run_walkthrough

pytestmark = pytest.mark.e2e

FRANK, EVE = 6, 5


def test_the_delegation_walkthrough_does_what_its_comments_say(start_server: StartServer) -> None:
    server = start_server()
    ran = run_walkthrough(ROOT / "docs" / "delegation.md", server.base_url)
    outputs = [out for _, out in ran]
    assert len(outputs) == 12
    cleared = outputs.pop(10)  # the DELETE prints its status code alone
    (
        submitted,
        delegation,
        shown,
        inbox,
        approved,
        status,
        history,
        second,
        refused,
        cycle,
        after,
    ) = [json.loads(out) for out in outputs]

    assert submitted["expense_id"] == 1
    assert [a["approver_id"] for a in submitted["approvals_required"]] == [FRANK]
    assert (delegation["user_id"], delegation["delegate_id"], delegation["note"]) == (
        FRANK,
        EVE,
        "holiday",
    )
    assert delegation["active"] is True
    assert shown == delegation
    assert [(i["expense_id"], i["on_behalf_of"]) for i in inbox["items"]] == [(1, FRANK)]
    assert (approved["expense_status"], approved["on_behalf_of"]) == ("approved", FRANK)
    assert status["status"] == "approved"
    assert [(a["approver_name"], a["status"]) for a in status["approvals"]] == [
        ("Frank Miller", "approved")
    ]
    decided = [_pick(e) for e in history["events"] if e["kind"] == "approved"]
    assert decided == [("approved", EVE, FRANK)]
    assert second["expense_id"] == 2
    assert refused["code"] == "delegate_not_eligible"
    assert cycle["code"] == "delegation_cycle"
    assert cleared.strip() == "204"
    assert after["code"] == "step_not_reached"


def _pick(event: dict[str, Any]) -> tuple[str, int, int | None]:
    return event["kind"], event["actor_id"], event["on_behalf_of"]
