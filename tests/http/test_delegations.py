"""Delegation over HTTP: `/api/users/{id}/delegation`, and a delegate's decisions and inbox.

Periods are set around the server's clock (the system's), days wide.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from entrypoints.container import Container
from tests.http.conftest import Client, TokenApi, add_other_company

ALICE, CAROL, DAVID, EVE, FRANK, GRACE = 1, 3, 4, 5, 6, 7
DAY = timedelta(days=1)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def period(start_days: float = -1, days: float = 14) -> dict[str, str]:
    start = datetime.now(UTC) + start_days * DAY
    return {"starts_at": iso(start), "ends_at": iso(start + days * DAY)}


def holiday(delegate: int = EVE, **change: Any) -> dict[str, Any]:
    return {"delegate_id": delegate, **period(), "note": "holiday", **change}


def submit(client: Client, policy_id: int = 1, amount: int = 800, user: int = GRACE) -> int:
    body = {"user_id": user, "policy_id": policy_id, "amount": amount}
    response = client.post("/api/expenses", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["expense_id"])


def path(user: int) -> str:
    return f"/api/users/{user}/delegation"


# --- the endpoints ---------------------------------------------------------------------------


def test_put_stores_the_delegation_and_get_answers_it(client: Client) -> None:
    body = {
        "delegate_id": EVE,
        "starts_at": "2026-12-01T00:00:00Z",
        "ends_at": "2126-12-15T00:00:00Z",
        "note": "holiday",
    }

    response = client.put(path(FRANK), json=body)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "user_id": FRANK,
        "delegate_id": EVE,
        "starts_at": "2026-12-01T00:00:00.000Z",
        "ends_at": "2126-12-15T00:00:00.000Z",
        "note": "holiday",
        "active": True,
        "company_id": 1,
    }
    assert client.get(path(FRANK)).json() == response.json()


def test_a_new_delegation_replaces_the_old_and_times_come_back_in_utc(client: Client) -> None:
    client.put(path(FRANK), json=holiday())
    body = {
        "delegate_id": CAROL,
        "starts_at": "2030-01-01T09:00:00+02:00",
        "ends_at": "2030-01-02T00:00:00Z",
    }

    replaced = client.put(path(FRANK), json=body).json()

    assert (replaced["delegate_id"], replaced["note"], replaced["active"]) == (CAROL, None, False)
    assert replaced["starts_at"] == "2030-01-01T07:00:00.000Z"
    assert client.get(path(FRANK)).json() == replaced


def test_delete_ends_the_delegation(client: Client) -> None:
    client.put(path(FRANK), json=holiday())

    response = client.delete(path(FRANK))

    assert response.status_code == 204
    assert response.content == b""
    gone = client.get(path(FRANK))
    assert gone.status_code == 404
    assert gone.json() == {"detail": "user 6 has named no delegate", "code": "no_delegation"}
    again = client.delete(path(FRANK))
    assert (again.status_code, again.json()["code"]) == (404, "no_delegation")


def test_get_of_someone_without_a_delegate_or_of_nobody_is_not_found(client: Client) -> None:
    assert client.get(path(FRANK)).json()["code"] == "no_delegation"
    unknown = client.get(path(999))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_user")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (holiday(delegate=FRANK), 400, "self_delegation"),
        (holiday(delegate=999), 404, "unknown_delegate"),
        (holiday(ends_at="2026-12-01T00:00:00Z", starts_at="2026-12-01T00:00:00Z"), 400,
         "delegation_period_empty"),
        (holiday(ends_at="2026-11-30T00:00:00Z", starts_at="2026-12-01T00:00:00Z"), 400,
         "delegation_period_empty"),
        (holiday(starts_at="2026-12-01T00:00:00"), 400, "naive_timestamp"),
        (holiday(ends_at="2126-12-01T00:00:00"), 400, "naive_timestamp"),
        (holiday(ends_at="9999-12-31T23:00:00-05:00"), 400, "timestamp_out_of_range"),
        (holiday(starts_at="2026-12-01"), 422, "invalid_request"),
        (holiday(starts_at="soon"), 422, "invalid_request"),
        (holiday(note="n" * 2001), 422, "invalid_request"),
        (holiday(delegate=0), 422, "invalid_request"),
        (holiday(extra=1), 422, "invalid_request"),
        ({"delegate_id": EVE}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(
    client: Client, body: dict[str, Any], status: int, code: str
) -> None:
    before = client.put(path(FRANK), json=holiday(delegate=CAROL)).json()

    response = client.put(path(FRANK), json=body)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert client.get(path(FRANK)).json() == before


def test_another_companys_user_is_no_delegate(client: Client, container: Container) -> None:
    other = add_other_company(container.org())

    response = client.put(path(FRANK), json=holiday(delegate=other.boss))

    assert (response.status_code, response.json()["code"]) == (404, "unknown_delegate")
    assert client.get(path(FRANK)).json()["code"] == "no_delegation"


def test_an_inactive_delegate_is_refused(client: Client) -> None:
    assert client.patch(f"/api/users/{CAROL}", json={"active": False}).status_code == 200

    response = client.put(path(FRANK), json=holiday(delegate=CAROL))

    assert (response.status_code, response.json()["code"]) == (400, "delegate_inactive")


def test_an_auditor_is_refused_as_a_delegate(client: Client) -> None:
    assert client.patch(f"/api/users/{CAROL}", json={"role": "auditor"}).status_code == 200

    response = client.put(path(FRANK), json=holiday(delegate=CAROL))

    assert (response.status_code, response.json()["code"]) == (400, "delegate_auditor")
    assert client.get(path(FRANK)).json()["code"] == "no_delegation"


def test_two_people_cannot_cover_for_each_other_at_once(client: Client) -> None:
    assert client.put(path(EVE), json=holiday(delegate=FRANK)).status_code == 200

    overlapping = client.put(path(FRANK), json=holiday(delegate=EVE, **period(5, 30)))
    later = client.put(path(FRANK), json=holiday(delegate=EVE, **period(20, 5)))

    assert (overlapping.status_code, overlapping.json()["code"]) == (409, "delegation_cycle")
    assert later.status_code == 200
    assert client.get(path(EVE)).json()["delegate_id"] == FRANK


def test_a_user_who_does_not_exist_cannot_delegate(client: Client) -> None:
    response = client.put(path(999), json=holiday())
    assert (response.status_code, response.json()["code"]) == (404, "unknown_user")
    assert client.delete(path(999)).json()["code"] == "unknown_user"


# --- deciding as a delegate ------------------------------------------------------------------


def test_a_delegate_approves_on_behalf_of_the_absent_approver(client: Client) -> None:
    expense = submit(client)  # Small Equipment: Frank's step alone
    client.put(path(FRANK), json=holiday())

    inbox = client.get("/api/approvals", params={"approver_id": EVE}).json()
    response = client.post(
        "/api/expenses/approve", json={"expense_id": expense, "approver_id": EVE}
    )

    assert [(i["expense_id"], i["on_behalf_of"]) for i in inbox["items"]] == [(expense, FRANK)]
    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Approval submitted successfully",
        "expense_id": expense,
        "step_approved": 1,
        "expense_status": "approved",
        "pending_approvals": 0,
        "on_behalf_of": FRANK,
    }
    events = client.get(f"/api/expenses/{expense}/history").json()["events"]
    assert [(e["kind"], e["actor_id"], e["on_behalf_of"]) for e in events] == [
        ("submitted", GRACE, None),
        ("approved", EVE, FRANK),
    ]
    status = client.get(f"/api/expenses/{expense}/status").json()
    assert status["approvals"][0]["approver_id"] == FRANK  # the step stays Frank's


def test_a_delegate_rejects_on_behalf_of_the_absent_approver(client: Client) -> None:
    expense = submit(client, policy_id=3, amount=300)  # travel: Frank, then Eve
    client.put(path(FRANK), json=holiday(delegate=DAVID))

    response = client.post(
        "/api/expenses/reject",
        json={"expense_id": expense, "approver_id": DAVID, "reason": "no"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["on_behalf_of"] == FRANK
    events = client.get(f"/api/expenses/{expense}/history").json()["events"]
    assert [(e["kind"], e["on_behalf_of"]) for e in events[1:]] == [
        ("rejected", FRANK),
        ("skipped", FRANK),
    ]


def test_approvers_deciding_their_own_step_answer_on_behalf_of_nobody(client: Client) -> None:
    expense = submit(client)
    client.put(path(FRANK), json=holiday())

    response = client.post(
        "/api/expenses/approve", json={"expense_id": expense, "approver_id": FRANK}
    )

    assert response.json()["on_behalf_of"] is None


def test_a_delegate_who_approves_another_step_is_not_eligible(client: Client) -> None:
    expense = submit(client, policy_id=2, amount=4000)  # Frank, Eve, David
    client.put(path(FRANK), json=holiday())

    response = client.post(
        "/api/expenses/approve", json={"expense_id": expense, "approver_id": EVE}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "delegate_not_eligible"
    assert "four eyes" in response.json()["detail"]
    steps = client.get(f"/api/expenses/{expense}/status").json()["approvals"]
    assert [s["status"] for s in steps] == ["pending"] * 3
    eve = client.get("/api/approvals", params={"approver_id": EVE}).json()
    assert eve["items"] == []


def test_a_delegate_acts_only_during_the_period(client: Client) -> None:
    expense = submit(client)
    client.put(path(FRANK), json=holiday(**period(3, 7)))

    response = client.post(
        "/api/expenses/approve", json={"expense_id": expense, "approver_id": EVE}
    )

    assert (response.status_code, response.json()["code"]) == (403, "not_your_step")
    assert client.get("/api/approvals", params={"approver_id": EVE}).json()["items"] == []
    assert client.get(path(FRANK)).json()["active"] is False


def test_a_cleared_delegation_gives_no_more_rights(client: Client) -> None:
    expense = submit(client)
    client.put(path(FRANK), json=holiday())
    client.delete(path(FRANK))

    response = client.post(
        "/api/expenses/approve", json={"expense_id": expense, "approver_id": EVE}
    )

    assert (response.status_code, response.json()["code"]) == (403, "not_your_step")


# --- token mode ------------------------------------------------------------------------------


def test_with_tokens_the_delegates_token_acts_for_the_absent_approver(
    token_api: TokenApi,
) -> None:
    api = token_api
    expense = api.client.post(
        "/api/expenses", json={"policy_id": 1, "amount": 800}, headers=api.as_user(GRACE)
    ).json()["expense_id"]
    set_own = api.client.put(path(FRANK), json=holiday(), headers=api.as_user(FRANK))
    assert set_own.status_code == 200, set_own.text

    as_frank = api.client.post(
        "/api/expenses/approve",
        json={"expense_id": expense, "approver_id": FRANK},
        headers=api.as_user(EVE),
    )
    inbox = api.client.get("/api/approvals", headers=api.as_user(EVE)).json()
    approved = api.client.post(
        "/api/expenses/approve", json={"expense_id": expense}, headers=api.as_user(EVE)
    )

    assert (as_frank.status_code, as_frank.json()["code"]) == (403, "actor_mismatch")
    assert [i["on_behalf_of"] for i in inbox["items"]] == [FRANK]
    assert approved.status_code == 200, approved.text
    assert approved.json()["on_behalf_of"] == FRANK


def test_with_tokens_only_an_admin_sets_or_ends_someone_elses_delegation(
    token_api: TokenApi,
) -> None:
    api = token_api

    by_grace = api.client.put(path(FRANK), json=holiday(), headers=api.as_user(GRACE))
    by_alice = api.client.put(path(FRANK), json=holiday(), headers=api.as_user(ALICE))
    ended_by_grace = api.client.delete(path(FRANK), headers=api.as_user(GRACE))

    assert (by_grace.status_code, by_grace.json()["code"]) == (403, "admin_only")
    assert by_alice.status_code == 200
    assert (ended_by_grace.status_code, ended_by_grace.json()["code"]) == (403, "admin_only")
    seen = api.client.get(path(FRANK), headers=api.as_user(GRACE)).json()
    assert (seen["delegate_id"], seen["user_id"]) == (EVE, FRANK)
    assert api.client.delete(path(FRANK), headers=api.as_user(FRANK)).status_code == 204


def test_with_tokens_another_companys_users_are_unknown(token_api: TokenApi) -> None:
    api = token_api
    hank = api.as_user(api.other.boss)
    api.client.put(path(FRANK), json=holiday(), headers=api.as_user(FRANK))

    for response in (
        api.client.put(path(FRANK), json=holiday(), headers=hank),
        api.client.get(path(FRANK), headers=hank),
        api.client.delete(path(FRANK), headers=hank),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "unknown_user")
    to_hank = api.client.put(
        path(FRANK), json=holiday(delegate=api.other.boss), headers=api.as_user(FRANK)
    )
    assert (to_hank.status_code, to_hank.json()["code"]) == (404, "unknown_delegate")


@pytest.mark.parametrize("method", ["PUT", "GET", "DELETE"])
def test_with_tokens_the_delegation_needs_a_token(token_api: TokenApi, method: str) -> None:
    body = holiday() if method == "PUT" else None
    response = token_api.client.request(method, path(FRANK), json=body)
    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")


def test_a_delegate_sends_back_and_decides_in_bulk_for_the_absent_approver(
    client: Client,
) -> None:
    returned, approved = submit(client, policy_id=3, amount=300), submit(client)
    client.put(path(FRANK), json=holiday(delegate=DAVID))

    sent = client.post(
        "/api/expenses/send-back",
        json={"expense_id": returned, "approver_id": DAVID, "reason": "which trip?"},
    )
    bulk = client.post(
        "/api/approvals/bulk",
        json={"approver_id": DAVID, "decisions": [{"expense_id": approved, "action": "approve"}]},
    )

    assert sent.status_code == 200, sent.text
    assert (sent.json()["expense_status"], sent.json()["on_behalf_of"]) == ("returned", FRANK)
    events = client.get(f"/api/expenses/{returned}/history").json()["events"]
    assert [(e["kind"], e["actor_id"], e["on_behalf_of"]) for e in events[1:]] == [
        ("returned", DAVID, FRANK),
        ("skipped", DAVID, FRANK),
    ]
    (result,) = bulk.json()["results"]
    assert (result["status"], result["body"]["on_behalf_of"]) == (200, FRANK)
