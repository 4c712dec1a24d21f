"""Access: bearer tokens issued to users, listed, revoked, and the user a token names.

A user issues, lists and revokes their own tokens; an admin of the company anyone's in it;
another company's tokens and users are unknown. Without an actor (the command line, run by
whoever holds the database), anyone's. Issuing and revoking append to the audit log
(`token.issued`, `token.revoked`): the token's public record, never its secret or hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from expense_core.audit import TargetType, entry, token_issued, token_record
from expense_core.errors import AdminOnly, InvalidInput, Unauthenticated, UnknownToken, UnknownUser
from expense_core.model import CompanyId, Member, Role, UserId
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import actor, checked_actor
from expense_core.tokens import (
    DEFAULT_TTL,
    NOTE_USE_EVERY,
    TOKEN_ID_LENGTH,
    ApiToken,
    TokenHolder,
    TokenId,
    check_usable,
    new_token,
    use_worth_noting,
)

TOKEN_PREFIX = "et"  # noqa: S105 -- a public marker, not a secret
_HEX = frozenset(string.hexdigits.lower())


def _hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a plain digest is as good as a slow password hash.
    return hashlib.sha256(secret.encode()).hexdigest()


def _is_token_id(text: str) -> bool:
    return len(text) == TOKEN_ID_LENGTH and set(text) <= _HEX


@attrs.frozen(kw_only=True)
class IssueToken:
    """Issue a token to `user_id`, living `ttl`, with an optional `name` (a label such as
    "laptop"). `actor_id` is who asks (anyone for themselves, an admin for anyone of the
    company; nobody in particular when None); `company_id` confines the command to the
    caller's company, when known (a verified token)."""

    user_id: UserId
    ttl: timedelta = DEFAULT_TTL
    name: str | None = None
    actor_id: UserId | None = None
    company_id: CompanyId | None = None


@attrs.frozen(kw_only=True)
class ListTokens:
    """Whose tokens: `user_id`'s, or, without one, the company's (an actor who is not an admin
    gets their own). `actor_id` and `company_id` as in `IssueToken`; with neither an actor nor
    a user, `company_id` names the company listed."""

    user_id: UserId | None = None
    company_id: CompanyId | None = None
    actor_id: UserId | None = None


@attrs.frozen(kw_only=True)
class RevokeToken:
    """Revoke a token; `actor_id` and `company_id` as in `IssueToken`."""

    token_id: str
    actor_id: UserId | None = None
    company_id: CompanyId | None = None


@attrs.frozen
class IssuedToken:
    """A token just issued: the bearer token itself, shown this once, and its public record."""

    token: str
    record: ApiToken


