"""Who is signed in to the pages: a session sealed in a signed cookie, and the CSRF token that
every form carries, bound to that session.

A session is nothing but a random nonce, the user signed in (if anyone), when that sign-in
ends and, for a sign-in with an API token, the token's id (never its secret), signed with
HMAC-SHA256 under the site's secret: the server keeps no session state, so any worker process
holding the same secret reads it. The pages check that token on every request: revoking it
ends the session too. The CSRF token is an HMAC of the nonce: a form from another site cannot
know it, and signing in or out draws a new nonce, so the forms of one session are worthless in
the next.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Final

import attrs
from litestar.datastructures import Cookie

from expense_core.model import UserId
from expense_core.tokens import TokenId

SESSION_COOKIE: Final = "et_session"
CSRF_FIELD: Final = "csrf_token"
COOKIE_PATH: Final = "/app"
SIGNED_IN_FOR: Final = timedelta(hours=8)
SECRET_VARIABLE: Final = "SESSION_SECRET"  # noqa: S105 -- the variable's name, not a secret
_NONCE_BYTES: Final = 16
_KEY_CONTEXT: Final = b"expense-tracker pages session v1\x00"


@attrs.frozen
class Session:
    """A browser's session: anonymous until someone signs in, then theirs until `expires`."""

    nonce: str
    user_id: UserId | None = None
    expires: int | None = None  # seconds since the epoch; None while nobody is signed in
    token_id: TokenId | None = None  # the API token signed in with, if it was one

    @classmethod
    def anonymous(cls) -> Session:
        return cls(secrets.token_urlsafe(_NONCE_BYTES))

    @classmethod
    def signed_in(cls, user_id: UserId, now: datetime, token_id: TokenId | None = None) -> Session:
        """A new session for `user_id` (a new nonce: the forms of the old one stop working),
        signed in with the API token `token_id`, if with one."""
        until = int((now + SIGNED_IN_FOR).timestamp())
        return cls(secrets.token_urlsafe(_NONCE_BYTES), user_id, until, token_id)


class Sessions:
    """Seal sessions into cookie values and open them again; a value that was not sealed with
    this secret, or whose sign-in has expired, opens as no session at all."""

    def __init__(self, secret: str | bytes) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        # Derived, so the same SESSION_SECRET used for something else signs nothing of ours.
        self._key = hashlib.sha256(_KEY_CONTEXT + raw).digest()

    def seal(self, session: Session) -> str:
        fields: dict[str, object] = {"n": session.nonce, "u": session.user_id, "e": session.expires}
        if session.token_id is not None:
            fields["t"] = session.token_id
        payload = json.dumps(fields, separators=(",", ":")).encode()
        return f"{_encode(payload)}.{_encode(self._sign(b'session', payload))}"

    def open(self, value: str | None, now: datetime) -> Session | None:
        if not value:
            return None
        body, _, signature = value.partition(".")
        try:
            payload = _decode(body)
            valid = hmac.compare_digest(_decode(signature), self._sign(b"session", payload))
            if not valid:
                return None
            fields = json.loads(payload)
        except (ValueError, binascii.Error):
            return None
        if not isinstance(fields, dict):
            return None
        nonce, user_id, expires = fields.get("n"), fields.get("u"), fields.get("e")
        if not isinstance(nonce, str) or not nonce:
            return None
        if user_id is None:
            return Session(nonce)
        if not isinstance(user_id, int) or not isinstance(expires, int):
            return None
        if expires <= now.timestamp():
            return None
        token_id = fields.get("t")
        if token_id is None:
            return Session(nonce, UserId(user_id), expires)
        if not isinstance(token_id, str):
            return None
        return Session(nonce, UserId(user_id), expires, TokenId(token_id))

    def csrf_token(self, session: Session) -> str:
        """The token the forms of this session carry."""
        return _encode(self._sign(b"csrf", session.nonce.encode()))

    def csrf_matches(self, session: Session | None, token: str | None) -> bool:
        """Whether a form's token is the one of this session (no session: never)."""
        if session is None or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())

    def cookie(self, session: Session, *, secure: bool) -> Cookie:
        """The cookie that carries a session: HttpOnly, SameSite=Lax, Secure over HTTPS; an
        anonymous one lasts as long as the browser, a signed-in one until its sign-in ends."""
        max_age = None
        if session.expires is not None:
            max_age = int(SIGNED_IN_FOR.total_seconds())
        return Cookie(
            key=SESSION_COOKIE,
            value=self.seal(session),
            path=COOKIE_PATH,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=secure,
        )

    def _sign(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + b"\x00" + data, hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
