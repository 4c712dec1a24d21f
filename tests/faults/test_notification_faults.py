"""The notification worker under faults, on PostgreSQL: killed with SIGKILL mid-batch, a
receiver down, the database restarted, a receiver that hangs. Webhooks are delivered at least
once (a repeat carries the webhook-id of the first try), in order per expense, and nothing is
lost; the worker recovers by itself."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, Final

import httpx
import pytest

from tests.e2e.conftest import free_port
from tests.e2e.workers import (
    StartWorker,
    approve,
    deliveries,
    submit,
    subscribe,
    verified,
    wait_until,
    worker_starter,  # noqa: F401 -- the fixture
)
from tests.faults.conftest import Deployment
from tests.faults.support import Server
from tests.webhooks.receiver import Received, Receiver

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

# A worker that died lets go of its deliveries after this (expense_core's LEASE).
LEASE_S: Final = 60.0
# Bounds on waiting, each ten times or more what it takes here: a delivery well under a
# second, a retry 15 s after a failure (give or take a fifth), a hung attempt 10 s.
DELIVERED_WITHIN_S: Final = 30.0
RETRIED_WITHIN_S: Final = 180.0
RELEASED_WITHIN_S: Final = LEASE_S + 120.0
TIMED_OUT_WITHIN_S: Final = 100.0
OUTAGE_S: Final = 3.0


@pytest.fixture
def server(deployment: Deployment) -> Server:
    return deployment.serve(WEBHOOK_ALLOW_PRIVATE="1")


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as made:
        yield made


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def worker_env(deployment: Deployment) -> dict[str, str]:
    return {**deployment.env, "WEBHOOK_ALLOW_PRIVATE": "1"}


def history(client: httpx.Client, expense_id: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get(f"/api/expenses/{expense_id}/history").json()[
        "events"
    ]
    return events


def out_of_order(
    client: httpx.Client, hooks: dict[str, dict[str, Any]], got: Sequence[Received]
) -> list[str]:
    """What arrived before a notice that happened earlier, for one subscription and expense.

    At least once and in order: a repeat (the same webhook-id again) may follow its first
    arrival at once, but nothing of an expense comes after a later notice of that expense."""
    seen: dict[tuple[str, int], list[int]] = defaultdict(list)
    events: dict[int, list[dict[str, Any]]] = {}
    for request in got:
        message = verified(hooks[request.path]["secret"], request)
        expense_id = message["data"]["expense"]["id"]
        if expense_id not in events:
            events[expense_id] = history(client, expense_id)
        seen[request.path, expense_id].append(events[expense_id].index(message["data"]["event"]))
    return [
        f"{path} expense {expense_id}: events {order}"
        for (path, expense_id), order in seen.items()
        if order != sorted(order)
    ]


def test_a_worker_killed_mid_batch_is_replaced_and_every_notice_arrives_once_or_again(
    deployment: Deployment,
    client: httpx.Client,
    receiver: Receiver,
    start_worker: StartWorker,
) -> None:
    hooks = {f"/{name}": subscribe(client, f"{receiver.url}/{name}") for name in ("erp", "chat")}
    expenses = [submit(client, f"keyboard {n}") for n in range(3)]
    for expense_id in expenses:
        approve(client, expense_id)
    receiver.hang()
    worker = start_worker(worker_env(deployment), WORKER_CONCURRENCY="8")
    # The first notice of each expense, to each subscription: six attempts held in flight.
    held = receiver.wait_for(6, timeout=DELIVERED_WITHIN_S)
    worker.kill()
    receiver.release()
    start_worker(worker_env(deployment))

    every = [d for hook in hooks.values() for d in deliveries(client, hook["id"])]
    assert len(every) == 2 * 3 * 4
    wait_until(
        lambda: all(
            d["status"] == "delivered" for h in hooks.values() for d in deliveries(client, h["id"])
        ),
        "every delivery delivered after the killed worker's lease ran out",
        RELEASED_WITHIN_S,
    )
    every = [d for hook in hooks.values() for d in deliveries(client, hook["id"])]
    got = receiver.requests
    arrived = Counter(r.headers["webhook-id"] for r in got)
    # Every notice arrived under the one webhook-id of its delivery, at least once...
    assert set(arrived) == {f"msg_{d['id']}" for d in every}
    # ...and again exactly those whose attempt the kill cut short.
    held_ids = {r.headers["webhook-id"] for r in held}
    assert {i for i, n in arrived.items() if n > 1} == held_ids
    assert all(arrived[i] == 2 for i in held_ids)
    redone = {i: d for i, d in ((f"msg_{d['id']}", d) for d in every) if i in held_ids}
    assert {d["attempts"] for d in redone.values()} == {2}
    assert out_of_order(client, hooks, got) == []


def test_a_receiver_down_gets_its_notices_after_the_backoff(
    deployment: Deployment, client: httpx.Client, start_worker: StartWorker
) -> None:
    port = free_port()  # nothing listens there yet: connections are refused
    hook = subscribe(client, f"http://127.0.0.1:{port}/hooks")
    start_worker(worker_env(deployment))
    expense_id = submit(client)
    wait_until(
        lambda: [d["status"] for d in deliveries(client, hook["id"])][-1:] == ["retrying"],
        "the first attempt refused and to be retried",
        DELIVERED_WITHIN_S,
    )
    first = deliveries(client, hook["id"])[-1]
    assert (first["event_type"], first["attempts"], first["last_status_code"]) == (
        "expense.submitted",
        1,
        None,
    )
    assert first["last_error"]

    with Receiver(port=port) as receiver:
        got = receiver.wait_for(2, timeout=RETRIED_WITHIN_S)
        wait_until(
            lambda: all(d["status"] == "delivered" for d in deliveries(client, hook["id"])),
            "both notices delivered",
            DELIVERED_WITHIN_S,
        )
    assert [verified(hook["secret"], r)["type"] for r in got] == [
        "expense.submitted",
        "approval.requested",
    ]
    assert {verified(hook["secret"], r)["data"]["expense"]["id"] for r in got} == {expense_id}
    assert got[0].headers["webhook-id"] == f"msg_{first['id']}"
    assert deliveries(client, hook["id"])[-1]["attempts"] == 2


class Traffic:
    """A client submitting and approving expenses without pause, recording what the server
    acknowledged: each acknowledged change owes its notices."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._stop = threading.Event()
        self.owed: list[tuple[int, str]] = []  # (expense id, event type), acknowledged
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with self._server.client(timeout=10.0) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                body = {"user_id": 7, "policy_id": 1, "amount": 149.90,
                        "description": f"keyboard {n}"}  # fmt: skip
                expense_id = self._ask(client, "/api/expenses", body, 201)
                if expense_id is None:
                    time.sleep(0.1)  # the database is away: a client's pause before the next
                    continue
                self.owed += [(expense_id, "expense.submitted"), (expense_id, "approval.requested")]
                decision = {"expense_id": expense_id, "approver_id": 6}
                if self._ask(client, "/api/expenses/approve", decision, 200) is not None:
                    self.owed += [
                        (expense_id, "approval.decided"),
                        (expense_id, "expense.approved"),
                    ]

    @staticmethod
    def _ask(client: httpx.Client, path: str, body: dict[str, Any], ok: int) -> int | None:
        try:
            answer = client.post(path, json=body)
        except httpx.HTTPError:
            return None
        return int(answer.json()["expense_id"]) if answer.status_code == ok else None


