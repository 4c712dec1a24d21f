"""Webhook subscriptions and the outbox's deliveries on SQL, shared by several workers.

Workers never wait on each other: on PostgreSQL each takes its notices and deliveries with
`FOR UPDATE SKIP LOCKED` (what another worker holds, it skips), and a claim is one statement
that picks, counts and leases its deliveries and reads what they need. On SQLite the write
transaction (`BEGIN IMMEDIATE`) already lets one worker in at a time.

A delivery is claimable when it is due, nobody's lease holds it, no earlier delivery of its
target (`webhook:<id>` or `email:<user id>`) about the same expense is unsettled, and no
earlier notice of the expense still waits to be fanned out: a dispatch that commits before an
earlier one (two workers) must not let a later notice overtake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs
import msgspec
from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    Text,
    and_,
    any_,
    bindparam,
    column,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import ColumnElement, Executable, FromClause, Select

from adapters.sql.expenses import EVENT_FIELDS, rows_of
from adapters.sql.link import Link, Query
from adapters.sql.sqltypes import UtcDateTime, naive_utc
from adapters.sql.tables import deliveries, outbox, webhooks
from expense_core.errors import UnknownDelivery, UnknownWebhook
from expense_core.model import CompanyId, EventKind, ExpenseEvent, ExpenseId, UserId
from expense_core.notifications import OutboxEntry, Topic
from expense_core.webhooks import (
    Backlog,
    Channel,
    Claim,
    Delivery,
    DeliveryId,
    DeliveryStatus,
    Outcome,
    Verdict,
    Webhook,
    WebhookId,
)

NO_CURSOR: Final = 2**63 - 1  # above every delivery id: "before nothing" keeps one statement
_TOPIC_SEPARATOR: Final = ","
_ENTRY_FIELDS = ("id", "company_id", "expense_id", "topic", "recipient_id", *EVENT_FIELDS)
_WEBHOOK_FIELDS = ("id", "company_id", "url", "topics", "secret", "active", "created_at")
# The rows of a dispatch or a settle as one JSON parameter, their timestamps naive UTC as the
# TIMESTAMP columns hold them: msgspec writes a naive datetime in ISO 8601, as PostgreSQL reads
# it, several times faster than `json` with `isoformat` did per row.
_ROWS_JSON = msgspec.json.Encoder()


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else naive_utc(value)


def _unsettled(table: FromClause) -> ColumnElement[bool]:
    """Pending or retrying, written out literally so that the partial indexes apply."""
    return table.c.status.in_([literal_column("'pending'"), literal_column("'retrying'")])


# --- rows to core values ---------------------------------------------------------------------


def _user_id(value: int | None) -> UserId | None:
    return None if value is None else UserId(value)


def webhook_from(m: Mapping[Any, Any], prefix: str = "") -> Webhook:
    return Webhook(
        id=WebhookId(m[prefix + "id"]),
        company_id=CompanyId(m[prefix + "company_id"]),
        url=m[prefix + "url"],
        topics=tuple(m[prefix + "topics"].split(_TOPIC_SEPARATOR)),
        secret=m[prefix + "secret"],
        created_at=m[prefix + "created_at"],
        active=bool(m[prefix + "active"]),
    )


def entry_from(m: Mapping[Any, Any], prefix: str = "") -> OutboxEntry:
    company_id = CompanyId(m[prefix + "company_id"])
    expense_id = ExpenseId(m[prefix + "expense_id"])
    return OutboxEntry(
        id=m[prefix + "id"],
        company_id=company_id,
        expense_id=expense_id,
        topic=Topic(m[prefix + "topic"]),
        event=ExpenseEvent(
            expense_id=expense_id,
            company_id=company_id,
            kind=EventKind(m[prefix + "kind"]),
            at=m[prefix + "at"],
            actor_id=_user_id(m[prefix + "actor_id"]),
            step_number=m[prefix + "step_number"],
            comment=m[prefix + "comment"],
            approver_id=_user_id(m[prefix + "approver_id"]),
            previous_approver_id=_user_id(m[prefix + "previous_approver_id"]),
            on_behalf_of=_user_id(m[prefix + "on_behalf_of"]),
        ),
        recipient_id=_user_id(m[prefix + "recipient_id"]),
    )


def delivery_from(m: Mapping[Any, Any]) -> Delivery:
    webhook_id = m["webhook_id"]
    return Delivery(
        id=DeliveryId(m["id"]),
        company_id=CompanyId(m["company_id"]),
        outbox_id=m["outbox_id"],
        expense_id=ExpenseId(m["expense_id"]),
        topic=Topic(m["topic"]),
        channel=Channel(m["channel"]),
        webhook_id=None if webhook_id is None else WebhookId(webhook_id),
        recipient_id=_user_id(m["recipient_id"]),
        on_behalf_of=_user_id(m["on_behalf_of"]),
        status=DeliveryStatus(m["status"]),
        attempts=m["attempts"],
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        last_status_code=m["last_status_code"],
        last_error=m["last_error"],
        delivered_at=m["delivered_at"],
    )


# --- subscriptions ---------------------------------------------------------------------------

_THIS_WEBHOOK = webhooks.c.id == bindparam("webhook_id")
_OF_THE_COMPANY = webhooks.c.company_id == bindparam("company_id")
_ADD_WEBHOOK = insert(webhooks).returning(webhooks.c.id)
_OF_COMPANY = select(webhooks).where(_OF_THE_COMPANY).order_by(webhooks.c.id)
# Indexed by whether the company is known: None looks in every company (demo mode).
_GET = (
    select(webhooks).where(_THIS_WEBHOOK, _OF_THE_COMPANY),
    select(webhooks).where(_THIS_WEBHOOK),
)
_OF_THIS_WEBHOOK = deliveries.c.webhook_id == bindparam("webhook_id")
_REMOVE_DELIVERIES = (
    delete(deliveries).where(_OF_THIS_WEBHOOK, deliveries.c.company_id == bindparam("company_id")),
    delete(deliveries).where(_OF_THIS_WEBHOOK),
)
_REMOVE: tuple[Executable, Executable] = (
    delete(webhooks).where(_THIS_WEBHOOK, _OF_THE_COMPANY).returning(literal_column("1")),
    delete(webhooks).where(_THIS_WEBHOOK).returning(literal_column("1")),
)
_DISABLE = update(webhooks).where(_THIS_WEBHOOK).values(active=False)
_ACTIVE = (
    select(webhooks)
    .where(
        webhooks.c.company_id.in_(bindparam("company_ids", expanding=True)),
        webhooks.c.active == true(),
    )
    .order_by(webhooks.c.id)
)
_OF_ITS_COMPANY = deliveries.c.company_id == bindparam("company_id")
_DELIVERIES = (
    select(deliveries)
    .where(
        deliveries.c.webhook_id == bindparam("webhook_id"),
        _OF_ITS_COMPANY,
        deliveries.c.id < bindparam("before"),
    )
    .order_by(deliveries.c.id.desc())
    .limit(bindparam("limit"))
)
_DELIVERY = select(deliveries).where(
    deliveries.c.id == bindparam("delivery_id"),
    deliveries.c.webhook_id == bindparam("webhook_id"),
    _OF_ITS_COMPANY,
)
_REQUEUE = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        deliveries.c.company_id == bindparam("b_company"),
    )
    .values(
        status=str(DeliveryStatus.PENDING),
        attempts=0,
        next_attempt_at=bindparam("at"),
        leased_until=None,
    )
    .returning(*deliveries.c)
)


class SqlWebhooks:
    """`WebhookRepository` over the `webhooks` and `deliveries` tables."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def add(self, webhook: Webhook) -> Webhook:
        values = {
            "company_id": webhook.company_id,
            "url": webhook.url,
            "topics": _TOPIC_SEPARATOR.join(webhook.topics),
            "secret": webhook.secret,
            "active": webhook.active,
            "created_at": webhook.created_at,
        }
        new_id = self._link.write(_ADD_WEBHOOK, values).scalar_one()
        return attrs.evolve(webhook, id=WebhookId(new_id))

    def of_company(self, company_id: CompanyId) -> tuple[Webhook, ...]:
        rows = self._link.read(_OF_COMPANY, {"company_id": company_id})
        return tuple(webhook_from(row._mapping) for row in rows)

    def get(self, company_id: CompanyId | None, webhook_id: WebhookId) -> Webhook:
        params = {"webhook_id": webhook_id, "company_id": company_id}
        row = self._link.read(_GET[company_id is None], params).first()
        if row is None:
            raise UnknownWebhook(webhook_id)
        return webhook_from(row._mapping)

    def remove(self, company_id: CompanyId | None, webhook_id: WebhookId) -> bool:
        params = {"webhook_id": webhook_id, "company_id": company_id}
        # The foreign key cascades, but SQLite enforces it only under its foreign_keys pragma
        # (which `SqlDatabase` sets, another opener may not): the deliveries go explicitly,
        # first, only the company's (a subscription's deliveries are of its company).
        self._link.write(_REMOVE_DELIVERIES[company_id is None], params)
        return self._link.write(_REMOVE[company_id is None], params).first() is not None

    def disable(self, webhook_id: WebhookId) -> None:
        self._link.write(_DISABLE, {"webhook_id": webhook_id})

    def active(self, company_ids: Sequence[CompanyId]) -> tuple[Webhook, ...]:
        if not company_ids:
            return ()
        rows = self._link.read(_ACTIVE, {"company_ids": list(company_ids)})
        return tuple(webhook_from(row._mapping) for row in rows)

    def deliveries(
        self,
        company_id: CompanyId | None,
        webhook_id: WebhookId,
        *,
        before: DeliveryId | None,
        limit: int,
    ) -> tuple[Delivery, ...]:
        webhook = self.get(company_id, webhook_id)
        params = {
            "webhook_id": webhook.id,
            "company_id": webhook.company_id,
            "before": NO_CURSOR if before is None else before,
            "limit": limit,
        }
        return tuple(delivery_from(row._mapping) for row in self._link.read(_DELIVERIES, params))

    def delivery(
        self, company_id: CompanyId | None, webhook_id: WebhookId, delivery_id: DeliveryId
    ) -> Delivery:
        webhook = self.get(company_id, webhook_id)
        params = {
            "delivery_id": delivery_id,
            "webhook_id": webhook.id,
            "company_id": webhook.company_id,
        }
        row = self._link.read(_DELIVERY, params).first()
        if row is None:
            raise UnknownDelivery(delivery_id)
        return delivery_from(row._mapping)

    def requeue(self, delivery: Delivery, at: datetime) -> Delivery:
        params = {"b_id": delivery.id, "b_company": delivery.company_id, "at": at}
        row = self._link.write(_REQUEUE, params).first()
        if row is None:
            raise UnknownDelivery(delivery.id)  # its subscription was removed meanwhile
        return delivery_from(row._mapping)


