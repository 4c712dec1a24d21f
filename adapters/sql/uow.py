"""The SQL unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

from typing import Self

from sqlalchemy.engine import Engine

from adapters.sql.access import SqlIdempotency, SqlTokens
from adapters.sql.audit import SqlAuditLog
from adapters.sql.delegations import SqlDelegations
from adapters.sql.expenses import SqlExpenses
from adapters.sql.link import Link
from adapters.sql.notifications import SqlOutbox, SqlWebhooks
from adapters.sql.observe import SqlObserver
from adapters.sql.org import SqlOrg


class SqlUnitOfWork:
    """Everything done through it is committed together or not at all.

    It reads in autocommit until its first write, then holds one transaction (see `Link`).
    """

    def __init__(self, engine: Engine, observer: SqlObserver | None = None) -> None:
        self._link = Link(engine, observer)
        self.org = SqlOrg(self._link)
        self.expenses = SqlExpenses(self._link)
        self.idempotency = SqlIdempotency(self._link)
        self.tokens = SqlTokens(self._link)
        self.delegations = SqlDelegations(self._link)
        self.webhooks = SqlWebhooks(self._link)
        self.outbox = SqlOutbox(self._link)
        self.audit = SqlAuditLog(self._link)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.expenses.forget()
        self._link.close()

    def commit(self) -> None:
        self._link.commit()

    def commit_next_write(self) -> None:
        self._link.commit_next_write()
