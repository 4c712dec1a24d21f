"""A span for each SQL statement an engine runs: its text with placeholders, never its
parameters (they hold people's names, amounts, token hashes).

Loaded only when tracing is on (`entrypoints.tracing`). The spans start and end on the
engine's cursor events, fired by SQLAlchemy's own execution and by a `Query`'s (link.py). A
statement that fails on the `Query` path fires no event after it: its span ends, marked failed,
when the next statement on the connection starts or the connection goes back to the pool.
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

_SPAN: Final = "expense_tracker.statement_span"


def trace_statements(engine: Engine, tracer: Tracer) -> None:
    """Give every statement `engine` runs from now on a client span of `tracer`."""
    system = "postgresql" if engine.dialect.name == "postgresql" else engine.dialect.name

    def before(conn: Connection, _: Any, statement: str, *__: Any) -> None:
        _end(conn.info, failed="the statement ended without a result")
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        conn.info[_SPAN] = tracer.start_span(
            operation,
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": system, "db.query.text": statement},
        )

    def after(conn: Connection, *_: Any) -> None:
        _end(conn.info)

    def failed(context: ExceptionContext) -> None:
        if context.connection is not None:
            _end(context.connection.info, failed=type(context.original_exception).__name__)

    def checked_in(_: Any, record: Any) -> None:
        if record is not None:
            _end(record.info, failed="the statement ended without a result")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)
    event.listen(engine, "checkin", checked_in)


def _end(info: dict[Any, Any], *, failed: str | None = None) -> None:
    span = info.pop(_SPAN, None)
    if span is None:
        return
    if failed is not None:
        span.set_status(Status(StatusCode.ERROR, failed))
    span.end()