# --- the worker's side -----------------------------------------------------------------------

_NOT_DISPATCHED = outbox.c.dispatched_at.is_(None)
# Oldest first; on PostgreSQL what another worker holds is skipped (SQLite renders no lock).
_UNDISPATCHED = (
    select(outbox)
    .where(_NOT_DISPATCHED)
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_ADD_DELIVERIES = insert(deliveries)
# The database's clock, as the schema's other defaults: `Outbox.dispatch` is given no instant.
_MARK_DISPATCHED = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("entry_ids", expanding=True)))
    .values(dispatched_at=text("CURRENT_TIMESTAMP"))
)
_DELIVERY_COLUMNS = (
    ("company_id", Integer),
    ("outbox_id", BigInteger),
    ("expense_id", Integer),
    ("topic", String),
    ("channel", String),
    ("target", String),
    ("webhook_id", Integer),
    ("recipient_id", Integer),
    ("on_behalf_of", Integer),
    ("status", String),
    ("attempts", Integer),
    ("created_at", DateTime),
    ("next_attempt_at", DateTime),
)


def _pg_dispatch() -> Executable:
    """One statement for a whole dispatch: the entries marked fanned out (their ids as one
    array) and their deliveries inserted (as one JSON parameter). Row by row, the inserts
    were most of the PostgreSQL time a delivery cost (a statement per delivery)."""
    given = rows_of("made", "made", *(column(name, kind) for name, kind in _DELIVERY_COLUMNS))
    marked = (
        update(outbox)
        .where(outbox.c.id == any_(bindparam("entry_ids", type_=ARRAY(BigInteger))))
        .values(dispatched_at=text("CURRENT_TIMESTAMP"))
        .returning(outbox.c.id)
        .cte("marked")
    )
    names = [name for name, _ in _DELIVERY_COLUMNS]
    made = select(*(given.c[name] for name in names))
    return insert(deliveries).from_select(names, made).add_cte(marked)


