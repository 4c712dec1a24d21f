"""docs/send-back.md runs as written against the real server, and does what its comments say."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.test_docs import ROOT, run_walkthrough

pytestmark = pytest.mark.e2e


def test_the_send_back_walkthrough_does_what_its_comments_say(start_server: StartServer) -> None:
    server = start_server()
    ran = run_walkthrough(ROOT / "docs" / "send-back.md", server.base_url)
    answers: list[Any] = [json.loads(out) for _, out in ran]

    submitted, sent_back, returned, inbox, resubmitted, first, second, status, history = answers
    assert submitted["expense_id"] == 1
    assert [a["approver"] for a in submitted["approvals_required"]] == [
        "Frank Miller",
        "Eve Davis",
    ]
    assert sent_back == {
        "message": "Expense sent back to its submitter",
        "expense_id": 1,
        "step_returned": 1,
        "expense_status": "returned",
        "on_behalf_of": None,
    }
    assert [(e["id"], e["status"]) for e in returned["items"]] == [(1, "returned")]
    assert inbox["items"] == []
    assert (resubmitted["expense_id"], resubmitted["status"], resubmitted["amount"]) == (
        1,
        "pending",
        1620.0,
    )
    assert [a["approver"] for a in resubmitted["approvals_required"]] == [
        "Frank Miller",
        "Eve Davis",
    ]
    assert (first["step_approved"], first["expense_status"]) == (1, "pending")
    assert (second["step_approved"], second["expense_status"]) == (2, "approved")
    assert (status["status"], status["amount"]) == ("approved", 1620.0)
    assert status["description"] == "Berlin conference: flight and 3 nights"
    assert [(a["approver_name"], a["status"]) for a in status["approvals"]] == [
        ("Frank Miller", "approved"),
        ("Eve Davis", "approved"),
    ]
    events = history["events"]
    assert [e["kind"] for e in events] == [
        "submitted",
        "returned",
        "skipped",
        "resubmitted",
        "approved",
        "approved",
    ]
    assert events[1]["comment"] == "The conference is 3 nights: please claim 3 nights of hotel"
    assert events[3]["comment"] == "amount 1850.00 -> 1620.00; description changed"
