"""What stands in front of the routes: an id for every request, and a bound on how many a
worker serves at once.

Both wrap the whole application (`app.ExpenseTracker`), before Litestar routes a request: every
answer carries the id, those of unknown paths and of refused requests included, and a request
refused for overload costs no routing. The id is also bound to every log line written for the
request (`entrypoints.logs`).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections.abc import Callable
from typing import Final

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from entrypoints import logs
from entrypoints.http.errors import REQUEST_ID_HEADER, REQUEST_ID_STATE

SAFE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


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
        logs.begin_request(request_id)

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
# worker as a dead one, and an overload is when an operator's scrapes matter most.
UNLIMITED_PATHS: Final = frozenset({"/health/live", "/metrics"})
# Requests whose bodies no route reads: their slot is taken at once, no body awaited.
BODILESS_METHODS: Final = frozenset({"GET", "HEAD"})


def in_flight_limit(
    limit: int,
    *,
    body_timeout_s: float,
    max_body_bytes: int,
    on_refused: Callable[[str], None] | None = None,
) -> Callable[[ASGIApp], ASGIApp]:
    """Serve at most `limit` requests at once; answer any more 503 at once (`overloaded`).

    A worker runs requests on a bounded thread pool over a bounded connection pool: past what
    those serve, waiting only adds latency, so the excess is shed while it is cheap to shed
    (it wraps the whole app: a refused request costs no routing). A request takes its slot
    once its body is in: a client sending its body slowly holds only its connection, and for
    `body_timeout_s` at most (then 408, connection closed). `on_refused` hears the code of each
    refusal (`overloaded`, `request_timeout`, `shutting_down`), for the metrics.
    """
    refused = on_refused or _ignore

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
                    refused("request_timeout")
                    await _refuse(send, 408, BODY_TIMEOUT_BODY, close=True)
                    return
                if body is None:
                    return  # the client is gone
                receive = _replaying(body, receive)
            if in_flight >= limit:
                refused("overloaded")
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
                refused("shutting_down")
                await _refuse(send, 503, SHUTTING_DOWN_BODY, close=True)
            finally:
                in_flight -= 1

        return middleware

    return wrap


def _ignore(_: str) -> None:
    """No one listens for refusals."""


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
