"""The fallback approver and escalation over HTTP: `PATCH /api/companies/{id}`, policy steps'
`escalate_after_hours`, and escalations in an expense's history; bad input is a clear 4xx that
changes nothing; with tokens only an admin of the company names the fallback approver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from entrypoints.container import Container
from expense_core.model import UserId
from expense_core.services import ChangeUser
from tests.http.conftest import Client, TokenApi

ALICE, BOB, CAROL, DAVID, EVE, FRANK, GRACE = range(1, 8)
LATER = datetime.now(UTC) + timedelta(days=3)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


def training(steps: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "company_id": 1,
        "category": "training",
        "name": "Training",
        "min_amount": 0,
        "max_amount": 5000,
        "steps": steps,
        **fields,
    }


# --- the fallback approver -------------------------------------------------------------------


def test_a_company_names_its_fallback_approver_and_clears_it(client: Client) -> None:
    assert ok(client.get("/api/companies/1"))["fallback_approver_id"] is None
    named = ok(client.patch("/api/companies/1", json={"fallback_approver_id": BOB}))
    assert named == {"id": 1, "name": "TechCorp Solutions", "fallback_approver_id": BOB}
    assert ok(client.get("/api/companies/1")) == named
    assert ok(client.patch("/api/companies/1", json={})) == named  # nothing named, nothing changed
    cleared = ok(client.patch("/api/companies/1", json={"fallback_approver_id": None}))
    assert cleared["fallback_approver_id"] is None
    assert ok(client.get("/api/companies/1"))["fallback_approver_id"] is None


def test_the_ctos_expense_goes_to_the_fallback_approver(client: Client) -> None:
    small = {"user_id": ALICE, "policy_id": 1, "amount": 900, "description": "Conference"}
    refused(client.post("/api/expenses", json=small), 409, "no_approver_for_step")
    ok(client.patch("/api/companies/1", json={"fallback_approver_id": BOB}))
    submitted = ok(client.post("/api/expenses", json=small), 201)
    assert [(a["step"], a["approver_id"]) for a in submitted["approvals_required"]] == [(1, BOB)]
    explained = ok(client.get(f"/api/expenses/{submitted['expense_id']}/approvers/explain"))
    [step] = explained["steps"]
    assert step["rule"].startswith("fallback")
    assert step["chosen_today"]["user_id"] == BOB
    travel = {"user_id": ALICE, "policy_id": 3, "amount": 300, "description": "Client visit"}
    body = refused(client.post("/api/expenses", json=travel), 409, "no_approver_for_step")
    assert "step 2" in body["detail"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"fallback_approver_id": 999_999}, 404, "unknown_fallback_approver"),
        ({"fallback_approver_id": "two"}, 422, "invalid_request"),
        ({"fallback_approver_id": 0}, 422, "invalid_request"),
        ({"fallback_approver_id": 2, "name": "Renamed"}, 422, "invalid_request"),
    ],
)
def test_a_bad_fallback_approver_is_refused_and_changes_nothing(
    client: Client, body: dict[str, Any], status: int, code: str
) -> None:
    ok(client.patch("/api/companies/1", json={"fallback_approver_id": CAROL}))
    refused(client.patch("/api/companies/1", json=body), status, code)
    assert ok(client.get("/api/companies/1"))["fallback_approver_id"] == CAROL


def test_an_inactive_or_foreign_fallback_approver_is_refused(
    client: Client, container: Container
) -> None:
    container.org().change_user(ChangeUser(user_id=UserId(DAVID), active=False))
    refused(
        client.patch("/api/companies/1", json={"fallback_approver_id": DAVID}),
        409,
        "fallback_approver_inactive",
    )
    globex = ok(client.post("/api/companies", json={"name": "Globex"}), 201)["id"]
    team = ok(client.post(f"/api/companies/{globex}/teams", json={"name": "Ops"}), 201)["id"]
    level = ok(
        client.post(f"/api/teams/{team}/levels", json={"level_number": 1, "level_name": "Boss"}),
        201,
    )["id"]
    hank = ok(
        client.post(
            "/api/users",
            json={
                "company_id": globex,
                "team_id": team,
                "hierarchy_level_id": level,
                "email": "hank@globex.example",
                "name": "Hank",
            },
        ),
        201,
    )["id"]
    refused(
        client.patch("/api/companies/1", json={"fallback_approver_id": hank}),
        404,
        "unknown_fallback_approver",
    )
    refused(client.patch("/api/companies/999", json={}), 404, "unknown_company")
    assert ok(client.get("/api/companies/1"))["fallback_approver_id"] is None


def test_with_tokens_only_an_admin_of_the_company_names_the_fallback(token_api: TokenApi) -> None:
    client, body = token_api.client, {"fallback_approver_id": BOB}
    refused(client.patch("/api/companies/1", json=body), 401, "unauthenticated")
    refused(
        client.patch("/api/companies/1", json=body, headers=token_api.as_user(BOB)),
        403,
        "admin_only",
    )
    other = token_api.other.company_id
    refused(
        client.patch(f"/api/companies/{other}", json=body, headers=token_api.as_user(ALICE)),
        404,
        "unknown_company",
    )
    named = ok(client.patch("/api/companies/1", json=body, headers=token_api.as_user(ALICE)))
    assert named["fallback_approver_id"] == BOB


# --- escalation ------------------------------------------------------------------------------


def test_policy_steps_take_and_show_their_hours(client: Client) -> None:
    created = ok(
        client.post(
            "/api/policies",
            json=training(
                [
                    {"step_order": 1, "required_level": 6, "escalate_after_hours": 24},
                    {"step_order": 2, "required_level": 5},
                ]
            ),
        ),
        201,
    )
    assert [s["escalate_after_hours"] for s in created["steps"]] == [24, None]
    assert ok(client.get(f"/api/policies/{created['id']}")) == created
    listed = ok(client.get("/api/companies/1/policies"))["items"]
    assert [p["steps"] for p in listed if p["id"] == created["id"]] == [created["steps"]]


@pytest.mark.parametrize(
    ("step", "status", "code"),
    [
        ({"escalate_after_hours": 0}, 400, "invalid_escalate_after_hours"),
        ({"escalate_after_hours": -3}, 400, "invalid_escalate_after_hours"),
        ({"escalate_after_hours": 8761}, 400, "invalid_escalate_after_hours"),
        ({"escalate_after_hours": 10**15}, 400, "invalid_escalate_after_hours"),
        ({"escalate_after_hours": "soon"}, 422, "invalid_request"),
        ({"escalate_after_hours": 1.5}, 422, "invalid_request"),
    ],
)
def test_bad_hours_are_refused_and_create_nothing(
    client: Client, step: dict[str, Any], status: int, code: str
) -> None:
    before = ok(client.get("/api/companies/1/policies"))["items"]
    body = training([{"step_order": 1, "required_level": 6, **step}])
    refused(client.post("/api/policies", json=body), status, code)
    assert ok(client.get("/api/companies/1/policies"))["items"] == before


def test_an_optional_step_cannot_escalate(client: Client) -> None:
    body = training(
        [
            {"step_order": 1, "required_level": 6},
            {"step_order": 2, "required_level": 4, "is_required": False, "escalate_after_hours": 8},
        ]
    )
    detail = refused(client.post("/api/policies", json=body), 400, "invalid_escalate_after_hours")
    assert "optional" in detail["detail"]


def test_escalations_show_in_the_history(client: Client, container: Container) -> None:
    ok(
        client.post(
            "/api/policies",
            json=training(
                [
                    {"step_order": 1, "required_level": 6, "escalate_after_hours": 24},
                    {"step_order": 2, "required_level": 1, "escalate_after_hours": 1},
                ]
            ),
        ),
        201,
    )
    expense = ok(
        client.post("/api/expenses", json={"user_id": GRACE, "category": "training", "amount": 50}),
        201,
    )["expense_id"]
    sweeps = container.escalation()
    sweeps.sweep(LATER)  # step 1: Frank to Eve
    ok(client.post("/api/expenses/approve", json={"expense_id": expense, "approver_id": EVE}))
    sweeps.sweep(LATER + timedelta(hours=2))  # step 2: Alice, at the top, stays
    events = ok(client.get(f"/api/expenses/{expense}/history"))["events"]
    moves = [e for e in events if e["kind"] in ("escalated", "escalation_failed")]
    assert [
        (e["kind"], e["step_number"], e["previous_approver_id"], e["approver_id"], e["actor_id"])
        for e in moves
    ] == [
        ("escalated", 1, FRANK, EVE, None),
        ("escalation_failed", 2, None, ALICE, None),
    ]
    assert moves[0]["comment"].startswith("overdue by ")
    assert "no fallback approver" in moves[1]["comment"]
    status = ok(client.get(f"/api/expenses/{expense}/status"))
    assert [a["approver_id"] for a in status["approvals"]] == [EVE, ALICE]
