"""Every role against every route of the app, in token mode: on the caller's own things, a
colleague's (same company), and another company's. The routes come from the app's own route
table: a route without a rule in `RULES` fails the test that names it.

Own: the caller's expense, user, token and delegation, their company. Same company: those of
Carol, a director whose expense goes to Bob: nobody here reports to her or approves for her.
Other company: Globex's. Expected answers are status classes: what a role may not see is 404,
what it may see but not do is 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

import attrs
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from entrypoints.http import create_app
from entrypoints.settings import AuthMode
from expense_core.delegation import Delegation
from expense_core.model import (
    CompanyId,
    Money,
    PolicyId,
    Role,
    UserId,
)
from expense_core.services import ChangeUser, NewUser, SubmitExpense
from expense_core.webhooks import Webhook
from tests.clocks import START
from tests.http.conftest import add_other_company, memory_container

Case = Literal["own", "same company", "other company"]
CASES: tuple[Case, ...] = ("own", "same company", "other company")
ROLES = (Role.EMPLOYEE, Role.MANAGER, Role.FINANCE, Role.AUDITOR, Role.ADMIN)
COMPANY_WIDE = {Role.FINANCE, Role.AUDITOR, Role.ADMIN}
CAROL = UserId(3)
HOOK_URL = "https://93.184.216.34/hook"  # a public address: no name to resolve
IGNORED_METHODS = {"OPTIONS", "HEAD"}


@attrs.frozen
class Ids:
    """What a request of one case names: the case's expense, user, company and so on."""

    expense_id: int
    user_id: int
    company_id: int
    team_id: int
    level_id: int
    policy_id: int
    webhook_id: int
    token_id: str
    delegate_id: int


Expect = Callable[[Role, Case], str]
Body = Callable[[Ids], Any]


@attrs.frozen
class Rule:
    """How a route answers: `expect(role, case)` is "2xx", "3xx" or an exact status; None for
    routes whose answer must not depend on who asks at all (public ones, and the pages, which
    a bearer token does not sign in to)."""

    expect: Expect | None
    body: Body | None = None
    query: Callable[[Ids, Case], dict[str, Any]] | None = None


def everyone(own: str, same: str, other: str) -> Expect:
    return lambda _role, case: {"own": own, "same company": same, "other company": other}[case]


def readers(own: str, seen: str, unseen: str, other: str) -> Expect:
    """Expense reads: a colleague's expense is seen only by company-wide roles."""

    def expect(role: Role, case: Case) -> str:
        if case == "same company":
            return seen if role in COMPANY_WIDE else unseen
        return own if case == "own" else other

    return expect


def admins(own: str, same: str, other: str) -> Expect:
    """The admin API: anyone else is refused before anything is looked up."""
    return lambda role, case: (
        everyone(own, same, other)(role, case) if role is Role.ADMIN else "403"
    )


def self_or_admin(own: str, same_admin: str, other: str) -> Expect:
    """Own things for anyone, a colleague's for an admin (403 for others), another company's
    unknown."""

    def expect(role: Role, case: Case) -> str:
        if case == "same company":
            return same_admin if role is Role.ADMIN else "403"
        return own if case == "own" else other

    return expect


def audit_readers(own: str, same: str, other: str) -> Expect:
    """The audit log: its admins and auditors read their company's; anyone else is refused
    (another company's is unknown to everyone)."""
    return lambda role, case: (
        everyone(own, same, other)(role, case)
        if role in {Role.ADMIN, Role.AUDITOR} or case == "other company"
        else "403"
    )


PUBLIC = Rule(None)
PAGE = Rule(None)  # signed in by a session cookie: tests/web/test_visibility.py


def _policy(ids: Ids) -> dict[str, Any]:
    return {
        "company_id": ids.company_id,
        "category": "matrix",
        "name": "Matrix policy",
        "min_amount": "0.00",
        "max_amount": "10.00",
        "steps": [{"step_order": 1, "required_level": 6, "team_scope": "submitter"}],
    }


def _user(ids: Ids) -> dict[str, Any]:
    return {
        "company_id": ids.company_id,
        "team_id": ids.team_id,
        "hierarchy_level_id": ids.level_id,
        "email": "new.person@example.com",
        "name": "New Person",
    }


def _delegation(ids: Ids) -> dict[str, Any]:
    return {
        "delegate_id": ids.delegate_id,
        "starts_at": START.isoformat(),
        "ends_at": (START + timedelta(days=3)).isoformat(),
    }


def _only_approve(ids: Ids) -> dict[str, Any]:
    return {"expense_id": ids.expense_id, "comments": "ok"}


DECIDE = readers(own="403", seen="403", unseen="404", other="404")

