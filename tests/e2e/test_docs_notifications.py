"""docs/notifications.md's walk-through runs as written, beside a worker and the example
receiver started as the doc says, and does what its comments say.

The commands run in a directory of the test's own, laid out like the project's root for the
doc's relative paths (`.venv/bin/...`, `docs/examples/...`), so that what they write
(subscription.json, and the receiver's received.jsonl) lands there. The receiver listens on a
free port rather than 9000, and the subscription names that port.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from tests.e2e.conftest import StartServer, cli_command, free_port
from tests.e2e.test_docs import ROOT, run_walkthrough
from tests.e2e.workers import StartWorker, worker_starter  # noqa: F401 -- the fixture

pytestmark = pytest.mark.e2e

DOC: Final = ROOT / "docs" / "notifications.md"
RECEIVER: Final = "http://127.0.0.1:9000"
LISTENING_WITHIN_S: Final = 30.0
EVERY_NOTICE: Final = ["expense.submitted", "approval.requested", "approval.decided",
                       "expense.approved"]  # fmt: skip


def as_project_root(directory: Path) -> Path:
    """`directory` with `.venv/bin/python` and `.venv/bin/expense-tracker` running this test
    run's, and `docs/` the project's."""
    scripts = directory / ".venv" / "bin"
    scripts.mkdir(parents=True)
    for name, command in (("python", [sys.executable]), ("expense-tracker", cli_command())):
        script = scripts / name
        script.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
    (directory / "docs").symlink_to(ROOT / "docs", target_is_directory=True)
    return directory


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return as_project_root(tmp_path / "expense-tracker")


@pytest.fixture
def receiver_port(root: Path, tmp_path: Path) -> Iterator[int]:
    """docs/examples/webhook_receiver.py, started as the doc says (on a free port), listening."""
    port = free_port()
    log = tmp_path / "receiver.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 -- the documented command
            [".venv/bin/python", "docs/examples/webhook_receiver.py", str(port)],
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + LISTENING_WITHIN_S
        while not _listening(port):
            if process.poll() is not None or time.monotonic() >= deadline:
                pytest.fail(f"the example receiver is not listening on {port}:\n{log.read_text()}")
            time.sleep(0.05)  # polling its port, bounded by the deadline
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def test_the_notifications_walkthrough_does_what_its_comments_say(
    start_server: StartServer, start_worker: StartWorker, root: Path, receiver_port: int
) -> None:
    # As `WEBHOOK_ALLOW_PRIVATE=1 make run`: the server and a worker beside it.
    server = start_server(WEBHOOK_ALLOW_PRIVATE="1")
    start_worker(server.env)
    # The reader's second terminal: the server's database, but none of its settings.
    env = {k: v for k, v in server.env.items() if k != "WEBHOOK_ALLOW_PRIVATE"}
    receiver = f"http://127.0.0.1:{receiver_port}"
    ran = run_walkthrough(DOC, server.base_url, env, cwd=root, addresses={RECEIVER: receiver})
    assert len(ran) == 6
    (_, subscribed), (_, submitted), (_, approved), _, (_, listed), (_, verified) = ran

    hook: dict[str, Any] = json.loads(subscribed)
    assert hook["url"] == f"{receiver}/hooks"
    assert hook["secret"].startswith("whsec_")
    assert json.loads((root / "subscription.json").read_text()) == hook
    assert json.loads(submitted)["expense_id"] == 1
    assert json.loads(approved)["expense_status"] == "approved"

    # Four deliveries, newest first, with those types.
    deliveries = json.loads(listed)["items"]
    assert hook["id"] == 1
    assert [d["event_type"] for d in deliveries] == EVERY_NOTICE[::-1]
    assert {(d["status"], d["expense_id"]) for d in deliveries} == {("delivered", 1)}

    # Each request the receiver wrote down, its signature checked: one line each, verified.
    received = (root / "received.jsonl").read_text().splitlines()
    lines = verified.splitlines()
    assert len(lines) == len(received) == 4
    assert [line.split() for line in lines] == [
        ["verified", f"msg_{d['id']}", d["event_type"], "expense", "1"] for d in deliveries[::-1]
    ]
    assert "verified msg_3 approval.decided expense 1" in lines  # the doc's example line
