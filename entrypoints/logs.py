"""Logs: one record a line on stderr, as JSON for machines or as text for people, each line
written while serving a request carrying that request's id.

Every record, ours (`logging.getLogger`, `structlog.get_logger`) and the libraries' (uvicorn,
Litestar, SQLAlchemy), goes through the standard library's logging to one handler whose
formatter is structlog's: the same fields and the same shape whatever wrote it.

The request's fields live in one dict per request (`begin_request`), held by a context
variable: a use case runs in a worker thread on a copy of the request's context, and a copy
holds the same dict, so what the thread binds (`bind_request`: the bearer token's user) is seen
by the access line the request writes when it ends.

Tracebacks are plain text, never with the frames' local variables (structlog's and rich's
default for people at a terminal): a local may hold a token or a password.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

ACCESS_LOGGER: Final = "expense_tracker.access"

_REQUEST: ContextVar[dict[str, object] | None] = ContextVar("expense_tracker_request", default=None)


def begin_request(request_id: str) -> dict[str, object]:
    """Start the fields every line written for this request carries (in this context and the
    copies made of it from now on); the dict is returned to read them back at the end."""
    fields: dict[str, object] = {"request_id": request_id}
    _REQUEST.set(fields)
    return fields


def bind_request(**fields: object) -> None:
    """Add fields to the current request's lines (none outside a request)."""
    current = _REQUEST.get()
    if current is not None:
        current.update(fields)


def _request_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    current = _REQUEST.get()
    if current:
        for key, value in current.items():
            event.setdefault(key, value)
    return event


SHARED: Final[tuple[Processor, ...]] = (
    _request_fields,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
)


def renderer(*, console: bool, colors: bool = False) -> Processor:
    """The last step: a JSON object, or a line for a terminal (tracebacks without locals)."""
    if console:
        return structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.processors.JSONRenderer()


def handler(*, console: bool, stream: TextIO) -> logging.Handler:
    """A handler writing each record to `stream` on one line, as JSON or for a terminal."""
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if not console:
        final.append(structlog.processors.format_exc_info)
    final.append(renderer(console=console, colors=console and stream.isatty()))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=list(SHARED),
        processors=final,
    )
    written = logging.StreamHandler(stream)
    written.setFormatter(formatter)
    return written


def configure(level: str, *, console: bool, stream: TextIO | None = None) -> None:
    """Send every record at `level` or above to `stream` (stderr), one line each."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(console=console, stream=sys.stderr if stream is None else stream))
    root.setLevel(level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    """A structlog logger writing through the standard library's `name` logger."""
    return structlog.stdlib.get_logger(name)
