"""SIGTERM with requests in flight: they complete, new connections are refused, and the process
exits within its grace period (SHUTDOWN_GRACE_S), even when a request would outlast it."""

from __future__ import annotations

import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import httpx
import psycopg
import pytest

from tests.faults.conftest import Deployment
from tests.faults.support import Server, broken_invariants, submission

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

GRACE_S: Final = 6
IN_FLIGHT: Final = 4
EXIT_MARGIN_S: Final = 3.0  # the supervisor notices its workers' exit twice a second


def _submit(server: Server, count: int) -> list[tuple[int, int]]:
    """(expense id, approver of step 1) of `count` new one-step expenses."""
    made = []
    with server.client() as client:
        for _ in range(count):
            body = {**submission(random.Random()), "category": "equipment", "amount": "100.00"}  # noqa: S311 -- test data
            answer = client.post("/api/expenses", json=body)
            assert answer.status_code == 201, answer.text
            created = answer.json()
            made.append((created["expense_id"], created["approvals_required"][0]["approver_id"]))
    return made


@contextmanager
def _locked(deployment: Deployment, expense_ids: list[int]) -> Iterator[psycopg.Connection]:
    """Hold the rows of these expenses, so that decisions on them wait (are in flight)."""
    with deployment.cluster.connect(deployment.database) as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT id FROM expenses WHERE id = ANY(%s) FOR UPDATE", (expense_ids,))
        yield conn
        conn.execute("COMMIT")


def _waiting_on_locks(deployment: Deployment) -> int:
    with deployment.cluster.connect(deployment.database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(str(row[0])) if row else 0


def _approve_all(
    server: Server, made: list[tuple[int, int]]
) -> tuple[list[object], list[threading.Thread]]:
    answers: list[object] = [None] * len(made)

    def approve(index: int, expense_id: int, approver: int) -> None:
        try:
            with server.client(timeout=30.0) as client:
                answers[index] = client.post(
                    "/api/expenses/approve",
                    json={"expense_id": expense_id, "approver_id": approver},
                ).status_code
        except httpx.HTTPError as exc:
            answers[index] = type(exc).__name__

    threads = [
        threading.Thread(target=approve, args=(i, expense_id, approver))
        for i, (expense_id, approver) in enumerate(made)
    ]
    for thread in threads:
        thread.start()
    return answers, threads


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling, bounded by the deadline
    return False


def _new_connection(port: int) -> str:
    """What a new client meets: "refused", "closed" (accepted, then closed unanswered),
    "answered" or "hangs"."""
    with socket.socket() as probe:
        probe.settimeout(3.0)
        try:
            probe.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return "refused"
        probe.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return "answered" if probe.recv(100) else "closed"
        except TimeoutError:
            return "hangs"
        except OSError:
            return "closed"


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(
    deployment: Deployment, workers: int
) -> None:
    server = deployment.serve(WORKERS=str(workers), SHUTDOWN_GRACE_S=str(GRACE_S))
    made = _submit(server, IN_FLIGHT)
    with _locked(deployment, [e for e, _ in made]):
        answers, threads = _approve_all(server, made)
        assert _until(lambda: _waiting_on_locks(deployment) == IN_FLIGHT, 10.0)
        server.process.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        time.sleep(1.0)
        newcomer = _new_connection(server.port)
        still_running = server.process.poll() is None
    for thread in threads:
        thread.join(timeout=30.0)
    exited = _until(lambda: server.process.poll() is not None, GRACE_S + EXIT_MARGIN_S)
    took = time.monotonic() - terminated
    print(  # noqa: T201 -- the figures of the run, shown with -s
        f"\ngraceful shutdown ({workers} worker(s)): in flight {answers}, a new connection "
        f"{newcomer}, exited {took:.2f} s after SIGTERM"
    )
    assert still_running
    assert answers == [200] * IN_FLIGHT
    assert newcomer in ("refused", "closed")
    assert exited
    assert broken_invariants(deployment.cluster, deployment.database) == {}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_exits_within_the_grace_period_when_a_request_outlasts_it(
    deployment: Deployment, workers: int
) -> None:
    server = deployment.serve(WORKERS=str(workers), SHUTDOWN_GRACE_S=str(GRACE_S))
    made = _submit(server, 2)
    with _locked(deployment, [e for e, _ in made]):
        answers, threads = _approve_all(server, made)
        assert _until(lambda: _waiting_on_locks(deployment) == len(made), 10.0)
        server.process.send_signal(signal.SIGTERM)
        terminated = time.monotonic()
        exited = _until(lambda: server.process.poll() is not None, GRACE_S + EXIT_MARGIN_S)
        took = time.monotonic() - terminated
        for thread in threads:
            thread.join(timeout=30.0)
    print(  # noqa: T201 -- the figures of the run, shown with -s
        f"\ngrace period over ({workers} worker(s)): exited {took:.2f} s after SIGTERM "
        f"(grace {GRACE_S} s); "
        f"the requests held up got {answers}"
    )
    assert exited
    assert took >= GRACE_S - 1.0  # it did wait for them
    # They are told to retry; nothing was half done: the transactions died with the process.
    assert answers == [503] * len(made)
    assert broken_invariants(deployment.cluster, deployment.database) == {}
