"""What every request leaves behind: its figures in the metrics, and one access line.

It wraps the in-flight limit (inside the request-id middleware, so the line has the id), so
refused requests are counted and logged too. The route is Litestar's template for the route
that served the request, read once routing has happened (`scope["path_template"]`), never the
raw path: ids in paths would make a metric series, and fill the logs, one per expense. A
request answered without a route (an unknown path, a refusal by the in-flight limit) has the
route "".

The access line has the method, route, status, duration in ms, bytes sent and the request's
fields (its id; in token mode the user and company); never the path, query, headers or body.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Final

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints import logs

if TYPE_CHECKING:
    from entrypoints.metrics import HttpMetrics

NO_ROUTE: Final = ""
# Litestar names a path parameter with its type ("{expense_id:int}"); a route keeps the name.
_TYPED_PARAMETER: Final = re.compile(r"\{(\w+):[^}]*\}")


def route_label(template: str) -> str:
    """A route template as the metrics and logs name it: `/api/expenses/{expense_id}/status`."""
    return _TYPED_PARAMETER.sub(r"{\1}", template)


def observed(app: ASGIApp, *, metrics: HttpMetrics | None, access_log: bool) -> ASGIApp:
    """Count each request in `metrics` and write its access line, as either is asked for."""
    if metrics is None and not access_log:
        return app
    routes: dict[str, str] = {}
    log: Any = logs.access_logger() if access_log else None

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before answering, the server answers 500
        sent = 0

        async def send_observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        if metrics is not None:
            metrics.started()
        try:
            await app(scope, receive, send_observed)
        finally:
            seconds = time.perf_counter() - started
            template = scope.get("path_template")
            route = NO_ROUTE
            if isinstance(template, str):
                route = routes.get(template) or routes.setdefault(template, route_label(template))
            method = scope["method"]
            if metrics is not None:
                metrics.answered(method, route, status, seconds)
            if log is not None:
                log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 3),
                    bytes=sent,
                )

    return middleware
