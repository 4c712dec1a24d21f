"""Four times the load the server can serve: it sheds the excess with quick 503s and serves the
rest within bounded latency, holds its connections and memory, and recovers when the load drops.

The load is open: requests arrive at a fixed rate whatever the server's pace (closed-loop
clients would only slow down with it), four times the rate it served when saturated.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from typing import Final

import pytest

from tests.faults.conftest import Deployment
from tests.faults.support import Load, Outcome, Server, submission, success_rate, summary

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

WORKERS: Final = 2
POOL_SIZE: Final = 4
POOL_TIMEOUT_MS: Final = 2000
MAX_IN_FLIGHT: Final = 16
OVERLOAD: Final = 4
SATURATING_CLIENTS: Final = 4 * WORKERS * POOL_SIZE
OVERLOAD_S: Final = 8.0
MOST_IN_FLIGHT: Final = 400  # the driver's own ceiling on requests awaiting an answer
# Generous: a served request waits at most the pool timeout for a connection, then runs; a new
# connection's first request also waits for a busy worker to accept it. Measured at most 3.5 s
# on a quiet machine and 5.4 s under a full parallel test run; about ten times the usual worst.
LATENCY_BOUND_S: Final = POOL_TIMEOUT_MS / 1000 + 10.0
# A 503 is cheap: it waits for nothing but the event loop. This bounds the 503s answered on
# connections already open; a connection's first request also waits until a busy worker has
# accepted the connection (the driver opens up to MOST_IN_FLIGHT of them at once), and is
# bounded by LATENCY_BOUND_S like any other.
SHED_BOUND_S: Final = 2.0
RSS_GROWTH_BOUND: Final = 100 * 1024 * 1024


class RawConnection:
    """One keep-alive HTTP/1.1 connection, spoken by hand: a driver that costs the machine far
    less per request than a full client, so that it can offer more than the server serves."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, str | None]:
        """Send one request; the status and Retry-After of its answer."""
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"Content-Type: application/json\r\n\r\n" + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split()[1])
        length, retry_after, closing = 0, None, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "retry-after":
                retry_after = value
            elif name == "connection" and value.lower() == "close":
                closing = True
        await self.reader.readexactly(length)
        if closing:
            raise ConnectionResetError("the server closed the connection")
        return status, retry_after

    def close(self) -> None:
        self.writer.close()


async def _open_load(port: int, rate: float, seconds: float, known: list[int]) -> dict[str, object]:
    """Send requests (half submissions, half status reads) at `rate` per second for `seconds`."""
    chooser = random.Random(7)  # noqa: S311 -- a load mix, not a secret
    outcomes: list[Outcome] = []
    firsts: list[Outcome] = []  # the first request on each new connection
    idle: list[RawConnection] = []
    unsent = 0
    tasks: set[asyncio.Task[None]] = set()

    async def one(action: str) -> None:
        started = time.monotonic()
        if action == "create":
            method, path, body = "POST", "/api/expenses", json.dumps(submission(chooser)).encode()
        else:
            method, path, body = "GET", f"/api/expenses/{chooser.choice(known)}/status", b""
        # A kept-alive connection the server closed while it was idle (uvicorn's keep-alive
        # timeout) fails before any answer: like any HTTP client, try once more on a new one.
        reused = idle.pop() if idle else None
        for connection in (reused, None) if reused else (None,):
            try:
                connection = connection or await RawConnection.open(port)
                status, retry_after = await connection.request(method, path, body)
            except asyncio.IncompleteReadError as exc:
                if connection is not None:
                    connection.close()
                if connection is reused and not exc.partial:
                    continue
                error = repr(exc)
            except (OSError, ValueError) as exc:
                if connection is not None:
                    connection.close()
                if connection is reused and isinstance(exc, ConnectionResetError):
                    continue
                error = repr(exc)
            else:
                idle.append(connection)
                outcome = Outcome(started, time.monotonic(), action, status, retry_after)
                outcomes.append(outcome)
                if connection is not reused:
                    firsts.append(outcome)
                return
            outcomes.append(Outcome(started, time.monotonic(), action, None, error=error))
            return

    begin = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < begin + seconds:
        while sent < int((now - begin) * rate):
            sent += 1
            if len(tasks) >= MOST_IN_FLIGHT:
                unsent += 1
                continue
            task = asyncio.create_task(one("create" if sent % 2 else "status"))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return {"outcomes": outcomes, "firsts": firsts, "unsent": unsent, "offered": sent}


