"""A serving process tunes its cycle collector; a library user's process is left alone."""

from __future__ import annotations

import os
import subprocess
import sys

from entrypoints.heap import GC_THRESHOLD

REPORT = "import gc; print(gc.get_freeze_count(), gc.get_threshold()[0])"


def _run(code: str) -> tuple[int, int]:
    env = {**os.environ, "DATABASE_URL": "memory://", "METRICS": "0"}
    out = subprocess.run(  # noqa: S603 -- our own command
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_a_worker_process_freezes_what_it_built_and_collects_young_objects_less_often() -> None:
    frozen, threshold = _run("from entrypoints.http.app import app_from_env; app_from_env()")
    assert frozen > 10_000
    assert threshold == GC_THRESHOLD


def test_building_an_app_in_a_library_users_process_leaves_the_collector_as_it_was() -> None:
    frozen, threshold = _run(
        "from entrypoints.container import container_for\n"
        "from entrypoints.http import create_app\n"
        "from entrypoints.settings import Settings\n"
        "create_app(container_for(Settings.from_env()))"
    )
    assert (frozen, threshold) == (0, 700)
