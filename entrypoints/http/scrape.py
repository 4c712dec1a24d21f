"""GET /metrics: the Prometheus text of every worker's figures and the database's state.

Any worker answers for all of them (`entrypoints.metrics`). The database's backlog, and the
outbox's, is read for each scrape, in a worker thread as a use case is; a database that cannot
be reached makes `db_up` 0 rather than failing the scrape. The route is left out of the
OpenAPI document: it is for operators' scrapers, not for the API's clients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from entrypoints.container import Database
from expense_core.services import Relay

if TYPE_CHECKING:
    from entrypoints.metrics import Metrics

PATH = "/metrics"


def scrape_route(
    metrics: Metrics, database: Callable[[], Database], relay: Callable[[], Relay]
) -> HTTPRouteHandler:
    """The /metrics route for these metrics, reading the backlog of `database()` and the
    outbox's through `relay()`."""
    from entrypoints.metrics import CONTENT_TYPE

    @get(PATH, include_in_schema=False, sync_to_thread=True)
    def scrape() -> Response[bytes]:
        answer = metrics.scrape(database().backlog, relay().backlog)
        return Response(answer, media_type=CONTENT_TYPE)

    return scrape
