"""The load runner: a throwaway PostgreSQL, the server, the seed's data, locust, one JSON object.

Starts a PostgreSQL server (as the tests do), migrates a database, seeds the demo and synthetic
companies (`seed synthetic --plan`), analyzes the tables, serves it with `--workers`, runs the
50/30/20 mix of `loadtest/locustfile.py` for a fixed time after the ramp-up (statistics start
when every user is running), then prints ONE JSON object: throughput, p50/p95/p99 per endpoint
and overall, failures, and CPU milliseconds per request of the server processes, of every
PostgreSQL process of the cluster and of the load generator (this process). Writes a PNG of
throughput and latency over time, and with --html locust's HTML report. Stops everything it
started.

    python -m loadtest.bench [--scenario spike] [--workers 2] [--duration 30] [--html]
    python -m loadtest.bench --scenario medium --workers 2 --soak 1800   # make soak
    python -m loadtest.bench --notify   # and a webhook worker delivering every event (NOTIFY=1)
    python -m loadtest.bench --pages    # and one user in ten viewing pages (PAGES=1)

With --host it drives a server that is already running (seeded with `seed demo`, and `--plan`
for synthetic companies) and measures no CPU. Figures are locust's: the generator shares the
machine and costs CPU of its own (reported).
"""

# isort: off
# locust patches the standard library for gevent as it is imported: it must come first.
from locust import User, events
from locust.env import Environment
from locust.html import get_html_report
from locust.stats import stats_history

# isort: on
import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import gevent
import gevent.event
import psutil

from loadtest import locustfile, notify, pages

ROOT: Final = Path(__file__).resolve().parent.parent
REPORTS: Final = ROOT / "loadtest" / "reports"
BIN: Final = Path(sys.executable).parent
ENDPOINTS: Final = (
    "POST /api/expenses",
    "POST /api/expenses/approve",
    f"GET {locustfile.STATUS_NAME}",
    "GET /api/approvals",
)
PAGE_ENDPOINTS: Final = (f"GET {pages.INBOX_NAME}", f"GET {pages.EXPENSE_PAGE_NAME}")
READY_TIMEOUT_S: Final = 60
# PostgreSQL connections across all workers: 8 did better than 16 on 2 cores (more only queue).
POOL_BUDGET: Final = 8


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario", choices=sorted(locustfile.SCENARIOS), default="spike", help="(spike)"
    )
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (1)")
    parser.add_argument(
        "--duration", type=int, help="seconds measured after ramp-up (default: the scenario's)"
    )
    parser.add_argument(
        "--pool-size", type=int, help="connections per worker (default: 8 in all, split)"
    )
    parser.add_argument("--companies", type=int, default=8, help="synthetic companies (8)")
    parser.add_argument("--users-per-company", type=int, default=500, help="(500)")
    parser.add_argument("--expenses", type=int, default=1000, help="expenses seeded (1000)")
    parser.add_argument("--html", action="store_true", help="save locust's HTML report too")
    parser.add_argument("--host", help="drive this running server; start nothing")
    parser.add_argument("--plan", help="with --host: the server's load plan (seed synthetic)")
    parser.add_argument(
        "--soak",
        type=int,
        metavar="SECONDS",
        help="a soak run of SECONDS (make soak: 1800): adds RSS of each server process and "
        'database connections at start and end, and throughput drift, under "soak"',
    )
    parser.add_argument(
        "--notify",
        action="store_true",
        help="subscribe a local receiver to every event of every company and run a worker "
        'beside the server: deliveries per second, backlog and worker CPU under "notify"',
    )
    parser.add_argument(
        "--pages",
        action="store_true",
        help="one user in ten views pages instead (the inbox and its expenses, signed in as the "
        "demo approver): their latency under /app/inbox and /app/expenses/[id]",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.notify and args.host:
        parser.error("--notify starts a worker on the runner's own database: not with --host")
    scenario = locustfile.SCENARIOS[args.scenario]
    duration = args.soak or args.duration or scenario.run_time
    pool_size = args.pool_size or max(2, POOL_BUDGET // args.workers)
    REPORTS.mkdir(parents=True, exist_ok=True)
    tag = f"{args.scenario}-{args.workers}w"
    with contextlib.ExitStack() as stack:
        database_url = None
        notified = None
        if args.host:
            url, plan, server_pids, postgres_pid = args.host, args.plan, None, None
        else:
            database_url = stack.enter_context(_postgres())
            plan = str(REPORTS / "plan.json")
            _seed(database_url, args, plan)
            _analyze(database_url)
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            env = _server_env(database_url, args.workers, pool_size, port)
            if args.notify:
                env["WEBHOOK_ALLOW_PRIVATE"] = "1"  # the receiver listens on 127.0.0.1
            server_log = REPORTS / f"server-{tag}.log"
            server_pids = stack.enter_context(_server(env, url, server_log))
            postgres_pid = _postmaster(database_url)
            if args.notify:
                log = REPORTS / f"worker-{tag}.log"
                notified = stack.enter_context(
                    notify.started(url, _conninfo(database_url), env, log)
                )
        locustfile.configure(args.scenario, plan)
        probe = None
        if args.soak:
            root = server_pids[0] if server_pids else None
            probe = lambda: _soak_probe(root, database_url)  # noqa: E731 -- bound here
        result = _drive(
            url, scenario, duration, server_pids, postgres_pid, probe, notified, args.pages
        )
    figures = _figures(result, args, duration, pool_size)
    if args.soak:
        figures["soak"] = _soak_figures(result)
    if notified is not None:
        figures["notify"] = notified.figures()
    figures["plot"] = str(_plot(result["series"], REPORTS / f"bench-{tag}.png", figures))
    if args.html:
        report = REPORTS / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}.html"
        report.write_text(result["html"])
        figures["html_report"] = str(report)
    print(json.dumps(figures))
    healthy = (
        figures["failures"] == 0
        and figures.get("soak", {}).get("rss_growth_ok", True)
        and figures.get("notify", {}).get("flat", True)
    )
    return 0 if healthy else 1


# --- what is started, and stopped ------------------------------------------------------------


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    """A migrated database on a throwaway server (tests/pg.py), removed afterwards."""
    from tests import pg

    server = pg.server()
    try:
        name = server.create_database()
        yield server.url(name)
    finally:
        server.stop()


def _seed(database_url: str, args: argparse.Namespace, plan: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    cli = str(BIN / "expense-tracker")
    steps = (
        [cli, "db", "upgrade"],
        [cli, "seed", "demo"],
        [cli, "seed", "synthetic", "--companies", str(args.companies),
         "--users-per-company", str(args.users_per_company), "--expenses", str(args.expenses),
         "--plan", plan],
    )  # fmt: skip
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, check=False)  # noqa: S603 -- our own command
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(step[1:3])} failed: {done.stderr.strip()}")


