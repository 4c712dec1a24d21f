"""The OpenAPI document lists every endpoint, its body and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Client

ENDPOINTS = {
    ("post", "/api/expenses"): {"201", "400", "401", "403", "404", "409", "413", "422", "500"},
    ("post", "/api/expenses/approve"): {"200", "400", "401", "403", "404", "409", "413", "422"},
    ("post", "/api/expenses/reject"): {"200", "400", "401", "403", "404", "409", "413", "422"},
    ("post", "/api/expenses/{expense_id}/withdraw"): {"200", "401", "403", "404", "409", "413"},
    ("get", "/api/expenses/{expense_id}/status"): {"200", "401", "404", "422"},
    ("get", "/api/expenses"): {"200", "400", "401", "404", "422"},
    ("get", "/api/approvals"): {"200", "400", "401", "403", "404", "422"},
    ("post", "/api/approvals/bulk"): {"200", "400", "401", "403", "413", "422"},
    ("get", "/api/expenses/{expense_id}/history"): {"200", "401", "404"},
    ("get", "/api/expenses/{expense_id}/approvers/explain"): {"200", "401", "404"},
    ("get", "/health/ready"): {"200", "503"},
    ("get", "/health/live"): {"200"},
    ("get", "/"): {"200"},
}


@pytest.fixture
def schema(client: Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.parametrize(
    ("endpoint", "statuses"), ENDPOINTS.items(), ids=[f"{m} {p}" for m, p in ENDPOINTS]
)
def test_every_endpoint_and_its_errors_are_documented(
    schema: dict[str, Any], endpoint: tuple[str, str], statuses: set[str]
) -> None:
    method, path = endpoint
    operation = schema["paths"][path][method]

    assert statuses <= set(operation["responses"])
    for status, response in operation["responses"].items():
        if status.startswith(("4", "5")):
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ErrorBody"
            assert response["description"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/expenses", "SubmitBody"),
        ("/api/expenses/approve", "ApproveBody"),
        ("/api/expenses/reject", "RejectBody"),
        ("/api/expenses/{expense_id}/withdraw", "WithdrawBody"),
        ("/api/approvals/bulk", "BulkBody"),
    ],
)
def test_bodies_are_documented(schema: dict[str, Any], path: str, body: str) -> None:
    request = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]

    assert request["schema"]["$ref"] == f"#/components/schemas/{body}"


def test_money_is_documented_as_a_number(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]

    assert components["SubmitBody"]["properties"]["amount"]["type"] == ["number", "string"]
    assert components["SubmitResponse"]["properties"]["amount"]["type"] == "number"
    assert components["StatusResponse"]["properties"]["amount"]["type"] == "number"


def test_the_error_body_has_detail_and_code(schema: dict[str, Any]) -> None:
    error = schema["components"]["schemas"]["ErrorBody"]

    assert set(error["required"]) == {"detail", "code"}


def test_the_idempotency_key_header_is_documented(schema: dict[str, Any]) -> None:
    parameters = schema["paths"]["/api/expenses"]["post"]["parameters"]

    assert [(p["name"], p["in"]) for p in parameters] == [("Idempotency-Key", "header")]


def test_the_seed_documented_response_fields_are_in_the_schemas(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]

    def fields(name: str) -> set[str]:
        return set(components[name]["properties"])

    assert fields("SubmitResponse") >= {
        "message",
        "expense_id",
        "status",
        "amount",
        "approvals_required",
    }
    assert fields("ApprovalRequired") >= {"step", "approver", "level"}
    assert fields("ApproveResponse") >= {
        "message",
        "expense_id",
        "step_approved",
        "expense_status",
        "pending_approvals",
    }
    assert fields("StatusResponse") >= {
        "id",
        "amount",
        "description",
        "status",
        "submitted_at",
        "completed_at",
        "user_name",
        "policy_name",
        "approvals",
    }
    assert fields("ApprovalOut") >= {
        "step_number",
        "approver_name",
        "approver_level",
        "status",
        "approved_at",
        "comments",
        "required",
    }
