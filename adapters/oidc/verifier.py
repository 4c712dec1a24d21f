"""Bearer JWTs of OpenID Connect issuers: each issuer's signing keys, found through its discovery
document and kept, and a token checked against them (signature, `iss`, `aud`, `exp`, `nbf`) into
the e-mail address it vouches for.

Keys are fetched on first use, again when they are older than `max_age_s`, and again when a
token names a key not among them (an issuer that rotated its keys), but never twice within
`cooldown_s`: a flood of tokens naming made-up keys costs the issuer one request per cooldown
and per process, not one each.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx
from joserfc import jws
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import Key, KeySet
from joserfc.jwt import JWTClaimsRegistry

from adapters.oidc.errors import (
    InvalidJwt,
    IssuerUnavailable,
    JwtExpired,
    JwtNotYetValid,
    UnknownSigningKey,
    UntrustedIssuer,
    UnverifiedEmail,
    WrongAudience,
    WrongNonce,
)
from expense_core.identity import Identity
from expense_core.model import CompanyId
from expense_core.ports import Clock

log = logging.getLogger("expense_tracker.oidc")

# Asymmetric signatures only: `none` proves nothing, and an HS* token could be signed with the
# issuer's public key, which anyone may read from its JWKS.
ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
_PUBLIC_KEY_TYPES: Final = frozenset({"RSA", "EC", "OKP"})
MAX_TOKEN_CHARS: Final = 8192
MAX_DOCUMENT_BYTES: Final = 512 * 1024  # a discovery document or a JWKS
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
USER_AGENT: Final = "expense-tracker-oidc"


def read_document(client: httpx.Client, url: str) -> dict[str, Any]:
    """The JSON object `url` answers (a discovery document, a JWKS).

    Raises:
        httpx.HTTPError: no answer, or not a 2xx one.
        ValueError: not a JSON object, or longer than `MAX_DOCUMENT_BYTES`.
    """
    with client.stream("GET", url) as answer:
        answer.raise_for_status()
        body = bytearray()
        for chunk in answer.iter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"{url} answers more than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"{url} does not answer a JSON object")
    return document


class IssuerKeys:
    """One issuer's signing keys, fetched through its discovery document; safe to share
    between threads (one fetch at a time, the others wait for its keys)."""

    def __init__(
        self,
        issuer: str,
        client: httpx.Client,
        *,
        cooldown_s: float,
        max_age_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._client = client
        self._cooldown_s = cooldown_s
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = 0.0  # when the keys kept were fetched
        self._tried_at: float | None = None  # the last fetch, whatever came of it

    def key(self, kid: str | None) -> Key:
        """The signing key named `kid` (None: the issuer's only key).

        Raises:
            UnknownSigningKey: the issuer publishes no such key (also after fetching its keys
                again, when the cooldown allowed it).
            IssuerUnavailable: no keys are kept and they cannot be fetched now.
        """
        with self._lock:
            now = self._monotonic()
            fresh = False
            if self._keys is None or now - self._fetched_at >= self._max_age_s:
                fresh = self._refresh(now)
            found = self._find(kid)
            if found is None and not fresh and self._refresh(now):
                found = self._find(kid)
        if found is None:
            raise UnknownSigningKey(kid)
        return found

    def _may_fetch(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._cooldown_s

    def _refresh(self, now: float) -> bool:
        """Fetch the keys if the cooldown allows; whether new keys were fetched. Keys kept
        before stay in use when the fetch fails.

        Raises:
            IssuerUnavailable: no keys kept, and none could be fetched.
        """
        fetched: KeySet | None = None
        if self._may_fetch(now):
            self._tried_at = now
            try:
                fetched = self._fetch()
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                log.warning("OIDC issuer %s: its keys could not be fetched: %s", self.issuer, exc)
        if fetched is not None:
            self._keys, self._fetched_at = fetched, now
            return True
        if self._keys is None:
            raise IssuerUnavailable(self.issuer)
        return False

    def _fetch(self) -> KeySet:
        discovery = self._document(self.issuer.rstrip("/") + DISCOVERY_PATH)
        if discovery.get("issuer") != self.issuer:
            # OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was
            # fetched for, or another party's keys could be taken for this issuer's.
            raise ValueError(f"the discovery document names issuer {discovery.get('issuer')!r}")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("the discovery document has no jwks_uri")
        keys = self._document(jwks_uri).get("keys")
        if not isinstance(keys, list):
            raise ValueError("the JWKS has no list of keys")
        # Public signing keys only: a symmetric key there would verify HS* tokens anyone with
        # the JWKS could sign.
        public = [
            k
            for k in keys
            if isinstance(k, dict)
            and k.get("kty") in _PUBLIC_KEY_TYPES
            and k.get("use", "sig") == "sig"
        ]
        return KeySet.import_key_set({"keys": public})

    def _document(self, url: str) -> dict[str, Any]:
        return read_document(self._client, url)

    def _find(self, kid: str | None) -> Key | None:
        if self._keys is None:
            return None
        try:
            return self._keys.get_by_kid(kid)
        except (JoseError, ValueError):
            return None


class OidcVerifier:
    """Checks bearer JWTs of the trusted issuers (`companies`: each issuer's URL, exactly as its
    tokens' `iss`, and the company whose users it signs in) meant for `audience`; safe to share
    between threads."""

    def __init__(
        self,
        companies: Mapping[str, CompanyId],
        audience: str,
        clock: Clock,
        *,
        leeway_s: int = 60,
        cooldown_s: float = 10.0,
        max_age_s: float = 3600.0,
        timeout_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._companies = dict(companies)
        self._audience = audience
        self._clock = clock
        self._leeway_s = leeway_s
        self._client = httpx.Client(
            timeout=timeout_s,
            follow_redirects=True,
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
        )
        self._keys = {
            issuer: IssuerKeys(
                issuer,
                self._client,
                cooldown_s=cooldown_s,
                max_age_s=max_age_s,
                monotonic=monotonic,
            )
            for issuer in self._companies
        }

    def verify(self, token: str, *, nonce: str | None = None) -> Identity:
        """The identity a valid token vouches for: its e-mail address, in its issuer's company;
        an ID token of a sign-in must also carry the `nonce` the sign-in sent.

        Raises:
            InvalidJwt: malformed, an algorithm not in `ALGORITHMS`, a bad signature, or no
                `email` (or `exp`) claim.
            UntrustedIssuer, WrongAudience, JwtExpired, JwtNotYetValid, UnverifiedEmail: as
                named; `exp`, `nbf` and `iat` are allowed `leeway_s` of clock skew.
            UnknownSigningKey: the issuer publishes no key with the token's `kid`.
            IssuerUnavailable: the issuer's keys cannot be fetched and none are kept.
            WrongNonce: `nonce` is given and the token carries another one, or none.
        """
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidJwt(f"longer than {MAX_TOKEN_CHARS} characters")
        try:
            signed = jws.extract_compact(token.encode())
            claims = json.loads(signed.payload)
        except (JoseError, ValueError, TypeError):
            raise InvalidJwt("not a JWS in compact form with a JSON payload") from None
        if not isinstance(claims, dict):
            raise InvalidJwt("its payload is not a JSON object")
        header = signed.headers()
        if header.get("alg") not in ALGORITHMS:
            raise InvalidJwt(f"algorithm {header.get('alg')!r} is not accepted")
        # The claims are not trusted yet: `iss` only picks whose keys to check the signature
        # with, and is checked itself once the signature holds.
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer not in self._keys:
            raise UntrustedIssuer(issuer)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidJwt("its kid is not a string")
        key = self._keys[issuer].key(kid)
        try:
            valid = jws.validate_compact(signed, key, algorithms=ALGORITHMS)
        except JoseError as exc:
            raise InvalidJwt(f"the signature cannot be checked ({exc.error})") from None
        if not valid:
            raise InvalidJwt("the signature does not verify")
        self._check_claims(claims, issuer, nonce)
        email = claims["email"]
        if not isinstance(email, str) or not email.strip():
            raise InvalidJwt("its email claim is not an address")
        if claims.get("email_verified") is False:
            raise UnverifiedEmail
        return Identity(company_id=self._companies[issuer], email=email.strip(), issuer=issuer)

    def _check_claims(self, claims: dict[str, Any], issuer: str, nonce: str | None) -> None:
        expected: dict[str, Any] = {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": self._audience},
            "exp": {"essential": True},
            "email": {"essential": True},
        }
        if nonce is not None:
            # OpenID Connect Core §3.1.3.7: the ID token of a sign-in is the one this browser
            # asked for, not one replayed from another sign-in.
            expected["nonce"] = {"essential": True, "value": nonce}
        registry = JWTClaimsRegistry(
            now=int(self._clock.now().timestamp()), leeway=self._leeway_s, **expected
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise JwtExpired from None
        except MissingClaimError as exc:
            if exc.claim == "aud":
                raise WrongAudience from None
            if exc.claim == "nonce":
                raise WrongNonce from None
            raise InvalidJwt(f"it lacks the claims {exc.claim}") from None
        except ClaimError as exc:
            if exc.claim == "aud":
                raise WrongAudience from None
            if exc.claim == "nonce":
                raise WrongNonce from None
            if exc.claim in ("nbf", "iat"):
                raise JwtNotYetValid from None
            raise InvalidJwt(f"its {exc.claim} claim is invalid") from None

    def close(self) -> None:
        """Close the kept-open connections to the issuers."""
        self._client.close()
