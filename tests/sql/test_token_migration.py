"""Migration 0008 on tokens issued before it: each gets 90 days from its issue, to the
microsecond, and keeps working until then; downgraded and upgraded again, nothing drifts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import text

from adapters.sql import SqlDatabase
from adapters.sql.database import alembic_config
from expense_core.errors import TokenExpired
from expense_core.services import AccessService
from expense_core.tokens import TokenId
from tests.clocks import SettableClock
from tests.contract.support import tech_corp
from tests.sql.support import opened

ISSUED = (
    # An old token, issued with microseconds (as the adapter writes them).
    ("00000000000000a1", datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)),
    # One issued by the column's default, CURRENT_TIMESTAMP: whole seconds.
    ("00000000000000a2", None),
)


def _downgrade_to_0007(db: SqlDatabase) -> None:
    with db.engine.connect() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        command.downgrade(alembic_config(conn), "0007")
        conn.commit()


def test_tokens_issued_before_get_90_days_from_their_issue(database_url: str) -> None:
    with opened(database_url) as db:
        org = tech_corp(db.unit_of_work)
        _downgrade_to_0007(db)
        with db.engine.begin() as conn:
            for token_id, created_at in ISSUED:
                columns = "token_id, user_id, company_id, secret_hash"
                values = ":token_id, :user_id, :company_id, :secret_hash"
                if created_at is not None:
                    columns, values = f"{columns}, created_at", f"{values}, :created_at"
                conn.execute(
                    text(f"INSERT INTO api_tokens ({columns}) VALUES ({values})"),  # noqa: S608 -- fixed text
                    {
                        "token_id": token_id,
                        "user_id": org.person(7),
                        "company_id": org.id,
                        "secret_hash": hashlib.sha256(f"secret-{token_id}".encode()).hexdigest(),
                        # The column holds naive UTC.
                        "created_at": created_at and created_at.replace(tzinfo=None),
                    },
                )
        db.upgrade()

        with db.unit_of_work() as uow:
            old, defaulted = (uow.tokens.get(org.id, TokenId(t)) for t, _ in ISSUED)
        assert old.created_at == datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        for token in (old, defaulted):
            assert token.expires_at - token.created_at == timedelta(days=90)
            assert (token.name, token.last_used_at, token.revoked_at) == (None, None, None)

        # The token issued before still works, until 90 days after its issue.
        clock = SettableClock(old.expires_at - timedelta(seconds=1))
        access = AccessService(db.unit_of_work, clock)
        bearer = f"et_{old.id}_secret-{old.id}"
        assert access.authenticate(bearer).id == org.person(7)
        clock.advance(timedelta(seconds=1))
        with pytest.raises(TokenExpired):
            access.authenticate(bearer)
