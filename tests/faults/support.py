"""What the fault tests share: the server process, a load driver that records every request,
and the checks every expense must pass once the dust settles."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import httpx
import psutil  # type: ignore[import-untyped]  # no stubs: types-psutil is no dev dependency

from tests.e2e.conftest import cli_command, environment, free_port, run_cli
from tests.pg import PgServer

READY_TIMEOUT_S: Final = 30.0
CLIENT_TIMEOUT_S: Final = 30.0
DEMO_SUBMITTER: Final = 7  # Grace Taylor, SDE3: her reporting chain approves every demo policy
# (category, low, high) in cents: one, three and two steps under the demo's policies.
AMOUNTS: Final = (("equipment", 20_00, 1999_99), ("equipment", 2000_00, 9000_00),
                  ("travel", 150_00, 4800_00))  # fmt: skip


# --- the server --------------------------------------------------------------------------------


@attrs.define
class Server:
    """`expense-tracker serve` in a process group of its own."""

    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[psutil.Process]:
        """The worker processes (children that serve), or the server itself with one worker."""
        try:
            children = psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []
        serving = [c for c in children if _is_worker(c)]
        return serving or [psutil.Process(self.pid)]

    def rss(self) -> dict[int, int]:
        """Resident bytes of each serving process, by pid."""
        found = {}
        for process in self.workers():
            with contextlib.suppress(psutil.NoSuchProcess):
                found[process.pid] = process.memory_info().rss
        return found

    def client(self, timeout: float = CLIENT_TIMEOUT_S) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def answers(self, timeout: float = 5.0) -> bool:
        """A new connection gets 200 from the liveness probe within `timeout`."""
        try:
            return httpx.get(f"{self.base_url}/health/live", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL whatever is left (workers that outlived it too)."""
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if self.process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _is_worker(process: psutil.Process) -> bool:
    try:
        cmdline = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "multiprocessing" in cmdline and "resource_tracker" not in cmdline


def prepare(database_url: str) -> dict[str, str]:
    """Migrate and seed the demo on `database_url`; the environment to serve it with."""
    env = environment(DATABASE_URL=database_url, HOST="127.0.0.1", AUTH_MODE="demo")
    for command in (("db", "upgrade"), ("seed", "demo")):
        done = run_cli(*command, env=env)
        assert done.returncode == 0, done.stderr
    return env


def start_server(env: dict[str, str], log: Path, *serve_args: str, **settings: str) -> Server:
    """Serve with `settings` (WORKERS=2 ...) added to `env`; return once it is ready."""
    port = free_port()
    full = {**env, "PORT": str(port), "LOG_LEVEL": "WARNING", **settings}
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603 -- our own command
            [*cli_command(), "serve", *serve_args],
            env=full,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", port, log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    workers = int(full.get("WORKERS", "1"))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{log_text(log)}")
        if server.answers(timeout=1.0) and (workers == 1 or len(server.workers()) == workers):
            return server
        time.sleep(0.1)  # polling for readiness, bounded by the deadline
    server.stop()
    raise AssertionError(f"the server was not ready within {READY_TIMEOUT_S}s:\n{log_text(log)}")


