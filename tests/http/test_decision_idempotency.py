"""`Idempotency-Key` on approve, reject and withdraw: a retry answers the first answer again and
changes nothing, even once the expense has moved on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Client, TokenApi

GRACE, FRANK, EVE, DAVID = 7, 6, 5, 4


def submit(client: Client, policy_id: int = 2, amount: int = 4000) -> int:
    body = {"user_id": GRACE, "policy_id": policy_id, "amount": amount}
    response = client.post("/api/expenses", json=body)
    assert response.status_code == 201
    return int(response.json()["expense_id"])


def seen(client: Client, expense_id: int) -> tuple[Any, Any]:
    return (
        client.get(f"/api/expenses/{expense_id}/status").json(),
        client.get(f"/api/expenses/{expense_id}/history").json(),
    )


DECISIONS = {
    "approve": ("/api/expenses/approve", {"approver_id": FRANK, "comments": "fine"}),
    "reject": ("/api/expenses/reject", {"approver_id": FRANK, "reason": "too dear"}),
    "withdraw": ("/api/expenses/{id}/withdraw", {"user_id": GRACE}),
}


def decide(client: Client, kind: str, expense: int, key: str | None, **changes: Any) -> Any:
    path, body = DECISIONS[kind]
    if "{id}" in path:
        path, payload = path.format(id=expense), {**body, **changes}
    else:
        payload = {"expense_id": expense, **body, **changes}
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(path, json=payload, headers=headers)


@pytest.mark.parametrize("kind", DECISIONS)
def test_a_retry_answers_the_first_answer_and_changes_nothing(client: Client, kind: str) -> None:
    expense_id = submit(client)
    first = decide(client, kind, expense_id, "retry-1")
    after = seen(client, expense_id)

    again = decide(client, kind, expense_id, "retry-1")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert seen(client, expense_id) == after


def test_the_replay_is_the_first_answer_not_todays_state(client: Client) -> None:
    expense_id = submit(client)
    first = decide(client, "approve", expense_id, "frank-1")
    for approver in (EVE, DAVID):
        body = {"expense_id": expense_id, "approver_id": approver}
        assert client.post("/api/expenses/approve", json=body).status_code == 200

    again = decide(client, "approve", expense_id, "frank-1")

    assert again.json() == first.json()
    assert (again.json()["expense_status"], again.json()["pending_approvals"]) == ("pending", 2)
    assert seen(client, expense_id)[0]["status"] == "approved"


@pytest.mark.parametrize(
    "change",
    [{"comments": "other words"}, {"comments": None}, {"expense_id": 2}],
    ids=["other-comments", "no-comments", "another-expense"],
)
def test_the_same_key_with_another_body_is_a_conflict(client: Client, change: Any) -> None:
    first, second = submit(client), submit(client)
    decide(client, "approve", first, "k")
    before = seen(client, first), seen(client, second)

    other = decide(client, "approve", first, "k", **change)

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert (seen(client, first), seen(client, second)) == before


def test_a_refused_decision_stores_no_key(client: Client) -> None:
    expense_id = submit(client)
    refused = decide(client, "reject", expense_id, "fix-me", reason="   ")
    fixed = decide(client, "reject", expense_id, "fix-me")

    assert (refused.status_code, refused.json()["code"]) == (400, "reason_required")
    assert fixed.status_code == 200
    assert "Idempotent-Replayed" not in fixed.headers


def test_a_submissions_key_is_not_a_decisions(client: Client) -> None:
    submitted = client.post(
        "/api/expenses",
        json={"user_id": FRANK, "category": "travel", "amount": 120},
        headers={"Idempotency-Key": "frank-1"},
    )
    expense_id = submit(client)

    reused = decide(client, "approve", expense_id, "frank-1")

    assert submitted.status_code == 201
    assert (reused.status_code, reused.json()["code"]) == (409, "idempotency_key_reused")
    assert seen(client, expense_id)[0]["approvals"][0]["status"] == "pending"


def test_without_a_key_a_second_decision_is_refused_as_ever(client: Client) -> None:
    expense_id = submit(client)
    decide(client, "approve", expense_id, None)

    again = decide(client, "approve", expense_id, None)

    assert (again.status_code, again.json()["code"]) == (409, "step_already_decided")


def test_an_overlong_key_is_refused_and_decides_nothing(client: Client) -> None:
    expense_id = submit(client)
    before = seen(client, expense_id)

    response = decide(client, "approve", expense_id, "k" * 256)

    assert response.status_code == 422
    assert "idempotency_key (header)" in response.json()["detail"]
    assert seen(client, expense_id) == before


def test_the_decisions_document_the_header(client: Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/expenses/approve", "/api/expenses/reject"):
        parameters = paths[path]["post"]["parameters"]
        assert [(p["name"], p["in"]) for p in parameters] == [("Idempotency-Key", "header")]
    withdraw = paths["/api/expenses/{expense_id}/withdraw"]["post"]["parameters"]
    assert ("Idempotency-Key", "header") in [(p["name"], p["in"]) for p in withdraw]


def test_with_tokens_keys_are_the_token_holders(token_api: TokenApi) -> None:
    grace, frank, eve = (token_api.as_user(u) for u in (GRACE, FRANK, EVE))
    created = token_api.client.post(
        "/api/expenses", json={"policy_id": 2, "amount": 4000}, headers=grace
    )
    expense_id = created.json()["expense_id"]
    body = {"expense_id": expense_id}

    franks = token_api.client.post(
        "/api/expenses/approve", json=body, headers={**frank, "Idempotency-Key": "mine"}
    )
    eves = token_api.client.post(
        "/api/expenses/approve", json=body, headers={**eve, "Idempotency-Key": "mine"}
    )
    franks_again = token_api.client.post(
        "/api/expenses/approve", json=body, headers={**frank, "Idempotency-Key": "mine"}
    )

    assert (franks.json()["step_approved"], eves.json()["step_approved"]) == (1, 2)
    assert "Idempotent-Replayed" not in eves.headers
    assert franks_again.json() == franks.json()
    assert franks_again.headers["Idempotent-Replayed"] == "true"


def test_a_send_back_and_a_resubmission_retried_answer_their_first_answers(
    client: Client,
) -> None:
    expense_id = submit(client, policy_id=3, amount=1850)
    back = {"expense_id": expense_id, "approver_id": FRANK, "reason": "receipt missing"}
    sent = client.post("/api/expenses/send-back", json=back, headers={"Idempotency-Key": "sb-1"})
    resubmission = {"user_id": GRACE, "amount": 1620}
    path = f"/api/expenses/{expense_id}/resubmit"
    resubmitted = client.post(path, json=resubmission, headers={"Idempotency-Key": "rs-1"})
    after = seen(client, expense_id)

    sent_again = client.post(
        "/api/expenses/send-back", json=back, headers={"Idempotency-Key": "sb-1"}
    )
    again = client.post(path, json=resubmission, headers={"Idempotency-Key": "rs-1"})

    assert (sent.status_code, resubmitted.status_code) == (200, 200)
    assert sent_again.json() == sent.json()
    assert sent_again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == resubmitted.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert seen(client, expense_id) == after
    other = client.post(
        path, json={"user_id": GRACE, "amount": 1500}, headers={"Idempotency-Key": "rs-1"}
    )
    assert other.status_code == 409
    assert seen(client, expense_id) == after
