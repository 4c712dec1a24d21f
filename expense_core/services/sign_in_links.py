"""One-time sign-in links: a code that signs its user in to the pages once, within 15 minutes.

A link is kept as a token record (no table of its own): `token list` shows it, named
"sign-in link", and `token revoke` ends it. Its code reads `<id>.<secret>`; the secret's hash
is taken under a context of its own, so a link's code is never a bearer token (nor a bearer
token a link). Using it revokes it in one conditional write: a second use, even a concurrent
one, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import attrs

from expense_core.audit import token_issued
from expense_core.errors import TokenExpired, TokenRevoked, Unauthenticated
from expense_core.model import Member, UserId
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import checked_actor
from expense_core.tokens import TOKEN_ID_LENGTH, ApiToken, TokenId, check_usable

LINK_TTL: Final = timedelta(minutes=15)
LINK_NAME: Final = "sign-in link"
_HASH_CONTEXT: Final = b"expense-tracker sign-in link v1\x00"


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(_HASH_CONTEXT + secret.encode()).hexdigest()


@attrs.frozen
class IssuedLink:
    """A link just issued: its code, shown this once, and its record."""

    code: str
    record: ApiToken


@attrs.frozen
class SignInLinks:
    """Issue one-time sign-in links, tell whose a link is, and spend one to sign in."""

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def issue(self, user_id: UserId) -> IssuedLink:
        """Issue a link that signs `user_id` in once, within `LINK_TTL`.

        Raises:
            UnknownUser, InactiveUser: no such user, or an inactive one.
        """
        token_id = TokenId(secrets.token_hex(TOKEN_ID_LENGTH // 2))
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.new_uow() as uow:
            holder = checked_actor(uow.org.member(user_id), user_id, None)
            record = ApiToken(
                id=token_id,
                user_id=holder.id,
                company_id=holder.user.company_id,
                name=LINK_NAME,
                created_at=now,
                expires_at=now + LINK_TTL,
            )
            uow.tokens.add(record, _hash_secret(secret))
            # Whoever holds the link acts as its user: the audit log keeps it with the tokens.
            uow.audit.append(token_issued(record, None))
            uow.commit()
        return IssuedLink(f"{token_id}.{secret}", record)

    def holder(self, code: str) -> Member:
        """Whose a usable link is, without spending it (the page that asks to confirm).

        Raises:
            Unauthenticated: a malformed or unknown code, a link used (or revoked) already or
                run out, or one of an inactive user.
        """
        with self.new_uow() as uow:
            return self._usable(uow, code, self.clock.now())[1]

    def redeem(self, code: str) -> Member:
        """Spend a link: the user it signs in, this once.

        Raises:
            Unauthenticated: as `holder`, also when a concurrent use spent it first.
        """
        with self.new_uow() as uow:
            now = self.clock.now()
            token_id, member = self._usable(uow, code, now)
            if not uow.tokens.spend(token_id, now):
                raise Unauthenticated("the sign-in link was used already")
            uow.commit()
        return member

    @staticmethod
    def _usable(uow: UnitOfWork, code: str, at: datetime) -> tuple[TokenId, Member]:
        token_id, _, secret = code.strip().partition(".")
        if len(token_id) != TOKEN_ID_LENGTH or not secret:
            raise Unauthenticated("the sign-in link is malformed")
        found = uow.tokens.holder(TokenId(token_id))
        if found is None or not hmac.compare_digest(found.secret_hash, _hash_secret(secret)):
            raise Unauthenticated("the sign-in link is unknown")
        try:
            check_usable(found.token, at)
        except TokenRevoked:
            raise Unauthenticated("the sign-in link was used already") from None
        except TokenExpired:
            raise Unauthenticated(
                "the sign-in link has expired: links work for 15 minutes"
            ) from None
        if not found.member.user.active:
            raise Unauthenticated(f"user {found.member.id} is inactive")
        return found.token.id, found.member
