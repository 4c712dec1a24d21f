"""Idempotency records and bearer tokens on SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from adapters.sql.link import Link, Query
from adapters.sql.org import MEMBER_COLUMNS, MEMBERS, member_from
from adapters.sql.replays import dump_decision, load_decision
from adapters.sql.tables import api_tokens, idempotency_keys, users
from expense_core.errors import IdempotencyKeyRace
from expense_core.model import ExpenseId, Member, UserId
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
# The token row carries its holder's company (the tenant), read from the user in the same go.
_ADD_TOKEN = api_tokens.insert().from_select(
    ["token_id", "user_id", "company_id", "secret_hash", "created_at"],
    select(
        bindparam("token_id"),
        users.c.id,
        users.c.company_id,
        bindparam("secret_hash"),
        bindparam("created_at", type_=api_tokens.c.created_at.type),
    ).where(users.c.id == bindparam("user_id")),
)
_HOLDER = (
    select(api_tokens.c.secret_hash, *MEMBER_COLUMNS)
    .select_from(
        api_tokens.join(
            MEMBERS,
            (users.c.id == api_tokens.c.user_id) & (users.c.company_id == api_tokens.c.company_id),
        )
    )
    .where(api_tokens.c.token_id == bindparam("token_id"))
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

    def add(self, token_id: str, user_id: UserId, secret_hash: str, at: datetime) -> None:
        values = {
            "token_id": token_id,
            "user_id": user_id,
            "secret_hash": secret_hash,
            "created_at": at,
        }
        self._link.write(_ADD_TOKEN, values)

    def holder(self, token_id: str) -> tuple[str, Member] | None:
        row = self._link.read(_HOLDER, {"token_id": token_id}).first()
        return None if row is None else (row.secret_hash, member_from(row))