RULES: dict[tuple[str, str], Rule] = {
    # --- expenses: a decision on an expense the caller may not see is unknown, like a read
    ("POST", "/api/expenses"): Rule(
        everyone(own="2xx", same="403", other="403"),
        lambda ids: {"user_id": ids.user_id, "policy_id": 1, "amount": "5.00"},
    ),
    ("POST", "/api/expenses/approve"): Rule(DECIDE, _only_approve),
    ("POST", "/api/expenses/reject"): Rule(
        DECIDE, lambda ids: {"expense_id": ids.expense_id, "reason": "no"}
    ),
    ("POST", "/api/expenses/send-back"): Rule(
        DECIDE, lambda ids: {"expense_id": ids.expense_id, "reason": "no"}
    ),
    ("POST", "/api/expenses/{expense_id:int}/withdraw"): Rule(
        readers(own="2xx", seen="403", unseen="404", other="404"), lambda _ids: {}
    ),
    ("POST", "/api/expenses/{expense_id:int}/resubmit"): Rule(
        # Pending, not returned: the submitter is told so (409); others as for a decision.
        readers(own="409", seen="403", unseen="404", other="404"),
        lambda _ids: {},
    ),
    ("GET", "/api/expenses/{expense_id:int}/status"): Rule(readers("2xx", "2xx", "404", "404")),
    ("GET", "/api/expenses/{expense_id:int}/history"): Rule(readers("2xx", "2xx", "404", "404")),
    ("GET", "/api/expenses/{expense_id:int}/approvers/explain"): Rule(
        readers("2xx", "2xx", "404", "404")
    ),
    ("GET", "/api/expenses"): Rule(
        everyone(own="2xx", same="2xx", other="404"),
        query=lambda ids, case: {} if case == "own" else {"company_id": ids.company_id},
    ),
    ("GET", "/api/approvals"): Rule(
        everyone(own="2xx", same="403", other="403"),
        query=lambda ids, case: {} if case == "own" else {"approver_id": ids.user_id},
    ),
    ("POST", "/api/approvals/bulk"): Rule(
        everyone(own="2xx", same="2xx", other="2xx"),  # each decision answers on its own
        lambda ids: {"decisions": [{"action": "approve", "expense_id": ids.expense_id}]},
    ),
    # --- the admin API: admins only, in their company
    ("POST", "/api/companies"): Rule(everyone("403", "403", "403"), lambda _ids: {"name": "New"}),
    ("GET", "/api/companies/{company_id:int}"): Rule(admins("2xx", "2xx", "404")),
    ("PATCH", "/api/companies/{company_id:int}"): Rule(
        admins("2xx", "2xx", "404"), lambda _ids: {}
    ),
    ("POST", "/api/companies/{company_id:int}/teams"): Rule(
        admins("2xx", "2xx", "404"), lambda _ids: {"name": "Matrix team"}
    ),
    ("GET", "/api/companies/{company_id:int}/teams"): Rule(admins("2xx", "2xx", "404")),
    ("POST", "/api/teams/{team_id:int}/levels"): Rule(
        admins("2xx", "2xx", "404"), lambda _ids: {"level_number": 9, "level_name": "Intern"}
    ),
    ("GET", "/api/teams/{team_id:int}/levels"): Rule(admins("2xx", "2xx", "404")),
    ("POST", "/api/users"): Rule(admins("2xx", "2xx", "404"), _user),
    ("GET", "/api/users/{user_id:int}"): Rule(admins("2xx", "2xx", "404")),
    ("GET", "/api/companies/{company_id:int}/users"): Rule(admins("2xx", "2xx", "404")),
    ("PATCH", "/api/users/{user_id:int}"): Rule(
        admins("2xx", "2xx", "404"), lambda _ids: {"role": "finance"}
    ),
    ("POST", "/api/policies"): Rule(admins("2xx", "2xx", "404"), _policy),
    ("GET", "/api/policies/{policy_id:int}"): Rule(admins("2xx", "2xx", "404")),
    ("GET", "/api/companies/{company_id:int}/policies"): Rule(admins("2xx", "2xx", "404")),
    ("POST", "/api/policies/{policy_id:int}/deactivate"): Rule(admins("2xx", "2xx", "404")),
    # --- delegations: one's own, or as an admin anyone's in the company
    ("PUT", "/api/users/{user_id:int}/delegation"): Rule(
        self_or_admin(own="2xx", same_admin="2xx", other="404"), _delegation
    ),
    ("GET", "/api/users/{user_id:int}/delegation"): Rule(everyone("2xx", "2xx", "404")),
    ("DELETE", "/api/users/{user_id:int}/delegation"): Rule(
        self_or_admin(own="2xx", same_admin="2xx", other="404")
    ),
    # --- webhooks: admins only (a webhook of the caller's company for own and same company)
    ("POST", "/api/webhooks"): Rule(
        admins("2xx", "2xx", "404"),
        lambda ids: {"url": HOOK_URL, "events": ["expense.approved"], "company_id": ids.company_id},
    ),
    ("GET", "/api/audit"): Rule(
        audit_readers("2xx", "2xx", "404"), query=lambda ids, _case: {"company_id": ids.company_id}
    ),
    ("GET", "/api/audit.csv"): Rule(
        audit_readers("2xx", "2xx", "404"), query=lambda ids, _case: {"company_id": ids.company_id}
    ),
    ("GET", "/api/webhooks"): Rule(
        admins("2xx", "2xx", "404"), query=lambda ids, _case: {"company_id": ids.company_id}
    ),
    ("GET", "/api/webhooks/{webhook_id:int}"): Rule(admins("2xx", "2xx", "404")),
    ("DELETE", "/api/webhooks/{webhook_id:int}"): Rule(admins("2xx", "2xx", "404")),
    ("GET", "/api/webhooks/{webhook_id:int}/deliveries"): Rule(admins("2xx", "2xx", "404")),
    ("POST", "/api/webhooks/{webhook_id:int}/deliveries/{delivery_id:int}/retry"): Rule(
        admins("404", "404", "404")  # no delivery was made: unknown, to an admin only
    ),
    # --- tokens: one's own, or as an admin anyone's in the company
    ("POST", "/api/tokens"): Rule(
        self_or_admin(own="2xx", same_admin="2xx", other="404"),
        lambda ids: {"user_id": ids.user_id},
    ),
    ("GET", "/api/tokens"): Rule(
        self_or_admin(own="2xx", same_admin="2xx", other="404"),
        query=lambda ids, _case: {"user_id": ids.user_id},
    ),
    ("DELETE", "/api/tokens/{token_id:str}"): Rule(
        self_or_admin(own="2xx", same_admin="2xx", other="404")
    ),
    # --- public: health, documentation, metrics
    ("GET", "/"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs/assets/{name:str}"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/schema"): PUBLIC,
    ("GET", "/schema/openapi.json"): PUBLIC,
    ("GET", "/schema/{path:str}"): PUBLIC,
    ("GET", "/app/static/{file_path:path}"): PUBLIC,
    # --- the pages
    ("GET", "/app"): PAGE,
    ("POST", "/app/sign-in"): PAGE,
    ("POST", "/app/sign-out"): PAGE,
    ("GET", "/app/expenses"): PAGE,
    ("GET", "/app/expenses/new"): PAGE,
    ("POST", "/app/expenses/new"): PAGE,
    ("GET", "/app/expenses/{expense_id:int}"): PAGE,
    ("POST", "/app/expenses/{expense_id:int}/decide"): PAGE,
    ("GET", "/app/inbox"): PAGE,
    ("POST", "/app/inbox/approve-selected"): PAGE,
    ("GET", "/app/expenses/{expense_id:int}/resubmit"): PAGE,
    ("POST", "/app/expenses/{expense_id:int}/resubmit"): PAGE,
    ("GET", "/app/organisation"): PAGE,
    ("POST", "/app/organisation/people"): PAGE,
    ("GET", "/app/organisation/people/{user_id:int}/deactivate"): PAGE,
    ("POST", "/app/organisation/people/{user_id:int}/deactivate"): PAGE,
    ("GET", "/app/sign-in/link"): PAGE,
    ("POST", "/app/sign-in/link"): PAGE,
}


