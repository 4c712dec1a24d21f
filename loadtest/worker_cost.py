"""What one webhook delivery costs the notification worker, PostgreSQL and the receiver.

Starts a throwaway PostgreSQL with pg_stat_statements, seeds it as `bench` does, subscribes
the benchmark's receiver (`loadtest/receiver.py`) to every event of every company and starts
one `expense-tracker worker`. Once the worker is idle (its imports done) the outbox is filled
with notices copied from the seeded history, either all at once (`--notices N`, then drained)
or at a steady rate (`--rate R --duration S`, then drained); the CPU of the worker process,
of PostgreSQL's processes and of the receiver, and the statements PostgreSQL ran, are taken
before and after and divided by the deliveries made. Prints one JSON line.

    python -m loadtest.worker_cost [--notices 20000] [--rate 2500 --duration 20]
                                   [--profile worker.svg]

A benchmark, not a test: it asserts nothing about time. `--profile` records the worker with
py-spy (installed beside the interpreter) over the measured window.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psutil
import psycopg

from loadtest import bench, notify

# Harness statements carry a `/* worker_cost */` comment: the worker's are told from them.
MARK: Final = "/* worker_cost */ "
FILL_EVERY_S: Final = 0.1
IDLE_CPU_S: Final = 0.02  # a worker that spent less than this in half a second is idle
DRAIN_TIMEOUT_S: Final = 600.0
# Notices copied from the seeded history, two of an expense at a time as a request of the mix
# writes them (a submission, a decision), each expense's in its order: the second waits for
# the first, as the mix's do. A decision of a step tells `approval.decided`.
FILL: Final = """/* worker_cost */
INSERT INTO outbox (company_id, expense_id, topic, recipient_id, kind, at, actor_id,
                    step_number, comment, approver_id, previous_approver_id, on_behalf_of)
SELECT e.company_id, e.expense_id,
       CASE e.kind WHEN 'submitted' THEN 'expense.submitted' ELSE 'approval.decided' END,
       NULL, e.kind, e.at, e.actor_id, e.step_number, e.comment, e.approver_id,
       e.previous_approver_id, e.on_behalf_of
FROM generate_series(%(first)s, %(first)s + %(count)s - 1) AS wanted (n)
JOIN (SELECT *, row_number() OVER (ORDER BY nth / 2, expense_id, nth) - 1 AS n
      FROM (SELECT *, row_number() OVER (PARTITION BY expense_id ORDER BY id) AS nth
            FROM expense_events) AS numbered) AS e
  ON e.n = wanted.n %% %(events)s
ORDER BY wanted.n
"""
DELIVERED: Final = "/* worker_cost */ SELECT count(*) FROM deliveries WHERE status = 'delivered'"
STATEMENTS: Final = """/* worker_cost */
SELECT calls, total_exec_time, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)
FROM pg_stat_statements
WHERE query NOT LIKE '%%worker_cost%%' AND dbid = (SELECT oid FROM pg_database
                                                   WHERE datname = current_database())
ORDER BY calls DESC
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.worker_cost",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--notices", type=int, default=20_000, help="filled at once (20000)")
    parser.add_argument("--rate", type=int, default=0, help="notices a second instead")
    parser.add_argument("--duration", type=int, default=20, help="seconds filled at --rate")
    parser.add_argument("--companies", type=int, default=8, help="synthetic companies (8)")
    parser.add_argument("--users-per-company", type=int, default=100, help="(100)")
    parser.add_argument("--expenses", type=int, default=2000, help="expenses seeded (2000)")
    parser.add_argument(
        "--profile", type=Path, help="py-spy flame graph of the worker (.txt: collapsed stacks)"
    )
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the worker")
    parser.add_argument(
        "--explain-ms",
        type=int,
        help="log the plans of statements slower than this (auto_explain) to loadtest/reports/"
        "worker-cost-postgres.log",
    )
    args = parser.parse_args(argv)
    print(json.dumps(measure(args)))
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with _postgres(args.explain_ms) as (database_url, postmaster):
        bench._seed(database_url, args, str(bench.REPORTS / "worker-cost-plan.json"))
        conninfo = bench._conninfo(database_url)
        with (
            psycopg.connect(conninfo, autocommit=True) as conn,
            notify._receiver() as (
                receiver,
                at,
            ),
        ):
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            _subscribe(conn, at)
            conn.execute("ANALYZE")
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "WEBHOOK_ALLOW_PRIVATE": "1",
                "ESCALATION_INTERVAL_S": "0",
                "LOG_LEVEL": "WARNING",
                **dict(e.split("=", 1) for e in args.env),
            }
            log = bench.REPORTS / "worker-cost.log"
            with notify._worker(env, log) as worker:
                _wait_idle(worker.pid)
                return _window(args, conn, worker, receiver.pid, postmaster, log)


