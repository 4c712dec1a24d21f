"""The admin API: companies, teams, levels, users and policies, their errors, and re-routing
when an approver leaves or moves; open in demo mode, admins of the company only with tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from litestar.testing import TestClient

from entrypoints.container import Container, container_for
from entrypoints.http import create_app
from entrypoints.settings import AuthMode, Settings
from expense_core.model import Role, UserId
from expense_core.services import ChangeUser
from tests.http.conftest import Client, TokenApi, add_other_company, memory_container

GRACE, FRANK, EVE, DAVID, CAROL, ALICE = 7, 6, 5, 4, 3, 1


@pytest.fixture
def empty() -> Iterator[Client]:
    """The API in demo mode on an empty store."""
    container = container_for(Settings(database_url="memory://"))
    with TestClient(create_app(container)) as client:
        yield client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


@attrs.frozen
class Acme:
    company: int
    team: int
    finance: int
    levels: dict[int, int]
    people: dict[str, int]
    policy: int


def build_acme(client: Client) -> Acme:
    """Through the API alone: a company, Engineering with a ladder and Finance, five people."""
    company = ok(client.post("/api/companies", json={"name": "Acme"}), 201)["id"]
    team = ok(client.post(f"/api/companies/{company}/teams", json={"name": "Engineering"}), 201)
    finance = ok(
        client.post(
            f"/api/companies/{company}/teams", json={"name": "Finance", "is_company_wide": True}
        ),
        201,
    )
    levels = {}
    for number, name in ((2, "Director"), (4, "Manager"), (6, "Engineer")):
        level = client.post(
            f"/api/teams/{team['id']}/levels", json={"level_number": number, "level_name": name}
        )
        levels[number] = ok(level, 201)["id"]
    people: dict[str, int] = {}
    for name, number, manager in (
        ("dora", 2, None),
        ("mia", 4, "dora"),
        ("max", 4, "dora"),
        ("eli", 6, "mia"),
    ):
        body = {
            "company_id": company,
            "team_id": team["id"],
            "hierarchy_level_id": levels[number],
            "email": f"{name}@acme.example",
            "name": name.title(),
            "manager_id": people.get(manager) if manager else None,
        }
        people[name] = ok(client.post("/api/users", json=body), 201)["id"]
    policy = client.post(
        "/api/policies",
        json={
            "company_id": company,
            "category": "equipment",
            "name": "Equipment",
            "min_amount": 0,
            "max_amount": "5000.00",
            "steps": [
                {"step_order": 1, "required_level": 4},
                {"step_order": 2, "required_level": 2, "description": "Director"},
            ],
        },
    )
    return Acme(company, team["id"], finance["id"], levels, people, ok(policy, 201)["id"])


def test_a_company_is_set_up_and_works_through_the_api_alone(empty: Client) -> None:
    acme = build_acme(empty)
    submitted = ok(
        empty.post(
            "/api/expenses",
            json={"user_id": acme.people["eli"], "category": "equipment", "amount": 1200},
        ),
        201,
    )
    assert [a["approver_id"] for a in submitted["approvals_required"]] == [
        acme.people["mia"],
        acme.people["dora"],
    ]
    expense = submitted["expense_id"]
    # Mia leaves: her step goes to the next eligible person, Max.
    changed = ok(empty.patch(f"/api/users/{acme.people['mia']}", json={"active": False}))
    assert changed["user"]["active"] is False
    assert changed["reassigned"] == [
        {
            "expense_id": expense,
            "step_number": 1,
            "previous_approver_id": acme.people["mia"],
            "approver_id": acme.people["max"],
        }
    ]
    status = ok(empty.get(f"/api/expenses/{expense}/status"))
    assert [a["approver_id"] for a in status["approvals"]] == [
        acme.people["max"],
        acme.people["dora"],
    ]
    history = ok(empty.get(f"/api/expenses/{expense}/history"))["events"]
    assert history[-1]["kind"] == "reassigned"
    assert history[-1]["previous_approver_id"] == acme.people["mia"]
    for approver in ("max", "dora"):
        ok(
            empty.post(
                "/api/expenses/approve",
                json={"expense_id": expense, "approver_id": acme.people[approver]},
            )
        )
    assert ok(empty.get(f"/api/expenses/{expense}/status"))["status"] == "approved"


def test_everything_reads_back(empty: Client) -> None:
    acme = build_acme(empty)
    assert ok(empty.get(f"/api/companies/{acme.company}")) == {
        "id": acme.company,
        "name": "Acme",
        "fallback_approver_id": None,
    }
    teams = ok(empty.get(f"/api/companies/{acme.company}/teams"))["items"]
    assert [(t["name"], t["is_company_wide"]) for t in teams] == [
        ("Engineering", False),
        ("Finance", True),
    ]
    ladder = ok(empty.get(f"/api/teams/{acme.team}/levels"))["items"]
    assert [lv["level_number"] for lv in ladder] == [2, 4, 6]
    eli = ok(empty.get(f"/api/users/{acme.people['eli']}"))
    assert (eli["level_number"], eli["level_name"], eli["manager_id"], eli["role"]) == (
        6,
        "Engineer",
        acme.people["mia"],
        "employee",
    )
    first = ok(empty.get(f"/api/companies/{acme.company}/users", params={"limit": 3}))
    rest = ok(
        empty.get(
            f"/api/companies/{acme.company}/users",
            params={"limit": 3, "cursor": first["next_cursor"]},
        )
    )
    assert [u["email"] for u in first["items"] + rest["items"]] == [
        "dora@acme.example",
        "mia@acme.example",
        "max@acme.example",
        "eli@acme.example",
    ]
    assert rest["next_cursor"] is None
    policy = ok(empty.get(f"/api/policies/{acme.policy}"))
    assert (policy["min_amount"], policy["max_amount"]) == (0, 5000)
    assert (policy["active"], policy["in_use"]) == (True, False)
    assert policy["steps"][1] == {
        "step_order": 2,
        "required_level": 2,
        "team_scope": "submitter",
        "is_required": True,
        "description": "Director",
        "escalate_after_hours": None,
    }
    listed = ok(empty.get(f"/api/companies/{acme.company}/policies"))["items"]
    assert [p["id"] for p in listed] == [acme.policy]


def test_a_used_policy_is_replaced_by_its_successor(empty: Client) -> None:
    acme = build_acme(empty)
    body = {"user_id": acme.people["eli"], "category": "equipment", "amount": 100}
    first = ok(empty.post("/api/expenses", json=body), 201)["expense_id"]
    assert ok(empty.get(f"/api/policies/{acme.policy}"))["in_use"] is True
    successor = ok(
        empty.post(
            "/api/policies",
            json={
                "company_id": acme.company,
                "category": "equipment",
                "name": "Equipment 2025",
                "min_amount": 0,
                "max_amount": 5000,
                "steps": [
                    {"step_order": 1, "required_level": 4},
                    {"step_order": 2, "required_level": 2, "team_scope": f"team:{acme.team}"},
                ],
                "replaces_policy_id": acme.policy,
            },
        ),
        201,
    )
    assert ok(empty.get(f"/api/policies/{acme.policy}"))["active"] is False
    second = ok(empty.post("/api/expenses", json=body), 201)
    assert second["policy_id"] == successor["id"]
    # The first expense keeps the policy, and the approvers, it was routed with.
    status = ok(empty.get(f"/api/expenses/{first}/status"))
    assert (status["policy_id"], status["policy_active"]) == (acme.policy, False)
    current = ok(empty.get(f"/api/expenses/{second['expense_id']}/status"))
    assert (current["policy_id"], current["policy_active"]) == (successor["id"], True)
    deactivated = ok(empty.post(f"/api/policies/{successor['id']}/deactivate"))
    assert deactivated["active"] is False
    refused(empty.post("/api/expenses", json=body), 400, "no_policy_for")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"steps": []}, 422, "invalid_request"),
        ({"steps": [{"step_order": 2, "required_level": 4}]}, 400, "invalid_policy"),
        ({"steps": [{"step_order": 1, "required_level": 11}]}, 422, "invalid_request"),
        (
            {"steps": [{"step_order": 1, "required_level": 4, "is_required": False}]},
            400,
            "invalid_policy",
        ),
        (
            {"steps": [{"step_order": 1, "required_level": 4, "team_scope": "team:x"}]},
            400,
            "invalid_team_scope",
        ),
        (
            {"steps": [{"step_order": 1, "required_level": 4, "team_scope": "team:999"}]},
            404,
            "unknown_team",
        ),
        ({"min_amount": 10, "max_amount": 5}, 400, "invalid_policy"),
        ({"min_amount": "0.001"}, 400, "invalid_amount"),
        ({"min_amount": 4000, "max_amount": 9000}, 409, "policy_overlap"),
        ({"company_id": 999}, 404, "unknown_company"),
        ({"replaces_policy_id": 999}, 404, "unknown_policy"),
        ({"surprise": 1}, 422, "invalid_request"),
    ],
)
def test_a_bad_policy_is_refused(
    empty: Client, change: dict[str, Any], status: int, code: str
) -> None:
    acme = build_acme(empty)
    body = {
        "company_id": acme.company,
        "category": "equipment",
        "name": "Big",
        "min_amount": 5000.01,
        "max_amount": 9000,
        "steps": [{"step_order": 1, "required_level": 4}],
    } | change
    refused(empty.post("/api/policies", json=body), status, code)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"email": "dora@acme.example"}, 409, "duplicate_email"),
        ({"email": "not-an-email"}, 400, "invalid_org_change"),
        ({"manager_id": 999}, 404, "unknown_manager"),
        ({"hierarchy_level_id": 999}, 404, "unknown_level"),
        ({"team_id": 999}, 404, "unknown_team"),
        ({"company_id": 999}, 404, "unknown_company"),
        ({"name": ""}, 422, "invalid_request"),
        ({"role": "boss"}, 422, "invalid_request"),
    ],
)
def test_a_bad_user_is_refused(
    empty: Client, change: dict[str, Any], status: int, code: str
) -> None:
    acme = build_acme(empty)
    body = {
        "company_id": acme.company,
        "team_id": acme.team,
        "hierarchy_level_id": acme.levels[6],
        "email": "new@acme.example",
        "name": "New",
    } | change
    refused(empty.post("/api/users", json=body), status, code)


def test_a_level_of_another_team_is_refused(empty: Client) -> None:
    acme = build_acme(empty)
    body = {
        "company_id": acme.company,
        "team_id": acme.finance,
        "hierarchy_level_id": acme.levels[6],
        "email": "new@acme.example",
        "name": "New",
    }
    refused(empty.post("/api/users", json=body), 400, "level_outside_team")
    refused(
        empty.patch(f"/api/users/{acme.people['eli']}", json={"team_id": acme.finance}),
        400,
        "level_outside_team",
    )


def test_reporting_chains_never_loop(empty: Client) -> None:
    acme = build_acme(empty)
    dora = acme.people["dora"]
    refused(
        empty.patch(f"/api/users/{dora}", json={"manager_id": acme.people["eli"]}),
        400,
        "manager_cycle",
    )
    refused(empty.patch(f"/api/users/{dora}", json={"manager_id": dora}), 400, "manager_cycle")
    cleared = ok(empty.patch(f"/api/users/{acme.people['eli']}", json={"manager_id": None}))
    assert cleared["user"]["manager_id"] is None
    assert cleared["user"]["name"] == "Eli"  # fields left out keep their value


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/api/companies", {"name": ""}, 422, "invalid_request"),
        ("GET", "/api/companies/999", None, 404, "unknown_company"),
        ("POST", "/api/companies/999/teams", {"name": "X"}, 404, "unknown_company"),
        ("POST", "/api/companies/{company}/teams", {"name": "Engineering"}, 409, "duplicate_name"),
        ("GET", "/api/companies/999/teams", None, 404, "unknown_company"),
        (
            "POST",
            "/api/teams/999/levels",
            {"level_number": 1, "level_name": "X"},
            404,
            "unknown_team",
        ),
        (
            "POST",
            "/api/teams/{team}/levels",
            {"level_number": 4, "level_name": "X"},
            409,
            "duplicate_name",
        ),
        (
            "POST",
            "/api/teams/{team}/levels",
            {"level_number": 11, "level_name": "X"},
            422,
            "invalid_request",
        ),
        (
            "POST",
            "/api/teams/{team}/levels",
            {"level_number": 0, "level_name": "X"},
            422,
            "invalid_request",
        ),
        ("GET", "/api/teams/999/levels", None, 404, "unknown_team"),
        ("GET", "/api/users/999", None, 404, "unknown_user"),
        ("PATCH", "/api/users/999", {"name": "X"}, 404, "unknown_user"),
        ("PATCH", "/api/users/{eli}", {"email": "mia@acme.example"}, 409, "duplicate_email"),
        ("PATCH", "/api/users/{eli}", {"active": "no"}, 422, "invalid_request"),
        ("GET", "/api/companies/999/users", None, 404, "unknown_company"),
        ("GET", "/api/companies/{company}/users?limit=0", None, 422, "invalid_request"),
        ("GET", "/api/policies/999", None, 404, "unknown_policy"),
        ("GET", "/api/companies/999/policies", None, 404, "unknown_company"),
        ("POST", "/api/policies/999/deactivate", None, 404, "unknown_policy"),
    ],
)
def test_admin_errors(
    empty: Client, method: str, path: str, body: Any, status: int, code: str
) -> None:
    acme = build_acme(empty)
    url = path.format(company=acme.company, team=acme.team, eli=acme.people["eli"])
    refused(empty.request(method, url, json=body), status, code)


def test_a_change_that_strands_approvals_is_refused_with_them_listed(empty: Client) -> None:
    acme = build_acme(empty)
    body = {"user_id": acme.people["eli"], "category": "equipment", "amount": 100}
    expense = ok(empty.post("/api/expenses", json=body), 201)["expense_id"]
    dora = acme.people["dora"]
    stranded = refused(
        empty.patch(f"/api/users/{dora}", json={"active": False}), 409, "pending_approvals_stranded"
    )
    assert stranded["stranded"] == [{"expense_id": expense, "step_number": 2}]
    assert ok(empty.get(f"/api/users/{dora}"))["active"] is True
    refused(
        empty.patch(
            f"/api/users/{dora}",
            json={"active": False, "replacement_approver_id": acme.people["max"]},
        ),
        409,
        "replacement_not_eligible",
    )
    deputy = ok(
        empty.post(
            "/api/users",
            json={
                "company_id": acme.company,
                "team_id": acme.team,
                "hierarchy_level_id": acme.levels[2],
                "email": "deputy@acme.example",
                "name": "Deputy",
                "active": False,
            },
        ),
        201,
    )["id"]
    # Inactive people take nothing over; once active, Deputy is the next eligible anyway.
    ok(empty.patch(f"/api/users/{deputy}", json={"active": True}))
    moved = ok(empty.patch(f"/api/users/{dora}", json={"active": False}))["reassigned"]
    assert [(m["step_number"], m["approver_id"]) for m in moved] == [(2, deputy)]


def test_moving_an_approver_to_another_level_reroutes(empty: Client) -> None:
    acme = build_acme(empty)
    body = {"user_id": acme.people["eli"], "category": "equipment", "amount": 100}
    expense = ok(empty.post("/api/expenses", json=body), 201)["expense_id"]
    ok(
        empty.post(
            f"/api/teams/{acme.team}/levels", json={"level_number": 5, "level_name": "Lead"}
        ),
        201,
    )
    # Mia moves from level 4 down to 6: junior to step 1's level 4, Max takes over.
    changed = ok(
        empty.patch(f"/api/users/{acme.people['mia']}", json={"hierarchy_level_id": acme.levels[6]})
    )
    assert [(r["expense_id"], r["approver_id"]) for r in changed["reassigned"]] == [
        (expense, acme.people["max"])
    ]


def test_the_admin_api_is_documented(empty: Client) -> None:
    schema = ok(empty.get("/openapi.json"))
    paths = schema["paths"]
    for method, path in (
        ("post", "/api/companies"),
        ("get", "/api/companies/{company_id}"),
        ("post", "/api/companies/{company_id}/teams"),
        ("get", "/api/companies/{company_id}/teams"),
        ("post", "/api/teams/{team_id}/levels"),
        ("get", "/api/teams/{team_id}/levels"),
        ("post", "/api/users"),
        ("get", "/api/users/{user_id}"),
        ("get", "/api/companies/{company_id}/users"),
        ("patch", "/api/users/{user_id}"),
        ("post", "/api/policies"),
        ("get", "/api/policies/{policy_id}"),
        ("get", "/api/companies/{company_id}/policies"),
        ("post", "/api/policies/{policy_id}/deactivate"),
    ):
        operation = paths[path][method]
        assert operation["tags"] == ["admin"]
        assert {"401", "403", "404"} <= set(operation["responses"])


# --- token mode ------------------------------------------------------------------------------


def _admin_container() -> tuple[Container, dict[int, str]]:
    container = memory_container(AuthMode.TOKEN)
    container.org().change_user(ChangeUser(user_id=UserId(ALICE), role=Role.ADMIN))
    access = container.access()
    return container, {u: access.issue_token(UserId(u)) for u in (ALICE, GRACE)}


@pytest.fixture
def tokens() -> Iterator[tuple[Client, dict[int, str]]]:
    container, issued = _admin_container()
    other = add_other_company(container.org())
    with TestClient(create_app(container)) as client:
        client.app.state["other"] = other.company_id
        client.app.state["hank"] = other.boss
        client.app.state["globex_policy"] = other.policy_id
        yield client, issued


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


TOKEN_ROUTES = [
    ("GET", "/api/companies/1", None),
    ("POST", "/api/companies/1/teams", {"name": "Sales"}),
    ("GET", "/api/companies/1/teams", None),
    ("POST", "/api/teams/1/levels", {"level_number": 9, "level_name": "Intern"}),
    ("GET", "/api/teams/1/levels", None),
    (
        "POST",
        "/api/users",
        {
            "company_id": 1,
            "team_id": 1,
            "hierarchy_level_id": 7,
            "email": "zoe@techcorp.com",
            "name": "Zoe",
        },
    ),
    ("GET", "/api/users/6", None),
    ("GET", "/api/companies/1/users", None),
    ("PATCH", "/api/users/6", {"name": "Frank M."}),
    (
        "POST",
        "/api/policies",
        {
            "company_id": 1,
            "category": "books",
            "name": "Books",
            "min_amount": 0,
            "max_amount": 100,
            "steps": [{"step_order": 1, "required_level": 6}],
        },
    ),
    ("GET", "/api/policies/1", None),
    ("GET", "/api/companies/1/policies", None),
    ("POST", "/api/policies/2/deactivate", None),
]


@pytest.mark.parametrize(("method", "path", "body"), TOKEN_ROUTES)
def test_with_tokens_only_an_admin_of_the_company_may(
    tokens: tuple[Client, dict[int, str]], method: str, path: str, body: Any
) -> None:
    client, issued = tokens
    refused(client.request(method, path, json=body), 401, "unauthenticated")
    refused(
        client.request(method, path, json=body, headers=bearer(issued[GRACE])), 403, "admin_only"
    )
    response = client.request(method, path, json=body, headers=bearer(issued[ALICE]))
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("GET", "/api/companies/{other}", None, "unknown_company"),
        ("GET", "/api/companies/{other}/teams", None, "unknown_company"),
        ("GET", "/api/companies/{other}/users", None, "unknown_company"),
        ("GET", "/api/companies/{other}/policies", None, "unknown_company"),
        ("POST", "/api/companies/{other}/teams", {"name": "X"}, "unknown_company"),
        ("GET", "/api/users/{hank}", None, "unknown_user"),
        ("PATCH", "/api/users/{hank}", {"active": False}, "unknown_user"),
        ("GET", "/api/teams/{globex_team}/levels", None, "unknown_team"),
        (
            "POST",
            "/api/teams/{globex_team}/levels",
            {"level_number": 9, "level_name": "X"},
            "unknown_team",
        ),
        ("GET", "/api/policies/{globex_policy}", None, "unknown_policy"),
        ("POST", "/api/policies/{globex_policy}/deactivate", None, "unknown_policy"),
    ],
)
def test_with_tokens_another_companys_ids_are_unknown(
    tokens: tuple[Client, dict[int, str]], method: str, path: str, body: Any, code: str
) -> None:
    client, issued = tokens
    state = client.app.state
    url = path.format(
        other=state["other"],
        hank=state["hank"],
        globex_team=2,  # TechCorp's Technology is team 1, Globex's Engineering team 2
        globex_policy=state["globex_policy"],
    )
    refused(client.request(method, url, json=body, headers=bearer(issued[ALICE])), 404, code)


def test_with_tokens_a_non_admin_of_another_company_is_refused(token_api: TokenApi) -> None:
    hank = token_api.as_user(token_api.other.boss)
    refused(token_api.client.get(f"/api/users/{GRACE}", headers=hank), 403, "admin_only")


def test_with_tokens_an_admin_sees_only_their_company(
    tokens: tuple[Client, dict[int, str]],
) -> None:
    client, issued = tokens
    other = client.app.state["other"]
    team = client.post(
        f"/api/companies/{other}/teams", json={"name": "Ghost"}, headers=bearer(issued[ALICE])
    )
    assert team.status_code == 404
    refused(
        client.post("/api/companies", json={"name": "New"}, headers=bearer(issued[ALICE])),
        403,
        "company_creation_closed",
    )
    body = {
        "company_id": other,
        "category": "x",
        "name": "X",
        "min_amount": 0,
        "max_amount": 1,
        "steps": [{"step_order": 1, "required_level": 1}],
    }
    refused(
        client.post("/api/policies", json=body, headers=bearer(issued[ALICE])),
        404,
        "unknown_company",
    )


def test_with_tokens_reassignment_records_the_admin(
    tokens: tuple[Client, dict[int, str]],
) -> None:
    client, issued = tokens
    expense = ok(
        client.post(
            "/api/expenses", json={"policy_id": 1, "amount": 800}, headers=bearer(issued[GRACE])
        ),
        201,
    )["expense_id"]
    ok(client.patch(f"/api/users/{FRANK}", json={"active": False}, headers=bearer(issued[ALICE])))
    history = ok(client.get(f"/api/expenses/{expense}/history", headers=bearer(issued[GRACE])))[
        "events"
    ]
    assert (history[-1]["kind"], history[-1]["actor_id"]) == ("reassigned", ALICE)
    assert history[-1]["approver_id"] == EVE