def test_a_database_restart_under_delivery_loses_nothing_and_the_worker_recovers(
    deployment: Deployment,
    client: httpx.Client,
    receiver: Receiver,
    server: Server,
    start_worker: StartWorker,
) -> None:
    hook = subscribe(client, f"{receiver.url}/hooks")
    worker = start_worker(worker_env(deployment))
    with Traffic(server) as traffic:
        before = len(receiver.wait_for(20, timeout=DELIVERED_WITHIN_S))
        deployment.cluster.shut_down("fast")
        time.sleep(OUTAGE_S)  # the outage
        deployment.cluster.start_up()
        receiver.wait_for(before + 20, timeout=RETRIED_WITHIN_S)
    owed = Counter(traffic.owed)

    def delivered() -> Counter[tuple[int, str]]:
        messages = [verified(hook["secret"], r) for r in receiver.requests]
        return Counter((m["data"]["expense"]["id"], m["type"]) for m in messages)

    wait_until(
        lambda: not owed - delivered(),
        "every acknowledged change's notices delivered",
        RELEASED_WITHIN_S,
    )
    assert worker.running
    assert "worker round failed" in worker.text()  # it did notice the outage
    assert out_of_order(client, {"/hooks": hook}, receiver.requests) == []


def test_a_hanging_receiver_holds_up_only_itself_and_is_timed_out(
    deployment: Deployment, client: httpx.Client, start_worker: StartWorker
) -> None:
    with Receiver() as slow, Receiver() as quick:
        slow.hang()
        stuck = subscribe(client, f"{slow.url}/hooks")
        fine = subscribe(client, f"{quick.url}/hooks")
        start_worker(worker_env(deployment), WORKER_CONCURRENCY="4")
        first = submit(client)
        slow.wait_for(1, timeout=DELIVERED_WITHIN_S)  # held: in flight until it times out

        approve(client, first)
        second = submit(client, "keyboard for the new hire")
        approve(client, second)
        got = quick.wait_for(8, timeout=DELIVERED_WITHIN_S)
        # Meanwhile the hung attempt is still in flight: nothing of it settled yet.
        waiting = deliveries(client, stuck["id"])[-1]
        assert (waiting["event_type"], waiting["attempts"], waiting["last_error"]) == (
            "expense.submitted",
            1,
            None,
        )
        expense_ids = [verified(fine["secret"], r)["data"]["expense"]["id"] for r in got]
        assert sorted(expense_ids) == [first] * 4 + [second] * 4

        wait_until(
            lambda: deliveries(client, stuck["id"])[-1]["status"] == "retrying",
            "the hung attempt timed out",
            TIMED_OUT_WITHIN_S,
        )
        timed_out = deliveries(client, stuck["id"])[-1]
        assert timed_out["last_error"] == "timeout after 10 s"
        # One attempt per expense: each expense's later notices wait behind its first.
        held = [verified(stuck["secret"], r) for r in slow.wait_for(2, timeout=DELIVERED_WITHIN_S)]
        assert sorted((m["data"]["expense"]["id"], m["type"]) for m in held) == [
            (first, "expense.submitted"),
            (second, "expense.submitted"),
        ]
