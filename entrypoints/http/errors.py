"""Errors on the wire: the one place that knows which status code each kind of failure gets.

Every error body is `{detail, code}` (the seed's clients read `detail`). Domain errors keep their
own message and code; schema violations are 422; an unexpected exception is logged with the
request id and answered 500 with nothing of its internals.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_409_CONFLICT
from litestar.types import ExceptionHandlersMap

from entrypoints.http.admin_schemas import StrandedBody, StrandedStep
from expense_core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PendingApprovalsStranded,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("expense_tracker.http")

REQUEST_ID_STATE: Final = "request_id"
REQUEST_ID_HEADER: Final = "X-Request-ID"
RETRY_AFTER_SECONDS: Final = 5
UNAVAILABLE_LOG_EVERY_S: Final = 5.0
UNAVAILABLE_LOG_STATE: Final = "unavailable_log"
INVALID_REQUEST: Final = 422

STATUS: Final = (
    (InvalidInput, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
)
HTTP_CODES: Final = {
    400: "bad_request",
    404: "no_such_route",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}
DESCRIPTIONS: Final = {
    400: "Invalid input: the JSON is malformed, or a rule refused a value (3 decimal places, "
    "an amount outside every policy, an empty rejection reason...).",
    401: "No bearer token, or an unknown, expired or revoked one (AUTH_MODE=token).",
    403: "The caller may not do this (not the approver of the step, not the submitter, "
    "an actor id that disagrees with the token...).",
    404: "No such expense, user or policy in the caller's company.",
    409: "The workflow refuses it in the expense's current state (already decided, "
    "a step not reached yet, an idempotency key reused for another body...).",
    413: "The body is larger than MAX_BODY_BYTES (64 KiB by default).",
    422: "The request does not match its schema (a missing or unknown field, a wrong type, "
    "an id that is not a positive integer, a text over 2,000 characters...).",
    500: "A bug: logged with the request id the body quotes; no internals are shown.",
    503: "The database cannot be reached; retry after the Retry-After seconds.",
}


class Throttle:
    """Says when to write a recurring log line again: at most once per interval.

    Each app keeps its own (in its state, under `UNAVAILABLE_LOG_STATE`).
    """

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._last = float("-inf")
        self._quiet = 0
        self._lock = threading.Lock()

    def quieted(self) -> int | None:
        """How many were kept quiet since the last line, if one is due now; else None."""
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                self._quiet += 1
                return None
            quiet, self._quiet, self._last = self._quiet, 0, now
        return quiet


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """What went wrong, for people (`detail`) and for programs (`code`)."""

    detail: str
    code: str
    request_id: str | None = None


def status_of(exc: DomainError) -> int:
    """The status code of a domain error's kind; an unclassified one is a bug (500)."""
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


def request_id_of(request: Request[Any, Any, Any]) -> str:
    """The id the request-id middleware gave this request (a fresh one if it did not run)."""
    found = request.state.get(REQUEST_ID_STATE)
    return found if isinstance(found, str) else uuid.uuid4().hex


def _respond(
    status: int, body: ErrorBody, headers: Mapping[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(body, status_code=status, headers=dict(headers or {}))


def domain_error_response(request: Request[Any, Any, Any], exc: DomainError) -> Response[ErrorBody]:
    status = status_of(exc)
    if status == 500:
        return unexpected_error_response(request, exc)
    headers = None
    if status == 503:
        # The client hears only "retry"; operators need the cause, which stays in the log:
        # once per UNAVAILABLE_LOG_EVERY_S, since an outage under load fails every request.
        cause = exc.__cause__
        throttle = request.app.state.get(UNAVAILABLE_LOG_STATE)
        quiet = throttle.quieted() if isinstance(throttle, Throttle) else 0
        if quiet is not None:
            log.warning(
                "%s (request %s, %s %s): %s%s",
                exc.code.replace("_", " "),  # database unavailable, issuer unavailable
                request_id_of(request),
                request.method,
                request.url.path,
                _first_line(cause) if cause is not None else exc.message,
                f" ({quiet} more 503s since the last report)" if quiet else "",
            )
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="expense-tracker"'}
    return _respond(status, ErrorBody(detail=exc.message, code=exc.code), headers)


def refusal(request: Request[Any, Any, Any], exc: DomainError) -> tuple[int, ErrorBody]:
    """The status and body `domain_error_response` answers a domain error with (and logs as
    it does): how each refused item of a bulk call is answered."""
    response = domain_error_response(request, exc)
    assert response.status_code is not None  # noqa: S101 -- every error response sets one
    return response.status_code, response.content


def validation_error_response(
    _: Request[Any, Any, Any], exc: ValidationException
) -> Response[ErrorBody]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    details = [_describe(p) for p in problems if isinstance(p, dict)]
    detail = "; ".join(details) or str(exc.detail)
    return _respond(INVALID_REQUEST, ErrorBody(detail=detail, code="invalid_request"))


def _describe(problem: Mapping[str, Any]) -> str:
    key, source, message = problem.get("key"), problem.get("source"), str(problem.get("message"))
    if key == "data" and source == "body" and message == "'data'":
        return "a JSON body is required"
    if key == "data" or not key:
        return f"body: {message}"
    where = getattr(source, "value", source) or "request"
    return f"{key} ({where}): {message}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def http_error_response(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    status = exc.status_code
    if status >= 500:
        return unexpected_error_response(request, exc)
    code = HTTP_CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))
    detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    if status == 413:
        detail = "the request body is too large"
    return _respond(status, ErrorBody(detail=detail, code=code), exc.headers)


def unexpected_error_response(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[ErrorBody]:
    request_id = request_id_of(request)
    log.error(
        "unexpected error (request %s, %s %s)",
        request_id,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    body = ErrorBody(
        detail=f"internal error; quote request id {request_id} when reporting it",
        code="internal_error",
        request_id=request_id,
    )
    return _respond(500, body, {REQUEST_ID_HEADER: request_id})


def stranded_response(_: Request[Any, Any, Any], exc: Exception) -> Response[StrandedBody]:
    """409 `pending_approvals_stranded`, listing the steps (the admin API registers it)."""
    assert isinstance(exc, PendingApprovalsStranded)  # noqa: S101 -- registered for this type
    body = StrandedBody(
        detail=exc.message,
        code=exc.code,
        stranded=[StrandedStep(expense_id=e, step_number=s) for e, s in exc.stranded],
    )
    return Response(body, status_code=HTTP_409_CONFLICT)


EXCEPTION_HANDLERS: Final[ExceptionHandlersMap] = {
    DomainError: domain_error_response,
    ValidationException: validation_error_response,
    HTTPException: http_error_response,
    Exception: unexpected_error_response,
}


def documented(*kinds: type[DomainError], body: bool = False) -> dict[int, ResponseSpec]:
    """OpenAPI responses for the errors a route can answer: its domain error kinds, 413 when it
    takes a body, and 400 (malformed), 422 (schema violations) and 500 (bugs) everywhere."""
    statuses = {status for kind, status in STATUS if any(issubclass(k, kind) for k in kinds)}
    statuses |= {400, INVALID_REQUEST, 500} | ({413} if body else set())
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in sorted(statuses)
    }
