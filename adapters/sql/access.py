"""Idempotency records and bearer tokens on SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal_column, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from adapters.sql.link import Link, Query
from adapters.sql.org import MEMBER_COLUMNS, MEMBERS, member_from
from adapters.sql.replays import dump_decision, load_decision
from adapters.sql.sqltypes import UtcDateTime
from adapters.sql.tables import api_tokens, idempotency_keys, users
from expense_core.errors import IdempotencyKeyRace, UnknownToken
from expense_core.model import CompanyId, ExpenseId, UserId
from expense_core.tokens import ApiToken, TokenHolder, TokenId
from expense_core.workflow import Decision

_RECALL = Query(
    select(idempotency_keys.c.fingerprint, idempotency_keys.c.expense_id).where(
        idempotency_keys.c.user_id == bindparam("user_id"),
        idempotency_keys.c.key == bindparam("key"),
    )
)
_RECALL_DECISION = Query(
    select(idempotency_keys.c.fingerprint, idempotency_keys.c.decision).where(
        idempotency_keys.c.user_id == bindparam("user_id"),
        idempotency_keys.c.key == bindparam("key"),
    )
)
# A twin request's uncommitted key makes this wait for the twin's outcome, then do nothing.
_REMEMBER: tuple[Executable, Executable] = (
    postgresql.insert(idempotency_keys).on_conflict_do_nothing().returning(literal_column("1")),
    sqlite.insert(idempotency_keys).on_conflict_do_nothing().returning(literal_column("1")),
)
_TOKEN_COLUMNS = (
    api_tokens.c.token_id,
    api_tokens.c.user_id,
    api_tokens.c.company_id,
    api_tokens.c.name,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.last_used_at,
    api_tokens.c.revoked_at,
)
_NEWEST_FIRST = (api_tokens.c.created_at.desc(), api_tokens.c.token_id.desc())
# Run on every authenticated request: the token, its secret's hash and its holder in one read.
# The token's user and company are its holder's (the join says so); its other columns are
# labelled apart from the user's.
_HOLDER = Query(
    select(
        api_tokens.c.token_id,
        api_tokens.c.secret_hash,
        api_tokens.c.name.label("token_name"),
        api_tokens.c.created_at.label("token_created_at"),
        api_tokens.c.expires_at,
        api_tokens.c.last_used_at,
        api_tokens.c.revoked_at,
        *MEMBER_COLUMNS,
    )
    .select_from(
        api_tokens.join(
            MEMBERS,
            (users.c.id == api_tokens.c.user_id) & (users.c.company_id == api_tokens.c.company_id),
        )
    )
    .where(api_tokens.c.token_id == bindparam("token_id"))
)
# At most once a minute per token. Two requests that both found the last use old write once:
# on PostgreSQL the second waits for the first's row lock, then finds the condition false.
_NOTE_USE = Query(
    api_tokens.update()
    .where(
        api_tokens.c.token_id == bindparam("id"),
        or_(
            api_tokens.c.last_used_at.is_(None),
            api_tokens.c.last_used_at <= bindparam("unless_since", type_=UtcDateTime),
        ),
    )
    .values(last_used_at=bindparam("used_at", type_=UtcDateTime))
)


def holder_read(token_id: TokenId) -> tuple[Query, dict[str, Any]]:
    """The one read of `holder`, to be run by a link or awaited (`adapters.sql.awaited`)."""
    return _HOLDER, {"token_id": token_id}


def holder_from(row: Any) -> TokenHolder:
    """The token holder of a row of `holder_read`."""
    member = member_from(row)
    token = ApiToken(
        id=TokenId(row.token_id),
        user_id=member.id,
        company_id=member.user.company_id,
        name=row.token_name,
        created_at=row.token_created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
    return TokenHolder(token, row.secret_hash, member)


def note_use_write(
    token_id: TokenId, at: datetime, unless_since: datetime
) -> tuple[Query, dict[str, Any]]:
    """The one write of `note_use`, to be run by a link or awaited."""
    return _NOTE_USE, {"id": token_id, "used_at": at, "unless_since": unless_since}


_TOKEN = select(*_TOKEN_COLUMNS).where(api_tokens.c.token_id == bindparam("token_id"))
_TOKEN_OF_COMPANY = _TOKEN.where(api_tokens.c.company_id == bindparam("company_id"))
_OF_USER = (
    select(*_TOKEN_COLUMNS)
    .where(
        api_tokens.c.company_id == bindparam("company_id"),
        api_tokens.c.user_id == bindparam("user_id"),
    )
    .order_by(*_NEWEST_FIRST)
)
_OF_COMPANY = (
    select(*_TOKEN_COLUMNS)
    .where(api_tokens.c.company_id == bindparam("company_id"))
    .order_by(*_NEWEST_FIRST)
)
_REVOKE = (
    api_tokens.update()
    .where(api_tokens.c.token_id == bindparam("id"), api_tokens.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("at", type_=UtcDateTime))
)


def _token_from(row: Any) -> ApiToken:
    return ApiToken(
        id=TokenId(row.token_id),
        user_id=UserId(row.user_id),
        company_id=CompanyId(row.company_id),
        name=row.name,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlIdempotency:
    """`IdempotencyRecords` over the `idempotency_keys` table."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def recall(self, user_id: UserId, key: str) -> tuple[str, ExpenseId] | None:
        row = self._link.read(_RECALL, {"user_id": user_id, "key": key}).first()
        return None if row is None else (row.fingerprint, ExpenseId(row.expense_id))

    def remember(self, user_id: UserId, key: str, fingerprint: str, expense_id: ExpenseId) -> None:
        values = {
            "user_id": user_id,
            "key": key,
            "fingerprint": fingerprint,
            "expense_id": expense_id,
        }
        statement = _REMEMBER[1] if self._link.is_sqlite else _REMEMBER[0]
        if self._link.write(statement, values).first() is None:
            raise IdempotencyKeyRace(key)

    def recall_decision(self, user_id: UserId, key: str) -> tuple[str, Decision | None] | None:
        row = self._link.read(_RECALL_DECISION, {"user_id": user_id, "key": key}).first()
        if row is None:
            return None
        return row.fingerprint, None if row.decision is None else load_decision(row.decision)

    def remember_decision(
        self, user_id: UserId, key: str, fingerprint: str, decision: Decision
    ) -> None:
        values = {
            "user_id": user_id,
            "key": key,
            "fingerprint": fingerprint,
            "expense_id": decision.expense.id,
            "decision": dump_decision(decision),
        }
        statement = _REMEMBER[1] if self._link.is_sqlite else _REMEMBER[0]
        if self._link.write(statement, values).first() is None:
            raise IdempotencyKeyRace(key)