def _conninfo(database_url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    from sqlalchemy.engine import make_url

    conninfo = make_url(database_url).set(drivername="postgresql")
    return conninfo.render_as_string(hide_password=False)


def _analyze(database_url: str) -> None:
    """Gather planner statistics over the freshly seeded tables, as autovacuum would within a
    minute or so: without them every company looks three rows big and plans go wrong."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("ANALYZE")


def _server_env(database_url: str, workers: int, pool_size: int, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "WORKERS": str(workers),
        "DB_POOL_SIZE": str(pool_size),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "AUTH_MODE": "demo",
        # quiet unless asked: LOG_LEVEL=INFO measures the access log's cost as well
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }


@contextlib.contextmanager
def _server(env: dict[str, str], url: str, log: Path) -> Iterator[list[int]]:
    """The server in its own process group, writing to `log` (a file: a pipe nobody reads
    would stall the server once full, as LOG_LEVEL=INFO fills one in seconds); yields the pid
    of its first process."""
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 -- our own command
            [str(BIN / "expense-tracker"), "serve"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(process, url, log)
        yield [process.pid]
    finally:
        _stop_group(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = log.read_text(errors="replace").strip()[-4000:]
            raise SystemExit(f"the server exited ({log}): {said}")
        ready = f"{url}/health/ready"
        with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2) as answer:  # noqa: S310 -- our own URL
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it is ours alone), then SIGKILL what lingers."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # workers that outlived their parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postmaster(database_url: str) -> int:
    """The PostgreSQL server's main process: the parent of a backend serving us."""
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False)) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None  # noqa: S101 -- a SELECT of one value returns one row
        # While the backend lives: once the connection closes its pid may be gone.
        parent: int = psutil.Process(int(row[0])).ppid()
    return parent


# --- measuring -------------------------------------------------------------------------------


