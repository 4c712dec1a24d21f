"""Prometheus metrics: what the service counts, and the page a scrape reads (GET /metrics).

Several workers serve one port, so each writes its figures to files in a directory they share
(prometheus-client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, which `serve` makes and
removes) and a scrape, answered by any one of them, reads every worker's: counters and
histograms are summed, gauges of work in progress summed over the workers alive. Without the
directory (tests, a library user's own process) the figures live in this process alone.

prometheus-client reads the variable when it is first imported: this module is imported only
by the container, once the setting is known (`METRICS=false` never loads it), and `serve` sets
the variable before that.

Every metric is listed, with its labels, in docs/operations.md.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

import attrs
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from entrypoints.logs import drained
from entrypoints.settings import METRICS_DIR_VARIABLE
from expense_core.errors import Unavailable
from expense_core.model import EventKind, Expense, ExpenseEvent
from expense_core.views import Backlog
from expense_core.webhooks import Backlog as OutboxBacklog

MULTIPROC_DIR: Final = METRICS_DIR_VARIABLE
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
# From a minute to a month: how long an expense waits for its last decision.
DECISION_BUCKETS: Final = (60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400)
# Waits for a pooled connection: past DB_POOL_TIMEOUT_MS (5 s by default) a request gives up.
POOL_WAIT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

Change = tuple[Expense, Sequence[ExpenseEvent]]
# How late a request's figures may reach the values a scrape reads (see `Tally`).
FLUSH_S: Final = 0.25

log = logging.getLogger("expense_tracker.metrics")


def is_multiprocess() -> bool:
    """Whether figures are shared through files with the other workers."""
    return bool(os.environ.get(MULTIPROC_DIR))


class Tally:
    """Changes to the figures made while serving, held in this process and made to the
    metrics' values together (`flush`): every `FLUSH_S` by one thread for every tally, before
    a scrape reads them, and when the app shuts down.

    In multiprocess mode each change to a value is a locked write to a file the workers share,
    and a request makes eight or so; held here, each is an append, and a flush makes one write
    per value that changed (observations of a histogram are still made one by one, at flush).
    Appends and pops of a deque are each one step no other thread comes between: nothing
    handed over is lost or counted twice, whichever threads count and flush.
    """

    def __init__(self) -> None:
        self._changes: deque[tuple[Counter | Gauge, float]] = deque()
        self._observations: deque[tuple[Histogram, float]] = deque()
        _TALLIES.add(self)
        _start_flusher()

    def add(self, value: Counter | Gauge, amount: float = 1.0) -> None:
        """Add `amount` to a counter's or a gauge's value (a gauge's may be negative)."""
        self._changes.append((value, amount))

    def observe(self, histogram: Histogram, amount: float) -> None:
        self._observations.append((histogram, amount))

    def flush(self) -> None:
        """Make every change handed over so far to the values, now."""
        totals: dict[int, tuple[Counter | Gauge, float]] = {}
        for value, amount in drained(self._changes):
            held = totals.get(id(value))
            totals[id(value)] = (value, amount if held is None else held[1] + amount)
        for value, total in totals.values():
            if total:
                value.inc(total)
        for histogram, amount in drained(self._observations):
            histogram.observe(amount)


_TALLIES: Final[weakref.WeakSet[Tally]] = weakref.WeakSet()
_FLUSHER: Final[list[threading.Thread]] = []
_FLUSHER_STARTING: Final = threading.Lock()


def flush_tallies() -> None:
    """Make every tally's changes to its values (at the app's shutdown, and at exit)."""
    for tally in list(_TALLIES):
        tally.flush()


atexit.register(flush_tallies)


def _start_flusher() -> None:
    """Start the thread that flushes every tally every `FLUSH_S`, unless it runs already."""
    with _FLUSHER_STARTING:
        if _FLUSHER and _FLUSHER[0].is_alive():
            return
        flusher = threading.Thread(target=_flush_every, name="metrics-tally", daemon=True)
        flusher.start()
        _FLUSHER[:] = [flusher]


def _flush_every() -> None:
    while True:
        time.sleep(FLUSH_S)
        try:
            flush_tallies()
        except Exception:
            log.exception("could not write the figures counted while serving")


class HttpMetrics:
    """Requests by route template (never the raw path: ids would make a series each)."""

    def __init__(self, registry: CollectorRegistry, tally: Tally) -> None:
        self._tally = tally
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            ["method", "route"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being served now, summed over the live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Each request's series, by method, route and status: found once, then by one lookup
        # (`labels` validates and joins its values on every call).
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.shed = Counter(
            "http_requests_shed_total",
            "Requests refused before routing by the in-flight limit, by reason: overloaded "
            "(503), request_timeout (408: the body came too slowly), shutting_down (503).",
            ["reason"],
            registry=registry,
        )

    def started(self) -> None:
        """A request is being served (until `answered`)."""
        self._tally.add(self.in_flight, 1)

    def answered(self, method: str, route: str, status: int, seconds: float) -> None:
        """A request that `started` was answered: `status`, after `seconds`."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series.setdefault(
                key,
                (
                    self.requests.labels(method, route, str(status)),
                    self.duration.labels(method, route),
                ),
            )
        requests, duration = series
        tally = self._tally
        tally.add(self.in_flight, -1)
        tally.add(requests)
        tally.observe(duration, seconds)


class DatabaseMetrics:
    """The connection pool and failed statements, told by the SQL adapter (`SqlObserver`)."""

    def __init__(self, registry: CollectorRegistry, tally: Tally) -> None:
        self._tally = tally
        self.pool_size = Gauge(
            "db_pool_size",
            "Connections the pools may hold, summed over the live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.in_use = Gauge(
            "db_pool_connections_in_use",
            "Connections checked out of the pools now, summed over the live workers.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.wait = Histogram(
            "db_pool_wait_seconds",
            "Waits for a connection when every pooled one was in use (its _count: how many).",
            registry=registry,
            buckets=POOL_WAIT_BUCKETS,
        )
        self.errors = Counter(
            "db_statement_errors_total",
            "Statements (or checkouts) that failed, by kind.",
            ["kind"],
            registry=registry,
        )

    def pool_sized(self, size: int) -> None:
        self.pool_size.set(size)

    def checked_out(self) -> None:
        self._tally.add(self.in_use, 1)

    def checked_in(self) -> None:
        self._tally.add(self.in_use, -1)

    def waited(self, seconds: float) -> None:
        self.wait.observe(seconds)

    def failed(self, kind: str) -> None:
        self.errors.labels(kind).inc()


_Series = TypeVar("_Series", Counter, Histogram)


class DomainMetrics:
    """Expenses as their events are committed (`committed`), whatever use case wrote them.

    Labelled by company only when `by_company` (METRICS_BY_COMPANY): a series per company.
    """

    def __init__(self, registry: CollectorRegistry, tally: Tally, *, by_company: bool) -> None:
        self._tally = tally
        self.by_company = by_company
        company = ["company"] if by_company else []
        self.submitted = Counter(
            "expenses_submitted_total",
            "Expenses submitted.",
            company,
            registry=registry,
        )
        self.closed = Counter(
            "expenses_closed_total",
            "Expenses that reached a final status: approved, rejected or withdrawn.",
            ["status", *company],
            registry=registry,
        )
        self.events = Counter(
            "expense_events_total",
            "Events appended to expenses' histories, by kind (submitted, approved, rejected, "
            "withdrawn, skipped, reassigned, and every kind added later).",
            ["kind"],
            registry=registry,
        )
        self.decision = Histogram(
            "expense_decision_seconds",
            "Time from an expense's submission to its final status, by that status.",
            ["status"],
            registry=registry,
            buckets=DECISION_BUCKETS,
        )
        self._labelled: dict[tuple[int, tuple[str, ...]], Counter | Histogram] = {}

    def committed(self, changes: Sequence[Change]) -> None:
        """Count what one unit of work committed: each expense written, with its new events.

        A final status refuses every later command, so the change that brings an expense to
        one is the only change written to it in that status: it is counted once.
        """
        for expense, events in changes:
            if not events:
                continue
            tally = self._tally
            company = (str(expense.company_id),) if self.by_company else ()
            for event in events:
                tally.add(self._series(self.events, event.kind.value))
                if event.kind is EventKind.SUBMITTED:
                    tally.add(self._series(self.submitted, *company) if company else self.submitted)
            if expense.is_terminal:
                status = expense.status.value
                tally.add(self._series(self.closed, status, *company))
                ended = expense.completed_at or max(e.at for e in events)
                waited = (ended - expense.submitted_at).total_seconds()
                tally.observe(self._series(self.decision, status), max(waited, 0.0))

    def _series(self, metric: _Series, *values: str) -> _Series:
        """`metric.labels(*values)`, looked up once (`labels` validates and joins its values on
        every call)."""
        key = (id(metric), values)
        series = self._labelled.get(key)
        if series is None:
            series = self._labelled.setdefault(key, metric.labels(*values))
        return series  # type: ignore[return-value]  # the key holds the metric's identity


class DeliveryMetrics:
    """What the notification worker's attempts came to (counted in the worker's process: run
    it with the server's PROMETHEUS_MULTIPROC_DIR to read them at the server's /metrics)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "notification_delivery_attempts_total",
            "Delivery attempts, by channel (webhook, email) and what followed (delivered, "
            "retrying, failed).",
            ["channel", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "notification_delivery_seconds",
            "Time one delivery attempt took, by channel.",
            ["channel"],
            registry=registry,
        )
        self._counted: dict[tuple[str, str], Counter] = {}
        self._timed: dict[str, Histogram] = {}

    def attempted(self, channel: str, result: str, seconds: float) -> None:
        # Each label's child found once: `labels` checks and joins its values at every call,
        # and the worker counts every attempt (2 channels, 3 results: never evicted).
        counted = self._counted.get((channel, result))
        if counted is None:
            counted = self._counted[channel, result] = self.attempts.labels(channel, result)
        timed = self._timed.get(channel)
        if timed is None:
            timed = self._timed[channel] = self.duration.labels(channel)
        counted.inc()
        timed.observe(seconds)


# --- the scrape ------------------------------------------------------------------------------


@attrs.frozen
class _Backlog(Collector):
    """The database's state, read when scraped: one worker reads it for all of them."""

    backlog: Callable[[], Backlog]
    now: Callable[[], datetime]
    outbox: Callable[[], OutboxBacklog] | None = None

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("db_up", "Whether the database answered this scrape (1) or not.")
        try:
            found = self.backlog()
        except Unavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "expense_pending_steps",
            "Approval steps waiting for a decision, in every company.",
            value=found.pending_steps,
        )
        since = found.oldest_pending_since
        age = 0.0 if since is None else max((self.now() - since).total_seconds(), 0.0)
        yield GaugeMetricFamily(
            "expense_oldest_pending_step_age_seconds",
            "How long the oldest pending step has waited (since its expense's submission); "
            "0 when none waits.",
            value=age,
        )
        if self.outbox is None:
            return
        try:
            waiting = self.outbox()
        except Unavailable:
            return  # gone since the read above: db_up says enough
        yield GaugeMetricFamily(
            "outbox_undispatched_notices",
            "Notices in the outbox the worker has not yet made deliveries of.",
            value=waiting.undispatched,
        )
        yield GaugeMetricFamily(
            "outbox_undelivered",
            "Deliveries not yet settled: pending, being attempted, or retrying later.",
            value=waiting.undelivered,
        )
        lag = waiting.waited(self.now())
        yield GaugeMetricFamily(
            "outbox_oldest_undelivered_age_seconds",
            "How long the oldest notice or delivery not yet settled has waited; 0 when none.",
            value=lag,
        )


