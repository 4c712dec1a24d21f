"""Signing in to the pages at an OpenID Connect issuer (AUTH_MODE=oidc): the authorization-code
flow with PKCE, bound to the browser that started it.

Pressing an issuer's button draws a random `state` and sends the browser to the issuer with it;
the state rides back in a short-lived signed cookie (`et_oidc`, HttpOnly, only for
/app/sign-in), so a callback whose state is not the cookie's came from another browser or
another sign-in and signs in nobody. The PKCE code verifier and the nonce are derived from the
state under the site's secret: the server keeps nothing between the two requests and they
never reach the browser. The ID token names an e-mail address, turned into the user exactly as
the API does (`SignOnService`), and the session is the same signed cookie as every sign-in's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import attrs
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect

from entrypoints.http.errors import status_of
from entrypoints.http.schemas import NO_NUL
from entrypoints.ports import SignInFlow
from entrypoints.settings import OIDC_CALLBACK_PATH
from entrypoints.web.pages import render_sign_in
from entrypoints.web.session import Session
from entrypoints.web.site import MY_EXPENSES, IssuerChoice, Site
from expense_core.errors import (
    AmbiguousEmail,
    DomainError,
    InactiveIdentity,
    InvalidInput,
    NoUserWithEmail,
    Unauthenticated,
    Unavailable,
)
from expense_core.services import OrgService, SignOnService

log = logging.getLogger("expense_tracker.web")

FLOW_COOKIE: Final = "et_oidc"
FLOW_PATH: Final = "/app/sign-in"
# Long enough to type a password and answer a second factor at the provider.
FLOW_FOR: Final = timedelta(minutes=10)
_STATE_BYTES: Final = 24
_KEY_CONTEXT: Final = b"expense-tracker pages oidc v1\x00"
Query = Annotated[str, QueryParameter(required=False, max_length=4096)]
# `state` is a name Litestar keeps for the app's state: the parameter is read under another.
StateQuery = Annotated[str, QueryParameter(name="state", required=False, max_length=4096)]


class SignInNotStartedHere(InvalidInput):
    """A callback whose state is not the one this browser's sign-in sent (or none is under
    way: another browser's link, an expired one, a second use)."""

    code = "oidc_state_mismatch"

    def __init__(self) -> None:
        super().__init__(
            "this sign-in was not started in this browser, or took too long; sign in again"
        )


class ProviderDeclined(Unauthenticated):
    """The issuer sent the browser back with an error instead of a code."""

    code = "oidc_provider_declined"

    def __init__(self, error: str, description: str) -> None:
        detail = f"{error}: {description}" if description else error
        super().__init__(f"your identity provider did not sign you in ({detail})")


class UnknownIssuer(InvalidInput):
    code = "oidc_unknown_issuer"

    def __init__(self) -> None:
        super().__init__("choose one of the identity providers on this page")


@attrs.frozen
class Flow:
    """A sign-in under way: at which issuer, with which state, until when."""

    issuer: str
    state: str
    expires: int  # seconds since the epoch


