"""Clients that misbehave get a clean 4xx or a closed connection, and never a stuck worker:
slow bodies, oversized headers, half-closed connections, invalid UTF-8, deeply nested JSON.

The server runs one worker, so a worker stuck on one of them would stop it answering at all.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Final

import pytest

from tests.faults.conftest import Deployment
from tests.faults.support import Server, broken_invariants

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

MAX_BODY: Final = 65536
BODY_TIMEOUT_S: Final = 3
ANSWER_WITHIN_S: Final = 5.0  # what a misbehaving client waits at most for its answer
SLOW_CLIENTS: Final = 80  # more than MAX_IN_FLIGHT: slow bodies must not take its slots
MAX_IN_FLIGHT: Final = 16
# A whole request sent before the client closed its side is served: HTTP allows half-closing.
ANSWERED: Final = {"half-closed after a whole request"}
MAX_HEADER_BYTES: Final = 16384  # the default
# Heads over MAX_HEADER_BYTES are answered 431 (a client still sending 1 MiB of header may
# instead see its connection reset before it reads the answer).
TOO_LARGE: Final = {"a header just over MAX_HEADER_BYTES", "many headers (10,000)"}
CREATE: Final = b'{"user_id": 7, "category": "equipment", "amount": "10.00", "description": "x"}'


def _request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _exchange(server: Server, *parts: bytes, half_close: bool = False) -> str:
    """Send `parts`; the answer's status ("400"...), "closed", or "hangs" if none comes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=ANSWER_WITHIN_S) as sock:
        try:
            for part in parts:
                sock.sendall(part)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(65536)
        except TimeoutError:
            return "hangs"
        except OSError:
            return "closed"
    if not answer:
        return "closed"
    return answer.split(b" ", 2)[1].decode()


def _nested(depth: int) -> bytes:
    return b'{"user_id": 7, "amount": ' + b"[" * depth + b"]" * depth + b"}"


CASES: Final[dict[str, Callable[[Server], str]]] = {
    "invalid UTF-8 in a JSON string": lambda s: _exchange(
        s, _request("POST", "/api/expenses", CREATE.replace(b'"x"', b'"\xff\xfe"'))
    ),
    "invalid UTF-8 in a key": lambda s: _exchange(
        s, _request("POST", "/api/expenses", CREATE.replace(b'"user_id"', b'"user\xc3_id"'))
    ),
    "invalid UTF-8 in the path": lambda s: _exchange(
        s, b"GET /api/expenses/\xff\xfe/status HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "invalid UTF-8 in a header": lambda s: _exchange(
        s, b"GET /api/expenses/1/status HTTP/1.1\r\nHost: x\r\nIdempotency-Key: \xff\xfe\r\n\r\n"
    ),
    "deeply nested JSON (arrays)": lambda s: _exchange(
        s, _request("POST", "/api/expenses", _nested(30_000))
    ),
    "deeply nested JSON (objects)": lambda s: _exchange(
        s, _request("POST", "/api/expenses", b'{"a":' * 10_000 + b"1" + b"}" * 10_000)
    ),
    "nested JSON at the approve route": lambda s: _exchange(
        s, _request("POST", "/api/expenses/approve", _nested(30_000))
    ),
    "a body over MAX_BODY_BYTES": lambda s: _exchange(
        s, _request("POST", "/api/expenses", b" " * (MAX_BODY + 1) + CREATE)
    ),
    "a chunked body over MAX_BODY_BYTES": lambda s: _exchange(
        s,
        b"POST /api/expenses HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: application/json\r\n\r\n"
        + b"".join(b"4000\r\n" + b" " * 0x4000 + b"\r\n" for _ in range(5))
        + b"0\r\n\r\n",
    ),
    "an oversized header (1 MiB)": lambda s: _exchange(
        s, _request("GET", "/health/live", headers=f"X-Big: {'a' * (1 << 20)}\r\n")
    ),
    "a header just over MAX_HEADER_BYTES": lambda s: _exchange(
        s, _request("GET", "/health/live", headers=f"X-Big: {'a' * MAX_HEADER_BYTES}\r\n")
    ),
    "many headers (10,000)": lambda s: _exchange(
        s, _request("GET", "/health/live", headers="".join(f"X-{i}: y\r\n" for i in range(10_000)))
    ),
    "a request line that is not HTTP": lambda s: _exchange(s, b"HELLO THERE\r\n\r\n"),
    "half-closed after a whole request": lambda s: _exchange(
        s, _request("GET", "/health/live"), half_close=True
    ),
    "half-closed in the middle of the headers": lambda s: _exchange(
        s, b"POST /api/expenses HTTP/1.1\r\nHost: x\r\nContent-Le", half_close=True
    ),
    "half-closed in the middle of the body": lambda s: _exchange(
        s,
        b"POST /api/expenses HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + CREATE,
        half_close=True,
    ),
    "a body shorter than its Content-Length, then silence": lambda s: _exchange(
        s, b"POST /api/expenses HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + CREATE
    ),
}


