"""AUTH_MODE=token: the actor is the bearer token's user, confined to their own company."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import TokenApi

GRACE, FRANK, EVE = 7, 6, 5


def submit_as(api: TokenApi, user: int, **body: Any) -> Any:
    payload = {"policy_id": 1, "amount": 800, **body}
    return api.client.post("/api/expenses", json=payload, headers=api.as_user(user))


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic Z3JhY2U6cGFzcw==",
        "Bearer not-a-token",
        "Bearer et_0123456789abcdef_forged-secret",
        "Bearer et_short_secret",
        "Bearer " + "x" * 4000,
    ],
)
def test_no_valid_token_is_unauthenticated(api_path_method: Any, authorization: str | None) -> None:
    api, method, path, body = api_path_method
    headers = {} if authorization is None else {"Authorization": authorization}

    response = api.client.request(method, path, json=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture(
    params=[
        ("POST", "/api/expenses", {"user_id": GRACE, "policy_id": 1, "amount": 5}),
        ("POST", "/api/expenses/approve", {"expense_id": 1, "approver_id": FRANK}),
        ("POST", "/api/expenses/reject", {"expense_id": 1, "approver_id": FRANK, "reason": "no"}),
        ("POST", "/api/expenses/1/withdraw", {"user_id": GRACE}),
        ("POST", "/api/approvals/bulk", {"decisions": [{"action": "approve", "expense_id": 1}]}),
        ("GET", "/api/expenses/1/status", None),
        ("GET", "/api/expenses", None),
        ("GET", "/api/approvals", None),
        ("GET", "/api/expenses/1/history", None),
        ("GET", "/api/expenses/1/approvers/explain", None),
    ]
)
def api_path_method(
    token_api: TokenApi, request: pytest.FixtureRequest
) -> tuple[TokenApi, str, str, Any]:
    method, path, body = request.param
    return token_api, method, path, body


def test_a_token_of_someone_else_is_unknown(token_api: TokenApi) -> None:
    real = token_api.tokens[GRACE]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")

    response = token_api.client.get("/api/expenses", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


def test_the_actor_comes_from_the_token(token_api: TokenApi) -> None:
    created = submit_as(token_api, GRACE)
    assert created.status_code == 201
    expense = created.json()["expense_id"]

    approved = token_api.client.post(
        "/api/expenses/approve", json={"expense_id": expense}, headers=token_api.as_user(FRANK)
    )

    assert approved.status_code == 200
    assert approved.json()["expense_status"] == "approved"
    status = token_api.client.get(
        f"/api/expenses/{expense}/status", headers=token_api.as_user(GRACE)
    )
    assert status.json()["user_name"] == "Grace Taylor"


def test_a_body_actor_that_agrees_with_the_token_is_fine(token_api: TokenApi) -> None:
    assert submit_as(token_api, GRACE, user_id=GRACE).status_code == 201


@pytest.mark.parametrize(
    ("path", "body_of"),
    [
        ("/api/expenses", lambda e: {"user_id": GRACE, "policy_id": 1, "amount": 5}),
        ("/api/expenses/approve", lambda e: {"expense_id": e, "approver_id": FRANK}),
        ("/api/expenses/reject", lambda e: {"expense_id": e, "approver_id": FRANK, "reason": "x"}),
        (
            "/api/approvals/bulk",
            lambda e: {"approver_id": FRANK, "decisions": [{"action": "approve", "expense_id": e}]},
        ),
    ],
)
def test_a_body_actor_that_disagrees_with_the_token_is_forbidden(
    token_api: TokenApi, path: str, body_of: Any
) -> None:
    expense = submit_as(token_api, GRACE).json()["expense_id"]

    # Eve holds the token but the body speaks for Grace or Frank.
    response = token_api.client.post(path, json=body_of(expense), headers=token_api.as_user(EVE))

    assert response.status_code == 403
    assert response.json()["code"] == "actor_mismatch"
    status = token_api.client.get(
        f"/api/expenses/{expense}/status", headers=token_api.as_user(GRACE)
    )
    assert status.json()["status"] == "pending"


def test_withdraw_for_someone_else_is_forbidden(token_api: TokenApi) -> None:
    expense = submit_as(token_api, GRACE).json()["expense_id"]

    response = token_api.client.post(
        f"/api/expenses/{expense}/withdraw",
        json={"user_id": GRACE},
        headers=token_api.as_user(FRANK),
    )

    assert response.status_code == 403
    assert response.json()["code"] == "actor_mismatch"


def test_another_companys_expense_is_not_found(token_api: TokenApi) -> None:
    other = token_api.other
    theirs = token_api.client.post(
        "/api/expenses",
        json={"policy_id": other.policy_id, "amount": 100},
        headers=token_api.as_user(other.engineer),
    )
    assert theirs.status_code == 201
    expense = theirs.json()["expense_id"]
    techcorp = token_api.as_user(FRANK)

    reads = [
        token_api.client.get(f"/api/expenses/{expense}/{what}", headers=techcorp)
        for what in ("status", "history", "approvers/explain")
    ]
    approve = token_api.client.post(
        "/api/expenses/approve", json={"expense_id": expense}, headers=techcorp
    )
    withdraw = token_api.client.post(f"/api/expenses/{expense}/withdraw", json={}, headers=techcorp)

    assert [r.status_code for r in (*reads, approve, withdraw)] == [404] * 5
    assert all(r.json()["code"] == "unknown_expense" for r in (*reads, approve, withdraw))


def test_another_companys_policy_is_not_found(token_api: TokenApi) -> None:
    response = submit_as(token_api, GRACE, policy_id=token_api.other.policy_id)

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_policy"


def test_lists_are_confined_to_the_tokens_company(token_api: TokenApi) -> None:
    mine = submit_as(token_api, GRACE).json()["expense_id"]
    other = token_api.other
    token_api.client.post(
        "/api/expenses",
        json={"policy_id": other.policy_id, "amount": 100},
        headers=token_api.as_user(other.engineer),
    )

    listed = token_api.client.get("/api/expenses", headers=token_api.as_user(FRANK)).json()
    asked_for_other = token_api.client.get(
        "/api/expenses",
        params={"company_id": other.company_id},
        headers=token_api.as_user(FRANK),
    )

    assert [item["id"] for item in listed["items"]] == [mine]
    assert asked_for_other.status_code == 404


def test_the_inbox_is_the_token_holders(token_api: TokenApi) -> None:
    expense = submit_as(token_api, GRACE).json()["expense_id"]

    franks = token_api.client.get("/api/approvals", headers=token_api.as_user(FRANK)).json()
    someone_elses = token_api.client.get(
        "/api/approvals", params={"approver_id": FRANK}, headers=token_api.as_user(EVE)
    )

    assert [item["expense_id"] for item in franks["items"]] == [expense]
    assert someone_elses.status_code == 403


def test_health_and_docs_need_no_token(token_api: TokenApi) -> None:
    assert token_api.client.get("/").json()["auth_mode"] == "token"
    assert token_api.client.get("/health/live").status_code == 200
    assert token_api.client.get("/health/ready").status_code == 200
    assert token_api.client.get("/docs").status_code == 200
    schema = token_api.client.get("/openapi.json").json()
    assert schema["security"] == [{"bearer": []}]
