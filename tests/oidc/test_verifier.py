"""The verifier on its own, against a real local issuer: when it asks for keys (`Seconds` stands
in for the monotonic clock), and what of a discovery document it trusts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.clock import SystemClock
from adapters.oidc import IssuerUnavailable, OidcVerifier, UnknownSigningKey
from expense_core.model import CompanyId
from tests.oidc.issuer import AUDIENCE, GRACE_EMAIL, LocalIssuer, ec_key


class Seconds:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


def verifier_of(
    issuer: LocalIssuer, seconds: Seconds, *, cooldown_s: float = 10, max_age_s: float = 3600
) -> OidcVerifier:
    return OidcVerifier(
        {issuer.url: CompanyId(4)},
        AUDIENCE,
        SystemClock(),
        cooldown_s=cooldown_s,
        max_age_s=max_age_s,
        monotonic=seconds,
    )


def test_a_verified_token_names_its_email_in_its_issuers_company(issuer: LocalIssuer) -> None:
    verifier = verifier_of(issuer, Seconds())

    identity = verifier.verify(issuer.token())

    assert (identity.company_id, identity.email, identity.issuer) == (4, GRACE_EMAIL, issuer.url)


def test_unknown_kids_fetch_the_keys_again_once_per_cooldown(issuer: LocalIssuer) -> None:
    seconds = Seconds()
    verifier = verifier_of(issuer, seconds, cooldown_s=10)
    verifier.verify(issuer.token())
    new = ec_key()
    issuer.publish(issuer.keys[0], new)

    seconds.now += 9
    with pytest.raises(UnknownSigningKey):
        verifier.verify(issuer.token(new))
    assert issuer.jwks_fetches == 1

    seconds.now += 1
    assert verifier.verify(issuer.token(new)).email == GRACE_EMAIL
    assert issuer.jwks_fetches == 2
    with pytest.raises(UnknownSigningKey):
        verifier.verify(issuer.token(ec_key()))
    assert issuer.jwks_fetches == 2


def test_keys_are_fetched_again_once_past_their_max_age(issuer: LocalIssuer) -> None:
    seconds = Seconds()
    verifier = verifier_of(issuer, seconds, cooldown_s=10, max_age_s=600)
    token = issuer.token()
    verifier.verify(token)

    seconds.now += 599
    verifier.verify(token)
    assert issuer.jwks_fetches == 1
    seconds.now += 1
    verifier.verify(token)
    assert issuer.jwks_fetches == 2


def test_a_discovery_document_naming_another_issuer_is_not_trusted(issuer: LocalIssuer) -> None:
    issuer.publish(*issuer.keys, issuer="https://elsewhere.example")
    verifier = verifier_of(issuer, Seconds())

    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 0


def test_an_unreachable_issuer_is_asked_again_only_after_the_cooldown(
    issuer: LocalIssuer,
) -> None:
    seconds = Seconds()
    verifier = verifier_of(issuer, seconds, cooldown_s=10)
    issuer.publish(*issuer.keys, issuer="https://elsewhere.example")
    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.token())
    issuer.publish(*issuer.keys)

    with pytest.raises(IssuerUnavailable):
        verifier.verify(issuer.token())
    seconds.now += 10
    assert verifier.verify(issuer.token()).email == GRACE_EMAIL
    assert issuer.asked.count("/.well-known/openid-configuration") == 2
