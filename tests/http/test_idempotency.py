"""`Idempotency-Key`: a retried submission answers as the first one did and creates nothing."""

from __future__ import annotations

from tests.http import contract
from tests.http.conftest import Client
from tests.http.contract import JSON


def expense_count(client: Client) -> int:
    return len(client.get("/api/expenses", params={"company_id": 1}).json()["items"])


def test_same_key_and_body_replay_the_first_response(client: Client) -> None:
    headers = {**JSON, "Idempotency-Key": "order-42"}

    first = client.post("/api/expenses", content=contract.CASE_2_CREATE, headers=headers)
    second = client.post("/api/expenses", content=contract.CASE_2_CREATE, headers=headers)

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert expense_count(client) == 1


def test_a_replay_after_approval_still_answers_as_the_first_response(client: Client) -> None:
    headers = {**JSON, "Idempotency-Key": "laptop"}
    first = client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=headers)
    client.post("/api/expenses/approve", content=contract.CASE_1_APPROVE, headers=JSON)

    again = client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=headers)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["status"] == "pending"


def test_same_key_with_another_body_is_a_conflict(client: Client) -> None:
    headers = {**JSON, "Idempotency-Key": "order-42"}
    client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=headers)

    other = client.post("/api/expenses", content=contract.CASE_2_CREATE, headers=headers)

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert expense_count(client) == 1


def test_the_same_body_without_a_key_is_a_new_expense(client: Client) -> None:
    client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON)
    client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON)

    assert expense_count(client) == 2


def test_keys_belong_to_their_user(client: Client) -> None:
    headers = {**JSON, "Idempotency-Key": "shared"}
    graces = client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=headers)
    franks = client.post(
        "/api/expenses",
        json={"user_id": 6, "category": "travel", "amount": 120},
        headers={"Idempotency-Key": "shared"},
    )

    assert graces.status_code == franks.status_code == 201
    assert graces.json()["expense_id"] != franks.json()["expense_id"]


def test_a_refused_submission_does_not_use_up_its_key(client: Client) -> None:
    headers = {"Idempotency-Key": "retry-me"}
    refused = client.post(
        "/api/expenses", json={"user_id": 7, "policy_id": 1, "amount": 5000}, headers=headers
    )
    fixed = client.post(
        "/api/expenses", json={"user_id": 7, "policy_id": 2, "amount": 5000}, headers=headers
    )

    assert refused.status_code == 400
    assert fixed.status_code == 201


def test_an_overlong_key_is_refused(client: Client) -> None:
    response = client.post(
        "/api/expenses",
        content=contract.CASE_1_CREATE,
        headers={**JSON, "Idempotency-Key": "k" * 256},
    )

    assert response.status_code == 422
    assert "idempotency_key (header)" in response.json()["detail"]
    assert expense_count(client) == 0
