"""A real OpenID Connect issuer for the tests: keys made here, its discovery document and JWKS
served over HTTP on 127.0.0.1 (a `ThreadingHTTPServer` in a thread), and tokens it signs, well
or badly.

`publish` changes the JWKS while it runs (key rotation); `jwks_fetches` counts what was asked.
It also signs people in by the authorization-code flow with PKCE (`Desk`): its authorization
endpoint approves at once whoever the test chose, and its token endpoint checks the code, the
client, the redirect URI and the code verifier before it answers an ID token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, unquote_plus, urlencode

import attrs
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

AUDIENCE = "expense-tracker-api"
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/keys"
AUTHORIZE = "/authorize"
TOKEN = "/token"  # noqa: S105 -- a path
GRACE_EMAIL = "grace.taylor@techcorp.com"  # the seed's user 7


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


class Documents:
    """What the server answers GETs with, by path, and the paths asked for, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_path: dict[str, bytes] = {}
        self.asked: list[str] = []


@attrs.frozen
class Grant:
    """What an authorization code stands for until it is exchanged."""

    email: str
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str


@attrs.define
class Desk:
    """The issuer's sign-in: who its authorization endpoint signs in, which client it knows,
    the ID tokens' claims changed (`id_token_changes`, None drops one), and what it was asked."""

    issuer: LocalIssuer
    email: str = GRACE_EMAIL
    client_id: str = AUDIENCE
    client_secret: str | None = None  # set: client_secret_basic; unset: a public client
    id_token_changes: dict[str, Any] = attrs.Factory(dict)
    grants: dict[str, Grant] = attrs.Factory(dict)
    authorizations: list[dict[str, str]] = attrs.Factory(list)
    exchanges: list[dict[str, str]] = attrs.Factory(list)

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Approve at once: back to the redirect URI with a code, or with an error."""
        self.authorizations.append(query)
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri.startswith("http"):
            # RFC 6749 §4.1.2.1: never redirect to a URI not vouched for by a known client.
            return 400, {}, b"unknown client or redirect URI"
        back: dict[str, str] = {"state": query.get("state", ""), "iss": self.issuer.url}
        challenge = query.get("code_challenge", "")
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            back |= {"error": "invalid_request", "error_description": "not an OpenID sign-in"}
        elif not challenge or query.get("code_challenge_method") != "S256":
            back |= {"error": "invalid_request", "error_description": "PKCE S256 is required"}
        else:
            code = secrets.token_urlsafe(16)
            grant = Grant(self.email, self.client_id, redirect_uri, query.get("nonce"), challenge)
            with self.issuer.documents.lock:
                self.grants[code] = grant
            back["code"] = code
        return 302, {"Location": f"{redirect_uri}?{urlencode(back)}"}, b""

    def exchange(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        """The token endpoint: an ID token for a good code, else an RFC 6749 §5.2 error."""
        self.exchanges.append(form)
        client = self._client(form, authorization)
        if client is None:
            return 401, {"error": "invalid_client"}
        with self.issuer.documents.lock:
            grant = self.grants.pop(form.get("code", ""), None)  # a code works once
        verifier = form.get("code_verifier", "")
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.client_id != client
            or grant.redirect_uri != form.get("redirect_uri")
            or not verifier
            or b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge
        ):
            return 400, {"error": "invalid_grant"}
        changes = {"aud": client, "nonce": grant.nonce, "email": grant.email}
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.issuer.token(**(changes | self.id_token_changes)),
        }

    def _client(self, form: dict[str, str], authorization: str) -> str | None:
        scheme, _, credentials = authorization.partition(" ")
        if self.client_secret is None:
            return form.get("client_id") if not authorization else None
        if scheme.lower() != "basic":
            return None
        client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
        if (unquote_plus(client_id), unquote_plus(secret)) != (self.client_id, self.client_secret):
            return None
        return self.client_id


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        documents = self.server.documents
        path, _, query = self.path.partition("?")
        with documents.lock:
            documents.asked.append(path)
            body = documents.by_path.get(path)
        desk = self.server.desk
        if path == AUTHORIZE and desk is not None:
            status, headers, page = desk.authorize(dict(parse_qsl(query)))
            self._answer(status, page, "text/plain", headers)
            return
        if body is None:
            self.send_error(404)
            return
        self._answer(200, body, "application/json")

    def do_POST(self) -> None:
        path = self.path.partition("?")[0]
        with self.server.documents.lock:
            self.server.documents.asked.append(path)
        desk = self.server.desk
        if path != TOKEN or desk is None:
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(parse_qsl(self.rfile.read(length).decode()))
        status, answer = desk.exchange(form, self.headers.get("Authorization", ""))
        self._answer(status, json.dumps(answer).encode(), "application/json")

    def _answer(
        self, status: int, body: bytes, kind: str, headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `asked`."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, documents: Documents) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.documents = documents
        self.desk: Desk | None = None


class LocalIssuer:
    """An issuer at `url` (its `iss`) publishing the public halves of `keys`."""

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self.documents = Documents()
        self._server = _Server(self.documents)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._stopped = False
        self.keys: list[Key] = list(keys) or [rsa_key()]
        self.desk = Desk(self)
        self._server.desk = self.desk

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        self.publish(*self.keys)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: the port refuses connections from now on."""
        if not self._stopped:
            self._stopped = True
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def publish(self, *keys: Key, issuer: str | None = None) -> None:
        """Serve these keys' public halves from now on (and a discovery document naming
        `issuer`, this issuer's own URL unless told)."""
        discovery = {
            "issuer": issuer or self.url,
            "jwks_uri": f"{self.url}{JWKS}",
            "authorization_endpoint": f"{self.url}{AUTHORIZE}",
            "token_endpoint": f"{self.url}{TOKEN}",
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
        jwks = {"keys": [k.as_dict(private=False) for k in keys]}
        with self.documents.lock:
            self.documents.by_path[DISCOVERY] = json.dumps(discovery).encode()
            self.documents.by_path[JWKS] = json.dumps(jwks).encode()

    @property
    def asked(self) -> list[str]:
        """The paths asked for so far, oldest first."""
        with self.documents.lock:
            return list(self.documents.asked)

    @property
    def jwks_fetches(self) -> int:
        return self.asked.count(JWKS)

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Grace's claims, valid for five minutes from now, with `changes` (None drops one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "grace",
            "email": GRACE_EMAIL,
            "email_verified": True,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def token(
        self,
        key: Key | None = None,
        *,
        alg: str | None = None,
        kid: str | None = None,
        **changes: Any,
    ) -> str:
        """A JWT signed by `key` (the first published one unless told), its header naming
        `kid` (the key's own unless told)."""
        key = key or self.keys[0]
        alg = alg or ("ES256" if isinstance(key, ECKey) else "RS256")
        header = {"alg": alg, "kid": kid or key.kid, "typ": "JWT"}
        return jwt.encode(header, self.claims(**changes), key, algorithms=[alg])

    def unsigned(self, **changes: Any) -> str:
        """The same claims under `alg: none`, with no signature."""
        return _compact({"alg": "none", "typ": "JWT"}, self.claims(**changes), lambda _: b"")

    def hs256_with_public_key(self, key: RSAKey | None = None, **changes: Any) -> str:
        """HS256 with the published RSA key's PEM as the shared secret: the confusion attack
        that needs nothing but the JWKS."""
        public = key or self.keys[0]
        assert isinstance(public, RSAKey)
        secret = public.as_pem(private=False)
        header = {"alg": "HS256", "kid": public.kid, "typ": "JWT"}
        return _compact(
            header,
            self.claims(**changes),
            lambda signing_input: hmac.new(secret, signing_input, hashlib.sha256).digest(),
        )


def _compact(header: Mapping[str, Any], claims: Mapping[str, Any], sign: Any) -> str:
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    ).encode()
    return f"{signing_input.decode()}.{b64url(sign(signing_input))}"
