"""Notifications under load (`python -m loadtest.bench --notify`): does the worker keep up?

Before the load starts: a local receiver (`loadtest/receiver.py`, its own process) is
subscribed to every event of every company in the database, and one `expense-tracker worker`
runs beside the server with the server's environment (private addresses allowed, no
escalation sweep). While the mix runs the outbox's backlog is sampled every few seconds; at
the end come the deliveries per second, the worker's CPU, and whether the backlog stayed flat.

The backlog is read with SQL from the runner's own throwaway database, as `worker --check`
reads it through the relay (adapters/sql/notifications.py): the runner imports nothing of the
service, and a subprocess every two seconds would cost more CPU than the query.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import gevent
import gevent.event
import gevent.lock
import psutil
import psycopg

from loadtest import mix

BIN: Final = Path(sys.executable).parent
SAMPLE_EVERY_S: Final = 2.0
# Flat: at the end nothing has waited longer than this (a worker that keeps up holds a notice
# for a round or two, well under a second) ...
FLAT_AGE_S: Final = 5.0
# ... and over the second half of the run the backlog grows by less than this share of the
# notices written per second (a worker that falls behind by 5% grows it by 5% of them).
FLAT_GROWTH_SHARE: Final = 0.05
DRAIN_TIMEOUT_S: Final = 30.0
STOP_WAIT_S: Final = 15.0
READY_TIMEOUT_S: Final = 30.0
BACKLOG: Final = """
SELECT
  (SELECT count(*) FROM outbox WHERE dispatched_at IS NULL),
  (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'retrying')),
  extract(epoch FROM (now() AT TIME ZONE 'UTC') - least(
    (SELECT min(at) FROM outbox WHERE dispatched_at IS NULL),
    (SELECT min(created_at) FROM deliveries WHERE status IN ('pending', 'retrying')))),
  (SELECT count(*) FROM outbox),
  (SELECT count(*) FROM deliveries WHERE status = 'delivered'),
  (SELECT count(*) FROM deliveries WHERE status = 'failed')