class SqlTokens:
    """`ApiTokens` over the `api_tokens` table."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def add(self, token: ApiToken, secret_hash: str) -> None:
        values = {
            "token_id": token.id,
            "user_id": token.user_id,
            "company_id": token.company_id,
            "secret_hash": secret_hash,
            "name": token.name,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "last_used_at": token.last_used_at,
            "revoked_at": token.revoked_at,
        }
        self._link.write(api_tokens.insert(), values)

    def holder(self, token_id: TokenId) -> TokenHolder | None:
        row = self._link.read(*holder_read(token_id)).first()
        return None if row is None else holder_from(row)

    def note_use(self, token_id: TokenId, at: datetime, unless_since: datetime) -> None:
        self._link.write(*note_use_write(token_id, at, unless_since))

    def get(self, company_id: CompanyId | None, token_id: TokenId) -> ApiToken:
        if company_id is None:
            row = self._link.read(_TOKEN, {"token_id": token_id}).first()
        else:
            params = {"token_id": token_id, "company_id": company_id}
            row = self._link.read(_TOKEN_OF_COMPANY, params).first()
        if row is None:
            raise UnknownToken(token_id)
        return _token_from(row)

    def of_user(self, company_id: CompanyId, user_id: UserId) -> tuple[ApiToken, ...]:
        rows = self._link.read(_OF_USER, {"company_id": company_id, "user_id": user_id})
        return tuple(_token_from(row) for row in rows)

    def of_company(self, company_id: CompanyId) -> tuple[ApiToken, ...]:
        rows = self._link.read(_OF_COMPANY, {"company_id": company_id})
        return tuple(_token_from(row) for row in rows)

    def revoke(self, token_id: TokenId, at: datetime) -> None:
        self._link.write(_REVOKE, {"id": token_id, "at": at})

    def spend(self, token_id: TokenId, at: datetime) -> bool:
        # The row lock orders concurrent calls: a second one finds it revoked and matches none.
        return self._link.write(_REVOKE, {"id": token_id, "at": at}).rowcount == 1
