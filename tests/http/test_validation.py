"""Input at the edge: exact money, positive ids, bounded texts, closed schemas, no 500 ever."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from entrypoints.container import Container
from entrypoints.http import create_app
from entrypoints.http.schemas import timestamp
from expense_core.model import LIMIT, ApprovalStep, CompanyId, Money
from expense_core.services import NewPolicy
from tests.http.conftest import Client, memory_container
from tests.http.contract import JSON, TIMESTAMP

GRACE, FRANK = 7, 6
ENDPOINTS = (
    "/api/expenses",
    "/api/expenses/approve",
    "/api/expenses/reject",
    "/api/expenses/1/withdraw",
)


@pytest.fixture
def capex_client() -> Iterator[Client]:
    """The demo company plus a 'capex' policy that covers every amount up to the limit."""
    container: Container = memory_container()
    container.org().create_policy(
        NewPolicy(
            company_id=CompanyId(1),
            category="capex",
            name="Capital Expenditure",
            min_amount=Money(Decimal("0.00")),
            max_amount=Money(LIMIT),
            steps=(ApprovalStep(step_order=1, required_level=6),),
        )
    )
    with TestClient(create_app(container)) as client:
        yield client


def post_amount(client: Client, amount_json: str) -> Any:
    body = f'{{"user_id": 7, "category": "capex", "amount": {amount_json}}}'
    return client.post("/api/expenses", content=body.encode(), headers=JSON)


@pytest.mark.parametrize(
    ("amount_json", "stored"),
    [
        ("800.00", "800.00"),
        ("800", "800.00"),
        ('"800.5"', "800.50"),
        ("0.01", "0.01"),
        ("0.1", "0.10"),
        ("0.3", "0.30"),
        ("1E+2", "100.00"),
        ('"9999999999.99"', "9999999999.99"),
        ("9999999999.99", "9999999999.99"),
        ("1200.10", "1200.10"),
    ],
)
def test_amounts_are_kept_exact(capex_client: Client, amount_json: str, stored: str) -> None:
    response = post_amount(capex_client, amount_json)

    assert response.status_code == 201, response.text
    # The number on the wire is the exact decimal, written with its 2 places.
    assert f'"amount":{stored},' in response.text
    status = capex_client.get(f"/api/expenses/{response.json()['expense_id']}/status")
    assert f'"amount":{stored},' in status.text


def test_cents_add_up_exactly(capex_client: Client) -> None:
    ids = [post_amount(capex_client, a).json()["expense_id"] for a in ("0.1", "0.2")]

    amounts = [
        Decimal(
            json.loads(capex_client.get(f"/api/expenses/{i}/status").text, parse_float=str)[
                "amount"
            ]
        )
        for i in ids
    ]

    assert sum(amounts) == Decimal("0.30")


@pytest.mark.parametrize(
    "amount_json",
    [
        '"1200.005"',
        "1200.005",
        # Read through a float this would be 100.0; read exactly it has 18 decimal places.
        "100.000000000000000001",
        "0.30000000000000004",
        "0",
        "0.00",
        '"0"',
        "-5",
        '"-5.00"',
        "-0.01",
        '"NaN"',
        '"Infinity"',
        '"-Infinity"',
        '"sNaN"',
        "1e400",
        '"1e400"',
        "1e-400",
        "10000000000.00",
        "99999999999999999999999999999999",
        '"abc"',
        '""',
        '"1,000"',
        "true",
        "null",
        "[]",
        "{}",
    ],
)
def test_invalid_amounts_are_refused_clearly(capex_client: Client, amount_json: str) -> None:
    response = post_amount(capex_client, amount_json)

    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] in ("invalid_amount", "invalid_request")
    assert "amount" in response.json()["detail"]
    assert capex_client.get("/api/expenses", params={"company_id": 1}).json()["items"] == []


@pytest.mark.parametrize(
    "user_id", ["0", "-1", "2147483648", "1.5", "7.0", '"seven"', "true", "[7]", "1e3"]
)
def test_ids_are_positive_integers(client: Client, user_id: str) -> None:
    body = f'{{"user_id": {user_id}, "policy_id": 1, "amount": 10}}'

    response = client.post("/api/expenses", content=body.encode(), headers=JSON)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert "user_id" in response.json()["detail"]


@pytest.mark.parametrize("expense_id", ["0", "-1", "2147483648", "99999999999999999999"])
def test_path_ids_are_positive_integers(client: Client, expense_id: str) -> None:
    response = client.get(f"/api/expenses/{expense_id}/status")

    assert response.status_code in (404, 422)
    assert set(response.json()) >= {"detail", "code"}


def test_a_missing_required_field_is_named(client: Client) -> None:
    response = client.post("/api/expenses/approve", json={"approver_id": FRANK})

    assert response.status_code == 422
    assert "expense_id" in response.json()["detail"]


VALID_BODIES: dict[str, dict[str, Any]] = {
    "/api/expenses": {"user_id": GRACE, "policy_id": 1, "amount": 5},
    "/api/expenses/approve": {"expense_id": 1, "approver_id": FRANK},
    "/api/expenses/reject": {"expense_id": 1, "approver_id": FRANK, "reason": "no"},
    "/api/expenses/1/withdraw": {"user_id": GRACE},
}


@pytest.mark.parametrize(("path", "body"), VALID_BODIES.items())
def test_unknown_fields_are_refused(client: Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json={**body, "approved": True})

    assert response.status_code == 422
    assert "unknown field `approved`" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "field", "base"),
    [
        ("/api/expenses", "description", {"user_id": GRACE, "policy_id": 1, "amount": 5}),
        ("/api/expenses/approve", "comments", {"expense_id": 1, "approver_id": FRANK}),
        ("/api/expenses/reject", "reason", {"expense_id": 1, "approver_id": FRANK}),
    ],
)
def test_texts_hold_at_most_2000_characters(
    client: Client, path: str, field: str, base: dict[str, Any]
) -> None:
    client.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 5})

    too_long = client.post(path, json={**base, field: "x" * 2001})
    with_nul = client.post(path, json={**base, field: "a\u0000b"})
    fits = client.post(path, json={**base, field: "é" * 2000})

    assert too_long.status_code == 422
    assert field in too_long.json()["detail"]
    assert with_nul.status_code == 422
    assert fits.status_code in (200, 201), fits.text


def test_a_2000_character_description_is_kept_whole(client: Client) -> None:
    text = "€" * 2000
    created = client.post(
        "/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 5, "description": text}
    )

    assert created.status_code == 201
    assert client.get("/api/expenses/1/status").json()["description"] == text


def test_bodies_over_64_kib_are_refused(client: Client) -> None:
    padding = "x" * (64 * 1024)
    body = json.dumps({"user_id": GRACE, "policy_id": 1, "amount": 5, "description": padding})

    response = client.post("/api/expenses", content=body.encode(), headers=JSON)

    assert response.status_code == 413
    assert response.json() == {
        "detail": "the request body is too large",
        "code": "request_too_large",
    }


def test_a_body_just_under_the_limit_is_read(client: Client) -> None:
    body = json.dumps({"user_id": GRACE, "policy_id": 1, "amount": 5, "description": "x" * 2000})
    body = body + " " * (64 * 1024 - len(body) - 1)

    response = client.post("/api/expenses", content=body.encode(), headers=JSON)

    assert response.status_code == 201


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"x"',
        b"1",
        b"\xff\xfe",
        b'{"user_id": 7,}',
        b"{'a': 1}",
        b"NaN",
        b"[" * 30000 + b"]" * 30000,
        b'{"a":' * 10000 + b"1" + b"}" * 10000,
        b'{"user_id": 7, "policy_id": 1, "amount": 1' + b"0" * 30000 + b"}",
    ],
    ids=lambda raw: repr(raw[:24]),
)
@pytest.mark.parametrize("path", ENDPOINTS)
def test_malformed_bodies_are_client_errors(client: Client, path: str, raw: bytes) -> None:
    response = client.post(path, content=raw, headers=JSON)

    assert response.status_code in (400, 422), response.text
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.parametrize(
    "params",
    [
        {"company_id": "1", "limit": "0"},
        {"company_id": "1", "limit": "101"},
        {"company_id": "1", "limit": "ten"},
        {"company_id": "1", "cursor": "0"},
        {"company_id": "1", "cursor": "-4"},
        {"company_id": "0"},
        {"company_id": "x"},
        {"user_id": "2147483648"},
        {"company_id": "1", "status": "PENDING"},
    ],
)
def test_bad_list_parameters_are_refused(client: Client, params: dict[str, str]) -> None:
    response = client.get("/api/expenses", params=params)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = (
    "user_id",
    "policy_id",
    "category",
    "amount",
    "description",
    "expense_id",
    "approver_id",
    "comments",
    "reason",
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(
    path=st.sampled_from(ENDPOINTS),
    body=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
)
def test_no_body_makes_a_server_error(client: Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)

    assert response.status_code < 500, response.text
    assert {"detail", "code"} <= set(response.json()) or response.status_code in (200, 201)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100)
@given(raw=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_no_bytes_make_a_server_error(client: Client, raw: bytes) -> None:
    response = client.post("/api/expenses", content=raw, headers=JSON)

    assert response.status_code < 500, response.text


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100)
@given(
    value=st.text(max_size=12),
    name=st.sampled_from(["user_id", "status", "company_id", "cursor", "limit", "approver_id"]),
    path=st.sampled_from(["/api/expenses", "/api/approvals"]),
)
def test_no_query_makes_a_server_error(client: Client, value: str, name: str, path: str) -> None:
    response = client.get(path, params={name: value})

    assert response.status_code < 500, response.text


def test_a_chunked_body_over_the_limit_is_refused(client: Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"user_id": 7, "policy_id": 1, "amount": 5, "description": "'
        yield from (b"x" * 1024 for _ in range(80))
        yield b'"}'

    response = client.post("/api/expenses", content=chunks(), headers=JSON)

    assert response.status_code == 413


# A day inside datetime's range on each side, so that any offset converts to UTC (hypothesis
# takes naive bounds and applies the drawn zone after).
INSTANTS = st.datetimes(
    min_value=datetime.min + timedelta(days=1),  # noqa: DTZ901
    max_value=datetime.max - timedelta(days=1),  # noqa: DTZ901
    timezones=st.none() | st.timezones(),
)


@given(INSTANTS)
def test_timestamps_are_utc_milliseconds_for_any_instant(at: datetime) -> None:
    written = timestamp(at)
    assert TIMESTAMP.fullmatch(written), written
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    read = datetime.fromisoformat(written)
    assert read == utc.replace(microsecond=utc.microsecond // 1000 * 1000)