"""


class Notify:
    """The receiver, the worker and what was seen of them during one run."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        receiver: subprocess.Popen[str],
        receiver_url: str,
        worker: subprocess.Popen[bytes],
        worker_log: Path,
        subscriptions: int,
    ) -> None:
        self.conn = conn
        self.receiver = receiver
        self.receiver_url = receiver_url
        self.worker = worker
        self.worker_log = worker_log
        self.subscriptions = subscriptions
        self.samples: list[dict[str, Any]] = []
        self.start: dict[str, Any] = {}
        self.end: dict[str, Any] = {}
        self.started_at = 0.0
        self.drained_after_s: float | None = None
        self.receiver_total: int | None = None
        # The sampling greenlet and the runner share the connection: one query at a time.
        self._reading = gevent.lock.Semaphore()
        self._watching = gevent.event.Event()

    def snapshot(self) -> dict[str, Any]:
        """The backlog now (as `worker --check` names it), with the notices and deliveries so
        far."""
        with self._reading:
            row = self.conn.execute(BACKLOG).fetchone()
        assert row is not None  # noqa: S101 -- a SELECT of values returns one row
        undispatched, undelivered, age, notices, delivered, failed = row
        return {
            "undispatched": int(undispatched),
            "undelivered": int(undelivered),
            "oldest_undelivered_age_s": None if age is None else round(float(age), 3),
            "notices": int(notices),
            "delivered": int(delivered),
            "failed": int(failed),
        }

    def begin(self) -> None:
        """The start of the measured window."""
        self.started_at = time.monotonic()
        self.start = self._edge()

    def sample(self) -> None:
        backlog = self.snapshot()
        self.samples.append(
            {
                "t": round(time.monotonic() - self.started_at, 1),
                "undispatched": backlog["undispatched"],
                "undelivered": backlog["undelivered"],
                "oldest_age_s": backlog["oldest_undelivered_age_s"],
            }
        )

    def watch(self) -> None:
        """Sample every `SAMPLE_EVERY_S` until `stop_watching` (a greenlet of the runner)."""
        while not self._watching.wait(SAMPLE_EVERY_S):
            self.sample()

    def stop_watching(self) -> None:
        """End `watch` after the sample it may be taking (never in the middle of a query)."""
        self._watching.set()

    def finish(self) -> None:
        """The end of the measured window."""
        self.end = self._edge()

    def drain(self) -> None:
        """After the load: how long the worker takes to deliver what is left (or None)."""
        stopped = time.monotonic()
        while time.monotonic() - stopped < DRAIN_TIMEOUT_S:
            backlog = self.snapshot()
            if backlog["undispatched"] == 0 and backlog["undelivered"] == 0:
                self.drained_after_s = round(time.monotonic() - stopped, 1)
                return
            gevent.sleep(0.25)

    def _edge(self) -> dict[str, Any]:
        return {
            "at": time.monotonic(),
            "backlog": self.snapshot(),
            "received": self.received(),
            "worker_cpu": _cpu(self.worker.pid),
            "receiver_cpu": _cpu(self.receiver.pid),
            "worker_alive": self.worker.poll() is None,
        }

    def received(self) -> int:
        with urllib.request.urlopen(f"{self.receiver_url}/count", timeout=5) as answer:  # noqa: S310 -- our own URL
            counted: int = json.load(answer)["requests"]
            return counted

    def figures(self) -> dict[str, Any]:
        """What goes under "notify" in the runner's JSON line."""
        start, end = self.start, self.end
        window = end["at"] - start["at"]
        first, last = start["backlog"], end["backlog"]
        notices = last["notices"] - first["notices"]
        delivered = last["delivered"] - first["delivered"]
        received = end["received"] - start["received"]
        worker_cpu = end["worker_cpu"] - start["worker_cpu"]
        slope = growth([s for s in self.samples if s["t"] >= window / 2])
        age = last["oldest_undelivered_age_s"]
        return {
            "receiver": "loadtest/receiver.py: asyncio, 204 to every POST",
            "subscriptions": self.subscriptions,
            "notices": notices,
            "notices_per_s": round(notices / window, 1),
            "delivered": delivered,
            "deliveries_per_s": round(delivered / window, 1),
            "receiver_requests": received,
            "receiver_requests_per_s": round(received / window, 1),
            "receiver_requests_total": self.receiver_total,
            "failed_deliveries": last["failed"],
            "backlog_start": _backlog(first),
            "backlog_end": _backlog(last),
            "samples": self.samples,
            "backlog_slope_per_s": None if slope is None else round(slope, 2),
            "flat": end["worker_alive"] and is_flat(slope, age, notices / window),
            "drained_after_s": self.drained_after_s,
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_cpu_cores": round(worker_cpu / window, 2),
            "worker_cpu_ms_per_delivery": round(worker_cpu * 1000 / delivered, 3)
            if delivered
            else None,
            "receiver_cpu_cores": round((end["receiver_cpu"] - start["receiver_cpu"]) / window, 2),
            "worker_alive": end["worker_alive"],
            "worker_log": str(self.worker_log),
        }


def _backlog(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        key: snapshot[key] for key in ("undispatched", "undelivered", "oldest_undelivered_age_s")
    }


def is_flat(slope: float | None, oldest_age_s: float | None, notices_per_s: float) -> bool:
    """Whether the worker kept up: nothing waited long at the end, and the backlog did not grow
    over the second half (`slope`, from `growth`) by more than a small share of the notices."""
    if oldest_age_s is not None and oldest_age_s > FLAT_AGE_S:
        return False
    return slope is None or slope <= max(1.0, FLAT_GROWTH_SHARE * notices_per_s)


