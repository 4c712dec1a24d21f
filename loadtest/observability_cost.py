"""What the metrics and the access lines cost a request, measured in one process.

Builds four apps on one database: with metrics and access lines (the default), with neither,
and with each alone; then serves them the same requests (half submissions, half status pages)
straight over ASGI, no network, in alternating chunks, and prints one JSON line: CPU
milliseconds per request of each (the process's, its threads' included) and what metrics,
access lines and both add, in microseconds. Alternating in one process leaves out what moves
between runs (the machine, the database's state), which a server under load cannot.

    python -m loadtest.observability_cost [--database-url URL] [--rounds 100]

The database must hold the demo organisation (`expense-tracker seed demo`); the default,
`memory://`, is seeded here. A benchmark, not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, Final

VARIANTS: Final = {
    "both": {},
    "neither": {"metrics": False, "access_log": False},
    "metrics": {"access_log": False},
    "access_lines": {"metrics": False},
}
SUBMISSION: Final = b'{"user_id": 7, "policy_id": 1, "amount": 100.5, "description": "cost"}'
CHUNK: Final = 100


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="memory://")
    parser.add_argument("--rounds", type=int, default=100, help=f"chunks of {CHUNK} per app")
    args = parser.parse_args(argv)
    # Multiprocess mode, as `serve` runs: set before prometheus-client is first imported.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="cost-metrics-"))
    per_request = asyncio.run(_measure(args.database_url, args.rounds))
    neither = per_request["neither"]
    print(
        json.dumps(
            {
                "database": "memory" if args.database_url == "memory://" else "sql",
                "requests_per_app": args.rounds * CHUNK,
                "cpu_ms_per_request": {k: round(v, 4) for k, v in per_request.items()},
                "added_us_per_request": {
                    k: round(1000 * (v - neither), 1)
                    for k, v in per_request.items()
                    if k != "neither"
                },
            }
        )
    )
    return 0


async def _measure(database_url: str, rounds: int) -> dict[str, float]:
    from litestar.testing import TestClient

    from entrypoints import logs
    from entrypoints.container import container_for
    from entrypoints.http import create_app
    from entrypoints.settings import Settings
    from expense_core.demo import install_demo

    base = Settings(database_url=database_url, log_level="INFO")
    # Every line rendered and written as a server writes it, to nowhere.
    logs.configure("INFO", console=False, stream=open(os.devnull, "w"))  # noqa: SIM115
    apps: dict[str, Any] = {}
    for name, changes in VARIANTS.items():
        container = container_for(base.replace(**changes))
        if database_url == "memory://":
            install_demo(container.new_uow())
        apps[name] = create_app(container)
    for app in apps.values():
        with TestClient(app):  # runs the app's startup (its thread pool, its database)
            pass
    first = await _call(apps["both"], "POST", "/api/expenses", SUBMISSION)
    status = f"/api/expenses/{json.loads(first)['expense_id']}/status"

    async def chunk(app: Any) -> None:
        for i in range(CHUNK):
            if i % 2:
                await _call(app, "GET", status)
            else:
                await _call(app, "POST", "/api/expenses", SUBMISSION)

    cpu = dict.fromkeys(apps, 0.0)
    for app in apps.values():  # warm: pools filled, statements prepared
        await chunk(app)
    for n in range(rounds):
        for name in list(apps) if n % 2 else list(apps)[::-1]:
            started = time.process_time()
            await chunk(apps[name])
            cpu[name] += time.process_time() - started
    return {name: 1000 * spent / (rounds * CHUNK) for name, spent in cpu.items()}


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> bytes:
    """One request over ASGI; its body (a failure stops the measurement)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"cost"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 4000),
    }
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if given:
            await asyncio.Event().wait()  # no disconnect while the request is served
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    status = answer.get("status", 500)
    if status >= 300:
        raise SystemExit(f"{method} {path} answered {status}: {answer['body'][:200]!r}")
    return bytes(answer["body"])


if __name__ == "__main__":
    sys.exit(main())
