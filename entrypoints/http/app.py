"""The app factory: routes, dependencies from the container, error handlers, the middleware in
front of the routes (`middleware.py`; metrics and access lines, `observe.py`; traces when on,
`entrypoints.tracing`), the documentation (`openapi.py`) and GET /metrics (`scrape.py`).

`create_app(container)` builds an app on a container someone else configured (the CLI, tests);
`app_from_env()` is the factory uvicorn's worker processes call with `--workers` > 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib import metadata
from typing import Any, Final

import msgspec
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import SerializationException
from litestar.types import (
    ASGIApp,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Receive,
    Scope,
    Send,
)

from entrypoints import logs
from entrypoints.container import Container, Database, container_for
from entrypoints.heap import settle_heap
from entrypoints.http.admin import AdminController
from entrypoints.http.audit import AuditController
from entrypoints.http.auth import Caller, bearer_caller, demo_caller, oidc_caller
from entrypoints.http.controllers import ExpenseController, HealthController
from entrypoints.http.delegations import DelegationController
from entrypoints.http.errors import (
    EXCEPTION_HANDLERS,
    UNAVAILABLE_LOG_EVERY_S,
    UNAVAILABLE_LOG_STATE,
    Throttle,
)
from entrypoints.http.middleware import in_flight_limit, request_ids
from entrypoints.http.observe import observed
from entrypoints.http.openapi import DOCUMENTATION, openapi_config
from entrypoints.http.schemas import Healthy
from entrypoints.http.scrape import scrape_route
from entrypoints.http.tokens import TokenController
from entrypoints.http.webhooks import WebhookController
from entrypoints.settings import AuthMode, Settings, configure_logging
from entrypoints.web import WebPages
from expense_core.services import (
    AccessService,
    AuditService,
    AwaitedExpenseService,
    DelegationService,
    ExpenseService,
    OrgService,
    WebhookService,
)

log = logging.getLogger("expense_tracker.http")

SERVICE: Final = "expense-tracker"
_EXACT_JSON = msgspec.json.Decoder(float_hook=Decimal)


def _version() -> str:
    try:
        return metadata.version(SERVICE)
    except metadata.PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"


class ExactJsonRequest(Request[Any, Any, Any]):
    """A request whose JSON numbers with a fraction or exponent become `Decimal`, exactly.

    Litestar's own `json()` reads them as floats before a body is converted to its schema, so
    100.000000000000000001 would arrive as 100.0; money must never pass through a float.
    """

    async def json(self) -> Any:
        try:
            return _EXACT_JSON.decode(await self.body() or b"null")
        except msgspec.DecodeError as exc:
            raise SerializationException(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            raise SerializationException("the body is nested too deeply") from None
        except UnicodeDecodeError:
            raise SerializationException("the body is not valid UTF-8") from None


class ExpenseTracker(Litestar):
    """Litestar with ASGI middleware in front of its routing (`front`, wrapped around Litestar's
    own ASGI entry point): what every request meets before a route is sought.

    Litestar's `middleware=[...]` wraps each route, after routing, and a refusal costs more
    there: measured for the in-flight limit (nproc 2, memory database, one worker, alternating
    runs), CPU per request in process was 16 µs for a 503 to a GET behind the routes against 8
    in front (a POST 32 against 17; a served GET / 65 against 62), and under an open load of
    6,000 requests/s with MAX_IN_FLIGHT=16 about 1,170 requests/s were served behind the
    routes against 1,680 in front: what every refusal costs more is taken from those served.
    """

    def __init__(self, *, front: Callable[[ASGIApp], ASGIApp], **config: Any) -> None:
        super().__init__(**config)
        self._front = front(super().__call__)

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        # Lifespan events pass through the front (it lets every non-HTTP scope by) to Litestar.
        await self._front(scope, receive, send)  # type: ignore[arg-type]


def create_app(container: Container) -> Litestar:
    """The API on the container's services; nothing is opened until a request needs it."""
    settings = container.settings()
    about = Healthy(
        status="healthy", service=SERVICE, version=_version(), auth_mode=str(settings.auth_mode)
    )

    # Services are resolved after the caller, whom every route using them needs anyway:
    # dependencies that do not depend on each other cost Litestar a task group per request.
    def expenses(caller: NamedDependency[Caller]) -> ExpenseService:
        return container.expenses()

    def awaited(caller: NamedDependency[Caller]) -> AwaitedExpenseService:
        return container.awaited_expenses()

    def access() -> AccessService:
        return container.access()

    def org(caller: NamedDependency[Caller]) -> OrgService:
        return container.org()

    def delegations(caller: NamedDependency[Caller]) -> DelegationService:
        return container.delegations()

    def webhooks(caller: NamedDependency[Caller]) -> WebhookService:
        return container.webhooks()

    def audit(caller: NamedDependency[Caller]) -> AuditService:
        return container.audit()

    def database() -> Database:
        return container.database()

    caller: Provide
    if settings.auth_mode is AuthMode.TOKEN:
        caller = Provide(bearer_caller(container.awaited_access()))
    elif settings.auth_mode is AuthMode.OIDC:
        verifier = container.verifier()
        assert verifier is not None  # noqa: S101 -- the container makes one for AUTH_MODE=oidc
        # In a thread: a token naming a key not yet seen fetches the issuer's keys.
        caller = Provide(oidc_caller(verifier, container.sign_on()), sync_to_thread=True)
    else:
        caller = Provide(demo_caller, sync_to_thread=False)

    def warn_if_demo() -> None:
        if settings.auth_mode is AuthMode.DEMO:
            log.warning(
                "AUTH_MODE=demo: requests act as whatever user id they name; anyone can approve "
                "anything. Never expose this server; set AUTH_MODE=token for real use."
            )

    def say_if_no_mail() -> None:
        if settings.smtp_url is None:
            log.info("SMTP_URL is not set: nobody is e-mailed when an approval is requested")

    def warm_up() -> None:
        # Build the database adapter (its imports, the engine) before the first request
        # rather than during it; nothing connects yet, so a database that is down is no bar.
        container.database()

    def size_threads() -> None:
        # Use cases run on the loop's default executor, one thread per pooled connection: more
        # threads would only queue on the connection pool, whose waiters are not served in
        # order (one could wait past DB_POOL_TIMEOUT_MS while later ones get through); the
        # executor's own queue is first come, first served.
        threads = 1 if settings.is_memory else settings.db_pool_size
        executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="use-case")
        asyncio.get_running_loop().set_default_executor(executor)

    async def open_awaited() -> None:
        # The asynchronous connections live on this process's event loop: opened here.
        store = container.awaited_store()
        if store is not None:
            await store.open()

    async def close_awaited() -> None:
        # A statement after this (the app served again, as by a test client) opens them again.
        store = container.awaited_store()
        if store is not None:
            await store.close()

    def close_database() -> None:
        container.shutdown_resources()

    metrics = container.metrics()
    limited = in_flight_limit(
        settings.max_in_flight,
        body_timeout_s=settings.body_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        on_refused=None if metrics is None else lambda code: metrics.http.shed.labels(code).inc(),
    )
    observing: list[Any] = []
    if metrics is not None:
        observing.append(scrape_route(metrics, container.database, container.relay))
    traced: Callable[[ASGIApp], ASGIApp] = _untraced
    # The access lines of the last requests, written before the process winds down.
    shutdown: list[Callable[[], None]] = [logs.write_access_lines]
    if metrics is not None:
        # The figures of the last requests, before the process goes.
        shutdown.append(metrics.tally.flush)
    if settings.otel_endpoint is not None and container.tracer() is None:
        # Imported only now: without an endpoint, nothing of OpenTelemetry is loaded.
        from entrypoints import tracing

        provider = tracing.otlp_provider(settings)
        tracing.install(container, provider)
        shutdown.append(provider.shutdown)
    if container.tracer() is not None:
        from entrypoints.tracing import requests as traced_requests

        traced = traced_requests(container.tracer())

    def front(app: ASGIApp) -> ASGIApp:
        http = None if metrics is None else metrics.http
        return request_ids(
            traced(observed(limited(app), metrics=http, access_log=settings.access_log))
        )

    return ExpenseTracker(
        front=front,
        route_handlers=[
            ExpenseController,
            HealthController,
            AdminController,
            DelegationController,
            WebhookController,
            TokenController,
            AuditController,
            *DOCUMENTATION,
            *observing,
        ],
        dependencies={
            "expenses": Provide(expenses, sync_to_thread=False),
            "awaited": Provide(awaited, sync_to_thread=False),
            "access": Provide(access, sync_to_thread=False),
            "org": Provide(org, sync_to_thread=False),
            "delegations": Provide(delegations, sync_to_thread=False),
            "webhooks": Provide(webhooks, sync_to_thread=False),
            "audit": Provide(audit, sync_to_thread=False),
            "database": Provide(database, sync_to_thread=False),
            "caller": caller,
            "about": Provide(lambda: about, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=ExactJsonRequest,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(settings, _version()),
        on_startup=[warn_if_demo, say_if_no_mail, warm_up, size_threads, open_awaited],
        state=State({UNAVAILABLE_LOG_STATE: Throttle(UNAVAILABLE_LOG_EVERY_S)}),
        on_shutdown=[close_awaited, close_database, *shutdown],
        logging_config=None,
        plugins=[WebPages(container)],
    )


def _untraced(app: ASGIApp) -> ASGIApp:
    return app


def app_from_env() -> Litestar:
    """The app a uvicorn worker process builds for itself from the environment."""
    settings = Settings.from_env()
    configure_logging(settings)
    app = create_app(container_for(settings))
    settle_heap()
    return app