def growth(samples: list[dict[str, Any]]) -> float | None:
    """The backlog's (undispatched + undelivered) growth per second, least squares."""
    if len(samples) < 2:
        return None
    ts = [float(s["t"]) for s in samples]
    ys = [float(s["undispatched"] + s["undelivered"]) for s in samples]
    mean_t, mean_y = sum(ts) / len(ts), sum(ys) / len(ys)
    spread = sum((t - mean_t) ** 2 for t in ts)
    if spread == 0:
        return None
    return sum((t - mean_t) * (y - mean_y) for t, y in zip(ts, ys, strict=True)) / spread


def _cpu(pid: int) -> float:
    with contextlib.suppress(psutil.NoSuchProcess):
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    return 0.0


# --- what is started, and stopped ------------------------------------------------------------


@contextlib.contextmanager
def started(url: str, conninfo: str, env: dict[str, str], log: Path) -> Iterator[Notify]:
    """The receiver subscribed to `*` for every company, and a worker; both stopped after."""
    with psycopg.connect(conninfo, autocommit=True) as conn, _receiver() as (receiver, at):
        companies = [int(row[0]) for row in conn.execute("SELECT id FROM companies ORDER BY id")]
        for company in companies:
            subscription = {"url": f"{at}/hooks", "events": ["*"], "company_id": company}
            _post(f"{url}/api/webhooks", subscription)
        worker_env = {**env, "WEBHOOK_ALLOW_PRIVATE": "1", "ESCALATION_INTERVAL_S": "0"}
        with _worker(worker_env, log) as worker:
            notify = Notify(conn, receiver, at, worker, log, len(companies))
            _wait_delivering(notify, url)
            yield notify
        # The worker has finished its attempts in flight: the receiver's count is final.
        _stop(receiver)
        notify.receiver_total = _count_on_exit(receiver)


@contextlib.contextmanager
def _receiver() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtest.receiver"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None  # noqa: S101 -- a pipe was asked for
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the webhook receiver exited before listening")
        yield process, f"http://127.0.0.1:{json.loads(line)['port']}"
    finally:
        _stop(process)


def _count_on_exit(receiver: subprocess.Popen[str]) -> int | None:
    """The count the receiver printed as it stopped."""
    if receiver.stdout is None:
        return None
    last = receiver.stdout.read().strip().splitlines()
    receiver.stdout.close()
    return int(json.loads(last[-1])["requests"]) if last else None


@contextlib.contextmanager
def _worker(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as errors:
        process = subprocess.Popen(  # noqa: S603 -- our own command
            [str(BIN / "expense-tracker"), "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,  # a file: a pipe nobody reads would stall the worker when full
            start_new_session=True,
        )
        try:
            yield process
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM (the worker finishes the attempts in flight), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _post(url: str, body: dict[str, Any]) -> None:
    """POST JSON to the server and expect 201 (the bench serves AUTH_MODE=demo, where the body
    names the company or the person)."""
    request = urllib.request.Request(  # noqa: S310 -- our own URL
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 -- our own URL
        if answer.status != 201:
            raise SystemExit(f"POST {url} answered {answer.status}")


def _wait_delivering(notify: Notify, url: str) -> None:
    """Until the worker delivers: one expense submitted as the mix submits them, and its
    notices received. The worker's start (seconds of imports on a busy machine) is over before
    the load begins, and a subscription the worker cannot reach fails here, not in the run."""
    demo = (mix.Company(mix.DEMO_COMPANY, mix.DEMO_SUBMITTERS),)
    _post(f"{url}/api/expenses", mix.submission(random.Random(0), demo))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if notify.worker.poll() is not None:
            raise SystemExit(f"the worker exited: see {notify.worker_log}")
        backlog = notify.snapshot()
        if backlog["undispatched"] == backlog["undelivered"] == 0 and notify.received() > 0:
            return
        gevent.sleep(0.2)
    raise SystemExit(
        f"the worker delivered nothing in {READY_TIMEOUT_S:g} s: see {notify.worker_log}"
    )
