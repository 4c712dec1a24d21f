"""The Litestar application: routes, dependencies from the container, errors, docs and auth.

`create_app(container)` builds an app on a container someone else configured (the CLI, tests);
`app_from_env()` is the factory uvicorn's worker processes call with `--workers` > 1.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib import metadata
from typing import Any, Final

import msgspec
from litestar import Controller, Litestar, Request, Response, get
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType, ScopeType
from litestar.exceptions import SerializationException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from entrypoints.container import Container, Database, container_for
from entrypoints.http import admin_schemas, expense_schemas, schemas
from entrypoints.http.admin import AdminController
from entrypoints.http.auth import Caller, bearer_caller, demo_caller
from entrypoints.http.controllers import ExpenseController, HealthController
from entrypoints.http.errors import (
    EXCEPTION_HANDLERS,
    REQUEST_ID_HEADER,
    REQUEST_ID_STATE,
    UNAVAILABLE_LOG_EVERY_S,
    UNAVAILABLE_LOG_STATE,
    Throttle,
)
from entrypoints.settings import AuthMode, Settings, configure_logging
from expense_core.services import AccessService, ExpenseService, OrgService

log = logging.getLogger("expense_tracker.http")

SERVICE: Final = "expense-tracker"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
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


def request_ids(app: ASGIApp) -> ASGIApp:
    """Give every request an id (the caller's X-Request-ID if sane), echoed in the response.

    Our own ids are 32 hex digits, as a UUID's: a random prefix per process and a counter,
    unique without drawing randomness for every request.
    """
    prefix = secrets.token_hex(8)
    counter = itertools.count(1)

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        given = next((v for n, v in scope["headers"] if n == b"x-request-id"), b"").decode(
            "latin-1"
        )
        ours = f"{prefix}{next(counter):016x}"
        request_id = given if SAFE_REQUEST_ID.fullmatch(given) else ours
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await app(scope, receive, send_with_id)

    return middleware


OVERLOADED_BODY: Final = msgspec.json.encode(
    {"detail": "the server is busy; retry after the Retry-After seconds", "code": "overloaded"}
)
SHUTTING_DOWN_BODY: Final = msgspec.json.encode(
    {"detail": "the server is shutting down; retry the request", "code": "shutting_down"}
)
BODY_TIMEOUT_BODY: Final = msgspec.json.encode(
    {"detail": "the request body did not arrive in time", "code": "request_timeout"}
)
OVERLOADED_RETRY_AFTER_S: Final = 1
# Answered even when every slot is taken: a supervisor probing liveness must not see a busy
# worker as a dead one.
UNLIMITED_PATHS: Final = frozenset({"/health/live"})
# Requests whose bodies no route reads: their slot is taken at once, no body awaited.
BODILESS_METHODS: Final = frozenset({"GET", "HEAD"})


def in_flight_limit(
    limit: int, *, body_timeout_s: float, max_body_bytes: int
) -> Callable[[ASGIApp], ASGIApp]:
    """Serve at most `limit` requests at once; answer any more 503 at once (`overloaded`).

    A worker runs requests on a bounded thread pool over a bounded connection pool: past what
    those serve, waiting only adds latency, so the excess is shed while it is cheap to shed
    (it wraps the whole app: a refused request costs no routing). A request takes its slot
    once its body is in: a client sending its body slowly holds only its connection, and for
    `body_timeout_s` at most (then 408, connection closed).
    """

    def wrap(app: ASGIApp) -> ASGIApp:
        in_flight = 0

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal in_flight
            if scope["type"] != ScopeType.HTTP or scope["path"] in UNLIMITED_PATHS:
                await app(scope, receive, send)
                return
            if scope["method"] not in BODILESS_METHODS:
                try:
                    async with asyncio.timeout(body_timeout_s):
                        body = await _read_body(receive, max_body_bytes)
                except TimeoutError:
                    await _refuse(send, 408, BODY_TIMEOUT_BODY, close=True)
                    return
                if body is None:
                    return  # the client is gone
                receive = _replaying(body, receive)
            if in_flight >= limit:
                await _refuse(send, 503, OVERLOADED_BODY)
                return
            in_flight += 1
            started = False

            async def send_started(message: Message) -> None:
                nonlocal started
                started = started or message["type"] == "http.response.start"
                await send(message)

            try:
                await app(scope, receive, send_started)
            except asyncio.CancelledError:
                # uvicorn cancels what is still running when the shutdown grace period ends:
                # the client hears "retry" (elsewhere) rather than a 500. What the request did
                # stays in its transaction, rolled back as the process and its connections go.
                if started:
                    raise
                await _refuse(send, 503, SHUTTING_DOWN_BODY, close=True)
            finally:
                in_flight -= 1

        return middleware

    return wrap


async def _read_body(receive: Receive, max_body_bytes: int) -> bytes | None:
    """The whole body (or its first `max_body_bytes` + 1 bytes: Litestar refuses it, 413);
    None if the client disconnected."""
    parts: list[bytes] = []
    size = 0
    while size <= max_body_bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message["body"] if message["type"] == "http.request" else b""
        parts.append(chunk)
        size += len(chunk)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return b"".join(parts)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body read already, then defers to the server's."""
    given = False

    async def replay() -> ReceiveMessage:
        nonlocal given
        if not given:
            given = True
            whole: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return whole
        return await receive()

    return replay


async def _refuse(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 503:
        headers.append((b"retry-after", str(OVERLOADED_RETRY_AFTER_S).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class DocsController(Controller):
    """The seed's documentation paths: Swagger UI at /docs, ReDoc at /redoc."""

    include_in_schema = False
    _swagger = SwaggerRenderPlugin()
    _redoc = RedocRenderPlugin()

    @get("/docs", media_type=MediaType.HTML, sync_to_thread=False)
    def swagger(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(self._swagger.render(request, openapi_document(request.app)))

    @get("/redoc", media_type=MediaType.HTML, sync_to_thread=False)
    def redoc(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(self._redoc.render(request, openapi_document(request.app)))

    @get("/openapi.json", media_type=MediaType.JSON, sync_to_thread=False)
    def openapi(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return openapi_document(request.app)


# OpenAPI links: what a client (or a stateful test) can do next with an answer's ids.
_EXPENSE_ID = {"expense_id": "$response.body#/expense_id"}
_READ_NEXT = {
    "status": ("ApiExpensesExpenseIdStatusStatus", _EXPENSE_ID, None),
    "history": ("ApiExpensesExpenseIdHistoryHistory", _EXPENSE_ID, None),
}
_FIRST_APPROVER = "$response.body#/approvals_required/0/approver_id"
LINKS: Final[dict[tuple[str, str, str], dict[str, tuple[str, Any, Any]]]] = {
    ("/api/expenses", "post", "201"): {
        **_READ_NEXT,
        "approve_first_step": (
            "ApiExpensesApproveApprove",
            None,
            {"expense_id": "$response.body#/expense_id", "approver_id": _FIRST_APPROVER},
        ),
        "reject_at_first_step": (
            "ApiExpensesRejectReject",
            None,
            {
                "expense_id": "$response.body#/expense_id",
                "approver_id": _FIRST_APPROVER,
                "reason": "over budget",
            },
        ),
        "withdraw": (
            "ApiExpensesExpenseIdWithdrawWithdraw",
            _EXPENSE_ID,
            {"user_id": "$request.body#/user_id"},
        ),
        "explain_approvers": ("ApiExpensesExpenseIdApproversExplainExplain", _EXPENSE_ID, None),
    },
    ("/api/expenses/approve", "post", "200"): _READ_NEXT,
    ("/api/expenses/reject", "post", "200"): _READ_NEXT,
    ("/api/expenses/{expense_id}/withdraw", "post", "200"): _READ_NEXT,
}


def _closed_bodies() -> frozenset[str]:
    """The wire schemas that refuse unknown fields (422), by name."""
    return frozenset(
        name
        for module in (expense_schemas, admin_schemas)
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__struct_config__.forbid_unknown_fields
    )


def openapi_document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document, with the links from a submission to its decisions and reads, and
    `additionalProperties: false` on the bodies that refuse unknown fields (as they do: a
    client reading the document must not believe that extra fields are accepted)."""
    document = app.openapi_schema.to_schema()
    components = document.get("components", {}).get("schemas", {})
    for name in _closed_bodies() & components.keys():
        components[name]["additionalProperties"] = False
    paths = document.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {
                "operationId": operation,
                **({"parameters": parameters} if parameters else {}),
                **({"requestBody": body} if body else {}),
            }
            for name, (operation, parameters, body) in links.items()
        }
    return document


DESCRIPTION: Final = """\
A B2B expense tracker with hierarchical, policy-driven, multi-step approval workflows.

Errors are JSON `{"detail": ..., "code": ...}`: `detail` for people, `code` (stable) for programs.
Amounts are JSON numbers (or decimal strings) with at most 2 decimal places, read exactly.

**AUTH_MODE=demo** (the seed's contract): the actor is the id in the body or query; anyone can
act as anyone. **AUTH_MODE=token**: send `Authorization: Bearer <token>` (issued with
`expense-tracker token issue --user-id N`); the actor is the token's user, every read is confined
to their company, and a body id naming someone else is refused (403).
"""


def _openapi(settings: Settings) -> OpenAPIConfig:
    token = settings.auth_mode is AuthMode.TOKEN
    return OpenAPIConfig(
        title="Expense Tracker API",
        version=_version(),
        description=DESCRIPTION,
        tags=[
            Tag(name="expenses", description="Submit, decide on and read expenses."),
            Tag(name="health", description="Liveness and readiness."),
            Tag(name="admin", description="Companies, teams, levels, users and policies."),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="A token from `expense-tracker token issue` (AUTH_MODE=token).",
                )
            }
        ),
        security=[{"bearer": []}] if token else None,
        render_plugins=[SwaggerRenderPlugin(path="/swagger"), RedocRenderPlugin(path="/redoc")],
    )


def create_app(container: Container) -> Litestar:
    """The API on the container's services; nothing is opened until a request needs it."""
    settings = container.settings()
    about = schemas.Healthy(
        status="healthy", service=SERVICE, version=_version(), auth_mode=str(settings.auth_mode)
    )

    # Services are resolved after the caller, whom every route using them needs anyway:
    # dependencies that do not depend on each other cost Litestar a task group per request.
    def expenses(caller: NamedDependency[Caller]) -> ExpenseService:
        return container.expenses()

    def access() -> AccessService:
        return container.access()

    def org(caller: NamedDependency[Caller]) -> OrgService:
        return container.org()

    def database() -> Database:
        return container.database()

    caller: Provide
    if settings.auth_mode is AuthMode.TOKEN:
        caller = Provide(bearer_caller, sync_to_thread=True)
    else:
        caller = Provide(demo_caller, sync_to_thread=False)

    def warn_if_demo() -> None:
        if settings.auth_mode is AuthMode.DEMO:
            log.warning(
                "AUTH_MODE=demo: requests act as whatever user id they name; anyone can approve "
                "anything. Never expose this server; set AUTH_MODE=token for real use."
            )

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

    def close_database() -> None:
        container.shutdown_resources()

    app = Litestar(
        route_handlers=[ExpenseController, HealthController, DocsController, AdminController],
        dependencies={
            "expenses": Provide(expenses, sync_to_thread=False),
            "access": Provide(access, sync_to_thread=False),
            "org": Provide(org, sync_to_thread=False),
            "database": Provide(database, sync_to_thread=False),
            "caller": caller,
            "about": Provide(lambda: about, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=ExactJsonRequest,
        request_max_body_size=settings.max_body_bytes,
        openapi_config=_openapi(settings),
        on_startup=[warn_if_demo, warm_up, size_threads],
        state=State({UNAVAILABLE_LOG_STATE: Throttle(UNAVAILABLE_LOG_EVERY_S)}),
        on_shutdown=[close_database],
        logging_config=None,
    )
    # Around Litestar's own handler rather than each route: every request has its id, and a
    # request refused for overload costs no routing.
    limited = in_flight_limit(
        settings.max_in_flight,
        body_timeout_s=settings.body_timeout_s,
        max_body_bytes=settings.max_body_bytes,
    )
    app.asgi_handler = request_ids(limited(app.asgi_handler))
    return app


def app_from_env() -> Litestar:
    """The app a uvicorn worker process builds for itself from the environment."""
    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(container_for(settings))
