"""AUTH_MODE=oidc: a JWT of the trusted issuer acts as the user its e-mail names; every other
token is refused with a code that says why, and the issuer is asked for its keys only when
they are needed."""

from __future__ import annotations

import time

import pytest

from entrypoints.settings import AuthMode
from expense_core.model import UserId
from expense_core.services import ChangeUser
from tests.oidc.conftest import OidcApi, StartApi
from tests.oidc.issuer import AUDIENCE, LocalIssuer, ec_key, rsa_key
from tests.web.support import Visitor, error_beside

GRACE = 7


def refused_with(response: object, code: str) -> None:
    __tracebackhide__ = True
    assert getattr(response, "status_code", None) == 401, getattr(response, "text", response)
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == code, body
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]


def test_a_good_token_acts_as_the_user_its_email_names(api: OidcApi) -> None:
    created = api.submit(api.issuer.token())

    assert created.status_code == 201, created.text
    expense = created.json()["expense_id"]
    status = api.get(api.issuer.token(), f"/api/expenses/{expense}/status")
    assert status.status_code == 200
    assert (status.json()["user_id"], status.json()["user_name"]) == (GRACE, "Grace Taylor")
    # The token's user, no one else, is the actor: a body naming Frank is refused.
    as_frank = api.client.post(
        "/api/expenses",
        json={"user_id": 6, "policy_id": 1, "amount": 5},
        headers={"Authorization": f"Bearer {api.issuer.token()}"},
    )
    assert as_frank.status_code == 403
    assert as_frank.json()["code"] == "actor_mismatch"
    assert api.client.get("/").json()["auth_mode"] == str(AuthMode.OIDC)


def test_the_email_is_matched_whatever_the_case_of_its_letters(api: OidcApi) -> None:
    token = api.issuer.token(email="Grace.Taylor@TECHCORP.com")

    assert api.submit(token).status_code == 201


def test_an_audience_list_naming_this_service_is_enough(api: OidcApi) -> None:
    token = api.issuer.token(aud=["another-api", AUDIENCE])

    assert api.get(token).status_code == 200


def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(api: OidcApi) -> None:
    forger = rsa_key()

    refused_with(api.get(api.issuer.token(forger, kid=api.issuer.keys[0].kid)), "invalid_jwt")


def test_a_token_for_another_audience_is_refused(api: OidcApi) -> None:
    refused_with(api.get(api.issuer.token(aud="another-api")), "wrong_audience")
    refused_with(api.get(api.issuer.token(aud=None)), "wrong_audience")


def test_a_token_of_an_issuer_not_trusted_is_refused_without_asking_it(api: OidcApi) -> None:
    with LocalIssuer() as stranger:
        token = stranger.token()

        refused_with(api.get(token), "untrusted_issuer")
        assert stranger.asked == []
    # A stranger's key under our issuer's name is a bad signature.
    refused_with(api.get(stranger.token(iss=api.issuer.url)), "unknown_signing_key")
    refused_with(api.get(api.issuer.token(iss=None)), "untrusted_issuer")


def test_an_expired_token_is_refused_after_the_leeway(api: OidcApi) -> None:
    now = int(time.time())

    refused_with(api.get(api.issuer.token(exp=now - 600, iat=now - 900, nbf=None)), "jwt_expired")
    refused_with(api.get(api.issuer.token(exp=None)), "invalid_jwt")
    # Clock skew within OIDC_LEEWAY_S (60 s) is forgiven.
    assert api.get(api.issuer.token(exp=now - 20)).status_code == 200


def test_a_token_not_yet_valid_is_refused_after_the_leeway(api: OidcApi) -> None:
    now = int(time.time())

    refused_with(api.get(api.issuer.token(nbf=now + 600)), "jwt_not_yet_valid")
    refused_with(api.get(api.issuer.token(iat=now + 600)), "jwt_not_yet_valid")
    assert api.get(api.issuer.token(nbf=now + 20, iat=now + 20)).status_code == 200


def test_a_token_signed_with_alg_none_is_refused_without_fetching_keys(api: OidcApi) -> None:
    refused_with(api.get(api.issuer.unsigned()), "invalid_jwt")

    assert api.issuer.jwks_fetches == 0


def test_an_hs256_token_signed_with_the_public_key_is_refused(api: OidcApi) -> None:
    response = api.get(api.issuer.hs256_with_public_key())

    refused_with(response, "invalid_jwt")
    assert "HS256" in response.json()["detail"]


