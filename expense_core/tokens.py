"""Bearer tokens' lifecycle: how long a token lives, when it stops working, and when a use of
it is worth writing down.

A token lives from one hour to two years (90 days unless asked otherwise) and works until it
expires or is revoked, whichever comes first. Its last use is noted at most once a minute, so
that a busy client costs no write per request.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, NewType

import attrs

from expense_core.errors import InvalidText, InvalidTokenTtl, TokenExpired, TokenRevoked
from expense_core.model import CompanyId, Member, UserId

TokenId = NewType("TokenId", str)

DEFAULT_TTL: Final = timedelta(days=90)
MIN_TTL: Final = timedelta(hours=1)
MAX_TTL: Final = timedelta(days=730)
# A use is noted when the last one noted is at least this old.
NOTE_USE_EVERY: Final = timedelta(seconds=60)
NAME_LIMIT: Final = 100
TOKEN_ID_LENGTH: Final = 16


@attrs.frozen(kw_only=True)
class ApiToken:
    """A token's public record: whose it is, what it is called, its dates; never its secret."""

    id: TokenId
    user_id: UserId
    company_id: CompanyId
    created_at: datetime
    expires_at: datetime
    name: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_expired(self, at: datetime) -> bool:
        """Whether the token has run out at `at`: its last instant is just before `expires_at`."""
        return at >= self.expires_at


@attrs.frozen
class TokenHolder:
    """What authenticating a token needs: its record, its secret's hash and its holder."""

    token: ApiToken
    secret_hash: str
    member: Member


def new_token(
    token_id: TokenId, holder: Member, at: datetime, ttl: timedelta, name: str | None
) -> ApiToken:
    """The record of a token issued to `holder` at `at`, living `ttl`.

    Raises:
        InvalidTokenTtl: `ttl` is shorter than an hour or longer than two years.
        InvalidText: a name that is blank or longer than 100 characters.
    """
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise InvalidTokenTtl(ttl, MIN_TTL, MAX_TTL)
    if name is not None and not name.strip():
        raise InvalidText("name", "must not be blank")
    if name is not None and len(name) > NAME_LIMIT:
        raise InvalidText("name", f"is longer than {NAME_LIMIT} characters")
    return ApiToken(
        id=token_id,
        user_id=holder.id,
        company_id=holder.user.company_id,
        name=name,
        created_at=at,
        expires_at=at + ttl,
    )


def check_usable(token: ApiToken, at: datetime) -> None:
    """Let a token through at `at` if it is neither revoked nor expired.

    Raises:
        TokenRevoked: it was revoked (before or after it expired).
        TokenExpired: it has run out.
    """
    if token.revoked_at is not None:
        raise TokenRevoked
    if token.is_expired(at):
        raise TokenExpired


def use_worth_noting(token: ApiToken, at: datetime) -> bool:
    """Whether a use at `at` is to be written down: never noted, or last noted a minute ago."""
    return token.last_used_at is None or at - token.last_used_at >= NOTE_USE_EVERY
