"""POST /api/expenses/send-back and POST /api/expenses/{id}/resubmit: answers, bad input (a clear
4xx, nothing changed), token mode and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.http.conftest import Client, TokenApi

GRACE, FRANK, EVE, DAVID = 7, 6, 5, 4


def travel_claim(client: Client, amount: Any = 1500, **headers: str) -> int:
    response = client.post(
        "/api/expenses",
        json={"user_id": GRACE, "policy_id": 3, "amount": amount, "description": "Berlin"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return int(response.json()["expense_id"])


def send_back(client: Client, expense: int, **body: Any) -> Any:
    payload = {"expense_id": expense, "approver_id": FRANK, "reason": "hotel receipt", **body}
    return client.post("/api/expenses/send-back", json=payload)


def resubmit(client: Client, expense: int, **body: Any) -> Any:
    return client.post(f"/api/expenses/{expense}/resubmit", json={"user_id": GRACE, **body})


def snapshot(client: Client, expense_id: int) -> tuple[Any, Any]:
    return (
        client.get(f"/api/expenses/{expense_id}/status").json(),
        client.get(f"/api/expenses/{expense_id}/history").json(),
    )


def test_sending_back_answers_like_a_rejection_with_the_expense_returned(client: Client) -> None:
    expense_id = travel_claim(client)

    response = send_back(client, expense_id)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Expense sent back to its submitter",
        "expense_id": expense_id,
        "step_returned": 1,
        "expense_status": "returned",
        "on_behalf_of": None,
    }
    status = client.get(f"/api/expenses/{expense_id}/status").json()
    assert (status["status"], status["completed_at"], status["pending_approvals"]) == (
        "returned",
        None,
        0,
    )
    assert [(a["status"], a["comments"]) for a in status["approvals"]] == [
        ("skipped", "hotel receipt"),
        ("skipped", None),
    ]
    events = client.get(f"/api/expenses/{expense_id}/history").json()["events"]
    assert [(e["kind"], e["actor_id"], e["step_number"], e["comment"]) for e in events] == [
        ("submitted", GRACE, None, None),
        ("returned", FRANK, 1, "hotel receipt"),
        ("skipped", FRANK, 2, None),
    ]


def test_a_returned_expense_is_listed_as_returned_and_in_no_inbox(client: Client) -> None:
    returned = travel_claim(client)
    pending = travel_claim(client)
    send_back(client, returned)

    listed = client.get("/api/expenses", params={"user_id": GRACE, "status": "returned"}).json()
    franks = client.get("/api/approvals", params={"approver_id": FRANK}).json()

    assert [item["id"] for item in listed["items"]] == [returned]
    assert [item["status"] for item in listed["items"]] == ["returned"]
    assert [item["expense_id"] for item in franks["items"]] == [pending]


def test_resubmitting_answers_like_a_submission_routed_afresh(client: Client) -> None:
    expense_id = travel_claim(client)
    send_back(client, expense_id)

    response = resubmit(client, expense_id, amount="1350.00")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Expense resubmitted",
        "expense_id": expense_id,
        "status": "pending",
        "amount": 1350.0,
        "approvals_required": [
            {
                "step": 1,
                "approver": "Frank Miller",
                "level": "Manager",
                "approver_id": FRANK,
                "required": True,
            },
            {
                "step": 2,
                "approver": "Eve Davis",
                "level": "SEM",
                "approver_id": EVE,
                "required": True,
            },
        ],
        "policy_id": 3,
    }
    franks = client.get("/api/approvals", params={"approver_id": FRANK}).json()
    assert [item["expense_id"] for item in franks["items"]] == [expense_id]
    events = client.get(f"/api/expenses/{expense_id}/history").json()["events"]
    assert (events[-1]["kind"], events[-1]["comment"]) == (
        "resubmitted",
        "amount 1500.00 -> 1350.00",
    )


def test_a_resubmission_may_move_to_a_policy_with_more_steps(client: Client) -> None:
    expense_id = travel_claim(client)
    send_back(client, expense_id)

    moved = resubmit(client, expense_id, category="equipment", amount=4000, description="GPU")

    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["expense_id"], body["policy_id"]) == (expense_id, 2)
    assert [a["approver"] for a in body["approvals_required"]] == [
        "Frank Miller",
        "Eve Davis",
        "David Wilson",
    ]
    for approver in (FRANK, EVE, DAVID):
        approved = client.post(
            "/api/expenses/approve", json={"expense_id": expense_id, "approver_id": approver}
        )
        assert approved.status_code == 200, approved.text
    status = client.get(f"/api/expenses/{expense_id}/status").json()
    assert (status["status"], status["description"], len(status["approvals"])) == (
        "approved",
        "GPU",
        3,
    )


def test_a_returned_expense_may_be_withdrawn(client: Client) -> None:
    expense_id = travel_claim(client)
    send_back(client, expense_id)

    response = client.post(f"/api/expenses/{expense_id}/withdraw", json={"user_id": GRACE})

    assert response.status_code == 200
    assert response.json()["expense_status"] == "withdrawn"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reason": None}, 400, "reason_required"),
        ({"reason": "   "}, 400, "reason_required"),
        ({"reason": "r" * 2001}, 422, "invalid_request"),
        ({"approver_id": EVE}, 409, "step_not_reached"),
        ({"approver_id": DAVID}, 403, "not_your_step"),
        ({"approver_id": GRACE}, 403, "self_approval"),
        ({"approver_id": 99}, 404, "unknown_user"),
        ({"expense_id": 999}, 404, "unknown_expense"),
        ({"expense_id": 0}, 422, "invalid_request"),
        ({"approver_id": None}, 400, "actor_required"),
        ({"comments": "x"}, 422, "invalid_request"),
    ],
    ids=[
        "no-reason",
        "blank-reason",
        "long-reason",
        "step-not-reached",
        "not-an-approver",
        "the-submitter",
        "unknown-approver",
        "unknown-expense",
        "zero-id",
        "no-actor",
        "unknown-field",
    ],
)
def test_a_bad_send_back_is_refused_and_changes_nothing(
    client: Client, body: dict[str, Any], status: int, code: str
) -> None:
    expense_id = travel_claim(client)
    before = snapshot(client, expense_id)

    response = send_back(client, expense_id, **body)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert snapshot(client, expense_id) == before


def test_an_optional_step_cannot_send_back(client: Client) -> None:
    created = client.post(
        "/api/policies",
        json={
            "company_id": 1,
            "category": "training",
            "name": "Training",
            "min_amount": 0,
            "max_amount": 5000,
            "steps": [
                {"step_order": 1, "required_level": 6},
                {"step_order": 2, "required_level": 4, "is_required": False},
            ],
        },
    )
    assert created.status_code == 201, created.text
    expense = client.post(
        "/api/expenses", json={"user_id": GRACE, "category": "training", "amount": 300}
    ).json()["expense_id"]

    response = send_back(client, expense, approver_id=DAVID)

    assert response.status_code == 403
    assert response.json()["code"] == "optional_step_cannot_send_back"


def test_a_closed_or_returned_expense_cannot_be_sent_back(client: Client) -> None:
    expense_id = travel_claim(client)
    send_back(client, expense_id)

    again = send_back(client, expense_id)
    approve = client.post(
        "/api/expenses/approve", json={"expense_id": expense_id, "approver_id": FRANK}
    )

    assert [again.status_code, approve.status_code] == [409, 409]
    assert again.json()["code"] == approve.json()["code"] == "expense_closed"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"user_id": FRANK}, 403, "not_submitter"),
        ({"policy_id": 1, "category": "equipment"}, 400, "policy_choice_required"),
        ({"policy_id": 1, "amount": 2500}, 400, "amount_outside_policy"),
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": "12.345"}, 400, "invalid_amount"),
        ({"category": "yachts"}, 400, "no_policy_for"),
        ({"policy_id": 99}, 404, "unknown_policy"),
        ({"user_id": 99}, 404, "unknown_user"),
        ({"description": "d" * 2001}, 422, "invalid_request"),
        ({"expense_id": 1}, 422, "invalid_request"),
        ({"user_id": None}, 400, "actor_required"),
    ],
    ids=[
        "not-the-submitter",
        "policy-and-category",
        "amount-outside-policy",
        "zero-amount",
        "three-places",
        "no-policy-for",
        "unknown-policy",
        "unknown-user",
        "long-description",
        "unknown-field",
        "no-actor",
    ],
)
def test_a_bad_resubmission_is_refused_and_changes_nothing(
    client: Client, body: dict[str, Any], status: int, code: str
) -> None:
    expense_id = travel_claim(client)
    send_back(client, expense_id)
    before = snapshot(client, expense_id)

    response = resubmit(client, expense_id, **body)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert snapshot(client, expense_id) == before


@pytest.mark.parametrize("state", ["pending", "approved", "withdrawn"])
def test_only_a_returned_expense_can_be_resubmitted(client: Client, state: str) -> None:
    expense_id = travel_claim(client)
    if state == "approved":
        for approver in (FRANK, EVE):
            client.post(
                "/api/expenses/approve", json={"expense_id": expense_id, "approver_id": approver}
            )
    elif state == "withdrawn":
        client.post(f"/api/expenses/{expense_id}/withdraw", json={"user_id": GRACE})
    before = snapshot(client, expense_id)
    assert before[0]["status"] == state

    response = resubmit(client, expense_id, amount=10)

    assert response.status_code == 409
    assert response.json()["code"] == "expense_not_returned"
    assert snapshot(client, expense_id) == before


def test_an_unknown_expense_cannot_be_resubmitted(client: Client) -> None:
    response = resubmit(client, 999)

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_expense"
    assert client.post("/api/expenses/0/resubmit", json={"user_id": GRACE}).status_code == 422


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(
    body=st.dictionaries(
        st.sampled_from(
            ("user_id", "amount", "description", "policy_id", "category", "expense_id", "reason")
        ),
        st.none()
        | st.booleans()
        | st.integers(-3, 5)
        | st.text(max_size=6)
        | st.floats(allow_nan=False, allow_infinity=False),
        max_size=5,
    ),
    path=st.sampled_from(("/api/expenses/send-back", "/api/expenses/1/resubmit")),
)
def test_no_body_makes_a_server_error(client: Client, body: dict[str, Any], path: str) -> None:
    response = client.post(path, json=body)

    assert response.status_code < 500, response.text


# --- token mode ------------------------------------------------------------------------------


def test_with_a_token_the_actor_comes_from_the_token(token_api: TokenApi) -> None:
    api = token_api
    created = api.client.post(
        "/api/expenses",
        json={"policy_id": 3, "amount": 1500},
        headers=api.as_user(GRACE),
    )
    expense_id = created.json()["expense_id"]

    someone_else = api.client.post(
        "/api/expenses/send-back",
        json={"expense_id": expense_id, "approver_id": FRANK, "reason": "why?"},
        headers=api.as_user(EVE),
    )
    sent = api.client.post(
        "/api/expenses/send-back",
        json={"expense_id": expense_id, "reason": "why?"},
        headers=api.as_user(FRANK),
    )
    for_grace = api.client.post(
        f"/api/expenses/{expense_id}/resubmit",
        json={"user_id": GRACE, "amount": 1200},
        headers=api.as_user(FRANK),
    )
    by_grace = api.client.post(
        f"/api/expenses/{expense_id}/resubmit", json={"amount": 1200}, headers=api.as_user(GRACE)
    )

    assert (someone_else.status_code, someone_else.json()["code"]) == (403, "actor_mismatch")
    assert sent.status_code == 200, sent.text
    assert (for_grace.status_code, for_grace.json()["code"]) == (403, "actor_mismatch")
    assert by_grace.status_code == 200, by_grace.text
    assert by_grace.json()["amount"] == 1200


def test_with_a_token_another_companys_expense_is_not_found(token_api: TokenApi) -> None:
    api = token_api
    other = api.other
    theirs = api.client.post(
        "/api/expenses",
        json={"policy_id": other.policy_id, "amount": 100},
        headers=api.as_user(other.engineer),
    ).json()["expense_id"]
    api.client.post(
        "/api/expenses/send-back",
        json={"expense_id": theirs, "reason": "why?"},
        headers=api.as_user(other.boss),
    )

    send_back_theirs = api.client.post(
        "/api/expenses/send-back",
        json={"expense_id": theirs, "reason": "why?"},
        headers=api.as_user(FRANK),
    )
    resubmit_theirs = api.client.post(
        f"/api/expenses/{theirs}/resubmit", json={}, headers=api.as_user(GRACE)
    )

    assert [send_back_theirs.status_code, resubmit_theirs.status_code] == [404, 404]
    assert resubmit_theirs.json()["code"] == "unknown_expense"


def test_without_a_token_both_are_unauthenticated(token_api: TokenApi) -> None:
    sent = token_api.client.post(
        "/api/expenses/send-back", json={"expense_id": 1, "approver_id": FRANK, "reason": "x"}
    )
    resubmitted = token_api.client.post("/api/expenses/1/resubmit", json={"user_id": GRACE})

    assert [sent.status_code, resubmitted.status_code] == [401, 401]


# --- the OpenAPI document --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "response"),
    [
        ("/api/expenses/send-back", "SendBackBody", "SendBackResponse"),
        ("/api/expenses/{expense_id}/resubmit", "ResubmitBody", "SubmitResponse"),
    ],
)
def test_both_endpoints_are_documented(client: Client, path: str, body: str, response: str) -> None:
    schema = client.get("/openapi.json").json()
    operation = schema["paths"][path]["post"]

    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request["$ref"] == f"#/components/schemas/{body}"
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"] == f"#/components/schemas/{response}"
    assert {"400", "401", "403", "404", "409", "422"} <= set(operation["responses"])
    for status, described in operation["responses"].items():
        if status.startswith(("4", "5")):
            error = described["content"]["application/json"]["schema"]["$ref"]
            assert error == "#/components/schemas/ErrorBody"
    components = schema["components"]["schemas"]
    assert set(components["ResubmitBody"]["properties"]) == {
        "user_id",
        "amount",
        "description",
        "policy_id",
        "category",
    }


def test_returned_is_a_documented_status_filter(client: Client) -> None:
    schema = client.get("/openapi.json").json()
    parameters = schema["paths"]["/api/expenses"]["get"]["parameters"]
    (status,) = [p for p in parameters if p["name"] == "status"]

    assert {"$ref": "#/components/schemas/ExpenseStatus"} in status["schema"]["oneOf"]
    assert "returned" in schema["components"]["schemas"]["ExpenseStatus"]["enum"]
    assert client.get("/api/expenses", params={"user_id": GRACE, "status": "returned"}).json() == {
        "items": [],
        "next_cursor": None,
    }