@attrs.frozen
class AccessService:
    """Issue, list and revoke bearer tokens, and tell who holds one.

    A token reads `et_<id>_<secret>`: the id finds the row, the secret's hash is compared in
    constant time, and the secret itself is never stored. Nothing about a token is remembered
    between requests: a revoked or expired one is refused by the next request, on every process.
    """

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def issue(self, cmd: IssueToken) -> IssuedToken:
        """Issue a new token to an active user.

        Raises:
            UnknownUser, InactiveUser: the actor or the user is unknown (or of another
                company) or inactive.
            AdminOnly: the actor issues a token to someone else and is not an admin.
            InvalidTokenTtl, InvalidText: see `tokens.new_token`.
        """
        token_id = TokenId(secrets.token_hex(TOKEN_ID_LENGTH // 2))
        secret = secrets.token_urlsafe(32)
        with self.new_uow() as uow:
            holder = checked_actor(
                _concerning(uow, cmd.user_id, cmd.actor_id, cmd.company_id), cmd.user_id, None
            )
            record = new_token(token_id, holder, self.clock.now(), cmd.ttl, cmd.name)
            uow.tokens.add(record, _hash_secret(secret))
            uow.audit.append(token_issued(record, cmd.actor_id))
            uow.commit()
        return IssuedToken(f"{TOKEN_PREFIX}_{token_id}_{secret}", record)

    def issue_token(
        self, user_id: UserId, ttl: timedelta = DEFAULT_TTL, name: str | None = None
    ) -> str:
        """Issue a new token to an active user; the bearer token alone.

        Raises:
            UnknownUser, InactiveUser, InvalidTokenTtl, InvalidText: as `issue`.
        """
        return self.issue(IssueToken(user_id=user_id, ttl=ttl, name=name)).token

    def tokens(self, query: ListTokens) -> tuple[ApiToken, ...]:
        """Tokens, newest first, revoked and expired ones too; never a secret.

        Raises:
            UnknownUser, InactiveUser: the actor or the user is unknown (or of another
                company), or the actor is inactive.
            AdminOnly: the actor asks for someone else's and is not an admin.
            UnknownCompany: no actor, no user, and no such company.
            InvalidInput: no actor, no user and no company.
        """
        with self.new_uow() as uow:
            if query.user_id is not None:
                user = _concerning(uow, query.user_id, query.actor_id, query.company_id)
                return uow.tokens.of_user(user.user.company_id, user.id)
            if query.actor_id is not None:
                acting = actor(uow, query.actor_id, query.company_id)
                if acting.user.role is Role.ADMIN:
                    return uow.tokens.of_company(acting.user.company_id)
                return uow.tokens.of_user(acting.user.company_id, acting.id)
            if query.company_id is None:
                raise InvalidInput("name the user or the company whose tokens to list")
            company = uow.org.company(query.company_id)
            return uow.tokens.of_company(company.id)

    def revoke(self, cmd: RevokeToken) -> ApiToken:
        """Revoke a token: from now on it authenticates nobody. Revoking a revoked token
        changes nothing.

        Raises:
            UnknownToken: no such token (in the company).
            UnknownUser, InactiveUser: the actor is unknown (or of another company) or inactive.
            AdminOnly: the token is someone else's and the actor is not an admin.
        """
        if not _is_token_id(cmd.token_id):
            raise UnknownToken(cmd.token_id)
        with self.new_uow() as uow:
            token = uow.tokens.get(cmd.company_id, TokenId(cmd.token_id))
            if cmd.actor_id is not None:
                acting = actor(uow, cmd.actor_id, cmd.company_id)
                if acting.user.company_id != token.company_id:
                    raise UnknownToken(token.id)
                if acting.id != token.user_id and acting.user.role is not Role.ADMIN:
                    raise AdminOnly("another user's tokens")
            if token.revoked_at is not None:
                return token
            at = self.clock.now()
            uow.tokens.revoke(token.id, at)
            revoked = attrs.evolve(token, revoked_at=at)
            uow.audit.append(
                entry(
                    company_id=token.company_id,
                    actor_id=cmd.actor_id,
                    at=at,
                    action="token.revoked",
                    target_type=TargetType.TOKEN,
                    target_id=token.id,
                    before=token_record(token),
                    after=token_record(revoked),
                )
            )
            uow.commit()
        return revoked

    def authenticate(self, token: str) -> Member:
        """The active user holding a token that is neither revoked nor expired. Notes the use,
        at most once a minute per token (one conditional write).

        Raises:
            Unauthenticated: a malformed or unknown token, or one of an inactive user.
            TokenRevoked, TokenExpired: a token that was revoked, or has run out.
        """
        token_id, secret = token_parts(token)
        with self.new_uow() as uow:
            now = self.clock.now()
            found = bearer(uow.tokens.holder(token_id), secret, now)
            if use_worth_noting(found.token, now):
                uow.tokens.note_use(found.token.id, now, now - NOTE_USE_EVERY)
                uow.commit()
        return found.member

    def signed_in_with(self, token_id: TokenId) -> Member:
        """The active holder of a token that is neither revoked nor expired, known by its id
        alone: what a page session signed in with the token is checked against on every page,
        so that revoking the token ends the session too. Notes no use.

        Raises:
            Unauthenticated: an unknown token, or one of an inactive user.
            TokenRevoked, TokenExpired: a token that was revoked, or has run out.
        """
        with self.new_uow() as uow:
            found = uow.tokens.holder(token_id)
        if found is None:
            raise Unauthenticated("the token is unknown")
        check_usable(found.token, self.clock.now())
        if not found.member.user.active:
            raise Unauthenticated(f"user {found.member.id} is inactive")
        return found.member


def token_id_of(token: str) -> TokenId:
    """The id part of a token (`et_<id>_<secret>`), as `authenticate` reads it.

    Raises:
        Unauthenticated: the token is malformed.
    """
    return token_parts(token)[0]


def token_parts(token: str) -> tuple[TokenId, str]:
    """A bearer token's id and secret (`et_<id>_<secret>`).

    Raises:
        Unauthenticated: it is not shaped so.
    """
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or len(token_id) != TOKEN_ID_LENGTH or not secret:
        raise Unauthenticated("the bearer token is malformed")
    return TokenId(token_id), secret


def bearer(found: TokenHolder | None, secret: str, at: datetime) -> TokenHolder:
    """The token found by a bearer token's id, and its holder, if `secret` is its secret, it
    is neither revoked nor expired at `at` and its holder is active.

    Raises:
        Unauthenticated: no token was found, the secret is not its, or the user is inactive.
        TokenRevoked, TokenExpired.
    """
    if found is None or not hmac.compare_digest(found.secret_hash, _hash_secret(secret)):
        raise Unauthenticated("the bearer token is unknown")
    check_usable(found.token, at)
    if not found.member.user.active:
        raise Unauthenticated(f"user {found.member.id} is inactive")
    return found


def _concerning(
    uow: UnitOfWork, user_id: UserId, actor_id: UserId | None, company_id: CompanyId | None
) -> Member:
    """The user whose tokens the actor handles, if they may: their own, or as an admin anyone's
    in their company; without an actor, anyone's in `company_id` (when given).

    Raises:
        UnknownUser, InactiveUser (the actor), AdminOnly.
    """
    if actor_id is None:
        user = uow.org.member(user_id)
        if company_id is not None and user.user.company_id != company_id:
            raise UnknownUser(user_id)
        return user
    acting = actor(uow, actor_id, company_id)
    if acting.id == user_id:
        return acting
    user = uow.org.member(user_id)
    if user.user.company_id != acting.user.company_id:
        raise UnknownUser(user_id)
    if acting.user.role is not Role.ADMIN:
        raise AdminOnly("another user's tokens")
    return user
