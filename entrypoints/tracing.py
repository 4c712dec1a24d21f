"""Traces, with OpenTelemetry: a span for each request, each use case it calls, and each SQL
statement those run, sent over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

This module is the only one that loads OpenTelemetry on the serving path, and it is imported
only when tracing is on: without the variable no request pays for it. `install` wires a
tracer provider into a container (the OTLP one from `otlp_provider`, or any other: tests use
an in-memory exporter); the app then puts `requests` in front of its routes.

A request's span carries its request id (`request_id`), continues the caller's trace when a
`traceparent` header comes with it, and is named for the route template once routed. Use cases
run in worker threads on a copy of the request's context, so their spans are its children, and
those of their statements theirs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Final

from dependency_injector import providers
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from entrypoints.container import Container, trace_database
from entrypoints.http.errors import REQUEST_ID_STATE
from entrypoints.http.observe import route_label
from entrypoints.settings import Settings

SERVICE: Final = "expense-tracker"
SERVICES_MODULE: Final = "expense_core.services"
INSTRUMENTATION: Final = "expense_tracker"


def otlp_provider(settings: Settings) -> TracerProvider:
    """A provider exporting in batches over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    assert settings.otel_endpoint is not None  # noqa: S101 -- only called when it is set
    name = os.environ.get("OTEL_SERVICE_NAME") or SERVICE
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    # The exporter reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a whole URL) itself; the base
    # endpoint is given here, as the specification says, with the signal's path added.
    endpoint = None
    if not os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        endpoint = f"{settings.otel_endpoint.rstrip('/')}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def install(container: Container, provider: TracerProvider) -> Tracer:
    """Trace what `container` builds from now on: its use cases and its SQL statements; the
    app reads the tracer from `container.tracer` to trace requests."""
    tracer = provider.get_tracer(INSTRUMENTATION)
    container.tracer.override(providers.Object(tracer))
    for name, provider_ in container.providers.items():
        if isinstance(provider_, providers.Singleton) and _is_service(provider_.cls):
            inner = providers.Singleton(provider_.cls, *provider_.args, **provider_.kwargs)
            provider_.override(providers.Singleton(_TracedService, inner, tracer=tracer, name=name))
    trace_database(container.database(), tracer)
    return tracer


def _is_service(cls: Any) -> bool:
    return isinstance(cls, type) and cls.__module__.startswith(SERVICES_MODULE)


class _TracedService:
    """A use-case service whose public methods each run in a span (`expenses.submit`...)."""

    def __init__(self, service: Any, *, tracer: Tracer, name: str) -> None:
        self._service = service
        self._tracer = tracer
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        found = getattr(self._service, attribute)
        if attribute.startswith("_") or not callable(found):
            return found
        span = f"{self._name}.{attribute}"
        tracer = self._tracer

        @functools.wraps(found)
        def traced(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(span, kind=SpanKind.INTERNAL):
                return found(*args, **kwargs)

        return traced


def requests(tracer: Tracer) -> Callable[[ASGIApp], ASGIApp]:
    """A server span around each HTTP request (inside the request-id middleware)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            method = scope["method"]
            attributes = {
                "http.request.method": method,
                "url.path": scope["path"],
                "request_id": str(scope.get("state", {}).get(REQUEST_ID_STATE, "")),
            }
            with tracer.start_as_current_span(
                method,
                context=propagate.extract(headers),
                kind=SpanKind.SERVER,
                attributes=attributes,
            ) as span:
                status = 0

                async def send_traced(message: Message) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                        span.set_attribute("http.response.status_code", status)
                    await send(message)

                try:
                    await app(scope, receive, send_traced)
                finally:
                    template = scope.get("path_template")
                    if isinstance(template, str):
                        route = route_label(template)
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))

        return middleware

    return wrap