_PG_DISPATCH = Query(_pg_dispatch())


def _pg_settle() -> Executable:
    """One UPDATE of every settled delivery, the results given as one JSON parameter."""
    given = rows_of(
        "results",
        "result",
        column("id", BigInteger),
        column("company_id", Integer),
        column("status", String),
        column("next_attempt_at", DateTime),
        column("last_status_code", Integer),
        column("last_error", Text),
        column("delivered_at", DateTime),
        column("attempts", Integer),
    )
    return (
        update(deliveries)
        .where(
            deliveries.c.id == given.c.id,
            deliveries.c.company_id == given.c.company_id,
            deliveries.c.attempts == given.c.attempts,
        )
        .values(
            status=given.c.status,
            next_attempt_at=given.c.next_attempt_at,
            last_status_code=given.c.last_status_code,
            last_error=given.c.last_error,
            delivered_at=given.c.delivered_at,
            leased_until=None,
        )
    )


_PG_SETTLE = Query(_pg_settle())
_SETTLE = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("b_id"),
        deliveries.c.company_id == bindparam("b_company_id"),
        deliveries.c.attempts == bindparam("b_attempts"),
    )
    .values(
        status=bindparam("b_status"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        delivered_at=bindparam("b_delivered_at"),
        leased_until=None,
    )
)


