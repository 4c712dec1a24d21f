"""docs/bulk-and-retries.md runs as written against the real server, and does what it says."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.e2e.conftest import StartServer
from tests.e2e.test_docs import ROOT, run_walkthrough

pytestmark = pytest.mark.e2e

# "# expense 4": the id a submission is said to answer.
PROMISED_EXPENSE = re.compile(r"#\s+expense\s+(\d+)\s*$")


def answer(line: str, out: str) -> tuple[int | None, dict[str, str], Any]:
    """The status, headers and JSON body a command printed; `curl -i` prints the first two."""
    if " -i " not in line:
        return None, {}, json.loads(out)
    # Read as text, curl's CRLF line ends come as LF.
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = {}
    for header in header_lines:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, json.loads(body)


def test_the_bulk_and_retries_walkthrough_does_what_its_comments_say(
    start_server: StartServer,
) -> None:
    server = start_server()
    ran = run_walkthrough(ROOT / "docs" / "bulk-and-retries.md", server.base_url)
    answers = [answer(line, out) for line, out in ran]
    bodies = [body for _, _, body in answers]

    for (line, _), body in zip(ran, bodies, strict=True):
        promised = PROMISED_EXPENSE.search(line)
        if promised is not None:
            assert body["expense_id"] == int(promised.group(1)), line
    withdrawn, bulk = bodies[3], bodies[4]
    assert withdrawn["expense_status"] == "withdrawn"
    results = bulk["results"]
    assert [(r["expense_id"], r["status"]) for r in results] == [(1, 200), (2, 200), (3, 409)]
    assert [r["body"].get("expense_status") for r in results[:2]] == ["approved"] * 2
    assert results[2]["body"]["code"] == "expense_closed"

    first, retried, david, after_david, reused, history = answers[6:]
    status, headers, body = first
    assert (status, body["expense_status"], body["pending_approvals"]) == (200, "pending", 1)
    assert "idempotent-replayed" not in headers
    for replay in (retried, after_david):
        assert replay[0] == 200
        assert replay[1]["idempotent-replayed"] == "true"
        assert replay[2] == body
    assert david[2]["expense_status"] == "approved"
    assert reused[2]["code"] == "idempotency_key_reused"
    kinds = [(e["kind"], e["actor_id"]) for e in history[2]["events"]]
    assert kinds == [("submitted", 6), ("approved", 5), ("approved", 4)]
