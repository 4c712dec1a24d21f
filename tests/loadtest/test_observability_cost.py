"""The observability cost runner measures every variant on the in-memory adapter."""

from __future__ import annotations

import json
import subprocess
import sys


def test_it_prints_what_each_variant_costs_a_request() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.observability_cost", "--rounds", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])

    assert figures["requests_per_app"] == 200
    assert set(figures["cpu_ms_per_request"]) == {"both", "neither", "metrics", "access_lines"}
    assert all(ms > 0 for ms in figures["cpu_ms_per_request"].values())
    assert set(figures["added_us_per_request"]) == {"both", "metrics", "access_lines"}