def _claim(pg: bool) -> Any:
    """UPDATE of the deliveries a claim takes: the earliest claimable ones by outbox order,
    counted and leased; on PostgreSQL those another worker is taking are skipped.

    On PostgreSQL the chosen ids come as one array (`= ANY(ARRAY(...))`): the generic plan
    guesses a tenth of the queue for a `LIMIT` parameter, and with a backlog of a few thousand
    that guess made `IN (...)` a hash join over every delivery ever made and the notices'
    join a scan of the whole outbox, growing with each delivery made (the backlog then grew
    faster still). An array is looked up by primary key whatever its length is guessed."""
    at = bindparam("at", type_=UtcDateTime())
    d = deliveries.alias("d")
    earlier = deliveries.alias("earlier")
    waits_behind_delivery = exists().where(
        earlier.c.expense_id == d.c.expense_id,
        earlier.c.target == d.c.target,
        _unsettled(earlier),
        or_(
            earlier.c.outbox_id < d.c.outbox_id,
            and_(earlier.c.outbox_id == d.c.outbox_id, earlier.c.id < d.c.id),
        ),
    )
    earlier_notice: Select[Any] = select(literal_column("1")).where(
        outbox.c.expense_id == d.c.expense_id,
        _NOT_DISPATCHED,
        outbox.c.id < d.c.outbox_id,
    )
    # OFFSET 0 keeps it a lookup per candidate in the index on the expense's waiting notices:
    # as a join, planned for the one or two notices that usually wait, it compared every
    # candidate with every waiting notice, however many a burst left waiting.
    waits_behind_notice = (earlier_notice.offset(0) if pg else earlier_notice).exists()
    chosen = (
        select(d.c.id)
        .where(
            _unsettled(d),
            d.c.next_attempt_at <= at,
            or_(d.c.leased_until.is_(None), d.c.leased_until <= at),
            ~waits_behind_delivery,
            ~waits_behind_notice,
        )
        .order_by(d.c.outbox_id, d.c.id)
        .limit(bindparam("limit"))
        .with_for_update(of=d, skip_locked=True)
    )
    taken = (
        deliveries.c.id == any_(func.array(chosen.scalar_subquery()))
        if pg
        else (deliveries.c.id.in_(chosen))
    )
    return (
        update(deliveries)
        .where(taken)
        .values(attempts=deliveries.c.attempts + 1, leased_until=bindparam("lease_until"))
    )


