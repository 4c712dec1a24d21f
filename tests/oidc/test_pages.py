"""AUTH_MODE=oidc at the pages: a person presses their issuer's button, signs in at the real
local issuer (authorization code with PKCE), and comes back signed in as the user their e-mail
names; each way it can go wrong shows the sign-in page with why, and signs in nobody.

The browser's part is played by hand: the test client for our pages, httpx for the issuer's,
each redirect followed by reading its Location.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import httpx
import pytest

from entrypoints.web.oidc import FLOW_COOKIE
from entrypoints.web.session import SESSION_COOKIE
from expense_core.model import UserId
from expense_core.services import ChangeUser
from tests.oidc.conftest import OidcApi, StartApi
from tests.oidc.issuer import AUTHORIZE, TOKEN, LocalIssuer
from tests.web.support import Visitor, csrf_of, error_beside, text_of

GRACE = 7
PAGES = "http://testserver.local"  # the test client's: PUBLIC_URL of the app under test
CALLBACK = f"{PAGES}/app/sign-in/callback"
Tamper = Callable[[dict[str, str]], dict[str, str]]


@pytest.fixture
def pages(start_api: StartApi) -> OidcApi:
    return start_api(public_url=PAGES)


def press_the_button(visitor: Visitor, issuer: LocalIssuer) -> httpx.Response:
    """Open the sign-in page and press `issuer`'s button: the redirect to the issuer."""
    page = visitor.get("/app/")
    assert page.status_code == 200, page.text
    assert f'value="{issuer.url}"' in page.text
    form = {"csrf_token": csrf_of(page.text), "issuer": issuer.url}
    return visitor.post("/app/sign-in/oidc", form)


def at_issuer(location: str, tamper: Tamper | None = None) -> httpx.Response:
    """The issuer's answer to the browser sent to `location` (its query changed by `tamper`)."""
    url = urlsplit(location)
    query = dict(parse_qsl(url.query))
    if tamper is not None:
        query = tamper(query)
    return httpx.get(url._replace(query=urlencode(query)).geturl(), follow_redirects=False)


def back_at_pages(visitor: Visitor, location: str) -> httpx.Response:
    assert location.startswith(CALLBACK), location
    return visitor.get(location.removeprefix(PAGES))


def sign_in(visitor: Visitor, issuer: LocalIssuer, tamper: Tamper | None = None) -> httpx.Response:
    """The whole round: our page, the issuer, and our callback's answer."""
    started = press_the_button(visitor, issuer)
    assert started.status_code == 303, text_of(started.text)
    approved = at_issuer(started.headers["location"], tamper)
    assert approved.status_code == 302, approved.text
    return back_at_pages(visitor, approved.headers["location"])


def assert_signed_in_as_grace(visitor: Visitor, answer: httpx.Response) -> None:
    __tracebackhide__ = True
    assert answer.status_code == 303, text_of(answer.text)
    assert answer.headers["location"] == "/app/expenses"
    mine = visitor.get("/app/expenses")
    assert mine.status_code == 200
    assert "My expenses" in mine.text
    assert "Grace Taylor" in text_of(mine.text)
    # The sign-in is over: its state is forgotten.
    assert FLOW_COOKIE not in visitor.jar


def assert_refused(visitor: Visitor, answer: httpx.Response, status: int, says: str) -> None:
    __tracebackhide__ = True
    assert answer.status_code == status, text_of(answer.text)
    assert says in error_beside(answer.text, "oidc"), text_of(answer.text)
    assert "Sign in with" in answer.text  # the sign-in page, to try again
    assert visitor.get("/app/expenses").headers["location"] == "/app/"


def test_the_sign_in_page_offers_each_issuer_and_no_token_field(start_api: StartApi) -> None:
    with LocalIssuer() as second:
        api = start_api(
            public_url=PAGES,
            oidc_issuers=(
                (second.url, 2),
                ("https://sso.example.com/realms/acme", 1),
                ("https://sso.example.com/realms/globex/", 3),
            ),
        )
        page = Visitor(api.client).get("/app/")

    assert page.status_code == 200
    buttons = re.findall(r"<button[^>]*>(.*?)</button>", page.text)
    assert buttons == [
        f"Sign in with {urlsplit(second.url).netloc}",
        "Sign in with sso.example.com/realms/acme",
        "Sign in with sso.example.com/realms/globex",
    ]
    assert 'name="token"' not in page.text


