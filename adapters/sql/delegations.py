"""Delegations on SQL: one row per absent user, replaced in one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.sql import Executable

from adapters.sql.link import Link
from adapters.sql.tables import delegations
from expense_core.delegation import Delegation
from expense_core.model import CompanyId, UserId

_THIS_USER = (
    delegations.c.company_id == bindparam("company_id"),
    delegations.c.user_id == bindparam("user_id"),
)
_GET = select(delegations).where(*_THIS_USER)
_REMOVE: Executable = delete(delegations).where(*_THIS_USER).returning(literal_column("1"))
_CHANGED = ("delegate_id", "starts_at", "ends_at", "note")


def _put(dialect: Any) -> Executable:
    insert = dialect.insert(delegations)
    upsert: Executable = insert.on_conflict_do_update(
        index_elements=[delegations.c.company_id, delegations.c.user_id],
        set_={name: insert.excluded[name] for name in _CHANGED},
    )
    return upsert


_PUT: tuple[Executable, Executable] = (_put(postgresql), _put(sqlite))


def delegation_from(row: Row[Any]) -> Delegation:
    return Delegation(
        company_id=CompanyId(row.company_id),
        user_id=UserId(row.user_id),
        delegate_id=UserId(row.delegate_id),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        note=row.note,
    )


class SqlDelegations:
    """`DelegationRepository` over the `delegations` table."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def get(self, company_id: CompanyId, user_id: UserId) -> Delegation | None:
        row = self._link.read(_GET, {"company_id": company_id, "user_id": user_id}).first()
        return None if row is None else delegation_from(row)

    def put(self, delegation: Delegation) -> None:
        statement = _PUT[1] if self._link.is_sqlite else _PUT[0]
        values = {
            "company_id": delegation.company_id,
            "user_id": delegation.user_id,
            "delegate_id": delegation.delegate_id,
            "starts_at": delegation.starts_at,
            "ends_at": delegation.ends_at,
            "note": delegation.note,
        }
        self._link.write(statement, values)

    def remove(self, company_id: CompanyId, user_id: UserId) -> bool:
        params = {"company_id": company_id, "user_id": user_id}
        return self._link.write(_REMOVE, params).first() is not None
