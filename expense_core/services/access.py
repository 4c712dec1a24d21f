"""Access: bearer tokens issued to users, and the user a token names."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

import attrs

from expense_core.errors import Unauthenticated
from expense_core.model import Member, UserId
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import actor

TOKEN_PREFIX = "et"  # noqa: S105 -- a public marker, not a secret


def _hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a plain digest is as good as a slow password hash.
    return hashlib.sha256(secret.encode()).hexdigest()


@attrs.frozen
class AccessService:
    """Issue bearer tokens to users and tell who holds one.

    A token reads `et_<id>_<secret>`: the id finds the row, the secret's hash is compared in
    constant time, and the secret itself is never stored.
    """

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def issue_token(self, user_id: UserId) -> str:
        """Issue a new token for an active user.

        Raises:
            UnknownUser, InactiveUser.
        """
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self.new_uow() as uow:
            member = actor(uow, user_id, None)
            uow.tokens.add(token_id, member.id, _hash_secret(secret), self.clock.now())
            uow.commit()
        return f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def authenticate(self, token: str) -> Member:
        """The active user holding a token.

        Raises:
            Unauthenticated: a malformed or unknown token, or one of an inactive user.
        """
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != TOKEN_PREFIX or len(token_id) != 16 or not secret:
            raise Unauthenticated("the bearer token is malformed")
        with self.new_uow() as uow:
            found = uow.tokens.holder(token_id)
        if found is None:
            raise Unauthenticated("the bearer token is unknown or revoked")
        secret_hash, holder = found
        if not hmac.compare_digest(secret_hash, _hash_secret(secret)):
            raise Unauthenticated("the bearer token is unknown or revoked")
        if not holder.user.active:
            raise Unauthenticated(f"user {holder.id} is inactive")
        return holder
