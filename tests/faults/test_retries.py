"""A client whose first attempt has not answered yet (its own timeout fired) retries at once: the
attempts race on two workers with one Idempotency-Key and body, and land as one expense."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from typing import Final

import pytest

from tests.faults.conftest import Deployment
from tests.faults.support import Server, expense_count, new_key, submission

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

KEYS: Final = 30
RACERS: Final = 3


def _race(server: Server, key: str, body: dict[str, object], seen: dict[str, list[int]]) -> None:
    start = threading.Barrier(RACERS)

    def attempt() -> None:
        with server.client(timeout=10.0) as client:
            start.wait()
            answer = client.post("/api/expenses", json=body, headers={"Idempotency-Key": key})
        seen[key].append(
            answer.json()["expense_id"] if answer.status_code == 201 else -answer.status_code
        )

    racers = [threading.Thread(target=attempt) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()


def test_concurrent_retries_with_one_key_make_one_expense(deployment: Deployment) -> None:
    server = deployment.serve(WORKERS="2", DB_POOL_SIZE="4")
    seen: dict[str, list[int]] = defaultdict(list)
    for n in range(KEYS):
        _race(server, new_key(), submission(random.Random(n)), seen)  # noqa: S311 -- test data
    answers = Counter(a if a < 0 else 201 for ids in seen.values() for a in ids)
    print(f"\nconcurrent retries: {KEYS} keys x {RACERS} attempts: {dict(answers)}")  # noqa: T201
    # Every attempt is answered with the one expense of its key (a 409 would do for the
    # losers too, but none must be a 5xx or a second expense).
    assert all(a > 0 or a == -409 for ids in seen.values() for a in ids), seen
    assert all(len({a for a in ids if a > 0}) == 1 for ids in seen.values()), seen
    assert expense_count(deployment.cluster, deployment.database) == KEYS
