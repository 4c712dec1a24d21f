"""`POST /api/approvals/bulk`: each decision answered, in order, as its own endpoint answers it;
a refused one undoes none of the others; a bad call decides nothing."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.http import create_app
from tests.http.conftest import Client, TokenApi, memory_container

GRACE, FRANK = 7, 6
BULK = "/api/approvals/bulk"


def submit(client: Client, policy_id: int, amount: int, user_id: int = GRACE) -> int:
    body = {"user_id": user_id, "policy_id": policy_id, "amount": amount}
    response = client.post("/api/expenses", json=body)
    assert response.status_code == 201
    return int(response.json()["expense_id"])


def with_expenses(client: Client) -> None:
    """Expenses 1 and 2: Grace's small equipment (Frank); 3: her large equipment (Frank, Eve,
    David); 4: Frank's travel (Eve, David)."""
    assert [
        submit(client, 1, 100),
        submit(client, 1, 200),
        submit(client, 2, 4000),
        submit(client, 3, 300, user_id=FRANK),
    ] == [1, 2, 3, 4]


def statuses(client: Client, *expense_ids: int) -> list[str]:
    return [client.get(f"/api/expenses/{e}/status").json()["status"] for e in expense_ids]


def decided(client: Client, *expense_ids: int) -> list[Any]:
    """Each expense's status, and each step's status, comments and approver."""
    views = [client.get(f"/api/expenses/{e}/status").json() for e in expense_ids]
    return [
        (v["status"], [(a["status"], a["comments"], a["approver_id"]) for a in v["approvals"]])
        for v in views
    ]


def everything(client: Client, *expense_ids: int) -> list[Any]:
    return [
        (
            client.get(f"/api/expenses/{e}/status").json(),
            client.get(f"/api/expenses/{e}/history").json(),
        )
        for e in expense_ids
    ]


def one_by_one(client: Client, approver: int, item: dict[str, Any]) -> dict[str, Any]:
    """What the decision's own endpoint answers, as a bulk call's result."""
    body = {"approver_id": approver, **{k: v for k, v in item.items() if k != "action"}}
    response = client.post(f"/api/expenses/{item['action']}", json=body)
    answer = response.json()
    return {"expense_id": item["expense_id"], "status": response.status_code, "body": answer}


DECISIONS: list[dict[str, Any]] = [
    {"action": "approve", "expense_id": 2, "comments": "ok"},
    {"action": "reject", "expense_id": 3},
    {"action": "approve", "expense_id": 99},
    {"action": "approve", "expense_id": 4},
    {"action": "reject", "expense_id": 1, "reason": "not needed"},
    {"action": "approve", "expense_id": 2},
    {"action": "approve", "expense_id": 3, "comments": "c" * 2000},
]


def test_each_decision_answers_as_its_own_endpoint_would_in_input_order(client: Client) -> None:
    with_expenses(client)

    response = client.post(BULK, json={"approver_id": FRANK, "decisions": DECISIONS})

    with TestClient(create_app(memory_container())) as alone:
        with_expenses(alone)
        expected = [one_by_one(alone, FRANK, item) for item in DECISIONS]
        assert decided(client, 1, 2, 3, 4) == decided(alone, 1, 2, 3, 4)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results == expected
    assert [(r["expense_id"], r["status"]) for r in results] == [
        (2, 200),
        (3, 400),
        (99, 404),
        (4, 403),
        (1, 200),
        (2, 409),
        (3, 200),
    ]
    assert [r["body"].get("code") for r in results] == [
        None,
        "reason_required",
        "unknown_expense",
        "self_approval",
        None,
        "expense_closed",
        None,
    ]
    assert results[0]["body"]["expense_status"] == "approved"
    assert results[4]["body"]["step_rejected"] == 1
    assert statuses(client, 1, 2, 3, 4) == ["rejected", "approved", "pending", "pending"]


