"""Traces, with OpenTelemetry: a span for each request, each use case it calls, and each SQL
statement those run, sent over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

This module is the only one that loads OpenTelemetry on the serving path, and it is imported
only when tracing is on: without the variable no request pays for it. `install` wires a
tracer provider into a container (the OTLP one from `otlp_provider`, or any other: tests use
an in-memory exporter); the app then puts `requests` in front of its routes.

A request's span carries its request id (`request_id`), continues the caller's trace when a
`traceparent` header comes with it, and is named for the route template once routed. A use case
is one unit of work: its span is the unit of work's, named for the service method that opened
it. Use cases run in worker threads on a copy of the request's context, so their spans are the
request's children, and those of their statements theirs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, Final, Self

from dependency_injector import providers
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from entrypoints.container import Container, trace_database
from entrypoints.http.errors import REQUEST_ID_STATE
from entrypoints.http.observe import route_label
from entrypoints.settings import Settings
from expense_core.ports import UnitOfWork

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
    # Built again, on units of work that trace (`uow_factory_for`), when next asked for.
    container.new_uow.reset()
    # Spans are per unit of work: the busiest requests then run on threads too.
    container.awaited_store.reset()
    container.awaited_expenses.reset()
    for service in container.providers.values():
        if isinstance(service, providers.Singleton) and _is_service(service.cls):
            service.reset()
    trace_database(container.database(), tracer)
    return tracer


def _is_service(cls: Any) -> bool:
    return isinstance(cls, type) and cls.__module__.startswith(SERVICES_MODULE)


def traced_units(new_uow: Callable[[], UnitOfWork], tracer: Tracer) -> Callable[[], UnitOfWork]:
    """A unit-of-work factory whose units of work each run in a span named for the use case
    that opened it (`ExpenseService.approve`): a use case is one unit of work."""

    def new_traced() -> UnitOfWork:
        return _TracedUnitOfWork(new_uow(), tracer, use_case(sys._getframe(1)))

    return new_traced


def use_case(frame: FrameType | None) -> str:
    """The public method of a use-case service that is running in `frame` or a caller of it
    (`ExpenseService.approve`, though `_decide` opened the unit of work)."""
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(SERVICES_MODULE):
            owner, _, method = frame.f_code.co_qualname.rpartition(".")
            if owner and not method.startswith("_"):
                return f"{owner}.{method}"
        frame = frame.f_back
    return "unit of work"


class _TracedUnitOfWork:
    """A store's unit of work in a span of its own, failed if the use case raised in it."""

    def __init__(self, inner: UnitOfWork, tracer: Tracer, name: str) -> None:
        self._inner = inner
        self._span = tracer.start_span(name, kind=SpanKind.INTERNAL)
        self._token: object = None

    def __enter__(self) -> Self:
        self._token = context.attach(trace.set_span_in_context(self._span))
        self._inner.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._inner.__exit__(*exc_info)
        finally:
            error = exc_info[1] if exc_info else None
            if isinstance(error, BaseException):
                self._span.record_exception(error)
                self._span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()

    def commit(self) -> None:
        self._inner.commit()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


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