def _claimed(
    taken: FromClause, where: ColumnElement[bool] | None = None, *, ordered: bool = True
) -> Executable:
    """The claimed deliveries with their notices and subscriptions, in outbox order if
    `ordered`."""
    columns = [
        *taken.c,
        *(outbox.c[name].label("o_" + name) for name in _ENTRY_FIELDS),
        *(webhooks.c[name].label("w_" + name) for name in _WEBHOOK_FIELDS),
    ]
    joined = taken.join(outbox, outbox.c.id == taken.c.outbox_id).outerjoin(
        webhooks, webhooks.c.id == taken.c.webhook_id
    )
    query = select(*columns).select_from(joined)
    if ordered:
        query = query.order_by(taken.c.outbox_id, taken.c.id)
    return query if where is None else query.where(where)


# PostgreSQL: one statement, the UPDATE a data-modifying CTE read back joined.
# The worker's three statements on PostgreSQL are `Query`s: prepared once per connection and
# run without SQLAlchemy's per-execution machinery, a turn's largest cost in the worker after
# the attempts themselves.
# Put in outbox order by the adapter: planned without sorts (`_CLAIM_PLAN`), an ORDER BY here
# walked the whole outbox by its key to join the claimed in order.
_PG_CLAIM = Query(_claimed(_claim(pg=True).returning(*deliveries.c).cte("claimed"), ordered=False))
# How a claim is planned, for its transaction only: afresh at each claim, never from the
# connection's cached generic plan (`plan_cache_mode=force_generic_plan`, sql/database.py), and
# walking the queue's index in order rather than sorting every waiting delivery. Statistics
# taken while the queue was empty (a new database, a worker started beside an idle one) made
# the cached plan compare every candidate with every unsettled delivery by sequential scans,
# 6-7 s a claim with 20,000 waiting, until claims hit the statement timeout under
# `bench --notify`; planned afresh on them, a claim still sorted all 20,000 (60 ms). Walked in
# order, it stops once it has enough: `python -m loadtest.worker_cost` gives the figures.
_CLAIM_PLAN = text(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('enable_sort', 'off', true)"
)
# SQLite (no data-modifying CTEs): the UPDATE, then the claimed rows read by id.
_SQLITE_CLAIM = _claim(pg=False).returning(deliveries.c.id)
_SQLITE_CLAIMED = _claimed(deliveries, deliveries.c.id.in_(bindparam("ids", expanding=True)))

_BACKLOG = select(
    select(func.count())
    .select_from(outbox)
    .where(_NOT_DISPATCHED)
    .scalar_subquery()
    .label("undispatched"),
    select(outbox.c.at)
    .where(_NOT_DISPATCHED)
    .order_by(outbox.c.id)
    .limit(1)
    .scalar_subquery()
    .label("first_noticed_at"),
    select(func.count())
    .select_from(deliveries)
    .where(_unsettled(deliveries))
    .scalar_subquery()
    .label("undelivered"),
    select(func.min(deliveries.c.created_at))
    .where(_unsettled(deliveries))
    .scalar_subquery()
    .label("first_delivery_at"),
)


def _claims_from(rows: Sequence[Mapping[Any, Any]]) -> list[Claim]:
    """The claims of these rows, those of one subscription sharing its one `Webhook`."""
    webhooks: dict[int, Webhook] = {}
    claims = []
    for m in rows:
        webhook = None
        if (webhook_id := m["w_id"]) is not None:
            webhook = webhooks.get(webhook_id)
            if webhook is None:
                webhook = webhooks[webhook_id] = webhook_from(m, "w_")
        claims.append(Claim(delivery_from(m), entry_from(m, "o_"), webhook))
    return claims


