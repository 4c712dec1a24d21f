"""Bearer tokens on the wire: the body that asks for one, the token answered (with its secret
only when it is issued), the list, and their mapping from the core's values."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from msgspec import Meta, Struct

from entrypoints.http.schemas import NO_NUL, Id, Timestamp, maybe_timestamp, timestamp
from expense_core.services import IssuedToken
from expense_core.tokens import DEFAULT_TTL, MAX_TTL, NAME_LIMIT, ApiToken

TtlDays = Annotated[
    int,
    Meta(
        ge=1,
        le=MAX_TTL.days,
        description=f"How many days the token lives: 1 to {MAX_TTL.days} ({DEFAULT_TTL.days} "
        "when omitted).",
    ),
]
TokenName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=NAME_LIMIT,
        pattern=NO_NUL,
        description="A label that tells the user's tokens apart, e.g. 'laptop' or 'CI'.",
    ),
]


class TokenBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """A token for `user_id`: with a token, the caller when omitted (an admin names anyone of
    the company); in demo mode it is required."""

    user_id: Id | None = None
    ttl_days: TtlDays | None = None
    name: TokenName | None = None

    def ttl(self) -> timedelta:
        return DEFAULT_TTL if self.ttl_days is None else timedelta(days=self.ttl_days)


class TokenOut(Struct):
    """A token as listed: never its secret."""

    id: str
    user_id: int
    name: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: str | None
    revoked_at: str | None


class NewTokenOut(Struct):
    """A token just issued, with the bearer token itself: shown this once, only its hash is
    stored. Send it as `Authorization: Bearer <token>`."""

    id: str
    user_id: int
    name: str | None
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: str | None
    token: str


class TokenList(Struct):
    """Newest first, revoked and expired tokens too."""

    items: list[TokenOut]


def token_out(t: ApiToken) -> TokenOut:
    return TokenOut(
        id=t.id,
        user_id=t.user_id,
        name=t.name,
        created_at=timestamp(t.created_at),
        expires_at=timestamp(t.expires_at),
        last_used_at=maybe_timestamp(t.last_used_at),
        revoked_at=maybe_timestamp(t.revoked_at),
    )


def new_token_out(issued: IssuedToken) -> NewTokenOut:
    t = issued.record
    return NewTokenOut(
        id=t.id,
        user_id=t.user_id,
        name=t.name,
        created_at=timestamp(t.created_at),
        expires_at=timestamp(t.expires_at),
        last_used_at=maybe_timestamp(t.last_used_at),
        token=issued.token,
    )
