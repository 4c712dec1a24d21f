"""The real server seen from outside: one scrape of /metrics covers every worker, and the log of
a whole flow has a request id on its lines, one access line per request, and no secret."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from entrypoints.metrics import FLUSH_S
from tests.e2e.conftest import Server, StartServer, run_cli

pytestmark = pytest.mark.e2e

STATUS_ROUTE = "/api/expenses/{expense_id}/status"
POOL_SIZE = 3
DESCRIPTION = "Ergonomic chair for the long evenings"


def scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # A fresh connection each time: any worker may answer it.
    response = httpx.get(f"{server.base_url}/metrics", timeout=10.0)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


@pytest.mark.parametrize("workers", [1, 2])
def test_one_scrape_counts_the_requests_of_every_worker(
    start_server: StartServer, workers: int
) -> None:
    server = start_server("--workers", str(workers), DB_POOL_SIZE=str(POOL_SIZE))
    created = httpx.post(
        f"{server.base_url}/api/expenses",
        json={"user_id": 7, "policy_id": 1, "amount": 100, "description": DESCRIPTION},
        timeout=10.0,
    )
    assert created.status_code == 201
    expense_id = created.json()["expense_id"]
    reads = 24
    for _ in range(reads):
        # A connection of its own each: the requests spread over the workers.
        status = httpx.get(f"{server.base_url}/api/expenses/{expense_id}/status", timeout=10.0)
        assert status.status_code == 200

    # A worker's figures reach the shared files within FLUSH_S of its requests.
    deadline = time.monotonic() + 40 * FLUSH_S
    while (
        total(scrape(server), "http_requests_total", route=STATUS_ROUTE) < reads
        and time.monotonic() < deadline
    ):
        time.sleep(FLUSH_S / 5)
    scrapes = [scrape(server) for _ in range(4)]

    for samples in scrapes:
        # Whichever worker answers, it counts every worker's requests...
        assert total(samples, "http_requests_total", route=STATUS_ROUTE, status="200") == reads
        assert total(samples, "http_requests_total", route="/api/expenses", status="201") == 1
        assert total(samples, "expenses_submitted_total") == 1
        # ...and every worker's pool: each said its size when it started.
        assert total(samples, "db_pool_size") == workers * POOL_SIZE
        assert total(samples, "expense_pending_steps") == 1
        assert total(samples, "db_up") == 1
        pids = {
            dict(labels).get("pid")
            for (name, labels) in samples
            if name.startswith("process_resident")
        }
        assert len(pids) == workers
        routes = {
            dict(labels).get("route") for (name, labels) in samples if name == "http_requests_total"
        }
        assert str(expense_id) not in "".join(str(route) for route in routes)


def test_a_flow_in_token_mode_is_logged_with_request_ids_and_no_secret(
    start_server: StartServer,
) -> None:
    server = start_server("--workers", "2", AUTH_MODE="token", LOG_FORMAT="json")
    tokens: dict[int, str] = {}
    for user in (7, 6):
        issued = run_cli("token", "issue", "--user-id", str(user), env=server.env)
        assert issued.returncode == 0, issued.stderr
        tokens[user] = issued.stdout.strip().splitlines()[-1]

    def call(method: str, path: str, user: int, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[user]}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{server.base_url}{path}", headers=headers, timeout=10.0, **kwargs
        )

    submitted = call(
        "POST",
        "/api/expenses",
        7,
        json={"policy_id": 1, "amount": 250, "description": DESCRIPTION},
        headers={"X-Request-ID": "client-chosen.id_1"},
    )
    assert submitted.status_code == 201
    expense_id = submitted.json()["expense_id"]
    answers = [
        submitted,
        call("POST", "/api/expenses/approve", 6, json={"expense_id": expense_id}),
        call("GET", f"/api/expenses/{expense_id}/status", 7),
        call("GET", f"/api/expenses/{expense_id}/history", 7),
        httpx.get(f"{server.base_url}/api/expenses/{expense_id}/status", timeout=10.0),  # 401
    ]
    ids = [answer.headers["X-Request-ID"] for answer in answers]
    assert ids[0] == "client-chosen.id_1"
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 401]
    # Each access line is written once its answer is sent: the server stops to have them all.
    text = server.stop()

    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "expense_tracker.access"]
    by_id = {r["request_id"]: r for r in access if r["request_id"] in ids}
    assert sorted(by_id) == sorted(ids), "one access line per request, under its id"
    assert len([r for r in access if r["request_id"] in ids]) == len(ids)
    first = by_id["client-chosen.id_1"]
    assert first["method"] == "POST"
    assert first["route"] == "/api/expenses"
    assert first["status"] == 201
    assert first["duration_ms"] > 0
    assert first["bytes"] == len(submitted.content)
    assert (first["user_id"], first["company_id"]) == (7, 1)
    assert by_id[ids[1]]["user_id"] == 6
    assert by_id[ids[2]]["route"] == STATUS_ROUTE
    assert "user_id" not in by_id[ids[4]]
    assert all("request_id" in r for r in access)
    for secret in (*tokens.values(), *(t.partition("_")[2] for t in tokens.values())):
        assert secret not in text
    assert "Bearer" not in text
    assert DESCRIPTION not in text


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_metrics_directory_lives_as_long_as_the_server(
    start_server: StartServer, tmp_path: Path, stop: signal.Signals
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    orphan = temporary / "expense-tracker-metrics-999999999-abc"  # a server long gone
    orphan.mkdir()
    server = start_server(TMPDIR=str(temporary))
    assert server.process is not None
    [made] = temporary.glob(f"expense-tracker-metrics-{server.process.pid}-*")
    assert sorted(p.name.split("_")[0] for p in made.iterdir()) >= ["counter", "gauge"]
    assert not orphan.exists()

    server.process.send_signal(stop)
    server.process.wait(timeout=30)

    assert not made.exists()


def test_a_given_metrics_directory_is_kept_and_emptied_of_earlier_runs(
    start_server: StartServer, tmp_path: Path
) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_12345.db").write_bytes(b"an earlier run's counts")
    (shared / "notes.txt").write_text("not ours")

    server = start_server(PROMETHEUS_MULTIPROC_DIR=str(shared))
    for _ in range(3):
        assert httpx.get(f"{server.base_url}/", timeout=10.0).status_code == 200
    samples = scrape(server)

    assert total(samples, "http_requests_total", route="/", status="200") == 3
    assert not (shared / "counter_12345.db").exists()
    assert (shared / "notes.txt").exists()
    server.stop()
    assert shared.exists()
