"""Webhook subscriptions over HTTP: `/api/webhooks`, their deliveries and retries.

Deliveries are made by the worker (tests/e2e/test_worker.py); here the worker's use cases run
in the test's own process against the same in-memory store, so each answer can be checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from entrypoints.container import Container
from expense_core.webhooks import Outcome
from tests.http.conftest import Client, TokenApi

ALICE, GRACE = 1, 7
# A public address written as a number: accepted without a DNS lookup.
PUBLIC = "http://93.184.215.14/hooks/expenses"


def subscribe(client: Client, events: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    body = {"url": PUBLIC, "events": events or ["*"], "company_id": 1, **extra}
    response = client.post("/api/webhooks", json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def submit(client: Client, amount: int = 800) -> int:
    body = {"user_id": GRACE, "policy_id": 1, "amount": amount}
    response = client.post("/api/expenses", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["expense_id"])


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


def test_a_subscription_shows_its_secret_once(client: Client) -> None:
    made = subscribe(client, ["expense.approved", "approval.requested"])
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["approval.requested", "expense.approved"]
    assert made["url"] == PUBLIC
    listed = client.get("/api/webhooks", params={"company_id": 1}).json()["items"]
    assert [w["id"] for w in listed] == [made["id"]]
    assert "secret" not in listed[0]
    one = client.get(f"/api/webhooks/{made['id']}").json()
    assert "secret" not in one
    assert one["active"] is True


def test_a_removed_subscription_is_gone(client: Client) -> None:
    made = subscribe(client)
    assert client.delete(f"/api/webhooks/{made['id']}").status_code == 204
    assert client.get("/api/webhooks", params={"company_id": 1}).json()["items"] == []
    refused(client.delete(f"/api/webhooks/{made['id']}"), 404, "unknown_webhook")
    refused(client.get(f"/api/webhooks/{made['id']}/deliveries"), 404, "unknown_webhook")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "ftp://93.184.215.14/x", "events": ["*"]}, 400, "invalid_webhook"),
        ({"url": "http://u:p@93.184.215.14/x", "events": ["*"]}, 400, "invalid_webhook"),
        ({"url": PUBLIC, "events": ["expense.exploded"]}, 400, "invalid_webhook"),
        ({"url": PUBLIC, "events": ["*", "expense.approved"]}, 400, "invalid_webhook"),
        ({"url": PUBLIC, "events": []}, 422, "invalid_request"),
        ({"url": "http://127.0.0.1:9/x", "events": ["*"]}, 400, "refused_destination"),
        ({"url": "http://10.1.2.3/x", "events": ["*"]}, 400, "refused_destination"),
        ({"url": "http://169.254.169.254/latest", "events": ["*"]}, 400, "refused_destination"),
        ({"url": "http://[::1]/x", "events": ["*"]}, 400, "refused_destination"),
        ({"url": PUBLIC, "events": ["*"], "company_id": 99}, 404, "unknown_company"),
    ],
)
def test_a_bad_subscription_is_refused_and_nothing_is_stored(
    client: Client, body: dict[str, Any], status: int, code: str
) -> None:
    refused(client.post("/api/webhooks", json={"company_id": 1, **body}), status, code)
    assert client.get("/api/webhooks", params={"company_id": 1}).json()["items"] == []


def test_demo_mode_must_name_the_company(client: Client) -> None:
    refused(
        client.post("/api/webhooks", json={"url": PUBLIC, "events": ["*"]}), 400, "invalid_input"
    )
    refused(client.get("/api/webhooks"), 400, "invalid_input")


def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    client: Client, container: Container
) -> None:
    made = subscribe(client, ["expense.submitted"])
    submitted = [submit(client, 100 + n) for n in range(3)]
    assert container.relay().dispatch() > 0
    first = client.get(f"/api/webhooks/{made['id']}/deliveries", params={"limit": 2}).json()
    assert [d["expense_id"] for d in first["items"]] == submitted[:0:-1]
    assert {d["status"] for d in first["items"]} == {"pending"}
    assert {d["event_type"] for d in first["items"]} == {"expense.submitted"}
    assert first["items"][0]["webhook_id"] == made["id"]
    rest = client.get(
        f"/api/webhooks/{made['id']}/deliveries", params={"cursor": first["next_cursor"]}
    ).json()
    assert [d["expense_id"] for d in rest["items"]] == submitted[:1]
    assert rest["next_cursor"] is None


def test_only_a_failed_delivery_is_retried(client: Client, container: Container) -> None:
    made = subscribe(client, ["expense.submitted"])
    submit(client)
    relay = container.relay()
    relay.dispatch()
    (claim,) = relay.claim()
    path = f"/api/webhooks/{made['id']}/deliveries/{claim.delivery.id}/retry"
    refused(client.post(path), 409, "delivery_not_failed")
    relay.settle([(claim, Outcome(400, "bad request"))])
    failed = client.get(f"/api/webhooks/{made['id']}/deliveries").json()["items"][0]
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == (
        "failed",
        1,
        400,
    )
    again = client.post(path)
    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["attempts"]) == ("pending", 0)
    refused(
        client.post(f"/api/webhooks/{made['id']}/deliveries/999999/retry"), 404, "unknown_delivery"
    )


def test_with_tokens_only_the_companys_admin_manages_its_webhooks(token_api: TokenApi) -> None:
    api, admin = token_api.client, token_api.as_user(ALICE)
    body = {"url": PUBLIC, "events": ["*"]}
    refused(
        api.post("/api/webhooks", json=body, headers=token_api.as_user(GRACE)), 403, "admin_only"
    )
    made = api.post("/api/webhooks", json=body, headers=admin)
    assert made.status_code == 201, made.text
    webhook = made.json()
    assert webhook["company_id"] == 1
    other_admin = token_api.as_user(token_api.other.boss)
    # Hank is no admin of Globex in this set-up: refused before anything is looked up.
    assert api.get("/api/webhooks", headers=other_admin).status_code == 403
    refused(
        api.post(
            "/api/webhooks", json={**body, "company_id": token_api.other.company_id}, headers=admin
        ),
        404,
        "unknown_company",
    )
    listed = api.get("/api/webhooks", headers=admin).json()["items"]
    assert [w["id"] for w in listed] == [webhook["id"]]
    refused(
        api.delete(f"/api/webhooks/{webhook['id']}", headers=token_api.as_user(GRACE)),
        403,
        "admin_only",
    )