def test_signing_in_at_the_issuer_opens_a_session_as_the_user_its_email_names(
    pages: OidcApi,
) -> None:
    visitor = Visitor(pages.client)

    started = press_the_button(visitor, pages.issuer)
    assert started.status_code == 303
    location = urlsplit(started.headers["location"])
    asked = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == pages.issuer.url + AUTHORIZE
    assert {k: asked[k] for k in ("response_type", "client_id", "redirect_uri", "scope")} == {
        "response_type": "code",
        "client_id": "expense-tracker-api",
        "redirect_uri": CALLBACK,
        "scope": "openid email",
    }
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 32
    assert len(asked["nonce"]) >= 32
    flow_cookie = started.headers["set-cookie"]
    assert flow_cookie.startswith(f"{FLOW_COOKIE}=")
    assert "HttpOnly" in flow_cookie
    assert "SameSite=lax" in flow_cookie

    answer = back_at_pages(visitor, at_issuer(started.headers["location"]).headers["location"])

    assert_signed_in_as_grace(visitor, answer)
    assert SESSION_COOKIE in visitor.jar
    # The code went back with the verifier, as a public client: the client id, no secret.
    [exchange] = pages.issuer.desk.exchanges
    assert exchange["client_id"] == "expense-tracker-api"
    assert exchange["redirect_uri"] == CALLBACK
    assert pages.issuer.asked.count(TOKEN) == 1


def test_a_confidential_client_sends_its_secret_by_http_basic(start_api: StartApi) -> None:
    secret = "s3cret: with & odd=characters+"  # noqa: S105 -- the test's own
    pages = start_api(public_url=PAGES, oidc_client_id="pages client", oidc_client_secret=secret)
    pages.issuer.desk.client_id = "pages client"
    pages.issuer.desk.client_secret = secret
    visitor = Visitor(pages.client)

    assert_signed_in_as_grace(visitor, sign_in(visitor, pages.issuer))

    [exchange] = pages.issuer.desk.exchanges
    assert "client_id" not in exchange  # it went in the Authorization header
    pages.issuer.desk.client_secret = "another secret"  # noqa: S105 -- rotated at the provider
    stranger = Visitor(pages.client)
    assert_refused(stranger, sign_in(stranger, pages.issuer), 401, "code_refused")


def test_oidc_client_id_is_the_audience_of_the_id_token(start_api: StartApi) -> None:
    pages = start_api(public_url=PAGES, oidc_client_id="expense-tracker-pages")
    pages.issuer.desk.client_id = "expense-tracker-pages"
    visitor = Visitor(pages.client)

    assert_signed_in_as_grace(visitor, sign_in(visitor, pages.issuer))


def test_an_id_token_for_another_audience_signs_in_nobody(pages: OidcApi) -> None:
    pages.issuer.desk.id_token_changes = {"aud": "another-client"}
    visitor = Visitor(pages.client)

    assert_refused(visitor, sign_in(visitor, pages.issuer), 401, "wrong_audience")


@pytest.mark.parametrize("nonce", ["another sign-in's nonce", None])
def test_an_id_token_without_the_sign_ins_nonce_signs_in_nobody(
    pages: OidcApi, nonce: str | None
) -> None:
    pages.issuer.desk.id_token_changes = {"nonce": nonce}
    visitor = Visitor(pages.client)

    assert_refused(visitor, sign_in(visitor, pages.issuer), 401, "wrong_nonce")


def test_a_callback_with_another_state_signs_in_nobody(pages: OidcApi) -> None:
    visitor = Visitor(pages.client)

    answer = sign_in(visitor, pages.issuer, lambda q: q | {"state": q["state"][:-2] + "xx"})

    assert_refused(visitor, answer, 400, "was not started in this browser")
    # The issuer was never asked for a token: a code of another sign-in is not spent.
    assert pages.issuer.desk.exchanges == []