def _delivery_row(d: Delivery) -> dict[str, Any]:
    return {
        "company_id": d.company_id,
        "outbox_id": d.outbox_id,
        "expense_id": d.expense_id,
        "topic": str(d.topic),
        "channel": str(d.channel),
        "target": d.target,
        "webhook_id": d.webhook_id,
        "recipient_id": d.recipient_id,
        "on_behalf_of": d.on_behalf_of,
        "status": str(d.status),
        "attempts": d.attempts,
        "created_at": d.created_at,
        "next_attempt_at": d.next_attempt_at,
    }


class SqlOutbox:
    """`Outbox` over the `outbox` and `deliveries` tables."""

    def __init__(self, link: Link) -> None:
        self._link = link

    def undispatched(self, limit: int) -> tuple[OutboxEntry, ...]:
        rows = self._link.write(_UNDISPATCHED, {"limit": limit})
        return tuple(entry_from(row._mapping) for row in rows)

    def dispatch(self, entries: Sequence[OutboxEntry], deliveries: Sequence[Delivery]) -> None:
        if not self._link.is_sqlite:
            if entries or deliveries:
                rows = [_delivery_row(d) for d in deliveries]
                for r in rows:
                    r["created_at"] = _naive(r["created_at"])
                    r["next_attempt_at"] = _naive(r["next_attempt_at"])
                made = _ROWS_JSON.encode(rows).decode()
                params = {"entry_ids": [e.id for e in entries], "made": made}
                self._link.write(_PG_DISPATCH, params)
            return
        if deliveries:
            self._link.write(_ADD_DELIVERIES, [_delivery_row(d) for d in deliveries])
        if entries:
            self._link.write(_MARK_DISPATCHED, {"entry_ids": [e.id for e in entries]})

    def claim(self, at: datetime, lease_until: datetime, limit: int) -> tuple[Claim, ...]:
        params = {"at": at, "lease_until": lease_until, "limit": limit}
        if not self._link.is_sqlite:
            self._link.write(_CLAIM_PLAN)
            claims = _claims_from([row._asdict() for row in self._link.write(_PG_CLAIM, params)])
            claims.sort(key=lambda c: (c.delivery.outbox_id, c.delivery.id))
            return tuple(claims)
        ids = [row.id for row in self._link.write(_SQLITE_CLAIM, params)]
        if not ids:
            return ()
        rows = self._link.write(_SQLITE_CLAIMED, {"ids": ids})
        return tuple(_claims_from([row._mapping for row in rows]))

    def settle(self, results: Sequence[tuple[Claim, Outcome, Verdict]], at: datetime) -> None:
        if not results:
            return
        delivered = DeliveryStatus.DELIVERED
        rows: list[dict[str, Any]] = [
            {
                "id": claim.delivery.id,
                "company_id": claim.delivery.company_id,
                "status": str(verdict.status),
                "next_attempt_at": verdict.next_attempt_at,
                "last_status_code": outcome.status_code,
                "last_error": outcome.error,
                "delivered_at": at if verdict.status is delivered else None,
                "attempts": claim.delivery.attempts,
            }
            for claim, outcome, verdict in results
        ]
        # A delivery deleted meanwhile (its subscription removed) matches no row: skipped; so
        # does one claimed again since (its attempts counted once more).
        if self._link.is_sqlite:
            self._link.write(_SETTLE, [{f"b_{k}": v for k, v in r.items()} for r in rows])
            return
        naive_at = naive_utc(at)
        for r in rows:
            r["next_attempt_at"] = _naive(r["next_attempt_at"])
            r["delivered_at"] = None if r["delivered_at"] is None else naive_at
        # One statement for them all, the results as one JSON parameter.
        self._link.write(_PG_SETTLE, {"results": _ROWS_JSON.encode(rows).decode()})

    def backlog(self) -> Backlog:
        row = self._link.read(_BACKLOG).one()
        waiting = [t for t in (row.first_noticed_at, row.first_delivery_at) if t is not None]
        return Backlog(row.undispatched, row.undelivered, min(waiting) if waiting else None)