def test_a_token_naming_another_published_key_than_its_signers_is_refused(
    api: OidcApi,
) -> None:
    first, second = api.issuer.keys[0], ec_key()
    api.issuer.publish(first, second)

    refused_with(api.get(api.issuer.token(first, kid=second.kid)), "invalid_jwt")
    refused_with(api.get(api.issuer.token(second, kid=first.kid)), "invalid_jwt")
    assert api.get(api.issuer.token(second)).status_code == 200


def test_an_unknown_kid_fetches_the_keys_once_more_then_is_refused(api: OidcApi) -> None:
    assert api.get(api.issuer.token()).status_code == 200
    assert api.issuer.jwks_fetches == 1

    refused_with(api.get(api.issuer.token(rsa_key())), "unknown_signing_key")

    assert api.issuer.jwks_fetches == 2


def test_a_key_the_issuer_adds_works_without_a_restart(api: OidcApi) -> None:
    old = api.issuer.keys[0]
    assert api.get(api.issuer.token(old)).status_code == 200
    new = ec_key()

    api.issuer.publish(old, new)

    assert api.get(api.issuer.token(new)).status_code == 200
    assert api.get(api.issuer.token(old)).status_code == 200
    assert api.issuer.jwks_fetches == 2


def test_a_flood_of_unknown_kids_asks_the_issuer_once_per_cooldown(
    start_api: StartApi,
) -> None:
    api = start_api(oidc_jwks_cooldown_s=3600)

    for _ in range(20):
        refused_with(api.get(api.issuer.token(ec_key())), "unknown_signing_key")

    assert api.issuer.jwks_fetches == 1
    assert api.get(api.issuer.token()).status_code == 200


def test_keys_older_than_their_max_age_are_fetched_again(start_api: StartApi) -> None:
    api = start_api(oidc_jwks_max_age_s=0)
    old = api.issuer.keys[0]
    assert api.get(api.issuer.token(old)).status_code == 200
    new = rsa_key()

    api.issuer.publish(new)  # the old key is withdrawn

    refused_with(api.get(api.issuer.token(old)), "unknown_signing_key")
    assert api.get(api.issuer.token(new)).status_code == 200


def test_an_issuer_that_cannot_be_reached_answers_503_until_keys_are_kept(
    api: OidcApi,
) -> None:
    api.issuer.stop()

    response = api.get(api.issuer.token())

    assert response.status_code == 503
    assert response.json()["code"] == "issuer_unavailable"
    assert "Retry-After" in response.headers


def test_keys_kept_serve_while_the_issuer_is_down(api: OidcApi) -> None:
    token = api.issuer.token()
    assert api.get(token).status_code == 200

    api.issuer.stop()

    assert api.get(token).status_code == 200


def test_an_email_no_user_of_the_issuers_company_has_is_refused(api: OidcApi) -> None:
    refused_with(api.get(api.issuer.token(email="nobody@techcorp.com")), "no_user_with_email")
    # Globex's Hank exists, but the issuer signs in TechCorp's people only.
    refused_with(api.get(api.issuer.token(email="hank@globex.example")), "no_user_with_email")


def test_an_inactive_user_is_refused_from_the_next_request_on(api: OidcApi) -> None:
    token = api.issuer.token()
    assert api.get(token).status_code == 200

    api.container.org().change_user(ChangeUser(user_id=UserId(GRACE), active=False))

    refused_with(api.get(token), "inactive_identity")


def test_a_token_without_an_email_or_with_an_unverified_one_is_refused(api: OidcApi) -> None:
    refused_with(api.get(api.issuer.token(email=None)), "invalid_jwt")
    refused_with(api.get(api.issuer.token(email=42)), "invalid_jwt")
    refused_with(api.get(api.issuer.token(email_verified=False)), "unverified_email")


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic Z3JhY2U6cGFzcw==", "Bearer not-a-jwt", "Bearer a.b.c"],
)
def test_anything_but_a_bearer_jwt_is_refused(api: OidcApi, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = api.client.get("/api/expenses", headers=headers)

    assert response.status_code == 401
    assert response.json()["code"] in {"unauthenticated", "invalid_jwt"}


def test_an_api_token_is_not_a_jwt(api: OidcApi) -> None:
    token = api.container.access().issue_token(UserId(GRACE))

    refused_with(api.get(token), "invalid_jwt")


@pytest.mark.parametrize("form", [{"person": "1"}, {"token": "whatever"}])
def test_the_pages_sign_in_nobody_but_through_the_identity_provider(
    api: OidcApi, form: dict[str, str]
) -> None:
    visitor = Visitor(api.client)

    answer = visitor.submit("/app/", "/app/sign-in", form)

    assert answer.status_code == 400
    assert "identity provider" in error_beside(answer.text, "oidc")
    assert visitor.get("/app/expenses").headers["location"] == "/app/"