def _cpu(root: int | None, *, descendants: bool = True) -> dict[int, float]:
    """CPU seconds (user + system) of a process and (by default) its descendants, by pid."""
    if root is None:
        return {}
    found: dict[int, float] = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        top = psutil.Process(root)
        family = top.children(recursive=True) if descendants else []
        for process in (top, *family):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                found[process.pid] = times.user + times.system
    return found


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    # A process born during the run counts whole; one that died is lost (pools keep theirs).
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _drive(
    url: str,
    scenario: locustfile.Scenario,
    duration: int,
    server_pids: list[int] | None,
    postgres_pid: int | None,
    probe: Callable[[], dict[str, Any]] | None = None,
    notified: notify.Notify | None = None,
    with_pages: bool = False,
) -> dict[str, Any]:
    users: list[type[User]] = [locustfile.ExpenseUser]
    if with_pages:
        pages.PageViewer.delay = scenario.delay
        locustfile.ExpenseUser.weight = pages.SHARE - 1
        users.append(pages.PageViewer)
    env = Environment(user_classes=users, host=url, events=events)
    runner = env.create_local_runner()
    history = gevent.spawn(stats_history, runner)
    ramped = gevent.event.Event()
    env.events.spawning_complete.add_listener(lambda user_count: ramped.set())
    series: list[dict[str, float]] = []
    started = time.monotonic()
    sampler = gevent.spawn(_sample, runner, series, started)
    runner.start(scenario.users, spawn_rate=scenario.spawn_rate)
    ramped.wait(timeout=120)
    # Statistics and CPU both start once every user runs: the ramp-up is not measured.
    runner.stats.reset_all()
    me = os.getpid()
    server_root = server_pids[0] if server_pids else None
    cpu_before = (_cpu(server_root), _cpu(postgres_pid), _cpu(me, descendants=False))
    probed = [probe()] if probe else []
    watcher = None
    if notified is not None:
        notified.begin()
        watcher = gevent.spawn(notified.watch)
    window_start = time.monotonic()
    gevent.sleep(duration)
    cpu_after = (_cpu(server_root), _cpu(postgres_pid), _cpu(me, descendants=False))
    probed += [probe()] if probe else []
    if notified is not None:
        notified.finish()
    window = time.monotonic() - window_start
    runner.stop()
    if notified is not None and watcher is not None:
        notified.stop_watching()
        watcher.join()
        notified.drain()  # the load has stopped: what the worker had left
    stats = runner.stats
    html = get_html_report(env)
    runner.quit()
    sampler.kill()
    history.kill()
    return {
        "stats": stats,
        "window": window,
        "ramp_ends": window_start - started,
        "series": series,
        "server_cpu": _spent(cpu_before[0], cpu_after[0]) if server_root else None,
        "postgres_cpu": _spent(cpu_before[1], cpu_after[1]) if postgres_pid else None,
        "generator_cpu": _spent(cpu_before[2], cpu_after[2]),
        "html": html,
        "probes": probed,
    }


def _sample(runner: Any, series: list[dict[str, float]], started: float) -> None:
    """Once a second: requests and failures per second, and the recent p50/p95/p99."""
    last_requests = last_failures = 0
    last = time.monotonic()
    while True:
        gevent.sleep(1.0)
        now, total = time.monotonic(), runner.stats.total
        elapsed = now - last
        requests, failures = total.num_requests, total.num_failures
        if requests < last_requests:  # the statistics were reset after the ramp-up
            last_requests = last_failures = 0
        series.append(
            {
                "t": now - started,
                "rps": (requests - last_requests) / elapsed,
                "fails": (failures - last_failures) / elapsed,
                "p50": total.get_current_response_time_percentile(0.5) or 0,
                "p95": total.get_current_response_time_percentile(0.95) or 0,
                "p99": total.get_current_response_time_percentile(0.99) or 0,
            }
        )
        last_requests, last_failures, last = requests, failures, now


# --- soak: what must not creep over a long run -----------------------------------------------

SOAK_RSS_GROWTH_LIMIT: Final = 0.10
DRIFT_SHARE: Final = 0.1  # throughput of the first and the last tenth of the run are compared


def _soak_probe(server_root: int | None, database_url: str | None) -> dict[str, Any]:
    """RSS of each server process by pid, and the database's client connections, now."""
    rss: dict[str, int] = {}
    if server_root is not None:
        with contextlib.suppress(psutil.NoSuchProcess):
            top = psutil.Process(server_root)
            for process in (top, *top.children(recursive=True)):
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss[str(process.pid)] = process.memory_info().rss
    return {"rss": rss, "db_connections": _connections(database_url) if database_url else None}