def _window(
    args: argparse.Namespace,
    conn: psycopg.Connection[Any],
    worker: subprocess.Popen[bytes],
    receiver: int,
    postmaster: int,
    log: Path,
) -> dict[str, Any]:
    events = _scalar(conn, "/* worker_cost */ SELECT count(*) FROM expense_events")
    conn.execute("/* worker_cost */ SELECT pg_stat_statements_reset()")
    before = _cpus(worker.pid, receiver, postmaster)
    delivered_before = _scalar(conn, DELIVERED)
    started = time.monotonic()
    with _profiled(args.profile, worker.pid):
        filled = _fill(conn, args, events)
        if not args.rate:
            # Filled at once: the fill's own cost is left out of PostgreSQL's.
            before["postgres"] = _cpus(worker.pid, receiver, postmaster)["postgres"]
        drained = _drain(conn, worker)
    took = time.monotonic() - started
    after = _cpus(worker.pid, receiver, postmaster)
    delivered = _scalar(conn, DELIVERED) - delivered_before
    statements = conn.execute(STATEMENTS).fetchall()
    calls = sum(int(c) for c, _, _ in statements)
    per = max(delivered, 1)
    cpu = {k: after[k] - before[k] for k in after}
    return {
        "runner": "loadtest.worker_cost",
        "mode": f"{args.rate}/s for {args.duration} s" if args.rate else "filled at once",
        "worker_env": args.env,
        "notices": filled,
        "delivered": delivered,
        "drained": drained,
        "seconds": round(took, 2),
        "deliveries_per_s": round(delivered / took, 1),
        "worker_cpu_ms_per_delivery": round(cpu["worker"] * 1000 / per, 4),
        "postgres_cpu_ms_per_delivery": round(cpu["postgres"] * 1000 / per, 4),
        "receiver_cpu_ms_per_delivery": round(cpu["receiver"] * 1000 / per, 4),
        "worker_cpu_cores": round(cpu["worker"] / took, 2),
        "statements_per_delivery": round(calls / per, 3),
        "statements": [
            {"calls": int(c), "mean_ms": round(float(t) / max(int(c), 1), 3), "query": q}
            for c, t, q in statements[:12]
        ],
        "worker_log_lines": sum(1 for _ in log.open()) if log.exists() else 0,
        "loadavg": os.getloadavg(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _fill(conn: psycopg.Connection[Any], args: argparse.Namespace, events: int) -> int:
    """Write the notices: all at once, or `args.rate` a second for `args.duration` seconds."""
    if not args.rate:
        conn.execute(FILL, {"first": 0, "count": args.notices, "events": events})
        return int(args.notices)
    written, started = 0, time.monotonic()
    while (elapsed := time.monotonic() - started) < args.duration:
        due = int(elapsed * args.rate) - written
        if due > 0:
            conn.execute(FILL, {"first": written, "count": due, "events": events})
            written += due
        time.sleep(FILL_EVERY_S)
    return written


def _drain(conn: psycopg.Connection[Any], worker: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline and worker.poll() is None:
        row = conn.execute(MARK + notify.BACKLOG).fetchone()
        assert row is not None  # noqa: S101 -- a SELECT of values returns one row
        if row[0] == 0 and row[1] == 0:
            return True
        time.sleep(0.1)
    return False


def _scalar(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None  # noqa: S101 -- a count returns one row
    return int(row[0])


def _subscribe(conn: psycopg.Connection[Any], at: str) -> None:
    """One subscription to `*` per company, the receiver its URL (as `bench --notify`)."""
    from expense_core.webhooks import new_secret

    for (company,) in conn.execute(
        "/* worker_cost */ SELECT id FROM companies ORDER BY id"
    ).fetchall():
        conn.execute(
            "/* worker_cost */ INSERT INTO webhooks"
            " (company_id, url, topics, secret, active, created_at)"
            " VALUES (%s, %s, '*', %s, true, now() AT TIME ZONE 'UTC')",
            (company, f"{at}/hooks", new_secret()),
        )


def _wait_idle(pid: int) -> None:
    """Until the worker's start (its imports, its first empty rounds) is over."""
    process = psutil.Process(pid)
    last = -1.0
    for _ in range(120):
        time.sleep(0.5)
        times = process.cpu_times()
        spent = times.user + times.system
        if spent - last < IDLE_CPU_S:
            return
        last = spent
    raise SystemExit("the worker never went idle")


def _cpus(worker: int, receiver: int, postmaster: int) -> dict[str, float]:
    return {
        "worker": sum(bench._cpu(worker, descendants=False).values()),
        "receiver": sum(bench._cpu(receiver, descendants=False).values()),
        "postgres": sum(bench._cpu(postmaster).values()),
    }


@contextlib.contextmanager
def _postgres(explain_ms: int | None) -> Iterator[tuple[str, int]]:
    """A database on a throwaway server with pg_stat_statements loaded (and auto_explain, given
    `explain_ms`); its postmaster's pid."""
    from tests import pg

    server = pg.Cluster.create()
    try:
        with server.connect() as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        server.shut_down()
        server.start_up()
        if explain_ms is not None:
            with server.connect() as conn:
                conn.execute("LOAD 'auto_explain'")
                conn.execute("ALTER SYSTEM SET session_preload_libraries = 'auto_explain'")
                conn.execute(f"ALTER SYSTEM SET auto_explain.log_min_duration = {int(explain_ms)}")
                conn.execute("ALTER SYSTEM SET auto_explain.log_analyze = on")
                conn.execute("SELECT pg_reload_conf()")
        database_url = server.url(server.create_database())
        yield database_url, bench._postmaster(database_url)
    finally:
        if explain_ms is not None and server.log.exists():
            shutil.copy(server.log, bench.REPORTS / "worker-cost-postgres.log")
        server.stop()


@contextlib.contextmanager
def _profiled(out: Path | None, pid: int) -> Iterator[None]:
    if out is None:
        yield
        return
    spy = subprocess.Popen(  # noqa: S603 -- our own command
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--threads",
         "--output", str(out), "--rate", "200", "--gil",
         "--format", "raw" if out.suffix == ".txt" else "flamegraph"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(2)
        spy.wait(timeout=60)


if __name__ == "__main__":
    raise SystemExit(main())
