"""The endpoints beyond the seed, and the workflow rules as the API shows them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Client
from tests.http.contract import TIMESTAMP

GRACE, FRANK, EVE, DAVID, ALICE = 7, 6, 5, 4, 1


def submit(client: Client, **body: Any) -> dict[str, Any]:
    payload = {"user_id": GRACE, "policy_id": 1, "amount": 800, **body}
    response = client.post("/api/expenses", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def approve(client: Client, expense_id: int, approver_id: int) -> Any:
    return client.post(
        "/api/expenses/approve", json={"expense_id": expense_id, "approver_id": approver_id}
    )


def test_category_picks_the_policy_whose_range_holds_the_amount(client: Client) -> None:
    small = submit(client, policy_id=None, category="equipment", amount="1999.99")
    large = submit(client, policy_id=None, category="equipment", amount=2000)

    assert small["policy_id"] == 1
    assert [a["approver"] for a in small["approvals_required"]] == ["Frank Miller"]
    assert large["policy_id"] == 2
    assert len(large["approvals_required"]) == 3


def test_manager_travel_goes_to_sem_then_ad(client: Client) -> None:
    created = submit(client, user_id=FRANK, policy_id=None, category="travel", amount=300)

    assert [(a["step"], a["approver"], a["level"]) for a in created["approvals_required"]] == [
        (1, "Eve Davis", "SEM"),
        (2, "David Wilson", "AD"),
    ]


def test_naming_both_policy_and_category_is_refused(client: Client) -> None:
    response = client.post(
        "/api/expenses",
        json={"user_id": GRACE, "policy_id": 1, "category": "equipment", "amount": 10},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "policy_choice_required"


def test_amount_outside_the_named_policy_is_refused(client: Client) -> None:
    response = client.post("/api/expenses", json={"user_id": GRACE, "policy_id": 1, "amount": 2500})

    assert response.status_code == 400
    assert response.json()["code"] == "amount_outside_policy"
    assert "Small Equipment" in response.json()["detail"]


def test_unknown_category_names_category_and_amount(client: Client) -> None:
    response = client.post(
        "/api/expenses", json={"user_id": GRACE, "category": "yachts", "amount": "12.50"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "no_policy_for"
    assert "yachts" in response.json()["detail"]
    assert "12.50" in response.json()["detail"]


def test_nobody_senior_enough_means_no_submission(client: Client) -> None:
    # Alice is the CTO: nobody in her team is senior to her.
    response = client.post("/api/expenses", json={"user_id": ALICE, "policy_id": 3, "amount": 10})

    assert response.status_code == 409
    assert response.json()["code"] == "no_approver_for_step"
    assert client.get("/api/expenses", params={"company_id": 1}).json()["items"] == []


def test_steps_are_sequential(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)["expense_id"]

    early = approve(client, expense, EVE)

    assert early.status_code == 409
    assert early.json()["code"] == "step_not_reached"
    assert client.get(f"/api/expenses/{expense}/status").json()["approvals"][1]["status"] == (
        "pending"
    )


def test_approving_twice_is_a_conflict(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)["expense_id"]
    assert approve(client, expense, FRANK).status_code == 200

    again = approve(client, expense, FRANK)

    assert again.status_code == 409
    assert again.json()["code"] == "step_already_decided"


def test_someone_who_is_not_an_approver_is_forbidden(client: Client) -> None:
    expense = submit(client)["expense_id"]

    response = approve(client, expense, ALICE)

    assert response.status_code == 403
    assert response.json()["code"] == "not_your_step"


def test_the_submitter_cannot_approve(client: Client) -> None:
    expense = submit(client)["expense_id"]

    response = approve(client, expense, GRACE)

    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"


def test_approving_a_closed_expense_is_a_conflict(client: Client) -> None:
    expense = submit(client)["expense_id"]
    assert approve(client, expense, FRANK).status_code == 200

    response = approve(client, expense, FRANK)

    assert response.status_code == 409
    assert response.json()["code"] == "expense_closed"


def test_unknown_expense_is_not_found(client: Client) -> None:
    response = approve(client, 999, FRANK)
    status = client.get("/api/expenses/999/status")

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_expense"
    assert status.status_code == 404
    assert status.json() == {"detail": "expense 999 does not exist", "code": "unknown_expense"}


def test_unknown_submitter_is_not_found(client: Client) -> None:
    response = client.post("/api/expenses", json={"user_id": 99, "policy_id": 1, "amount": 5})

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_user"


def test_reject_closes_the_expense_and_skips_the_rest(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)["expense_id"]
    approve(client, expense, FRANK)

    response = client.post(
        "/api/expenses/reject",
        json={"expense_id": expense, "approver_id": EVE, "reason": "Use the shared cluster"},
    )

    assert response.status_code == 200
    assert response.json() == {
        "message": "Expense rejected",
        "expense_id": expense,
        "step_rejected": 2,
        "expense_status": "rejected",
        "on_behalf_of": None,
    }
    status = client.get(f"/api/expenses/{expense}/status").json()
    assert status["status"] == "rejected"
    assert [a["status"] for a in status["approvals"]] == ["approved", "rejected", "skipped"]
    assert status["approvals"][1]["comments"] == "Use the shared cluster"
    assert TIMESTAMP.fullmatch(status["completed_at"])


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_needs_a_reason(client: Client, reason: str | None) -> None:
    expense = submit(client)["expense_id"]
    body: dict[str, Any] = {"expense_id": expense, "approver_id": FRANK}
    if reason is not None:
        body["reason"] = reason

    response = client.post("/api/expenses/reject", json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "reason_required"


def test_withdraw_by_the_submitter(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)["expense_id"]

    response = client.post(f"/api/expenses/{expense}/withdraw", json={"user_id": GRACE})

    assert response.status_code == 200
    assert response.json() == {
        "message": "Expense withdrawn",
        "expense_id": expense,
        "expense_status": "withdrawn",
    }
    approvals = client.get(f"/api/expenses/{expense}/status").json()["approvals"]
    assert [a["status"] for a in approvals] == ["skipped"] * 3


def test_only_the_submitter_may_withdraw(client: Client) -> None:
    expense = submit(client)["expense_id"]

    response = client.post(f"/api/expenses/{expense}/withdraw", json={"user_id": FRANK})

    assert response.status_code == 403
    assert response.json()["code"] == "not_submitter"


def test_withdrawing_twice_is_a_conflict(client: Client) -> None:
    expense = submit(client)["expense_id"]
    client.post(f"/api/expenses/{expense}/withdraw", json={"user_id": GRACE})

    response = client.post(f"/api/expenses/{expense}/withdraw", json={"user_id": GRACE})

    assert response.status_code == 409
    assert response.json()["code"] == "expense_closed"


def test_list_is_newest_first_and_pages_by_cursor(client: Client) -> None:
    ids = [submit(client, amount=10 + i)["expense_id"] for i in range(5)]

    first = client.get("/api/expenses", params={"user_id": GRACE, "limit": 2}).json()
    second = client.get(
        "/api/expenses", params={"user_id": GRACE, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    third = client.get(
        "/api/expenses", params={"user_id": GRACE, "limit": 2, "cursor": second["next_cursor"]}
    ).json()

    pages = [[item["id"] for item in page["items"]] for page in (first, second, third)]
    assert pages == [ids[:2:-1], ids[2:0:-1], ids[:1]]
    assert third["next_cursor"] is None
    assert first["items"][0] == {
        "id": ids[4],
        "user_id": GRACE,
        "policy_id": 1,
        "amount": 14.0,
        "description": None,
        "status": "pending",
        "submitted_at": first["items"][0]["submitted_at"],
        "completed_at": None,
    }


def test_list_filters_by_status_and_submitter(client: Client) -> None:
    approved = submit(client)["expense_id"]
    approve(client, approved, FRANK)
    pending = submit(client)["expense_id"]
    franks = submit(client, user_id=FRANK, policy_id=3, amount=50)["expense_id"]

    def ids(**params: Any) -> list[int]:
        page = client.get("/api/expenses", params=params).json()
        return [item["id"] for item in page["items"]]

    assert ids(company_id=1) == [franks, pending, approved]
    assert ids(company_id=1, status="approved") == [approved]
    assert ids(user_id=GRACE, status="pending") == [pending]
    assert ids(user_id=FRANK) == [franks]


def test_list_needs_a_company_in_demo_mode(client: Client) -> None:
    response = client.get("/api/expenses")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"


def test_list_refuses_an_unknown_status(client: Client) -> None:
    response = client.get("/api/expenses", params={"company_id": 1, "status": "lost"})

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"


def test_inbox_lists_only_the_steps_an_approver_can_act_on(client: Client) -> None:
    first = submit(client, policy_id=2, amount=4000)["expense_id"]
    second = submit(client, policy_id=2, amount=5000)["expense_id"]
    approve(client, first, FRANK)

    frank = client.get("/api/approvals", params={"approver_id": FRANK}).json()
    eve = client.get("/api/approvals", params={"approver_id": EVE}).json()
    david = client.get("/api/approvals", params={"approver_id": DAVID}).json()

    assert [(i["expense_id"], i["step_number"]) for i in frank["items"]] == [(second, 1)]
    assert [(i["expense_id"], i["step_number"]) for i in eve["items"]] == [(first, 2)]
    assert david["items"] == []
    assert eve["items"][0] | {"submitted_at": None} == {
        "expense_id": first,
        "step_number": 2,
        "required": True,
        "amount": 4000.0,
        "description": None,
        "submitted_at": None,
        "submitter_id": GRACE,
        "submitter_name": "Grace Taylor",
        "policy_name": "Large Equipment",
        "on_behalf_of": None,
    }
    assert eve["next_cursor"] is None


def test_inbox_needs_an_approver_in_demo_mode(client: Client) -> None:
    response = client.get("/api/approvals")

    assert response.status_code == 400
    assert response.json()["code"] == "actor_required"


def test_history_tells_every_change_in_order(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)["expense_id"]
    approve(client, expense, FRANK)
    client.post(
        "/api/expenses/reject",
        json={"expense_id": expense, "approver_id": EVE, "reason": "Over budget"},
    )

    response = client.get(f"/api/expenses/{expense}/history")

    assert response.status_code == 200
    events = response.json()["events"]
    assert [(e["kind"], e["actor_id"], e["step_number"], e["comment"]) for e in events] == [
        ("submitted", GRACE, None, None),
        ("approved", FRANK, 1, None),
        ("rejected", EVE, 2, "Over budget"),
        ("skipped", EVE, 3, None),
    ]
    assert all(TIMESTAMP.fullmatch(e["at"]) for e in events)


def test_explain_says_why_each_approver_was_chosen(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)["expense_id"]

    response = client.get(f"/api/expenses/{expense}/approvers/explain")

    assert response.status_code == 200
    steps = response.json()["steps"]
    assert [(s["step_number"], s["assigned_approver_id"]) for s in steps] == [
        (1, FRANK),
        (2, EVE),
        (3, DAVID),
    ]
    assert [s["chosen_today"]["name"] for s in steps] == [
        "Frank Miller",
        "Eve Davis",
        "David Wilson",
    ]
    verdicts = {v["person"]["name"]: v["verdict"] for v in steps[1]["considered"]}
    assert verdicts["Eve Davis"].startswith("chosen")
    assert verdicts["Frank Miller"] == "level 6 is junior to the required level 5"


@pytest.mark.parametrize("path", ["/api/expenses/42/history", "/api/expenses/42/approvers/explain"])
def test_history_and_explain_of_an_unknown_expense_are_not_found(client: Client, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == "unknown_expense"


def test_health_probes(client: Client) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert client.get("/").json() == {
        "status": "healthy",
        "service": "expense-tracker",
        "version": client.get("/").json()["version"],
        "auth_mode": "demo",
    }