class Flows:
    """Draw sign-ins, seal them into the flow cookie and open them again; derive each one's
    PKCE code verifier and nonce. A value not sealed with this secret, or expired, opens as
    no flow at all."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        # Derived, so the session's key and this one never sign each other's values.
        self._key = hashlib.sha256(_KEY_CONTEXT + raw).digest()

    def start(self, issuer: str, now: datetime) -> Flow:
        until = int((now + FLOW_FOR).timestamp())
        return Flow(issuer, secrets.token_urlsafe(_STATE_BYTES), until)

    def code_verifier(self, flow: Flow) -> str:
        """43 characters of base64url: RFC 7636 §4.1's shortest verifier, 256 bits."""
        return _encode(self._sign(b"pkce", flow.state.encode()))

    def nonce(self, flow: Flow) -> str:
        return _encode(self._sign(b"nonce", flow.state.encode()))

    def seal(self, flow: Flow) -> str:
        payload = json.dumps(
            {"i": flow.issuer, "s": flow.state, "e": flow.expires}, separators=(",", ":")
        ).encode()
        return f"{_encode(payload)}.{_encode(self._sign(b'flow', payload))}"

    def open(self, value: str | None, now: datetime) -> Flow | None:
        if not value:
            return None
        body, _, signature = value.partition(".")
        try:
            payload = _decode(body)
            if not hmac.compare_digest(_decode(signature), self._sign(b"flow", payload)):
                return None
            fields = json.loads(payload)
        except (ValueError, binascii.Error):
            return None
        if not isinstance(fields, dict):
            return None
        issuer, state, expires = fields.get("i"), fields.get("s"), fields.get("e")
        if not (isinstance(issuer, str) and isinstance(state, str) and isinstance(expires, int)):
            return None
        if expires <= now.timestamp():
            return None
        return Flow(issuer, state, expires)

    def cookie(self, flow: Flow | None, *, secure: bool) -> Cookie:
        """The flow cookie carrying `flow`; None clears it. SameSite=Lax: the issuer's redirect
        back is a top-level GET, which carries it."""
        return Cookie(
            key=FLOW_COOKIE,
            value="" if flow is None else self.seal(flow),
            path=FLOW_PATH,
            max_age=0 if flow is None else int(FLOW_FOR.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    def _sign(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\x00" + data, hashlib.sha256).digest()


def issuer_choices(issuers: Sequence[str]) -> tuple[IssuerChoice, ...]:
    """A button for each issuer, named by its host, or by host and path where issuers share a
    host (realms of one Keycloak)."""
    hosts = [urlsplit(url).netloc for url in issuers]
    choices = []
    for url, host in zip(issuers, hosts, strict=True):
        label = host
        if hosts.count(host) > 1:
            label = host + urlsplit(url).path.rstrip("/")
        choices.append(IssuerChoice(url, label))
    return tuple(choices)


class StartForm(msgspec.Struct):
    issuer: Annotated[str, msgspec.Meta(pattern=NO_NUL, max_length=2048)] = ""


StartBody = Annotated[StartForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


class OidcSignInPages(Controller):
    """Start a sign-in at an issuer, and take the browser back from it."""

    path = "/sign-in"

    @post("/oidc", sync_to_thread=True, status_code=303)
    def start(
        self,
        request: Request[Any, Any, Any],
        data: StartBody,
        site: NamedDependency[Site],
        org: NamedDependency[OrgService],
        flows: NamedDependency[Flows],
        sign_in_flow: NamedDependency[SignInFlow],
    ) -> Response[Any]:
        secure = request.url.scheme == "https"
        try:
            if data.issuer not in sign_in_flow.issuers:
                raise UnknownIssuer
            flow = flows.start(data.issuer, site.clock.now())
            url = sign_in_flow.authorization_url(
                flow.issuer,
                state=flow.state,
                nonce=flows.nonce(flow),
                code_verifier=flows.code_verifier(flow),
            )
        except (InvalidInput, Unauthenticated, Unavailable) as refused:
            return _refused(request, site, org, refused, [])
        return Redirect(url, status_code=303, cookies=[flows.cookie(flow, secure=secure)])

    @get(OIDC_CALLBACK_PATH.removeprefix("/app/sign-in"), sync_to_thread=True)
    def callback(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        org: NamedDependency[OrgService],
        flows: NamedDependency[Flows],
        sign_in_flow: NamedDependency[SignInFlow],
        sign_on: NamedDependency[SignOnService],
        returned_state: StateQuery = "",
        code: Query = "",
        error: Query = "",
        error_description: Query = "",
    ) -> Response[Any]:
        # Whatever comes of it, the sign-in is over: its state is never accepted twice.
        cleared = flows.cookie(None, secure=request.url.scheme == "https")
        flow = flows.open(request.cookies.get(FLOW_COOKIE), site.clock.now())
        try:
            if flow is None or not _same(flow.state, returned_state):
                raise SignInNotStartedHere
            if error or not code:
                raise ProviderDeclined(error or "no code", error_description)
            identity = sign_in_flow.identity(
                flow.issuer,
                code=code,
                code_verifier=flows.code_verifier(flow),
                nonce=flows.nonce(flow),
            )
            member = sign_on.member(identity)
        except (InvalidInput, Unauthenticated, Unavailable) as refused:
            # The code alone: the message may hold an e-mail address.
            log.info("OIDC sign-in to the pages refused: %s", refused.code)
            return _refused(request, site, org, refused, [cleared])
        session = Session.signed_in(member.id, site.clock.now())
        return Redirect(
            MY_EXPENSES, status_code=303, cookies=[site.cookie(request, session), cleared]
        )


def why_refused(refused: DomainError) -> str:
    """Why a sign-in failed, for the person who tried."""
    if isinstance(refused, NoUserWithEmail | AmbiguousEmail):
        return (
            f"Your identity provider signed you in, but {refused.message}. "
            "Ask an administrator to add you, or to correct your address."
        )
    if isinstance(refused, InactiveIdentity):
        return "Your account here is inactive: ask an administrator to reactivate it."
    if isinstance(refused, Unavailable):
        return "Your identity provider cannot be reached now: try again in a moment."
    if isinstance(refused, SignInNotStartedHere | ProviderDeclined | UnknownIssuer):
        text = refused.message
        return text[:1].upper() + text[1:] + "."
    # A code refused, an ID token not to be trusted: nothing the person can mend but retrying.
    return f"The sign-in could not be completed ({refused.code}): sign in again."


def _refused(
    request: Request[Any, Any, Any],
    site: Site,
    org: OrgService,
    refused: DomainError,
    cookies: list[Cookie],
) -> Response[Any]:
    page = render_sign_in(
        request,
        site,
        org,
        site.session_of(request),
        company=1,
        errors={"oidc": why_refused(refused)},
        status_code=status_of(refused),
    )
    page.cookies = [*page.cookies, *cookies]
    return page


def _same(kept: str, returned: str) -> bool:
    return hmac.compare_digest(kept.encode(), returned.encode())


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
