"""/api/tokens: issue (the secret once), list (never a secret), revoke; a revoked or expired
token answers 401 on the very next request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.clock import SystemClock
from entrypoints.http import create_app
from entrypoints.settings import AuthMode
from expense_core.model import UserId
from expense_core.services import AccessService
from tests.clocks import SettableClock
from tests.http.conftest import Client, TokenApi, memory_container

ALICE, FRANK, GRACE = 1, 6, 7  # Alice is TechCorp's admin
ISSUED_FIELDS = {"id", "user_id", "name", "created_at", "expires_at", "last_used_at", "token"}
LISTED_FIELDS = ISSUED_FIELDS - {"token"} | {"revoked_at"}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def issue(api: TokenApi, caller: int, **body: Any) -> Any:
    return api.client.post("/api/tokens", json=body, headers=api.as_user(caller))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_anyone_issues_a_token_for_themselves_and_sees_its_secret_once(
    token_api: TokenApi,
) -> None:
    issued = issue(token_api, GRACE)

    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert set(body) == ISSUED_FIELDS
    assert (body["user_id"], body["name"], body["last_used_at"]) == (GRACE, None, None)
    assert body["token"].startswith(f"et_{body['id']}_")
    assert _when(body["expires_at"]) - _when(body["created_at"]) == timedelta(days=90)
    assert issued.headers["Cache-Control"] == "no-store"
    used = token_api.client.get("/api/expenses", headers=bearer(body["token"]))
    assert used.status_code == 200, used.text


def test_a_token_may_live_fewer_days_and_carry_a_name(token_api: TokenApi) -> None:
    body = issue(token_api, GRACE, ttl_days=30, name="laptop").json()

    assert body["name"] == "laptop"
    assert _when(body["expires_at"]) - _when(body["created_at"]) == timedelta(days=30)


@pytest.mark.parametrize(
    "body",
    [
        {"ttl_days": 0},
        {"ttl_days": 731},
        {"ttl_days": -90},
        {"ttl_days": "30d"},
        {"name": ""},
        {"name": "n" * 101},
        {"name": "nul\x00"},
        {"user_id": 0},
        {"secret": "mine"},
    ],
)
def test_a_bad_request_for_a_token_is_refused(token_api: TokenApi, body: dict[str, Any]) -> None:
    refused = issue(token_api, GRACE, **body)

    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_request"
    listed = token_api.client.get("/api/tokens", headers=token_api.as_user(GRACE)).json()
    assert len(listed["items"]) == 1  # the fixture's own


def test_an_admin_issues_tokens_to_anyone_of_the_company_only(token_api: TokenApi) -> None:
    for_grace = issue(token_api, ALICE, user_id=GRACE, name="for Grace")
    assert for_grace.status_code == 201, for_grace.text
    assert for_grace.json()["user_id"] == GRACE
    assert (
        token_api.client.get("/api/approvals", headers=bearer(for_grace.json()["token"]))
    ).status_code == 200

    not_admin = issue(token_api, FRANK, user_id=GRACE)
    assert (not_admin.status_code, not_admin.json()["code"]) == (403, "admin_only")
    elsewhere = issue(token_api, ALICE, user_id=token_api.other.engineer)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "unknown_user")


def test_a_list_is_newest_first_and_never_shows_a_secret(token_api: TokenApi) -> None:
    first = issue(token_api, GRACE, name="first").json()
    second = issue(token_api, GRACE, name="second").json()

    listed = token_api.client.get("/api/tokens", headers=token_api.as_user(GRACE))

    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert all(set(item) == LISTED_FIELDS for item in items)
    assert [item["id"] for item in items[:2]] == [second["id"], first["id"]]
    fixture_token = token_api.tokens[GRACE]
    assert items[2]["id"] == fixture_token.split("_")[1]
    assert items[2]["last_used_at"] is not None  # this very request used it
    for secret in (first["token"], second["token"], fixture_token):
        assert secret.split("_", 2)[2] not in listed.text


def test_an_admin_lists_the_company_and_others_only_their_own(token_api: TokenApi) -> None:
    def listed(caller: int, query: str = "") -> Any:
        return token_api.client.get(f"/api/tokens{query}", headers=token_api.as_user(caller))

    company = {item["user_id"] for item in listed(ALICE).json()["items"]}
    assert company == set(range(1, 8))  # the fixture's token of each, none of Globex
    assert {item["user_id"] for item in listed(ALICE, f"?user_id={GRACE}").json()["items"]} == {
        GRACE
    }
    assert {item["user_id"] for item in listed(FRANK).json()["items"]} == {FRANK}
    refused = listed(FRANK, f"?user_id={GRACE}")
    assert (refused.status_code, refused.json()["code"]) == (403, "admin_only")
    elsewhere = listed(ALICE, f"?user_id={token_api.other.engineer}")
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "unknown_user")


def test_a_revoked_token_answers_401_on_the_next_request(token_api: TokenApi) -> None:
    spare = issue(token_api, GRACE, name="spare").json()
    assert token_api.client.get("/api/expenses", headers=bearer(spare["token"])).status_code == 200

    revoked = token_api.client.delete(
        f"/api/tokens/{spare['id']}", headers=token_api.as_user(GRACE)
    )

    assert revoked.status_code == 204, revoked.text
    refused = token_api.client.get("/api/expenses", headers=bearer(spare["token"]))
    assert refused.status_code == 401
    assert refused.json() == {"detail": "the bearer token was revoked", "code": "token_revoked"}
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    # Grace's other token still works, and lists the spare as revoked.
    items = token_api.client.get("/api/tokens", headers=token_api.as_user(GRACE)).json()["items"]
    assert [item["revoked_at"] is not None for item in items] == [True, False]


def test_a_token_revokes_itself(token_api: TokenApi) -> None:
    own = token_api.tokens[FRANK]

    revoked = token_api.client.delete(f"/api/tokens/{own.split('_')[1]}", headers=bearer(own))

    assert revoked.status_code == 204
    again = token_api.client.get("/api/tokens", headers=bearer(own))
    assert (again.status_code, again.json()["code"]) == (401, "token_revoked")


def test_only_the_owner_or_an_admin_of_the_company_revokes(token_api: TokenApi) -> None:
    grace = token_api.tokens[GRACE]
    grace_id = grace.split("_")[1]

    def revoke(caller: int, token_id: str = grace_id) -> Any:
        return token_api.client.delete(f"/api/tokens/{token_id}", headers=token_api.as_user(caller))

    by_frank = revoke(FRANK)
    assert (by_frank.status_code, by_frank.json()["code"]) == (403, "admin_only")
    by_globex = revoke(token_api.other.boss)
    assert (by_globex.status_code, by_globex.json()["code"]) == (404, "unknown_token")
    for unknown in ("0123456789abcdef", "nope", "x" * 64):
        answer = revoke(ALICE, unknown)
        assert (answer.status_code, answer.json()["code"]) == (404, "unknown_token")
    assert token_api.client.get("/api/expenses", headers=bearer(grace)).status_code == 200

    assert revoke(ALICE).status_code == 204
    assert revoke(ALICE).status_code == 204  # revoking again changes nothing
    assert token_api.client.get("/api/expenses", headers=bearer(grace)).status_code == 401


@pytest.fixture
def expired_token() -> Iterator[tuple[Client, str]]:
    """A token that lived its one hour and ran out a minute ago, and a client of its server."""
    container = memory_container(AuthMode.TOKEN)
    issued_at = SystemClock().now() - timedelta(hours=1, minutes=1)
    past = AccessService(container.new_uow(), SettableClock(issued_at))
    token = past.issue_token(UserId(GRACE), ttl=timedelta(hours=1))
    with TestClient(create_app(container)) as client:
        yield client, token


def test_an_expired_token_answers_401(expired_token: tuple[Client, str]) -> None:
    client, token = expired_token

    refused = client.get("/api/expenses", headers=bearer(token))

    assert refused.status_code == 401
    assert refused.json() == {"detail": "the bearer token has expired", "code": "token_expired"}


def test_an_unknown_token_says_so(token_api: TokenApi) -> None:
    refused = token_api.client.get("/api/tokens", headers=bearer("et_0123456789abcdef_" + "s" * 43))

    assert refused.status_code == 401
    assert refused.json() == {"detail": "the bearer token is unknown", "code": "unauthenticated"}


def test_demo_mode_names_the_user(client: Client) -> None:
    nobody = client.post("/api/tokens", json={})
    assert (nobody.status_code, nobody.json()["code"]) == (400, "actor_required")
    assert client.get("/api/tokens").json()["code"] == "actor_required"

    issued = client.post("/api/tokens", json={"user_id": GRACE, "name": "demo"})
    assert issued.status_code == 201, issued.text
    listed = client.get(f"/api/tokens?user_id={GRACE}").json()["items"]
    assert [item["id"] for item in listed] == [issued.json()["id"]]
    assert client.delete(f"/api/tokens/{issued.json()['id']}").status_code == 204
    assert client.get(f"/api/tokens?user_id={GRACE}").json()["items"][0]["revoked_at"]