def test_bad_requests_get_a_4xx_or_a_closed_connection(deployment: Deployment) -> None:
    server = deployment.serve(WORKERS="1", BODY_TIMEOUT_S=str(BODY_TIMEOUT_S))
    pid = server.pid
    seen = {}
    for name, case in CASES.items():
        seen[name] = case(server)
        seen[f"{name}: then answers"] = "yes" if server.answers() else "no"
    print(f"\nbad clients: {seen}")  # noqa: T201 -- the figures of the run, shown with -s
    for name, outcome in seen.items():
        if name.endswith("then answers"):
            assert outcome == "yes", name
        elif name in ANSWERED:
            assert outcome == "closed" or outcome.startswith("2"), (name, outcome)
        elif name in TOO_LARGE:
            assert outcome == "431", (name, outcome)
        else:
            assert outcome == "closed" or outcome.startswith("4"), (name, outcome)
    assert server.pid == pid
    assert server.process.poll() is None
    with server.client() as client:
        assert client.post("/api/expenses", content=CREATE).status_code == 201
    assert broken_invariants(deployment.cluster, deployment.database) == {}


def test_slow_bodies_time_out_without_starving_others(deployment: Deployment) -> None:
    server = deployment.serve(
        WORKERS="1", BODY_TIMEOUT_S=str(BODY_TIMEOUT_S), MAX_IN_FLIGHT=str(MAX_IN_FLIGHT)
    )
    answers: list[str] = []
    lock = threading.Lock()

    def slow_client() -> None:
        # A byte every half second of a body that would take a minute.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(b"POST /api/expenses HTTP/1.1\r\nHost: x\r\nContent-Length: 120\r\n\r\n")
            outcome = "hangs"
            try:
                for _ in range(120):
                    sock.sendall(b" ")
                    time.sleep(0.5)  # the client's pace
            except OSError:
                outcome = "closed"
            try:
                answer = sock.recv(65536)
                outcome = answer.split(b" ", 2)[1].decode() if answer else "closed"
            except OSError:
                outcome = "closed"
            with lock:
                answers.append(outcome)

    threads = [threading.Thread(target=slow_client, daemon=True) for _ in range(SLOW_CLIENTS)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    # Meanwhile the others are served, not shed: slow bodies hold no request slot.
    with server.client(timeout=ANSWER_WITHIN_S) as client:
        served = [
            client.post(
                "/api/expenses", content=CREATE, headers={"Content-Type": "application/json"}
            ).status_code
            for _ in range(10)
        ]
    for thread in threads:
        thread.join(timeout=BODY_TIMEOUT_S + 30)
    print(  # noqa: T201 -- the figures of the run, shown with -s
        f"\nslow bodies: {SLOW_CLIENTS} slow clients got {sorted(set(answers))}; "
        f"others got {served}"
    )
    assert served == [201] * 10
    assert len(answers) == SLOW_CLIENTS
    assert all(a in ("408", "closed") for a in answers), answers
    assert server.answers()
