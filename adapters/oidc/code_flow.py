"""Signing a person in at an OpenID Connect issuer: the authorization-code flow with PKCE (S256)
as a client of the issuer, confidential (`client_secret_basic`) or public.

Where to send the browser comes from the issuer's discovery document (`authorization_endpoint`,
`token_endpoint`, fetched on first use and again once `max_age_s` old); the code the browser
brings back is exchanged for an ID token there, and the ID token is checked by an
`OidcVerifier` whose audience is the client id, with the nonce the sign-in sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeGuard
from urllib.parse import quote_plus

import attrs
import httpx

from adapters.oidc.errors import CodeRefused, InvalidJwt, IssuerUnavailable, UntrustedIssuer
from adapters.oidc.verifier import (
    DISCOVERY_PATH,
    MAX_DOCUMENT_BYTES,
    USER_AGENT,
    OidcVerifier,
    read_document,
)
from expense_core.identity import Identity

log = logging.getLogger("expense_tracker.oidc")

SCOPE: Final = "openid email"


def s256_challenge(code_verifier: str) -> str:
    """The PKCE code challenge of a verifier (RFC 7636 §4.2: BASE64URL(SHA256(verifier)))."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _is_url(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


@attrs.frozen
class Endpoints:
    """Where an issuer signs people in, and where codes are exchanged."""

    authorization: str
    token: str


class CodeFlow:
    """The authorization-code flow with PKCE at the trusted `issuers`, as the client
    `client_id` (with `client_secret` by HTTP Basic, or a public client without one) whose
    redirect URI is `redirect_uri`; safe to share between threads."""

    def __init__(
        self,
        issuers: Sequence[str],
        verifier: OidcVerifier,
        *,
        client_id: str,
        client_secret: str | None,
        redirect_uri: str,
        max_age_s: float = 3600.0,
        timeout_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuers = tuple(issuers)
        self._verifier = verifier
        self._client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._endpoints: dict[str, tuple[Endpoints, float]] = {}
        # Codes are exchanged without following redirects: a token endpoint answers itself.
        self._client = httpx.Client(
            timeout=timeout_s, headers={"user-agent": USER_AGENT, "accept": "application/json"}
        )
        self._discovery = httpx.Client(
            timeout=timeout_s,
            follow_redirects=True,
            headers={"user-agent": USER_AGENT, "accept": "application/json"},
        )

    def authorization_url(self, issuer: str, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser to sign in at `issuer`.

        Raises:
            UntrustedIssuer: `issuer` is none of the trusted ones.
            IssuerUnavailable: its discovery document cannot be had now.
        """
        endpoint = self.endpoints(issuer).authorization
        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self.redirect_uri,
            "scope": SCOPE,
            "state": state,
            "nonce": nonce,
            "code_challenge": s256_challenge(code_verifier),
            "code_challenge_method": "S256",
        }
        # Merged: an endpoint may carry a query of its own (a provider's policy or tenant).
        return str(httpx.URL(endpoint).copy_merge_params(params))

    def identity(self, issuer: str, *, code: str, code_verifier: str, nonce: str) -> Identity:
        """The identity that `issuer` vouches for in exchange for `code`, the ID token checked
        (signature, `iss` = `issuer`, `aud` = the client id, `exp`, `nonce`).

        Raises:
            UntrustedIssuer: `issuer` is none of the trusted ones.
            CodeRefused: the token endpoint refuses the code (used, expired, another
                verifier, another redirect URI or client) or answers no ID token.
            IssuerUnavailable: the issuer cannot be reached, or answers a server error.
            InvalidJwt, WrongAudience, WrongNonce, JwtExpired, JwtNotYetValid,
                UnknownSigningKey, UnverifiedEmail: the ID token is not to be trusted.
        """
        endpoint = self.endpoints(issuer).token
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if self._client_secret is None:
            form["client_id"] = self._client_id
        else:
            # RFC 6749 §2.3.1: both are form-encoded before they go into the Basic header.
            auth = httpx.BasicAuth(quote_plus(self._client_id), quote_plus(self._client_secret))
        try:
            status, answer = self._post(endpoint, form, auth)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OIDC issuer %s: the code could not be exchanged: %s", issuer, exc)
            raise IssuerUnavailable(issuer) from None
        if status >= 500:
            log.warning("OIDC issuer %s: its token endpoint answered %s", issuer, status)
            raise IssuerUnavailable(issuer)
        id_token = answer.get("id_token")
        if status != 200 or not isinstance(id_token, str):
            error = answer.get("error")
            raise CodeRefused(error if isinstance(error, str) else f"status {status}")
        found = self._verifier.verify(id_token, nonce=nonce)
        if found.issuer != issuer:
            # The mix-up attack: a code of one issuer, an ID token of another.
            raise InvalidJwt("the ID token comes from another issuer than the sign-in's")
        return found

    def endpoints(self, issuer: str) -> Endpoints:
        """The issuer's endpoints, from its discovery document (kept up to `max_age_s`).

        Raises:
            UntrustedIssuer: `issuer` is none of the trusted ones.
            IssuerUnavailable: the discovery document cannot be had, and none is kept.
        """
        if issuer not in self.issuers:
            raise UntrustedIssuer(issuer)
        with self._lock:
            kept = self._endpoints.get(issuer)
            now = self._monotonic()
            if kept is not None and now - kept[1] < self._max_age_s:
                return kept[0]
            try:
                found = self._discover(issuer)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("OIDC issuer %s: its discovery document failed: %s", issuer, exc)
                if kept is None:
                    raise IssuerUnavailable(issuer) from None
                return kept[0]
            self._endpoints[issuer] = (found, now)
            return found

    def _discover(self, issuer: str) -> Endpoints:
        document = read_document(self._discovery, issuer.rstrip("/") + DISCOVERY_PATH)
        if document.get("issuer") != issuer:
            raise ValueError(f"the discovery document names issuer {document.get('issuer')!r}")
        authorization = document.get("authorization_endpoint")
        token = document.get("token_endpoint")
        if not _is_url(authorization):
            raise ValueError("the discovery document has no authorization_endpoint")
        if not _is_url(token):
            raise ValueError("the discovery document has no token_endpoint")
        return Endpoints(authorization=authorization, token=token)

    def _post(
        self, url: str, form: dict[str, str], auth: httpx.BasicAuth | None
    ) -> tuple[int, dict[str, Any]]:
        """The status and JSON object a token endpoint answers a form with ({} if none)."""
        with self._client.stream("POST", url, data=form, auth=auth) as answer:
            body = bytearray()
            for chunk in answer.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ValueError(f"{url} answers more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        return answer.status_code, document if isinstance(document, dict) else {}

    def close(self) -> None:
        """Close the kept-open connections to the issuers."""
        self._client.close()
        self._discovery.close()
        self._verifier.close()