def _connections(database_url: str) -> int:
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def _soak_figures(result: dict[str, Any]) -> dict[str, Any]:
    """RSS per process at start and end (and growth), connections, throughput drift."""
    start, end = result["probes"]
    mib = 1 << 20
    processes = {}
    for pid in sorted(start["rss"].keys() | end["rss"].keys(), key=int):
        before, after = start["rss"].get(pid), end["rss"].get(pid)
        growth = None if not before or after is None else round((after - before) / before, 3)
        processes[pid] = {
            "rss_start_mib": None if before is None else round(before / mib, 1),
            "rss_end_mib": None if after is None else round(after / mib, 1),
            "growth": growth,
        }
    series = [s for s in result["series"] if s["t"] >= result["ramp_ends"]]
    share = max(1, int(len(series) * DRIFT_SHARE))
    first = sum(s["rps"] for s in series[:share]) / share if series else 0.0
    last = sum(s["rps"] for s in series[-share:]) / share if series else 0.0
    growths = [p["growth"] for p in processes.values() if p["growth"] is not None]
    return {
        "processes": processes,
        # A process that was replaced (or died) shows only at one end: that is a finding too.
        "same_processes": start["rss"].keys() == end["rss"].keys(),
        "rss_growth_max": max(growths, default=None),
        "rss_growth_ok": bool(growths)
        and max(growths) < SOAK_RSS_GROWTH_LIMIT
        and start["rss"].keys() == end["rss"].keys(),
        "db_connections_start": start["db_connections"],
        "db_connections_end": end["db_connections"],
        "rps_first_tenth": round(first, 1),
        "rps_last_tenth": round(last, 1),
        "throughput_drift": round((last - first) / first, 3) if first else None,
    }


def _latencies(entry: Any) -> dict[str, float]:
    return {
        "p50_ms": entry.get_response_time_percentile(0.5),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
        "mean_ms": round(entry.avg_response_time, 1),
    }


def _per_request(seconds: float | None, requests: int) -> float | None:
    if seconds is None or requests == 0:
        return None
    return round(seconds * 1000 / requests, 3)


def _figures(
    result: dict[str, Any], args: argparse.Namespace, duration: int, pool_size: int
) -> dict[str, Any]:
    stats, window = result["stats"], result["window"]
    total = stats.total
    endpoints = {}
    pages_viewed = PAGE_ENDPOINTS if args.pages else ()
    for name in ENDPOINTS + pages_viewed:
        method, _, path = name.partition(" ")
        entry = stats.entries.get((path, method))
        if entry is None or entry.num_requests == 0:
            continue
        endpoints[name] = {
            "requests": entry.num_requests,
            "rps": round(entry.num_requests / window, 1),
            "failures": entry.num_failures,
            **_latencies(entry),
        }
    requests = total.num_requests
    scenario = locustfile.SCENARIOS[args.scenario]
    return {
        "runner": "loadtest.bench",
        "generator": "locust FastHttpUser, in the runner's process",
        "scenario": args.scenario,
        "users": scenario.users,
        "delay_s": scenario.delay,
        "workers": args.workers,
        "pool_size_per_worker": None if args.host else pool_size,
        "cpus": os.cpu_count(),
        "seconds": round(window, 1),
        "requested_seconds": duration,
        "requests": requests,
        "rps": round(requests / window, 1),
        "failures": total.num_failures,
        **_latencies(total),
        "endpoints": endpoints,
        "errors": [
            f"{e.method} {e.name}: {e.error} x{e.occurrences}" for e in stats.errors.values()
        ][:5],
        "server_cpu_ms_per_request": _per_request(result["server_cpu"], requests),
        "postgres_cpu_ms_per_request": _per_request(result["postgres_cpu"], requests),
        "generator_cpu_ms_per_request": _per_request(result["generator_cpu"], requests),
        "server_cpu_cores": _cores(result["server_cpu"], window),
        "postgres_cpu_cores": _cores(result["postgres_cpu"], window),
        "generator_cpu_cores": _cores(result["generator_cpu"], window),
        "seeded": None
        if args.host
        else {
            "companies": args.companies + 1,
            "users_per_company": args.users_per_company,
            "expenses": args.expenses,
        },
        "postgres": None if args.host else "throwaway cluster (tests/pg.py): fsync=off",
    }


def _cores(seconds: float | None, window: float) -> float | None:
    return None if seconds is None else round(seconds / window, 2)


def _plot(series: list[dict[str, float]], path: Path, figures: dict[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    t = [s["t"] for s in series]
    figure, (top, bottom) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
    top.plot(t, [s["rps"] for s in series], label="requests/s")
    top.plot(t, [s["fails"] for s in series], label="failures/s", color="red")
    top.set_ylabel("per second")
    top.legend(loc="lower right")
    top.set_title(
        f"{figures['scenario']} ({figures['users']} users), {figures['workers']} worker(s): "
        f"{figures['rps']} req/s, p95 {figures['p95_ms']} ms"
    )
    for key in ("p50", "p95", "p99"):
        bottom.plot(t, [s[key] for s in series], label=key)
    bottom.set_ylabel("latency, ms (last 10 s)")
    bottom.set_xlabel("seconds since start (statistics from the end of the ramp-up)")
    bottom.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
