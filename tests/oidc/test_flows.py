"""The pages' sign-in state (`entrypoints.web.oidc.Flows`) and its settings: a flow opens only
as sealed, by the same secret, within its ten minutes; its verifier and nonce are fixed by its
state and the secret alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from adapters.oidc import s256_challenge
from entrypoints.settings import Settings
from entrypoints.web.oidc import FLOW_FOR, Flows, issuer_choices

NOW = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)
ISSUER = "https://sso.example.com/realms/acme"


def test_a_sealed_flow_opens_as_it_was_until_it_expires() -> None:
    flows = Flows("secret")
    flow = flows.start(ISSUER, NOW)

    assert flows.open(flows.seal(flow), NOW) == flow
    assert flows.open(flows.seal(flow), NOW + FLOW_FOR - timedelta(seconds=1)) == flow
    assert flows.open(flows.seal(flow), NOW + FLOW_FOR) is None


def test_a_flow_sealed_with_another_secret_or_changed_does_not_open() -> None:
    flows = Flows("secret")
    sealed = flows.seal(flows.start(ISSUER, NOW))
    body, _, signature = sealed.partition(".")

    assert Flows("another secret").open(sealed, NOW) is None
    assert flows.open(f"{body}x.{signature}", NOW) is None
    assert flows.open(f"{body}.{signature[:-2]}AA", NOW) is None
    for garbage in ("", ".", "not-a-flow", "a.b.c", "%%%.%%%"):
        assert flows.open(garbage, NOW) is None


def test_each_flow_has_a_state_verifier_and_nonce_of_its_own() -> None:
    flows = Flows("secret")
    one, other = flows.start(ISSUER, NOW), flows.start(ISSUER, NOW)

    assert one.state != other.state
    assert flows.code_verifier(one) != flows.code_verifier(other)
    assert flows.nonce(one) != flows.nonce(other)
    # RFC 7636 §4.1: 43 to 128 unreserved characters.
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", flows.code_verifier(one))
    # The same state and secret give the same verifier: nothing is kept between requests ...
    assert flows.code_verifier(one) == Flows("secret").code_verifier(one)
    # ... and without the secret the state tells nothing of it.
    assert flows.code_verifier(one) != Flows("another").code_verifier(one)
    assert flows.nonce(one) != flows.code_verifier(one)


def test_the_s256_challenge_is_rfc_7636s_example() -> None:
    # RFC 7636 Appendix B.
    assert (
        s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_buttons_are_named_by_host_and_by_path_where_hosts_are_shared() -> None:
    choices = issuer_choices(
        ["https://login.acme.example", ISSUER, "https://sso.example.com/realms/globex/"]
    )

    assert [c.label for c in choices] == [
        "login.acme.example",
        "sso.example.com/realms/acme",
        "sso.example.com/realms/globex",
    ]
    assert [c.url for c in choices][1] == ISSUER


def test_the_pages_client_is_oidc_client_id_else_the_audience() -> None:
    base = {
        "AUTH_MODE": "oidc",
        "OIDC_ISSUER": f"{ISSUER}=1",
        "OIDC_AUDIENCE": "expense-tracker-api",
        "PUBLIC_URL": "https://expenses.example.com/",
    }
    plain = Settings.from_env(base)
    own = Settings.from_env(
        {**base, "OIDC_CLIENT_ID": "pages", "OIDC_CLIENT_SECRET": "very secret"}
    )

    assert (plain.oidc_client, plain.oidc_client_secret) == ("expense-tracker-api", None)
    assert (own.oidc_client, own.oidc_client_secret) == ("pages", "very secret")
    assert own.oidc_redirect_uri == "https://expenses.example.com/app/sign-in/callback"
    assert "very secret" not in repr(own)


@pytest.mark.parametrize("secret", ["", "   "])
def test_a_blank_client_secret_is_a_public_client(secret: str) -> None:
    settings = Settings.from_env(
        {
            "AUTH_MODE": "oidc",
            "OIDC_ISSUER": f"{ISSUER}=1",
            "OIDC_AUDIENCE": "api",
            "OIDC_CLIENT_SECRET": secret,
        }
    )

    assert settings.oidc_client_secret is None