async def _closed_load(port: int, clients: int, seconds: float, known: list[int]) -> list[Outcome]:
    """`clients` connections sending the same mix back to back for `seconds`."""
    chooser = random.Random(3)  # noqa: S311 -- a load mix, not a secret
    outcomes: list[Outcome] = []
    end = time.monotonic() + seconds

    async def client(number: int) -> None:
        connection = await RawConnection.open(port)
        try:
            for sent in itertools.count(number):
                if time.monotonic() >= end:
                    return
                started = time.monotonic()
                if sent % 2:
                    body = json.dumps(submission(chooser)).encode()
                    status, _ = await connection.request("POST", "/api/expenses", body)
                else:
                    path = f"/api/expenses/{chooser.choice(known)}/status"
                    status, _ = await connection.request("GET", path)
                outcomes.append(Outcome(started, time.monotonic(), "mix", status))
        finally:
            connection.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return outcomes


def _sample(
    deployment: Deployment, server: Server, stop: threading.Event, samples: list[tuple[int, int]]
) -> None:
    while not stop.wait(0.5):
        rss = sum(server.rss().values())
        samples.append((deployment.cluster.connections(deployment.database), rss))


def test_overload_is_shed_quickly_and_the_server_recovers(deployment: Deployment) -> None:
    server = deployment.serve(
        WORKERS=str(WORKERS),
        DB_POOL_SIZE=str(POOL_SIZE),
        DB_POOL_TIMEOUT_MS=str(POOL_TIMEOUT_MS),
        MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
    )
    known = []
    with server.client() as client:
        for _ in range(20):
            created = client.post("/api/expenses", json=submission(random.Random(1)))  # noqa: S311 -- a load mix
            assert created.status_code == 201, created.text
            known.append(created.json()["expense_id"])
    # Saturated: more clients than connections, none pausing. What it serves is its capacity.
    asyncio.run(_closed_load(server.port, SATURATING_CLIENTS, 2.0, known))  # warming up
    saturated = asyncio.run(_closed_load(server.port, SATURATING_CLIENTS, 3.0, known))
    capacity = sum(o.ok for o in saturated) / 3.0
    rss_before = sum(server.rss().values())

    stop = threading.Event()
    samples: list[tuple[int, int]] = []
    sampler = threading.Thread(target=_sample, args=(deployment, server, stop, samples))
    sampler.start()
    try:
        result = asyncio.run(_open_load(server.port, OVERLOAD * capacity, OVERLOAD_S, known))
    finally:
        stop.set()
        sampler.join()
    outcomes: list[Outcome] = result["outcomes"]  # type: ignore[assignment]
    firsts: list[Outcome] = result["firsts"]  # type: ignore[assignment]
    with Load(server.base_url, clients=2) as calm:
        time.sleep(1.0)
        settled = time.monotonic()
        time.sleep(3.0)
    after = calm.between(settled, float("inf"))

    served = [o for o in outcomes if o.ok]
    shed = [o for o in outcomes if o.status == 503]
    latencies = sorted(o.seconds for o in outcomes)
    first_ids = {id(o) for o in firsts}
    slowest_shed = max((o.seconds for o in shed if id(o) not in first_ids), default=0.0)
    slowest_first = max((o.seconds for o in firsts), default=0.0)
    most_connections = max(c for c, _ in samples)
    most_rss = max(r for _, r in samples)
    print(  # noqa: T201 -- the figures of the run, shown with -s
        f"\noverload: capacity {capacity:.0f} req/s; offered {OVERLOAD}x for {OVERLOAD_S:.0f} s: "
        f"{result['offered']} requests ({result['unsent']} not sent: driver ceiling); "
        f"{summary(outcomes)}; served {len(served) / OVERLOAD_S:.0f} req/s; "
        f"p50 {latencies[len(latencies) // 2]:.3f} s, "
        f"p99 {latencies[int(len(latencies) * 0.99)]:.3f} s, max {latencies[-1]:.3f} s; "
        f"slowest 503 on an open connection {slowest_shed:.3f} s; "
        f"slowest first request of {len(firsts)} new connections {slowest_first:.3f} s; "
        f"database connections at most {most_connections}; RSS {rss_before >> 20} -> "
        f"{most_rss >> 20} MiB at most; afterwards {summary(after)}; "
        f"errors {sorted({o.error for o in outcomes if o.error})[:3]}"
    )

    assert capacity > 0
    assert {o.status for o in outcomes} <= {200, 201, 503}, summary(outcomes)
    assert all(o.retry_after for o in shed)
    assert slowest_shed <= SHED_BOUND_S
    assert served, "nothing was served under overload"
    assert latencies[-1] <= LATENCY_BOUND_S
    # Each worker's two pools: its threads' and its event loop's (docs/configuration.md).
    assert most_connections <= WORKERS * 2 * POOL_SIZE
    assert most_rss - rss_before <= RSS_GROWTH_BOUND
    assert len(after) >= 20
    assert success_rate(after) == 1.0, summary(after)
