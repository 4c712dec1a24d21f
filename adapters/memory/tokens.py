"""Bearer tokens in memory, over the store's tables: each token's record beside its secret's
hash, by token id."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from adapters.memory.undo import Undo, put
from expense_core.errors import UnknownToken
from expense_core.model import CompanyId, Member, UserId
from expense_core.tokens import ApiToken, TokenHolder, TokenId

if TYPE_CHECKING:
    from adapters.memory.store import MemoryStore


def _newest_first(tokens: list[ApiToken]) -> tuple[ApiToken, ...]:
    return tuple(sorted(tokens, key=lambda t: (t.created_at, t.id), reverse=True))


class MemoryTokens:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._t = store.tables
        self._undo = undo

    def add(self, token: ApiToken, secret_hash: str) -> None:
        put(self._undo, self._t.tokens, token.id, (token, secret_hash))

    def holder(self, token_id: TokenId) -> TokenHolder | None:
        found = self._t.tokens.get(token_id)
        if found is None:
            return None
        token, secret_hash = found
        user = self._t.users[token.user_id]
        return TokenHolder(
            token, secret_hash, Member(user, self._t.levels[user.hierarchy_level_id])
        )

    def note_use(self, token_id: TokenId, at: datetime, unless_since: datetime) -> None:
        found = self._t.tokens.get(token_id)
        if found is None:
            return
        token, secret_hash = found
        if token.last_used_at is None or token.last_used_at <= unless_since:
            put(
                self._undo,
                self._t.tokens,
                token_id,
                (attrs.evolve(token, last_used_at=at), secret_hash),
            )

    def get(self, company_id: CompanyId | None, token_id: TokenId) -> ApiToken:
        found = self._t.tokens.get(token_id)
        if found is None or (company_id is not None and found[0].company_id != company_id):
            raise UnknownToken(token_id)
        return found[0]

    def of_user(self, company_id: CompanyId, user_id: UserId) -> tuple[ApiToken, ...]:
        return _newest_first(
            [
                t
                for t, _ in self._t.tokens.values()
                if t.user_id == user_id and t.company_id == company_id
            ]
        )

    def of_company(self, company_id: CompanyId) -> tuple[ApiToken, ...]:
        return _newest_first([t for t, _ in self._t.tokens.values() if t.company_id == company_id])

    def revoke(self, token_id: TokenId, at: datetime) -> None:
        found = self._t.tokens.get(token_id)
        if found is None or found[0].revoked_at is not None:
            return
        token, secret_hash = found
        put(self._undo, self._t.tokens, token_id, (attrs.evolve(token, revoked_at=at), secret_hash))

    def spend(self, token_id: TokenId, at: datetime) -> bool:
        found = self._t.tokens.get(token_id)
        if found is None or found[0].revoked_at is not None:
            return False
        self.revoke(token_id, at)
        return True
