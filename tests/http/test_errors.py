"""Errors on the wire: `{detail, code}`, the status of each kind, and nothing internal leaking."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator

import pytest
from litestar import get
from litestar.testing import TestClient

from entrypoints.container import Container, container_for
from entrypoints.http import create_app
from entrypoints.http.errors import status_of
from entrypoints.settings import Settings
from expense_core import errors
from expense_core.errors import DomainError, Unavailable
from tests.http.conftest import Client

DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, DomainError) and cls is not DomainError
]


@pytest.mark.parametrize("kind", DOMAIN_ERRORS, ids=lambda k: k.__name__)
def test_every_domain_error_has_a_client_status(kind: type[DomainError]) -> None:
    assert status_of(kind.__new__(kind)) in (400, 401, 403, 404, 409, 503)


@get("/test/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("SELECT secret FROM users -- password=hunter2")


@get("/test/down", sync_to_thread=False)
def down() -> None:
    raise Unavailable


@pytest.fixture
def failing_client(container: Container) -> Iterator[Client]:
    """The real app plus two routes that fail the way only bugs and outages do."""
    app = create_app(container)
    app.register(boom)
    app.register(down)
    with TestClient(app) as client:
        yield client


def test_an_unexpected_error_is_a_500_without_internals(
    failing_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="expense_tracker.http"):
        response = failing_client.get("/test/boom")

    assert response.status_code == 500
    body = response.json()
    assert body["code"] == "internal_error"
    request_id = body["request_id"]
    assert response.headers["X-Request-ID"] == request_id
    assert request_id in body["detail"]
    assert "SELECT" not in response.text
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    # The log has what the body hides, under the same request id.
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None


def test_an_unreachable_database_is_a_503_with_retry_after(failing_client: Client) -> None:
    response = failing_client.get("/test/down")

    assert response.status_code == 503
    assert response.json() == {
        "detail": "the database is unavailable; retry shortly",
        "code": "database_unavailable",
    }
    assert int(response.headers["Retry-After"]) > 0


def test_a_callers_request_id_is_echoed(client: Client) -> None:
    response = client.get("/api/expenses/9/status", headers={"X-Request-ID": "trace-abc.1"})

    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-abc.1"


def test_an_unsafe_request_id_is_replaced(client: Client) -> None:
    response = client.get("/", headers={"X-Request-ID": "bad id\twith spaces"})

    assert response.headers["X-Request-ID"] != "bad id\twith spaces"
    assert len(response.headers["X-Request-ID"]) == 32


def test_an_unknown_route_is_a_404_in_the_error_shape(client: Client) -> None:
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "code": "no_such_route"}


def test_a_wrong_method_is_a_405_in_the_error_shape(client: Client) -> None:
    response = client.delete("/api/expenses")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/expenses", b'{"user_id": 7, "policy_id": 1, "amount": "1.001"}', 400),
        ("POST", "/api/expenses", b"{", 400),
        ("POST", "/api/expenses", b'{"user_id": 7}', 422),
        ("POST", "/api/expenses/approve", b'{"expense_id": 1, "approver_id": 6}', 404),
        ("GET", "/api/expenses/1/status", None, 404),
    ],
)
def test_error_bodies_carry_detail_and_code(
    client: Client, method: str, path: str, body: bytes | None, status: int
) -> None:
    response = client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == status
    assert set(response.json()) == {"detail", "code"}
    assert isinstance(response.json()["detail"], str)
    assert response.json()["detail"]


UNREACHABLE = "postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/health/ready", None),
        ("POST", "/api/expenses", {"user_id": 7, "policy_id": 1, "amount": 5}),
        ("GET", "/api/expenses/1/status", None),
    ],
)
def test_a_database_that_is_down_answers_503(
    method: str, path: str, body: object, caplog: pytest.LogCaptureFixture
) -> None:
    # The real SQL adapter, pointed at a port nothing listens on.
    container = container_for(Settings(database_url=UNREACHABLE))
    with TestClient(create_app(container)) as client, caplog.at_level(logging.WARNING):
        response = client.request(method, path, json=body)

    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "secret" not in response.text
    assert "psycopg" not in response.text
    # Operators find the cause in the log, under the request's id.
    request_id = response.headers["X-Request-ID"]
    assert any(request_id in r.getMessage() for r in caplog.records), caplog.text
