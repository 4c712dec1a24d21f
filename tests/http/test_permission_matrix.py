"""Every role against every route of the app: on the caller's own things, a colleague's (same
company), and another company's; with bearer tokens (`AUTH_MODE=token`) and with JWTs of an
OpenID Connect issuer (`AUTH_MODE=oidc`); on the memory adapter, SQLite and PostgreSQL. The
routes come from the app's own route table: a route without a rule in `RULES` fails the test
that names it.

Own: the caller's expense, user, token and delegation, their company. Same company: those of
Carol, a director whose expense goes to Bob: nobody here reports to her or approves for her.
Other company: Globex's. Expected answers are status classes: what a role may not see is 404,
what it may see but not do is 403; an auditor is refused every change (403), and may only get
and revoke tokens of their own. Both modes answer alike: in oidc mode the caller is the user
whose e-mail address the issuer's JWT names (tests/oidc/issuer.py, a real local issuer), and
the token routes issue, list and revoke `et_` tokens as in token mode, though that mode takes
none of them as a bearer.

What runs: 5 roles x 71 routes x 3 cases is 213 tests of 5 requests each per mode and store.
The whole cross product (2 modes x 3 stores: 1278 tests) took about 240 s of test time on
this 2-core machine, shared (`--durations`; then a store was put back after every test that
sent a change), against a budget of about 60 s; so the full
matrix runs on memory in both modes and on SQLite and PostgreSQL in token mode, and in oidc
mode on PostgreSQL every route x role for one case, "own" (`VARIANTS`, `OIDC_ON_POSTGRES`):
923 tests, 4615 requests, 80 s of test time on the same machine (memory 14 s a mode, SQLite
14 s, PostgreSQL 19 s in token mode and 16 s in oidc mode; 105 s under a heavier load; the
/docs, /redoc and /openapi.json pages cost the most of any route). Each mode and store
is served by one app for the module (making one costs far more than a test of it); a test
in which some role was let make a change puts the store back as seeded (a copy of the
memory store's tables, of a SQLite file, of a PostgreSQL template database).
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import attrs
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from psycopg import sql

from entrypoints.container import Container, MemoryDatabase, container_for
from entrypoints.http import create_app
from entrypoints.settings import AuthMode, Settings
from expense_core.delegation import Delegation
from expense_core.demo import install_demo
from expense_core.model import (
    CompanyId,
    Money,
    PolicyId,
    Role,
    UserId,
)
from expense_core.services import ChangeUser, NewUser, SubmitExpense
from expense_core.webhooks import Webhook
from tests import pg
from tests.clocks import START
from tests.http.conftest import add_other_company
from tests.oidc.issuer import AUDIENCE, LocalIssuer, ec_key

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


def writers(expect: Expect) -> Expect:
    """A change: an auditor is refused (403 read_only_role) wherever anyone else would be
    answered 2xx, and anyhow where they see the thing (their own, their company's); another
    company's stays unknown (404) to them as to everyone."""

    def refused(role: Role, case: Case) -> str:
        answer = expect(role, case)
        if role is not Role.AUDITOR or (answer == "404" and case == "other company"):
            return answer
        return "403"

    return refused


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


DECIDE = writers(readers(own="403", seen="403", unseen="404", other="404"))

RULES: dict[tuple[str, str], Rule] = {
    # --- expenses: a decision on an expense the caller may not see is unknown, like a read
    ("POST", "/api/expenses"): Rule(
        writers(everyone(own="2xx", same="403", other="403")),
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
        writers(readers(own="2xx", seen="403", unseen="404", other="404")), lambda _ids: {}
    ),
    ("POST", "/api/expenses/{expense_id:int}/resubmit"): Rule(
        # Pending, not returned: the submitter is told so (409); others as for a decision.
        writers(readers(own="409", seen="403", unseen="404", other="404")),
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
        # Each decision answers on its own; an auditor's call is refused as a whole.
        lambda role, _case: "403" if role is Role.AUDITOR else "2xx",
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
        writers(self_or_admin(own="2xx", same_admin="2xx", other="404")), _delegation
    ),
    ("GET", "/api/users/{user_id:int}/delegation"): Rule(everyone("2xx", "2xx", "404")),
    ("DELETE", "/api/users/{user_id:int}/delegation"): Rule(
        writers(self_or_admin(own="2xx", same_admin="2xx", other="404"))
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
    # --- tokens: one's own (auditors too: a credential, not a change), or as an admin anyone's
    # in the company. With AUTH_MODE=oidc the same: they issue, list and revoke `et_` tokens,
    # which that mode does not take as bearers.
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
    ("POST", "/app/sign-in/oidc"): PAGE,
    ("GET", "/app/sign-in/callback"): PAGE,
}


def routes_of(app: Litestar) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method in route.methods
        if method not in IGNORED_METHODS
    )


# --- the world: who asks, and what each case names -------------------------------------------

Mode = Literal["token", "oidc"]
Store = Literal["memory", "sqlite", "postgres"]
MODES: dict[Mode, AuthMode] = {"token": AuthMode.TOKEN, "oidc": AuthMode.OIDC}


@attrs.frozen
class Seeded:
    """What a store holds for the matrix, whichever mode later serves it: each role's person
    (their token and e-mail address) and what each case names."""

    tokens: dict[Role, str]
    emails: dict[Role, str]
    ids: dict[tuple[Role, Case], Ids]


def seed(container: Container) -> Seeded:
    """TechCorp (Grace reports to Frank, a manager; Fiona in finance, Otto an auditor; Alice
    the admin) beside Globex; each of them has submitted an expense (Otto before he became an
    auditor), named a delegate and holds a token, and so have Carol and Globex's engineer;
    each company has a webhook."""
    install_demo(container.new_uow())
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
                role=Role.EMPLOYEE if role is Role.AUDITOR else role,
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
    org.change_user(ChangeUser(user_id=people[Role.AUDITOR], role=Role.AUDITOR))
    tokens = {role: access.issue_token(people[role]) for role in ROLES}
    emails = {role: org.user(people[role]).user.email for role in ROLES}
    carol = ids_of(CAROL, company, 1, ours)
    globex = ids_of(other.engineer, other.company_id, other.policy_id, theirs)
    ids: dict[tuple[Role, Case], Ids] = {}
    for role in ROLES:
        ids[role, "own"] = own[role]
        ids[role, "same company"] = carol
        ids[role, "other company"] = globex
    return Seeded(tokens, emails, ids)


def settings_for(mode: Mode, database_url: str, issuer_url: str) -> Settings:
    if mode == "token":
        return Settings(database_url=database_url, auth_mode=AuthMode.TOKEN)
    return Settings.build(
        database_url=database_url,
        auth_mode=AuthMode.OIDC,
        oidc_issuers=((issuer_url, 1),),
        oidc_audience=AUDIENCE,
    )


class Served:
    """The app of one mode on one store holding the world, served for a whole module: making
    an app costs far more than a test of it. `restore` puts the store back as seeded, which a
    test does when it is done if some role was let make a change (a method but GET answered
    below 400)."""

    def __init__(
        self,
        client: TestClient[Litestar],
        seeded: Seeded,
        bearer: Callable[[Role], str],
        restore: Callable[[], None],
    ) -> None:
        self.client = client
        self.seeded = seeded
        self.bearer = bearer
        self.restore = restore

    def ids(self, role: Role, case: Case) -> Ids:
        return self.seeded.ids[role, case]


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer([ec_key()]) as running:  # EC: a signature costs far less than RSA's
        yield running


@contextmanager
def _memory(mode: Mode, issuer_url: str) -> Iterator[tuple[Container, Seeded, Callable[[], None]]]:
    container = container_for(settings_for(mode, "memory://", issuer_url))
    seeded = seed(container)
    database = container.database()
    assert isinstance(database, MemoryDatabase)
    store = database.store
    seeded_tables = copy.deepcopy(store.tables)

    def restore() -> None:
        with store.lock:
            store.tables = copy.deepcopy(seeded_tables)
            store.forget_ladders()

    yield container, seeded, restore


@contextmanager
def _sqlite(
    mode: Mode, issuer_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Container, Seeded, Callable[[], None]]]:
    template: Path = request.getfixturevalue("sqlite_template")
    folder = request.getfixturevalue("tmp_path_factory").mktemp("matrix")
    world, served = folder / "world.db", folder / "served.db"
    shutil.copyfile(template, world)
    seeding = container_for(Settings(database_url=f"sqlite:///{world}"))
    try:
        seeded = seed(seeding)
    finally:
        seeding.shutdown_resources()
    shutil.copyfile(world, served)
    container = container_for(settings_for(mode, f"sqlite:///{served}", issuer_url))

    def restore() -> None:
        container.database().dispose()  # no connection may outlive the file it opened
        for suffix in ("-wal", "-shm"):
            Path(f"{served}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(world, served)

    yield container, seeded, restore


@contextmanager
def _postgres(
    mode: Mode, issuer_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Container, Seeded, Callable[[], None]]]:
    server: pg.PgServer = request.getfixturevalue("postgres_server")
    world = server.create_database(template=request.getfixturevalue("postgres_template"))
    seeding = container_for(Settings(database_url=server.url(world)))
    try:
        seeded = seed(seeding)
    finally:
        seeding.shutdown_resources()  # a template takes no connections
    served = server.create_database(template=world)
    container = container_for(settings_for(mode, server.url(served), issuer_url))

    def restore() -> None:
        container.database().dispose()
        with server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(served)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                    sql.Identifier(served), sql.Identifier(world)
                )
            )

    try:
        yield container, seeded, restore
    finally:
        container.shutdown_resources()
        server.drop_database(served)
        server.drop_database(world)


