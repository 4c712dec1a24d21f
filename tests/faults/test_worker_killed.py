"""A worker is killed (SIGKILL) every few seconds under load: the supervisor replaces it, no
half-written expense is ever left, and clients that retry a submission with its
Idempotency-Key end with exactly one expense each."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from typing import Final

import attrs
import httpx
import pytest

from tests.faults.conftest import Deployment
from tests.faults.support import Server, broken_invariants, expense_count, new_key, submission

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

WORKERS: Final = 2
KILLS: Final = 4
KILL_EVERY_S: Final = 2.5
CLIENTS: Final = 6
ATTEMPTS: Final = 100  # per submission, 0.1 s apart: a replaced worker serves within seconds
RETRY_PAUSE_S: Final = 0.1
REPLACED_WITHIN_S: Final = 15.0


@attrs.define
class Submissions:
    """What the clients saw: each key's answers, and every status that was not a success."""

    created: dict[str, set[int]] = attrs.Factory(dict)  # key -> expense ids its 201s named
    attempts: Counter[str] = attrs.Factory(Counter)
    failures: Counter[str] = attrs.Factory(Counter)  # "503", "no answer", ...
    replayed: int = 0  # 201s that answered a retry from the first attempt's stored response
    lock: threading.Lock = attrs.Factory(threading.Lock)


def _client(server: Server, seed: int, stop: threading.Event, seen: Submissions) -> None:
    chooser = random.Random(seed)  # noqa: S311 -- a load mix, not a secret
    client = server.client(timeout=10.0)
    try:
        while not stop.is_set():
            key, body = new_key(), submission(chooser)
            created = None
            for _ in range(ATTEMPTS):
                with seen.lock:
                    seen.attempts[key] += 1
                try:
                    answer = client.post(
                        "/api/expenses", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.HTTPError as exc:
                    outcome = f"no answer ({type(exc).__name__})"
                else:
                    if answer.status_code == 201:
                        created = answer.json()
                        with seen.lock:
                            seen.replayed += answer.headers.get("Idempotent-Replayed") == "true"
                        break
                    outcome = str(answer.status_code)
                with seen.lock:
                    seen.failures[outcome] += 1
                time.sleep(RETRY_PAUSE_S)  # a client's pause before retrying
            if created is None:
                with seen.lock:
                    seen.created.setdefault(key, set())
                continue
            with seen.lock:
                seen.created.setdefault(key, set()).add(created["expense_id"])
            # Half the time the first step is approved too, once, whatever the answer.
            step = next(a for a in created["approvals_required"] if a["step"] == 1)
            if chooser.random() < 0.5:
                try:
                    answer = client.post(
                        "/api/expenses/approve",
                        json={
                            "expense_id": created["expense_id"],
                            "approver_id": step["approver_id"],
                        },
                    )
                except httpx.HTTPError:
                    continue
                if answer.status_code >= 500 and answer.status_code != 503:
                    with seen.lock:
                        seen.failures[f"approve {answer.status_code}"] += 1
    finally:
        client.close()


def _kill_one(server: Server) -> tuple[int, float]:
    """SIGKILL a worker; (its pid, seconds until the supervisor had a new one serving)."""
    victim = server.workers()[0].pid
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < REPLACED_WITHIN_S:
        pids = {p.pid for p in server.workers() if p.is_running() and p.status() != "zombie"}
        if len(pids) == WORKERS and victim not in pids:
            return victim, time.monotonic() - killed
        time.sleep(0.05)  # polling the supervisor, bounded by REPLACED_WITHIN_S
    return victim, float("inf")


def test_killed_workers_are_replaced_and_retried_submissions_land_once(
    deployment: Deployment,
) -> None:
    server = deployment.serve(WORKERS=str(WORKERS), DB_POOL_SIZE="4")
    before = expense_count(deployment.cluster, deployment.database)
    seen = Submissions()
    stop = threading.Event()
    clients = [
        threading.Thread(target=_client, args=(server, n, stop, seen)) for n in range(CLIENTS)
    ]
    for thread in clients:
        thread.start()
    replacements = []
    try:
        for _ in range(KILLS):
            time.sleep(KILL_EVERY_S)
            replacements.append(_kill_one(server))
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=ATTEMPTS * (RETRY_PAUSE_S + 10))

    with deployment.cluster.connect(deployment.database) as conn:
        per_key = {
            row[0]: row[1]
            for row in conn.execute("SELECT key, count(*) FROM idempotency_keys GROUP BY key")
        }
        stored = {
            row[0]: row[1] for row in conn.execute("SELECT key, expense_id FROM idempotency_keys")
        }
    after = expense_count(deployment.cluster, deployment.database)
    retried = {key for key, n in seen.attempts.items() if n > 1}
    print(  # noqa: T201 -- the figures of the run, shown with -s
        f"\nworker killed: {KILLS} kills, replaced after "
        f"{', '.join(f'{s:.2f}' for _, s in replacements)} s; {len(seen.created)} submissions, "
        f"{sum(seen.attempts.values())} attempts, {len(retried)} submissions retried, "
        f"{seen.replayed} answered by replay; "
        f"failed attempts {dict(seen.failures)}; expenses {before} -> {after}"
    )

    assert all(seconds <= REPLACED_WITHIN_S for _, seconds in replacements), replacements
    assert len(server.workers()) == WORKERS
    assert server.answers()
    assert retried, "no submission needed a retry: the kills hit nothing"
    # Every client submission ended in a 201, all its answers naming one expense...
    assert all(len(ids) == 1 for ids in seen.created.values()), seen.created
    # ...the one stored under its key, and there is no other.
    assert all(per_key.get(key) == 1 for key in seen.created)
    assert {key: stored[key] for key in seen.created} == {
        key: next(iter(ids)) for key, ids in seen.created.items()
    }
    assert after - before == len(seen.created)
    # A worker that died mid-transaction left nothing half-written.
    assert broken_invariants(deployment.cluster, deployment.database) == {}
    assert not [f for f in seen.failures if f.startswith(("5", "approve")) and f != "503"]
