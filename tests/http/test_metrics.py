"""GET /metrics on the in-memory adapter: requests by route template, expenses as their events
are committed, the backlog, refusals by the in-flight limit, and the switch that turns it off.

One process, so the figures are this app's own (its container keeps its own registry); the
workers' shared files are tested on a real server (tests/e2e/test_observability.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from litestar.types import Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.container import container_for
from entrypoints.http import create_app
from entrypoints.http.middleware import in_flight_limit
from entrypoints.http.observe import observed
from entrypoints.metrics import Metrics, Tally
from entrypoints.settings import Settings
from expense_core.demo import install_demo
from tests.http.conftest import Client

GRACE, FRANK, EVE, DAVID = 7, 6, 5, 4

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def named(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def serve(**settings: Any) -> Iterator[Client]:
    container = container_for(Settings(database_url="memory://", **settings))
    install_demo(container.new_uow())
    with TestClient(create_app(container)) as client:
        yield client


@pytest.fixture
def by_company() -> Iterator[Client]:
    yield from serve(metrics_by_company=True)


def test_requests_are_counted_by_route_template_never_by_path(client: Client) -> None:
    created = client.post(
        "/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 800}
    ).json()
    for _ in range(3):
        assert client.get(f"/api/expenses/{created['expense_id']}/status").status_code == 200
    assert client.get("/api/expenses/999999/status").status_code == 404
    assert client.get("/no/such/path").status_code == 404

    samples = scrape(client)

    status_route = "/api/expenses/{expense_id}/status"
    assert value(samples, "http_requests_total", method="POST", route="/api/expenses", status="201")
    assert (
        value(samples, "http_requests_total", method="GET", route=status_route, status="200") == 3
    )
    assert (
        value(samples, "http_requests_total", method="GET", route=status_route, status="404") == 1
    )
    assert value(samples, "http_requests_total", method="GET", route="", status="404") == 1
    assert value(samples, "http_request_duration_seconds_count", method="GET", route=status_route)
    routes = {labels["route"] for labels in named(samples, "http_requests_total")}
    assert not any(char.isdigit() for route in routes for char in route)


def test_a_decision_is_counted_once_it_is_committed(client: Client) -> None:
    created = client.post(
        "/api/expenses", json={"user_id": GRACE, "policy_id": 2, "amount": 4000}
    ).json()
    expense_id = created["expense_id"]
    waiting = scrape(client)
    for approver in (FRANK, EVE):
        approved = {"expense_id": expense_id, "approver_id": approver}
        assert client.post("/api/expenses/approve", json=approved).status_code == 200
    # Refused: nothing is written, nothing counted.
    twice = {"expense_id": expense_id, "approver_id": EVE}
    assert client.post("/api/expenses/approve", json=twice).status_code == 409
    approved = {"expense_id": expense_id, "approver_id": DAVID}
    assert client.post("/api/expenses/approve", json=approved).status_code == 200

    samples = scrape(client)

    assert value(waiting, "expense_pending_steps") == 3
    assert value(waiting, "expenses_closed_total", status="approved") == 0
    assert value(samples, "expenses_submitted_total") == 1
    assert value(samples, "expense_events_total", kind="submitted") == 1
    assert value(samples, "expense_events_total", kind="approved") == 3
    assert value(samples, "expenses_closed_total", status="approved") == 1
    assert value(samples, "expense_decision_seconds_count", status="approved") == 1
    assert value(samples, "expense_pending_steps") == 0
    assert value(samples, "expense_oldest_pending_step_age_seconds") == 0
    assert value(samples, "db_up") == 1


def test_rejections_and_withdrawals_close_with_their_status(client: Client) -> None:
    first = client.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 10})
    second = client.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 20})
    rejected = {"expense_id": first.json()["expense_id"], "approver_id": FRANK, "reason": "no"}
    assert client.post("/api/expenses/reject", json=rejected).status_code == 200
    withdrawn = f"/api/expenses/{second.json()['expense_id']}/withdraw"
    assert client.post(withdrawn, json={"user_id": GRACE}).status_code == 200

    samples = scrape(client)

    assert value(samples, "expenses_closed_total", status="rejected") == 1
    assert value(samples, "expenses_closed_total", status="withdrawn") == 1
    assert value(samples, "expense_decision_seconds_count", status="withdrawn") == 1


def test_the_oldest_pending_step_has_an_age(client: Client) -> None:
    client.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 10})

    samples = scrape(client)

    assert value(samples, "expense_pending_steps") == 1
    assert value(samples, "expense_oldest_pending_step_age_seconds") >= 0
    assert ("expense_oldest_pending_step_age_seconds", frozenset()) in samples


def test_companies_label_the_expense_counters_only_when_asked(
    client: Client, by_company: Client
) -> None:
    for api in (client, by_company):
        api.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 10})

    assert value(scrape(client), "expenses_submitted_total") == 1
    assert named(scrape(client), "expenses_submitted_total") == [{}]
    assert value(scrape(by_company), "expenses_submitted_total", company="1") == 1


def test_the_standard_process_figures_are_there(client: Client) -> None:
    samples = scrape(client)

    assert value(samples, "process_resident_memory_bytes") > 0
    assert named(samples, "python_info")


def test_metrics_off_serve_no_page() -> None:
    for client in serve(metrics=False):
        assert client.get("/metrics").status_code == 404
        assert client.get("/").status_code == 200


def collected(metric: Any) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in metric.collect()
        for s in family.samples
    }


def test_requests_refused_by_the_in_flight_limit_are_counted_as_shed() -> None:
    metrics = Metrics()
    entered = asyncio.Event()
    release = asyncio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/":
            entered.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    limited = in_flight_limit(
        1,
        body_timeout_s=1,
        max_body_bytes=1024,
        on_refused=lambda code: metrics.http.shed.labels(code).inc(),
    )
    app = observed(limited(slow_app), metrics=metrics.http, access_log=False)

    async def request(statuses: list[int], path: str = "/") -> None:
        scope: Any = {"type": "http", "method": "GET", "path": path, "headers": []}

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)

    async def run() -> list[int]:
        statuses: list[int] = []
        first = asyncio.create_task(request(statuses))
        await entered.wait()
        await request(statuses)  # the one slot is taken: refused at once
        await request(statuses, "/metrics")  # a scrape is not: it bypasses the limit
        release.set()
        await first
        return statuses

    assert asyncio.run(run()) == [503, 200, 200]
    metrics.tally.flush()
    assert value(collected(metrics.http.shed), "http_requests_shed_total", reason="overloaded") == 1
    answered = collected(metrics.http.requests)
    assert value(answered, "http_requests_total", method="GET", route="", status="503") == 1
    assert value(answered, "http_requests_total", method="GET", route="", status="200") == 2


# What an app loads, seen from a fresh interpreter: the modules there once it is built, and those
# its requests load. Litestar itself probes for its OpenTelemetry plugin when an app is built,
# which loads OpenTelemetry's semantic-convention constants and nothing else.
LOADED = """
import json, sys
from litestar.testing import TestClient
from entrypoints.container import container_for
from entrypoints.http import create_app
from entrypoints.settings import Settings
from expense_core.demo import install_demo
container = container_for(Settings(database_url="memory://", metrics={metrics}))
install_demo(container.new_uow())
app = create_app(container)
built = set(sys.modules)
with TestClient(app) as client:
    assert client.get("/health/live").status_code == 200
    assert client.post(
        "/api/expenses", json={{"user_id": 7, "policy_id": 1, "amount": 10}}
    ).status_code == 201