@pytest.fixture(scope="module")
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The app of the mode and store `request.param` names, holding the world."""
    mode, store = request.param
    issuer: LocalIssuer | None = request.getfixturevalue("issuer") if mode == "oidc" else None
    issuer_url = "" if issuer is None else issuer.url
    if store == "memory":
        opened = _memory(mode, issuer_url)
    elif store == "sqlite":
        opened = _sqlite(mode, issuer_url, request)
    else:
        opened = _postgres(mode, issuer_url, request)
    with opened as (container, seeded, restore):

        def bearer(role: Role) -> str:
            if issuer is None:
                return seeded.tokens[role]
            return issuer.token(email=seeded.emails[role], sub=seeded.emails[role])

        with TestClient(create_app(container)) as client:
            yield Served(client, seeded, bearer, restore)


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


OIDC_URL = "https://issuer.example"  # the route table only: nothing is asked of it
ROUTES = {
    mode: routes_of(create_app(container_for(settings_for(mode, "memory://", OIDC_URL))))
    for mode in ("token", "oidc")
}
APP_ROUTES = ROUTES["token"]
# The pages' sign-in at the issuer, served in oidc mode only.
OIDC_ONLY = {("POST", "/app/sign-in/oidc"), ("GET", "/app/sign-in/callback")}


@pytest.mark.parametrize("mode", ["token", "oidc"])
def test_every_route_of_the_app_has_a_rule(mode: Mode) -> None:
    routes = ROUTES[mode]
    assert set(routes) ^ set(APP_ROUTES) == (OIDC_ONLY if mode == "oidc" else set())
    missing = [f"{method} {path}" for method, path in routes if (method, path) not in RULES]
    assert not missing, f"routes without a rule in RULES: {', '.join(missing)}"
    served = set(ROUTES["token"]) | set(ROUTES["oidc"])
    stale = [f"{method} {path}" for method, path in RULES if (method, path) not in served]
    assert not stale, f"rules for routes the app does not have: {', '.join(stale)}"


# Admins last: what they may change (a colleague's delegation, a webhook) is gone after them.
ORDER = sorted(ROLES, key=lambda role: role is Role.ADMIN)
POSTGRES = pytest.mark.postgres
VARIANTS = [
    pytest.param(("token", "memory"), id="token-memory"),
    pytest.param(("oidc", "memory"), id="oidc-memory"),
    pytest.param(("token", "sqlite"), id="token-sqlite"),
    pytest.param(("token", "postgres"), id="token-postgres", marks=POSTGRES),
]
# oidc on PostgreSQL: every route and role, for one case.
OIDC_ON_POSTGRES = [pytest.param(("oidc", "postgres"), id="oidc-postgres", marks=POSTGRES)]


def _check(served: Served, method: str, path: str, case: Case) -> None:
    rule = RULES.get((method, path))
    assert rule is not None, f"{method} {path} has no rule in RULES"
    answers: dict[Role, int] = {}
    wrong = []
    try:
        for role in ORDER:
            ids = served.ids(role, case)
            response = served.client.request(
                method,
                _path(path, ids),
                headers={"Authorization": f"Bearer {served.bearer(role)}"},
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
    finally:
        # A change someone was let make is undone; a refused one changed nothing.
        if method != "GET" and any(status < 400 for status in answers.values()):
            served.restore()
    assert not wrong, f"{method} {path} ({case}):\n" + "\n".join(wrong)
    if rule.expect is None:
        # Public routes and pages answer a bearer token as they answer anyone.
        assert len(set(answers.values())) == 1, answers


@pytest.mark.parametrize("served", VARIANTS, indirect=True)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("method", "path"), APP_ROUTES)
def test_each_role_gets_what_its_rule_says(
    method: str, path: str, case: Case, served: Served
) -> None:
    _check(served, method, path, case)


@pytest.mark.parametrize("served", OIDC_ON_POSTGRES, indirect=True)
@pytest.mark.parametrize(("method", "path"), APP_ROUTES)
def test_each_role_gets_what_its_rule_says_with_jwts_on_postgres(
    method: str, path: str, served: Served
) -> None:
    _check(served, method, path, "own")