def routes_of(app: Litestar) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method in route.methods
        if method not in IGNORED_METHODS
    )


@attrs.frozen
class World:
    client: TestClient[Litestar]
    tokens: dict[Role, str]
    ids: dict[tuple[Role, Case], Ids]


def _world() -> Iterator[World]:
    """TechCorp (Grace reports to Frank, a manager; Fiona in finance, Otto an auditor; Alice
    the admin) beside Globex; each of them has submitted an expense, named a delegate and
    holds a token, and so have Carol and Globex's engineer; each company has a webhook."""
    container = memory_container(AuthMode.TOKEN)
    org, access, expenses = container.org(), container.access(), container.expenses()
    other = add_other_company(org)
    company = CompanyId(1)
    org.set_fallback_approver(company, UserId(2))  # Alice's own expense goes to Bob
    org.change_user(ChangeUser(user_id=UserId(7), manager_id=UserId(6)))
    org.change_user(ChangeUser(user_id=UserId(6), role=Role.MANAGER))
    people = {Role.EMPLOYEE: UserId(7), Role.MANAGER: UserId(6), Role.ADMIN: UserId(1)}
    grace = org.user(UserId(7))
    for role, name in ((Role.FINANCE, "Fiona"), (Role.AUDITOR, "Otto")):
        people[role] = org.create_user(
            NewUser(
                company_id=company,
                team_id=grace.user.team_id,
                email=f"{name.lower()}@techcorp.example",
                name=f"{name} Matrix",
                hierarchy_level_id=grace.user.hierarchy_level_id,
                role=role,
            )
        ).id
    globex_team = org.teams(other.company_id)[0]
    hooks = container.webhooks()
    ours: Webhook = hooks.subscribe(company, HOOK_URL, ["expense.approved"])
    theirs: Webhook = hooks.subscribe(other.company_id, HOOK_URL, ["expense.approved"])

    def ids_of(user: UserId, company_id: CompanyId, policy: int, hook: Webhook) -> Ids:
        expense = expenses.submit(
            SubmitExpense(user_id=user, policy_id=PolicyId(policy), amount=Money(Decimal("50.00")))
        ).expense
        member = org.user(user)
        delegate = UserId(5) if company_id == company and user != UserId(5) else other.boss
        if user == other.boss:
            delegate = other.engineer
        with container.new_uow()() as uow:
            uow.delegations.put(
                Delegation(
                    company_id=company_id,
                    user_id=user,
                    delegate_id=delegate,
                    starts_at=START,
                    ends_at=START + timedelta(days=1),
                )
            )
            uow.commit()
        token = access.issue_token(user)
        return Ids(
            expense_id=expense.id,
            user_id=user,
            company_id=company_id,
            team_id=member.user.team_id if company_id == company else globex_team.id,
            level_id=member.user.hierarchy_level_id,
            policy_id=policy,
            webhook_id=hook.id,
            token_id=token.split("_")[1],
            delegate_id=delegate,
        )

    own = {role: ids_of(user, company, 1, ours) for role, user in people.items()}
    tokens = {role: access.issue_token(people[role]) for role in ROLES}
    carol = ids_of(CAROL, company, 1, ours)
    globex = ids_of(other.engineer, other.company_id, other.policy_id, theirs)
    ids: dict[tuple[Role, Case], Ids] = {}
    for role in ROLES:
        ids[role, "own"] = own[role]
        ids[role, "same company"] = carol
        ids[role, "other company"] = globex
    with TestClient(create_app(container)) as client:
        yield World(client, tokens, ids)


