"""Traces of one request, read from an in-memory exporter: the request's span, the use case's
inside it, and each SQL statement's inside that, on a SQLite file so that there are statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from entrypoints import tracing
from entrypoints.container import container_for
from entrypoints.http import create_app
from entrypoints.settings import Settings
from expense_core.demo import install_demo
from tests.http.conftest import Client

DESCRIPTION = "Noise-cancelling headphones for the open office"


@attrs.frozen
class Traced:
    client: Client
    spans: InMemorySpanExporter


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Traced]:
    container = container_for(Settings(database_url=f"sqlite:///{tmp_path / 'traced.db'}"))
    container.database().upgrade()
    install_demo(container.new_uow())
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(container, provider)
    with TestClient(create_app(container)) as client:
        yield Traced(client, exporter)
    container.shutdown_resources()


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def test_a_request_is_a_tree_of_request_use_case_and_statements(traced: Traced) -> None:
    response = traced.client.post(
        "/api/expenses",
        json={"user_id": 7, "policy_id": 1, "amount": 1234.56, "description": DESCRIPTION},
        headers={"X-Request-ID": "trace-me-1"},
    )
    assert response.status_code == 201
    spans = traced.spans.get_finished_spans()

    [request] = [s for s in spans if s.parent is None]
    assert request.kind is SpanKind.SERVER
    assert request.name == "POST /api/expenses"
    assert request.attributes is not None
    assert request.attributes["request_id"] == "trace-me-1"
    assert request.attributes["http.route"] == "/api/expenses"
    assert request.attributes["http.response.status_code"] == 201
    [use_case] = children(spans, request)
    assert use_case.name == "ExpenseService.submit"
    assert use_case.kind is SpanKind.INTERNAL
    statements = children(spans, use_case)
    assert statements, "the use case ran statements"
    assert {s.kind for s in statements} == {SpanKind.CLIENT}
    texts = [str((s.attributes or {})["db.query.text"]) for s in statements]
    assert any("INSERT INTO expenses" in text for text in texts)
    assert {s.name for s in statements} >= {"INSERT"}
    # The statement's text, never its parameters.
    assert not any(DESCRIPTION in text or "1234.56" in text for text in texts)
    assert {s.context.trace_id for s in spans if s.context} == {request.context.trace_id}


def test_a_refused_command_marks_its_use_case_failed(traced: Traced) -> None:
    response = traced.client.post(
        "/api/expenses/approve", json={"expense_id": 999, "approver_id": 6}
    )
    assert response.status_code == 404
    spans = traced.spans.get_finished_spans()

    [request] = [s for s in spans if s.parent is None]
    [use_case] = children(spans, request)
    assert use_case.name == "ExpenseService.approve"
    assert use_case.status.status_code is StatusCode.ERROR
    assert request.status.status_code is not StatusCode.ERROR  # a 404 is an answer, not a fault


def test_a_request_continues_its_callers_trace(traced: Traced) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    traced.client.get("/api/expenses/1/status", headers={"traceparent": parent})

    [request] = [s for s in traced.spans.get_finished_spans() if s.name.startswith("GET")]
    assert request.context is not None
    assert f"{request.context.trace_id:032x}" == trace_id
    assert request.name == "GET /api/expenses/{expense_id}/status"