@pytest.mark.parametrize("size", [0, 101])
def test_no_decision_or_more_than_100_is_refused_and_decides_nothing(
    client: Client, size: int
) -> None:
    with_expenses(client)
    before = everything(client, 1, 2, 3, 4)
    decisions = [{"action": "approve", "expense_id": 1 + i % 2} for i in range(size)]

    response = client.post(BULK, json={"approver_id": FRANK, "decisions": decisions})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_bulk_size"
    assert everything(client, 1, 2, 3, 4) == before


def test_100_decisions_are_taken(client: Client) -> None:
    with_expenses(client)
    decisions = [{"action": "approve", "expense_id": 1 + i % 2} for i in range(100)]

    response = client.post(BULK, json={"approver_id": FRANK, "decisions": decisions})

    results = response.json()["results"]
    assert [r["status"] for r in results] == [200, 200] + [409] * 98
    assert statuses(client, 1, 2) == ["approved", "approved"]


@pytest.mark.parametrize(
    "body",
    [
        {"approver_id": FRANK, "decisions": [{"action": "hold", "expense_id": 1}]},
        {"approver_id": FRANK, "decisions": [{"expense_id": 1}]},
        {"approver_id": FRANK, "decisions": [{"action": "approve"}]},
        {"approver_id": FRANK, "decisions": [{"action": "approve", "expense_id": "one"}]},
        {"approver_id": FRANK, "decisions": [{"action": "approve", "expense_id": 0}]},
        {
            "approver_id": FRANK,
            "decisions": [{"action": "approve", "expense_id": 1, "reason": "x"}],
        },
        {
            "approver_id": FRANK,
            "decisions": [{"action": "reject", "expense_id": 1, "comments": "x"}],
        },
        {"approver_id": FRANK, "decisions": [{"action": "approve", "expense_id": 1}, 7]},
        {"approver_id": FRANK, "decisions": {"action": "approve", "expense_id": 1}},
        {"approver_id": FRANK},
        {"approver_id": FRANK, "decisions": [], "extra": True},
        {"approver_id": "frank", "decisions": [{"action": "approve", "expense_id": 1}]},
    ],
    ids=[
        "unknown-action",
        "no-action",
        "no-expense",
        "expense-not-an-id",
        "expense-zero",
        "a-reason-to-approve",
        "comments-to-reject",
        "not-an-object",
        "not-a-list",
        "no-decisions",
        "unknown-field",
        "approver-not-an-id",
    ],
)
def test_a_body_off_the_schema_is_refused_whole_and_decides_nothing(
    client: Client, body: dict[str, Any]
) -> None:
    with_expenses(client)
    before = everything(client, 1, 2, 3, 4)
    # A good decision beside the bad one: it must not be made either.
    if isinstance(body.get("decisions"), list) and body["decisions"]:
        body = {**body, "decisions": [{"action": "approve", "expense_id": 2}, *body["decisions"]]}

    response = client.post(BULK, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_request"
    assert everything(client, 1, 2, 3, 4) == before


def test_in_demo_mode_the_approver_must_be_named(client: Client) -> None:
    with_expenses(client)

    response = client.post(BULK, json={"decisions": [{"action": "approve", "expense_id": 1}]})

    assert (response.status_code, response.json()["code"]) == (400, "actor_required")
    assert statuses(client, 1) == ["pending"]


def test_with_a_token_the_actor_is_the_tokens_and_other_tenants_are_unknown(
    token_api: TokenApi,
) -> None:
    other = token_api.other
    grace, frank = token_api.as_user(GRACE), token_api.as_user(FRANK)
    mine = token_api.client.post("/api/expenses", json={"policy_id": 1, "amount": 5}, headers=grace)
    theirs = token_api.client.post(
        "/api/expenses",
        json={"policy_id": other.policy_id, "amount": 5},
        headers=token_api.as_user(other.engineer),
    )
    decisions = [
        {"action": "approve", "expense_id": mine.json()["expense_id"]},
        {"action": "approve", "expense_id": theirs.json()["expense_id"]},
    ]

    response = token_api.client.post(BULK, json={"decisions": decisions}, headers=frank)

    assert [r["status"] for r in response.json()["results"]] == [200, 404]
    assert response.json()["results"][1]["body"]["code"] == "unknown_expense"