print(json.dumps([sorted(built), sorted(set(sys.modules) - built)]))
"""
TRACING = (
    "opentelemetry.trace",
    "opentelemetry.sdk",
    "opentelemetry.context",
    "entrypoints.tracing",
)


@pytest.mark.parametrize("metrics", [True, False])
def test_serving_loads_no_opentelemetry_without_an_endpoint(metrics: bool) -> None:
    done = subprocess.run(  # noqa: S603 -- this interpreter, our own script
        [sys.executable, "-c", LOADED.format(metrics=metrics)],
        capture_output=True,
        text=True,
        check=True,
    )
    built, served = json.loads(done.stdout.strip().splitlines()[-1])
    everything = [*built, *served]
    assert [name for name in everything if name.startswith(TRACING)] == []
    assert [name for name in served if name.startswith("opentelemetry")] == []
    assert ("prometheus_client" in everything) is metrics
    assert "sqlalchemy" not in everything


ROOT = Path(__file__).resolve().parents[2]


def families(client: Client) -> set[str]:
    """The metric families a scrape shows, counters under their full `_total` name too."""
    client.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 10})
    found = text_string_to_metric_families(client.get("/metrics").text)
    return {
        name
        for family in found
        for name in (family.name, *([f"{family.name}_total"] if family.type == "counter" else []))
    }


def test_every_metric_is_documented_with_its_labels(client: Client) -> None:
    documented = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    words = re.findall(r"`[a-z_]+`", documented)
    ours = {
        name
        for name in families(client)
        # The standard collectors are named in a list; `_created` is the client's own series.
        if not name.startswith(("python_gc", "process_")) and not name.endswith("_created")
    }

    missing = {name for name in ours if not {f"`{name}`", f"`{name}_total`"} & set(words)}
    assert missing == set()
    for label in ("method", "route", "status", "reason", "kind", "company", "pid"):
        assert f"`{label}`" in documented


def test_the_dashboard_charts_only_metrics_that_exist(client: Client) -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "expense-tracker.json").read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    named = {
        re.sub(r"_(bucket|count|sum)$", "", name) for q in queries for name in METRIC.findall(q)
    }
    counters = {f"{name}_total" for name in families(client)}

    assert queries
    assert named - families(client) - counters == set()
    assert dashboard["uid"] == "expense-tracker"


METRIC = re.compile(r"\b((?:http|db|expense|expenses|process)_[a-z_]+)\{")


def test_a_send_back_and_resubmission_are_counted_and_close_nothing(client: Client) -> None:
    created = client.post(
        "/api/expenses", json={"user_id": GRACE, "policy_id": 3, "amount": 300}
    ).json()
    expense_id = created["expense_id"]
    returned = {"expense_id": expense_id, "approver_id": FRANK, "reason": "hotel receipt"}
    assert client.post("/api/expenses/send-back", json=returned).status_code == 200
    resubmitted = f"/api/expenses/{expense_id}/resubmit"
    assert client.post(resubmitted, json={"user_id": GRACE}).status_code == 200

    samples = scrape(client)

    assert value(samples, "expense_events_total", kind="returned") == 1
    assert value(samples, "expense_events_total", kind="resubmitted") == 1
    assert named(samples, "expenses_closed_total") == []
    assert value(samples, "expense_pending_steps") >= 1


def test_a_tally_loses_and_repeats_nothing_whichever_threads_count_and_flush() -> None:
    registry = CollectorRegistry()
    counter = Counter("counted", "", registry=registry)
    gauge = Gauge("held", "", registry=registry)
    histogram = Histogram("timed", "", registry=registry, buckets=(0.5, 1.0))
    tally = Tally()
    threads, each = 4, 5_000
    done = threading.Event()

    def count() -> None:
        for i in range(each):
            tally.add(counter)
            tally.add(gauge, 1)
            tally.add(gauge, -1)
            tally.observe(histogram, 0.25 if i % 2 else 0.75)

    def flush_meanwhile() -> None:
        while not done.is_set():
            tally.flush()

    flusher = threading.Thread(target=flush_meanwhile)
    flusher.start()
    counting = [threading.Thread(target=count) for _ in range(threads)]
    for thread in counting:
        thread.start()
    for thread in counting:
        thread.join()
    done.set()
    flusher.join()
    tally.flush()

    samples = collected(registry)
    assert value(samples, "counted_total") == threads * each
    assert value(samples, "held") == 0
    assert value(samples, "timed_count") == threads * each
    assert value(samples, "timed_bucket", le="0.5") == threads * each / 2
    assert value(samples, "timed_sum") == threads * each / 2 * (0.25 + 0.75)
