"""`expense-tracker worker` as a real process beside a real server, for the e2e and fault
tests, and the API calls those tests make around it.

`start_worker(env, log)` starts one with a server's environment and returns once it has said it
started (its signal handlers are in place by then); `stop` sends SIGTERM and answers the exit
code, `kill` sends SIGKILL. The `start_worker` fixture stops every worker it started when the
test ends and prints their logs, which pytest shows when the test failed. A module registers
it by importing `worker_starter`.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import cli_command
from tests.webhooks.receiver import Received

STARTED_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 60.0  # past the webhook timeout (10 s): an attempt in flight may finish
STARTED: Final = "worker started"
GRACE, FRANK = 7, 6
SMALL_EQUIPMENT: Final = 1  # one step, Frank's


@attrs.define
class WorkerProcess:
    """One `expense-tracker worker` and the file it logs to."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, words: str, timeout_s: float = STARTED_TIMEOUT_S) -> None:
        """Return once the log holds `words`; fail the test after `timeout_s` or if the worker
        exits first."""
        deadline = time.monotonic() + timeout_s
        while words not in self.text():
            if not self.running:
                pytest.fail(f"the worker exited with {self.process.returncode}:\n{self.text()}")
            if time.monotonic() >= deadline:
                pytest.fail(f"no {words!r} from the worker in {timeout_s} s:\n{self.text()}")
            time.sleep(0.05)  # polling its log, bounded by the deadline

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then its exit code once it has exited (SIGKILL after `timeout_s`: then the
        code is -9)."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no attempt in flight is finished, nothing is settled."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)


def start_worker(env: Mapping[str, str], log: Path, *args: str, **settings: str) -> WorkerProcess:
    """Run `expense-tracker worker *args` with `env` plus `settings` (logging at INFO unless
    LOG_LEVEL is among them), appending to `log`; return once it has started."""
    full = {**env, "LOG_LEVEL": "INFO", **settings}
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 -- our own command
            [*cli_command(), "worker", *args],
            env=full,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    worker = WorkerProcess(process, log)
    try:
        worker.wait_for_log(STARTED)
    except BaseException:
        worker.kill()
        raise
    return worker


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture(name="start_worker")
def worker_starter(tmp_path: Path) -> Iterator[StartWorker]:
    """Start workers: `start_worker(env, **settings)`; each logs to a file of its own."""
    started: list[WorkerProcess] = []

    def start(env: Mapping[str, str], *args: str, **settings: str) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started) + 1}.log"
        worker = start_worker(env, log, *args, **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
        # Shown by pytest only when the test failed: what the worker said meanwhile.
        sys.stdout.write(f"--- {worker.log.name}\n{worker.text()[-20000:]}")


# --- the API around it ---------------------------------------------------------------------


def subscribe(client: httpx.Client, url: str, events: list[str] | None = None) -> dict[str, Any]:
    body = {"url": url, "events": events or ["*"], "company_id": 1}
    answer = client.post("/api/webhooks", json=body)
    assert answer.status_code == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def submit(client: httpx.Client, description: str = "Ergonomic keyboard") -> int:
    body = {"user_id": GRACE, "policy_id": SMALL_EQUIPMENT, "amount": 149.90,
            "description": description}  # fmt: skip
    answer = client.post("/api/expenses", json=body)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["expense_id"])


def approve(client: httpx.Client, expense_id: int) -> None:
    answer = client.post(
        "/api/expenses/approve", json={"expense_id": expense_id, "approver_id": FRANK}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["expense_status"] == "approved"


def deliveries(client: httpx.Client, webhook_id: int) -> list[dict[str, Any]]:
    """Every delivery of a subscription, newest first."""
    answer = client.get(f"/api/webhooks/{webhook_id}/deliveries", params={"limit": 100})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def wait_until(holds: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not holds():
        if time.monotonic() >= deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.1)  # polling what the API answers, bounded by the deadline


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The message, its signature checked by the Standard Webhooks reference library."""
    message: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return message
