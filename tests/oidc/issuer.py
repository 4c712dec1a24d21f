"""A real OpenID Connect issuer for the tests: keys made here, its discovery document and JWKS
served over HTTP on 127.0.0.1 (a `ThreadingHTTPServer` in a thread), and tokens it signs, well
or badly.

`publish` changes the JWKS while it runs (key rotation); `jwks_fetches` counts what was asked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey

AUDIENCE = "expense-tracker-api"
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/keys"
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


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        documents = self.server.documents
        path = self.path.split("?")[0]
        with documents.lock:
            documents.asked.append(path)
            body = documents.by_path.get(path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
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


class LocalIssuer:
    """An issuer at `url` (its `iss`) publishing the public halves of `keys`."""

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self.documents = Documents()
        self._server = _Server(self.documents)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._stopped = False
        self.keys: list[Key] = list(keys) or [rsa_key()]

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
