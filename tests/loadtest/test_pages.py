"""The page viewers of `make load PAGES=1` against a real server process: they sign in to the
pages, view the inbox and the expenses it lists, and nothing fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.web.browser import site

ROOT = Path(__file__).resolve().parents[2]


def test_page_viewers_sign_in_and_view_the_inbox_and_its_expenses(tmp_path: Path) -> None:
    with site(tmp_path) as server:
        for amount in ("120.00", "1500.00"):
            body = {"user_id": 7, "category": "equipment", "amount": amount, "description": "Kit"}
            httpx.post(f"{server.base_url}/api/expenses", json=body).raise_for_status()
        ran = subprocess.run(  # noqa: S603 -- our own command
            [
                *(sys.executable, "-m", "locust", "-f", "loadtest/pages.py", "--headless"),
                *("--users", "2", "--spawn-rate", "2", "--run-time", "5s"),
                *("--host", server.base_url, "--json", "--skip-log"),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    stats = {entry["name"]: entry for entry in json.loads(ran.stdout)}
    assert {name: entry["num_failures"] for name, entry in stats.items()} == dict.fromkeys(
        stats, 0
    ), ran.stderr
    assert stats["/app/sign-in"]["num_requests"] == 2
    assert stats["/app/inbox"]["num_requests"] > 0
    assert stats["/app/expenses/[id]"]["num_requests"] > 0
