"""The audit log over HTTP: admin changes made through the API are listed newest first with
their actor, a page at a time or as CSV; admins of the company only with tokens; bad filters
answer 400."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import TestClient

from entrypoints.http import create_app
from entrypoints.settings import AuthMode
from expense_core.model import Role, UserId
from expense_core.services import ChangeUser
from tests.http.conftest import Client, add_other_company, memory_container

ALICE, FRANK, GRACE = 1, 6, 7


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Tokens:
    def __init__(self, client: Client, issued: dict[int, str], other: int, hank: int) -> None:
        self.client, self.issued, self.other, self.hank = client, issued, other, hank

    def as_user(self, user_id: int) -> dict[str, str]:
        return bearer(self.issued[user_id])


@pytest.fixture
def tokens() -> Iterator[Tokens]:
    """Token mode: TechCorp with Alice its admin, and Globex (Hank, not an admin)."""
    container = memory_container(AuthMode.TOKEN)
    container.org().change_user(ChangeUser(user_id=UserId(ALICE), role=Role.ADMIN))
    other = add_other_company(container.org())
    access = container.access()
    issued = {u: access.issue_token(UserId(u)) for u in (ALICE, GRACE, other.boss)}
    with TestClient(create_app(container)) as client:
        yield Tokens(client, issued, other.company_id, other.boss)


def _all(client: Client, query: str, headers: dict[str, str] | None = None) -> list[Any]:
    """Every entry, following the pages."""
    items: list[Any] = []
    cursor = ""
    while True:
        page = ok(client.get(f"/api/audit?{query}&limit=7{cursor}", headers=headers))
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        cursor = f"&cursor={page['next_cursor']}"


def test_a_change_made_through_the_api_is_listed_first(client: Client) -> None:
    team = ok(client.post("/api/companies/1/teams", json={"name": "Sales"}), 201)
    page = ok(client.get("/api/audit?company_id=1"))
    first = page["items"][0]
    assert {k: first[k] for k in ("action", "target_type", "target_id", "actor_id")} == {
        "action": "team.created",
        "target_type": "team",
        "target_id": str(team["id"]),
        "actor_id": None,
    }
    assert (first["before"], first["after"]) == (
        None,
        {"id": team["id"], "name": "Sales", "is_company_wide": False},
    )
    ids = [e["id"] for e in page["items"]]
    assert ids == sorted(ids, reverse=True)


def test_pages_follow_each_other_and_filters_narrow_them(client: Client) -> None:
    ok(client.patch("/api/users/7", json={"name": "Grace T."}))
    ok(client.patch("/api/users/7", json={"name": "Grace Taylor"}))
    everything = _all(client, "company_id=1")
    assert len({e["id"] for e in everything}) == len(everything) > 7
    grace = _all(client, "company_id=1&target_type=user&target_id=7")
    assert [e["action"] for e in grace] == ["user.updated", "user.updated", "user.created"]
    assert [e["after"]["name"] for e in grace] == ["Grace Taylor", "Grace T.", "Grace Taylor"]
    policies = _all(client, "company_id=1&target_type=policy")
    assert {e["target_id"] for e in policies} == {"1", "2", "3"}
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert _all(client, f"company_id=1&since={later}") == []
    assert len(_all(client, f"company_id=1&until={later}")) == len(everything)


@pytest.mark.parametrize(
    "query",
    [
        "target_type=expense",
        "target_id=7",
        "since=yesterday",
        "since=2026-01-31T09:00:00",
        "since=2026-01-31T09:00:00Z&until=2026-01-31T09:00:00Z",
    ],
)
def test_a_bad_filter_is_refused(client: Client, query: str) -> None:
    for path in ("/api/audit", "/api/audit.csv"):
        body = refused(client.get(f"{path}?company_id=1&{query}"), 400, "invalid_input")
        assert body["detail"]


def test_demo_mode_names_the_company(client: Client) -> None:
    refused(client.get("/api/audit"), 400, "invalid_input")
    refused(client.get("/api/audit?company_id=999"), 404, "unknown_company")


def test_the_csv_holds_every_entry_as_listed(client: Client) -> None:
    for n in range(90):  # more than one page of the export
        ok(client.post("/api/companies/1/teams", json={"name": f"Team {n}"}), 201)
    listed = _all(client, "company_id=1")
    response = client.get("/api/audit.csv?company_id=1")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(listed) > 100
    for row, e in zip(rows, listed, strict=True):
        assert (int(row["id"]), row["at"], row["action"], row["target_id"]) == (
            e["id"],
            e["at"],
            e["action"],
            e["target_id"],
        )
        assert row["actor_id"] == ""
        assert (json.loads(row["after"]) if row["after"] else None) == e["after"]
        assert (json.loads(row["before"]) if row["before"] else None) == e["before"]
    users = list(
        csv.DictReader(io.StringIO(client.get("/api/audit.csv?company_id=1&target_type=user").text))
    )
    assert {r["target_type"] for r in users} == {"user"}
    assert len(users) == 7


def test_with_tokens_admin_changes_name_their_actor(tokens: Tokens) -> None:
    client, alice = tokens.client, tokens.as_user(ALICE)
    ok(client.patch(f"/api/users/{GRACE}", json={"role": "admin"}, headers=alice))
    ok(
        client.post(
            "/api/webhooks",
            json={"url": "http://93.184.215.14/hooks/audit", "events": ["*"]},
            headers=alice,
        ),
        201,
    )
    issued = ok(client.post("/api/tokens", json={"user_id": FRANK}, headers=alice), 201)
    client.delete(f"/api/tokens/{issued['id']}", headers=alice)
    latest = ok(client.get("/api/audit?limit=4", headers=alice))["items"]
    assert [(e["action"], e["actor_id"]) for e in latest] == [
        ("token.revoked", ALICE),
        ("token.issued", ALICE),
        ("webhook.created", ALICE),
        ("user.updated", ALICE),
    ]
    role = latest[3]
    assert (role["before"]["role"], role["after"]["role"]) == ("employee", "admin")
    assert issued["token"] not in json.dumps(latest)
    webhook = latest[1]["after"]
    assert "secret" not in webhook
    rows = list(csv.DictReader(io.StringIO(client.get("/api/audit.csv", headers=alice).text)))
    assert [int(r["actor_id"]) for r in rows[:4]] == [ALICE] * 4


def test_with_tokens_only_the_companys_admins_read_its_log(tokens: Tokens) -> None:
    client = tokens.client
    for path in ("/api/audit", "/api/audit.csv"):
        refused(client.get(path), 401, "unauthenticated")
        refused(client.get(path, headers=tokens.as_user(GRACE)), 403, "admin_only")
        refused(client.get(path, headers=tokens.as_user(tokens.hank)), 403, "admin_only")
        refused(
            client.get(f"{path}?company_id={tokens.other}", headers=tokens.as_user(ALICE)),
            404,
            "unknown_company",
        )
    mine = _all(client, "company_id=1", tokens.as_user(ALICE))
    assert mine
    assert {e["company_id"] for e in mine} == {1}


def test_the_audit_routes_are_documented(client: Client) -> None:
    schema = ok(client.get("/openapi.json"))
    listing = schema["paths"]["/api/audit"]["get"]
    assert {"200", "400", "401", "403", "404"} <= set(listing["responses"])
    assert {p["name"] for p in listing["parameters"]} >= {
        "company_id",
        "target_type",
        "target_id",
        "since",
        "until",
        "cursor",
        "limit",
    }
    assert listing["tags"] == ["audit"]
    export = schema["paths"]["/api/audit.csv"]["get"]
    assert "text/csv; charset=utf-8" in export["responses"]["200"]["content"]
    assert {p["name"] for p in export["parameters"]} >= {"target_type", "since", "until"}