def test_a_callback_in_another_browser_or_a_second_time_signs_in_nobody(pages: OidcApi) -> None:
    victim, attacker = Visitor(pages.client), Visitor(pages.client)
    started = press_the_button(victim, pages.issuer)
    callback = at_issuer(started.headers["location"]).headers["location"]

    assert_refused(attacker, back_at_pages(attacker, callback), 400, "not started in this browser")
    assert_signed_in_as_grace(victim, back_at_pages(victim, callback))
    # Replayed in the same browser: its state was spent.
    victim.sign_out()
    assert_refused(victim, back_at_pages(victim, callback), 400, "not started in this browser")


def test_a_sign_in_without_a_pkce_challenge_is_refused_by_the_issuer(pages: OidcApi) -> None:
    visitor = Visitor(pages.client)

    def without_challenge(query: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in query.items() if not k.startswith("code_challenge")}

    answer = sign_in(visitor, pages.issuer, without_challenge)

    assert_refused(visitor, answer, 401, "did not sign you in (invalid_request: PKCE S256")


def test_a_changed_pkce_challenge_makes_the_issuer_refuse_the_code(pages: OidcApi) -> None:
    visitor = Visitor(pages.client)

    answer = sign_in(visitor, pages.issuer, lambda q: q | {"code_challenge": "A" * 43})

    assert_refused(visitor, answer, 401, "could not be completed (code_refused)")
    assert len(pages.issuer.desk.exchanges) == 1  # the verifier was sent, and did not match


def test_a_person_who_declines_at_the_issuer_is_told_so(pages: OidcApi) -> None:
    visitor = Visitor(pages.client)
    started = press_the_button(visitor, pages.issuer)
    state = dict(parse_qsl(urlsplit(started.headers["location"]).query))["state"]
    declined = {"state": state, "error": "access_denied", "error_description": "the user said no"}

    answer = back_at_pages(visitor, f"{CALLBACK}?{urlencode(declined)}")

    assert_refused(visitor, answer, 401, "did not sign you in (access_denied: the user said no)")


@pytest.mark.parametrize("email", ["nobody@techcorp.com", "hank@globex.example"])
def test_an_email_no_user_of_the_issuers_company_has_signs_in_nobody(
    pages: OidcApi, email: str
) -> None:
    pages.issuer.desk.email = email
    visitor = Visitor(pages.client)

    answer = sign_in(visitor, pages.issuer)

    assert_refused(visitor, answer, 401, f"no user of company 1 has the e-mail address {email}")


def test_an_inactive_user_signs_in_nobody(pages: OidcApi) -> None:
    pages.container.org().change_user(ChangeUser(user_id=UserId(GRACE), active=False))
    visitor = Visitor(pages.client)

    assert_refused(visitor, sign_in(visitor, pages.issuer), 401, "inactive")


def test_an_issuer_that_cannot_be_reached_is_said_so(pages: OidcApi) -> None:
    pages.issuer.stop()
    visitor = Visitor(pages.client)
    page = visitor.get("/app/")

    answer = visitor.post(
        "/app/sign-in/oidc", {"csrf_token": csrf_of(page.text), "issuer": pages.issuer.url}
    )

    assert_refused(visitor, answer, 503, "cannot be reached now")


@pytest.mark.parametrize("chosen", ["https://evil.example", ""])
def test_only_a_trusted_issuer_can_be_chosen(pages: OidcApi, chosen: str) -> None:
    visitor = Visitor(pages.client)
    page = visitor.get("/app/")

    answer = visitor.post("/app/sign-in/oidc", {"csrf_token": csrf_of(page.text), "issuer": chosen})

    assert_refused(visitor, answer, 400, "Choose one of the identity providers")
    assert pages.issuer.asked == []


def test_starting_a_sign_in_needs_the_pages_csrf_token(pages: OidcApi) -> None:
    visitor = Visitor(pages.client)
    visitor.get("/app/")

    answer: Any = visitor.post("/app/sign-in/oidc", {"issuer": pages.issuer.url})

    assert answer.status_code == 403
    assert pages.issuer.asked == []