def _path(template: str, ids: Ids) -> str:
    values = {
        **attrs.asdict(ids),
        "delivery_id": 1,
        "name": "missing.css",
        "file_path": "missing.css",
        "path": "missing",
    }
    return re.sub(r"\{(\w+):\w+\}", lambda m: str(values[m.group(1)]), template)


def _matches(expected: str, status: int) -> bool:
    if expected.endswith("xx"):
        return status // 100 == int(expected[0])
    return status == int(expected)


APP_ROUTES = routes_of(create_app(memory_container(AuthMode.TOKEN)))


def test_every_route_of_the_app_has_a_rule() -> None:
    missing = [f"{method} {path}" for method, path in APP_ROUTES if (method, path) not in RULES]
    assert not missing, f"routes without a rule in RULES: {', '.join(missing)}"
    stale = [f"{method} {path}" for method, path in RULES if (method, path) not in APP_ROUTES]
    assert not stale, f"rules for routes the app does not have: {', '.join(stale)}"


# Admins last: what they may change (a colleague's delegation, a webhook) is gone after them.
ORDER = sorted(ROLES, key=lambda role: role is Role.ADMIN)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("method", "path"), APP_ROUTES)
def test_each_role_gets_what_its_rule_says(method: str, path: str, case: Case) -> None:
    rule = RULES.get((method, path))
    assert rule is not None, f"{method} {path} has no rule in RULES"
    world = next(_world())
    answers: dict[Role, int] = {}
    wrong = []
    for role in ORDER:
        ids = world.ids[role, case]
        response = world.client.request(
            method,
            _path(path, ids),
            headers={"Authorization": f"Bearer {world.tokens[role]}"},
            json=None if rule.body is None else rule.body(ids),
            params=None if rule.query is None else rule.query(ids, case),
            follow_redirects=False,
        )
        answers[role] = response.status_code
        if rule.expect is not None:
            expected = rule.expect(role, case)
            if not _matches(expected, response.status_code):
                wrong.append(
                    f"{role}: {response.status_code} (expected {expected}) {response.text}"
                )
    assert not wrong, f"{method} {path} ({case}):\n" + "\n".join(wrong)
    if rule.expect is None:
        # Public routes and pages answer a bearer token as they answer anyone.
        assert len(set(answers.values())) == 1, answers
