"""Signing in and out: who a session is, how its cookie is kept, and CSRF on every form."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from entrypoints.container import Container
from entrypoints.http import create_app
from expense_core.model import ExpenseId, ExpenseStatus, UserId
from expense_core.services import ChangeUser, RevokeToken, token_id_of
from expense_core.visibility import Viewer
from tests.http.conftest import OtherCompany
from tests.web.conftest import Visit, browsers
from tests.web.support import Visitor, csrf_of, error_beside, text_of


def test_demo_mode_lists_the_companys_people_and_says_there_are_no_passwords(
    visitor: Visitor,
) -> None:
    page = visitor.get("/app/")

    assert page.status_code == 200
    assert "there are no passwords" in text_of(page.text)
    assert '<label for="person">Person</label>' in page.text
    assert "Grace Taylor (grace.taylor@techcorp.com)" in page.text
    assert ">Sign in</button>" in page.text


def test_another_company_lists_its_own_people(visitor: Visitor, other: OtherCompany) -> None:
    page = visitor.get(f"/app/?company={other.company_id}")

    assert "Homer Simpson" in page.text
    assert "Grace Taylor" not in page.text


def test_an_unknown_company_is_said_in_words(visitor: Visitor) -> None:
    page = visitor.get("/app/?company=999")

    assert page.status_code == 404
    assert error_beside(page.text, "company") == "There is no company 999."


def test_signing_in_sets_a_signed_http_only_lax_cookie_for_the_pages(visitor: Visitor) -> None:
    answer = visitor.submit("/app/", "/app/sign-in", {"person": "7"})

    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("et_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/app" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert "Grace Taylor" in visitor.get("/app/expenses").text


def test_the_cookie_is_secure_over_https(container: Container) -> None:
    visitors = browsers(container, base_url="https://testserver.local")
    visitor = next(visitors)()
    try:
        answer = visitor.submit("/app/", "/app/sign-in", {"person": "7"})
        assert "Secure" in answer.headers["set-cookie"]
    finally:
        visitors.close()


def test_pages_send_whoever_is_not_signed_in_to_sign_in(visitor: Visitor) -> None:
    for path in ("/app/expenses", "/app/expenses/new", "/app/inbox", "/app/expenses/1"):
        answer = visitor.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"] == "/app/"


def test_a_signed_in_person_going_to_sign_in_goes_to_their_expenses(visitor: Visitor) -> None:
    visitor.sign_in(7)

    assert visitor.get("/app/").headers["location"] == "/app/expenses"


def test_a_cookie_changed_by_hand_signs_nobody_in(visitor: Visitor) -> None:
    visitor.sign_in(7)
    payload, signature = visitor.jar["et_session"].split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**fields, "u": 1}).encode()).rstrip(b"=")
    visitor.jar.set("et_session", f"{forged.decode()}.{signature}", path="/app")

    assert visitor.get("/app/expenses").headers["location"] == "/app/"


def test_signing_out_ends_the_session(visitor: Visitor) -> None:
    visitor.sign_in(7)
    visitor.sign_out()

    assert visitor.get("/app/inbox").headers["location"] == "/app/"
    assert "Sign in" in visitor.get("/app/").text


def test_someone_who_left_is_signed_out(visitor: Visitor, container: Container) -> None:
    visitor.sign_in(4)  # David Wilson, who approves nothing pending
    container.org().change_user(ChangeUser(user_id=UserId(4), active=False))

    assert visitor.get("/app/expenses").headers["location"] == "/app/"
    refused = visitor.submit("/app/", "/app/sign-in", {"person": "4"})
    assert refused.status_code == 403
    assert error_beside(refused.text, "person") == "User 4 is inactive."


def test_a_person_not_on_the_list_is_refused_beside_the_field(visitor: Visitor) -> None:
    for person, words in (("abc", "Choose a person from the list."), ("999", "User 999 does")):
        refused = visitor.submit("/app/", "/app/sign-in", {"person": person})
        assert refused.status_code in (400, 404)
        assert error_beside(refused.text, "person").startswith(words)


# --- token mode --------------------------------------------------------------------------------


@pytest.fixture
def token_visitor(token_container: Container) -> Iterator[Visitor]:
    yield from (visit() for visit in browsers(token_container))


def test_token_mode_asks_for_a_token(token_visitor: Visitor) -> None:
    page = token_visitor.get("/app/")

    assert '<label for="token">Token</label>' in page.text
    assert "Person" not in page.text
    assert "expense-tracker token issue" in page.text


def test_token_mode_signs_in_the_tokens_holder(
    token_visitor: Visitor, token_container: Container
) -> None:
    token = token_container.access().issue_token(UserId(6))

    answer = token_visitor.submit("/app/", "/app/sign-in", {"token": token})

    assert answer.status_code == 303
    assert "Frank Miller" in token_visitor.get("/app/expenses").text


def test_revoking_the_token_signed_in_with_ends_the_session(
    token_visitor: Visitor, token_container: Container
) -> None:
    access = token_container.access()
    token = access.issue_token(UserId(6))
    another = access.issue_token(UserId(6))
    token_visitor.submit("/app/", "/app/sign-in", {"token": token})

    # Revoking another of Frank's tokens leaves this session be.
    access.revoke(RevokeToken(token_id=token_id_of(another)))
    assert "Frank Miller" in token_visitor.get("/app/expenses").text
    access.revoke(RevokeToken(token_id=token_id_of(token)))

    assert token_visitor.get("/app/expenses").headers["location"] == "/app/"
    assert token_visitor.get("/app/inbox").headers["location"] == "/app/"
    refused = token_visitor.submit("/app/", "/app/sign-in", {"token": token})
    assert refused.status_code == 401
    assert "revoked" in error_beside(refused.text, "token")


def test_a_token_sessions_cookie_names_the_token_never_its_secret(
    token_visitor: Visitor, token_container: Container
) -> None:
    token = token_container.access().issue_token(UserId(6))
    answer = token_visitor.submit("/app/", "/app/sign-in", {"token": token})

    sealed = answer.cookies["et_session"]
    payload = json.loads(base64.urlsafe_b64decode(sealed.partition(".")[0] + "=="))
    assert payload["t"] == token_id_of(token)
    assert token.rpartition("_")[2] not in sealed


def test_token_mode_refuses_an_unknown_token_and_a_chosen_person(token_visitor: Visitor) -> None:
    unknown = token_visitor.submit("/app/", "/app/sign-in", {"token": "et_0123456789abcdef_nope"})
    chosen = token_visitor.submit("/app/", "/app/sign-in", {"person": "1"})

    assert unknown.status_code == 401
    assert error_beside(unknown.text, "token") == "The bearer token is unknown."
    assert chosen.status_code == 401
    assert token_visitor.get("/app/expenses").headers["location"] == "/app/"


# --- CSRF --------------------------------------------------------------------------------------


def page_posts(container: Container) -> list[str]:
    """Every POST route of the pages, with 1 for an id."""
    app = create_app(container)
    return sorted(
        route.path.replace("{expense_id:int}", "1").replace("{user_id:int}", "1")
        for route in app.routes
        if route.path.startswith("/app") and "POST" in route.methods
    )


def test_every_form_of_the_pages_is_a_known_post() -> None:
    from tests.http.conftest import memory_container

    assert page_posts(memory_container()) == [
        "/app/expenses/1/decide",
        "/app/expenses/1/resubmit",
        "/app/expenses/new",
        "/app/inbox/approve-selected",
        "/app/organisation/people",
        "/app/organisation/people/1/deactivate",
        "/app/sign-in",
        "/app/sign-in/link",
        "/app/sign-out",
    ]


@pytest.mark.parametrize("sent", ["empty", "missing", "another session's"])
def test_a_post_without_its_sessions_csrf_token_is_refused_and_changes_nothing(
    visit: Visit, container: Container, sent: str
) -> None:
    grace, frank = visit(), visit()
    grace.sign_in(7)
    frank.sign_in(6)
    expense = grace.new_expense(policy="2", amount="4000.00", description="Workstation")
    forms = {
        "/app/expenses/new": {"policy": "1", "amount": "10.00"},
        f"/app/expenses/{expense}/decide": {"decision": "approve"},
        f"/app/expenses/{expense}/resubmit": {"amount": "1.00"},
        "/app/organisation/people": {"name": "X", "email": "x@techcorp.com", "level": "7"},
        f"/app/organisation/people/{expense}/deactivate": {},
        "/app/inbox/approve-selected": {"expense_id": str(expense)},
        "/app/sign-in": {"person": "1"},
        "/app/sign-in/link": {"code": "0123456789abcdef.x"},
        "/app/sign-out": {},
    }
    others = visit()
    others.sign_in(5)
    stranger = csrf_of(others.get("/app/expenses").text)

    for action in page_posts(container):
        form = dict(forms[action.replace("/1/", f"/{expense}/")])
        if sent == "empty":
            form["csrf_token"] = ""
        elif sent == "another session's":
            form["csrf_token"] = stranger
        answer = frank.post(action.replace("/1/", f"/{expense}/"), form)
        assert answer.status_code == 403, action
        assert "did not come from this site" in text_of(answer.text)

    status = container.expenses().status(ExpenseId(expense))
    assert status.status is ExpenseStatus.PENDING
    assert [str(a.status) for a in status.approvals] == ["pending"] * 3
    assert (
        len(container.expenses().list_expenses(Viewer.whole_company(status.company_id)).items) == 1
    )
    assert "Frank Miller" in frank.get("/app/expenses").text  # still signed in as himself