def log_text(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else ""


# --- load ---------------------------------------------------------------------------------------


@attrs.frozen
class Outcome:
    """One request as the client saw it: when, what, and how it ended."""

    started: float  # time.monotonic()
    ended: float
    action: str  # create, approve, status
    status: int | None  # None: no HTTP answer (transport error)
    retry_after: str | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def submission(chooser: random.Random) -> dict[str, Any]:
    category, low, high = chooser.choice(AMOUNTS)
    cents = chooser.randint(low, high)
    return {
        "user_id": DEMO_SUBMITTER,
        "category": category,
        "amount": f"{cents // 100}.{cents % 100:02d}",
        "description": f"{category} for the team",
    }


class Load:
    """Client threads running the mix (50% create, 30% approve, 20% status) without pause.

    Each client approves the next required step of its own submissions as the approver the
    create answer named, so no two clients race for a step and every answer but a 2xx (or a
    503 while the database is away) is a finding. A client that did not hear how an approval
    ended forgets that expense: it cannot know which step is next.
    """

    def __init__(self, base_url: str, clients: int, *, seed: int = 1) -> None:
        self.base_url = base_url
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(seed * 1000 + i,), daemon=True)
            for i in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=CLIENT_TIMEOUT_S + 5)

    def between(self, start: float, end: float) -> list[Outcome]:
        """The requests that started and ended within [start, end]."""
        with self._lock:
            return [o for o in self.outcomes if o.started >= start and o.ended <= end]

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _run(self, seed: int) -> None:
        chooser = random.Random(seed)  # noqa: S311 -- a load mix, not a secret
        pending: deque[tuple[int, list[tuple[int, int]]]] = deque()
        known: deque[int] = deque(maxlen=50)
        with httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT_S) as client:
            while not self._stop.is_set():
                roll = chooser.random()
                if roll < 0.5 or (roll < 0.8 and not pending) or not known:
                    answer = self._call(client, "create", "POST", "/api/expenses",
                                        json=submission(chooser))  # fmt: skip
                    if answer is not None and answer.status_code == 201:
                        created = answer.json()
                        known.append(created["expense_id"])
                        steps = sorted(
                            (a["step"], a["approver_id"])
                            for a in created["approvals_required"]
                            if a["required"]
                        )
                        pending.append((created["expense_id"], steps))
                elif roll < 0.8:
                    expense_id, steps = pending.popleft()
                    _, approver = steps[0]
                    answer = self._call(client, "approve", "POST", "/api/expenses/approve",
                                        json={"expense_id": expense_id, "approver_id": approver,
                                              "comments": "ok"})  # fmt: skip
                    if answer is not None and answer.status_code == 200 and len(steps) > 1:
                        pending.append((expense_id, steps[1:]))
                else:
                    expense_id = chooser.choice(known)
                    self._call(client, "status", "GET", f"/api/expenses/{expense_id}/status")

    def _call(
        self, client: httpx.Client, action: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            answer = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self._record(Outcome(started, time.monotonic(), action, None, error=repr(exc)))
            return None
        self._record(
            Outcome(
                started,
                time.monotonic(),
                action,
                answer.status_code,
                retry_after=answer.headers.get("retry-after"),
            )
        )
        return answer


def success_rate(outcomes: Sequence[Outcome]) -> float:
    return sum(o.ok for o in outcomes) / len(outcomes) if outcomes else 0.0


def recovered_after(outcomes: Sequence[Outcome], since: float, *, window: float = 0.5) -> float:
    """Seconds after `since` from which every `window` of requests succeeded above 99%."""
    later = sorted((o for o in outcomes if o.started >= since), key=lambda o: o.started)
    if not later:
        return float("inf")
    last = later[-1].started
    recovered = since
    for start in itertools.takewhile(lambda t: t <= last, itertools.count(since, window)):
        batch = [o for o in later if start <= o.started < start + window]
        if batch and success_rate(batch) <= 0.99:
            recovered = start + window
    return recovered - since


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else "no answer"
        counts[key] = counts.get(key, 0) + 1
    return counts


def new_key() -> str:
    return uuid.uuid4().hex


# --- what must hold afterwards --------------------------------------------------------------


INVARIANT_QUERIES: Final = {
    # DESIGN §2: approved, with completed_at, exactly when no required approval is pending
    # and none is rejected.
    "approved exactly when no required step is pending or rejected": """
        SELECT e.id FROM expenses e
        WHERE (e.status = 'approved') <> NOT EXISTS (
            SELECT 1 FROM approvals a WHERE a.expense_id = e.id AND a.required
            AND a.status IN ('pending', 'rejected'))
    """,
    "approved or closed expenses have completed_at, pending ones do not": """
        SELECT id FROM expenses
        WHERE (status = 'pending') = (completed_at IS NOT NULL)
    """,
    "a closed expense has no pending approval": """
        SELECT e.id FROM expenses e JOIN approvals a ON a.expense_id = e.id
        WHERE e.status <> 'pending' AND a.status = 'pending'
    """,
    "an expense has one approval row per step of its policy": """
        SELECT e.id FROM expenses e
        WHERE (SELECT count(*) FROM approvals a WHERE a.expense_id = e.id)
           <> (SELECT count(*) FROM approval_steps s WHERE s.policy_id = e.policy_id)
    """,
    "an expense has exactly one submitted event": """
        SELECT e.id FROM expenses e
        WHERE (SELECT count(*) FROM expense_events v
               WHERE v.expense_id = e.id AND v.kind = 'submitted') <> 1
    """,
    "every decided approval has its event": """
        SELECT a.expense_id FROM approvals a
        WHERE a.status IN ('approved', 'rejected', 'skipped') AND NOT EXISTS (
            SELECT 1 FROM expense_events v WHERE v.expense_id = a.expense_id
            AND v.step_number = a.step_number AND v.kind = a.status)
    """,
    "every event of a step matches its approval": """
        SELECT v.expense_id FROM expense_events v
        WHERE v.kind IN ('approved', 'rejected', 'skipped') AND NOT EXISTS (
            SELECT 1 FROM approvals a WHERE a.expense_id = v.expense_id
            AND a.step_number = v.step_number AND a.status = v.kind)
    """,
}


def broken_invariants(server: PgServer, database: str) -> dict[str, list[int]]:
    """Each rule some expense breaks, with (up to ten of) the expenses breaking it."""
    broken = {}
    with server.connect(database) as conn:
        for rule, query in INVARIANT_QUERIES.items():
            ids = [int(str(row[0])) for row in conn.execute(query).fetchall()]
            if ids:
                broken[rule] = sorted(set(ids))[:10]
    return broken


def expense_count(server: PgServer, database: str) -> int:
    with server.connect(database) as conn:
        row = conn.execute("SELECT count(*) FROM expenses").fetchone()
    return int(str(row[0])) if row else 0