@attrs.frozen
class _Workers(Collector):
    """Each live worker's standard process figures (CPU, memory, open files), labelled `pid`.

    prometheus-client's process collector reads one process (/proc/<pid>); in multiprocess
    mode a scrape reads every worker that has a live-gauge file, so the figures of all of them
    are there whichever answers.
    """

    path: Path

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.pids():
            reader = ProcessCollector(pid=lambda pid=pid: pid, registry=None)  # type: ignore[misc]
            for metric in reader.collect():
                family = families.get(metric.name)
                if family is None:
                    family = families[metric.name] = Metric(
                        metric.name, metric.documentation, metric.type
                    )
                family.samples += [
                    Sample(s.name, {**s.labels, "pid": str(pid)}, s.value, s.timestamp)
                    for s in metric.samples
                ]
        yield from families.values()

    def pids(self) -> list[int]:
        live = (p.stem.rpartition("_")[2] for p in self.path.glob("gauge_livesum_*.db"))
        return sorted(int(pid) for pid in live if pid.isdigit() and Path(f"/proc/{pid}").exists())


@attrs.frozen
class _Together:
    """Collectors read as one (what `generate_latest` reads)."""

    collectors: tuple[Collector | CollectorRegistry, ...]

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


class Metrics:
    """Every figure the service keeps, on one registry (per container: tests get their own)."""

    def __init__(self, *, by_company: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.tally = Tally()
        self.http = HttpMetrics(self.registry, self.tally)
        self.database = DatabaseMetrics(self.registry, self.tally)
        self.domain = DomainMetrics(self.registry, self.tally, by_company=by_company)
        self.deliveries = DeliveryMetrics(self.registry)
        self.multiprocess = is_multiprocess()
        if not self.multiprocess:
            # Alone, this process's own figures are the service's.
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def scrape(
        self,
        backlog: Callable[[], Backlog],
        outbox: Callable[[], OutboxBacklog] | None = None,
    ) -> bytes:
        """The text a scrape reads: every worker's figures, then the database's state."""
        self.tally.flush()  # this worker's figures up to now; the others' within FLUSH_S
        state = _Backlog(backlog, lambda: datetime.now(UTC), outbox)
        if not self.multiprocess:
            return generate_latest(_Together((self.registry, state)))
        shared = CollectorRegistry()
        MultiProcessCollector(shared)  # type: ignore[no-untyped-call]  # unannotated upstream
        path = Path(os.environ[MULTIPROC_DIR])
        platform = PlatformCollector(registry=None)
        together = _Together((shared, _Workers(path), platform, state))
        return generate_latest(together)


def worker_exited(pid: int) -> None:
    """Forget a dead worker's in-progress figures (its counters stay in the sums)."""
    if is_multiprocess():
        mark_process_dead(pid)  # type: ignore[no-untyped-call]  # unannotated upstream
