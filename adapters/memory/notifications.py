"""Webhook subscriptions and the outbox's deliveries in memory, over the store's tables.

The unit of work holds the store's lock, so a worker's claim is never seen half-made by
another; a lease that runs out lets another worker take the delivery, as on SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from adapters.memory.undo import Undo, drop, put
from expense_core.errors import UnknownDelivery, UnknownWebhook
from expense_core.model import CompanyId
from expense_core.notifications import OutboxEntry
from expense_core.webhooks import (
    Backlog,
    Claim,
    Delivery,
    DeliveryId,
    DeliveryStatus,
    Outcome,
    Verdict,
    Webhook,
    WebhookId,
)

if TYPE_CHECKING:
    from adapters.memory.store import MemoryStore

_UNSETTLED = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


class MemoryWebhooks:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._store = store
        self._t = store.tables
        self._undo = undo

    def add(self, webhook: Webhook) -> Webhook:
        stored = attrs.evolve(webhook, id=WebhookId(self._store.next_id("webhooks")))
        put(self._undo, self._t.webhooks, stored.id, stored)
        return stored

    def of_company(self, company_id: CompanyId) -> tuple[Webhook, ...]:
        return tuple(w for w in self._t.webhooks.values() if w.company_id == company_id)

    def get(self, company_id: CompanyId | None, webhook_id: WebhookId) -> Webhook:
        found = self._t.webhooks.get(webhook_id)
        if found is None or (company_id is not None and found.company_id != company_id):
            raise UnknownWebhook(webhook_id)
        return found

    def remove(self, company_id: CompanyId | None, webhook_id: WebhookId) -> bool:
        try:
            self.get(company_id, webhook_id)
        except UnknownWebhook:
            return False
        t = self._t
        for d in [d for d in t.deliveries.values() if d.webhook_id == webhook_id]:
            drop(self._undo, t.deliveries, d.id)
        drop(self._undo, t.webhooks, webhook_id)
        return True

    def disable(self, webhook_id: WebhookId) -> None:
        found = self._t.webhooks.get(webhook_id)
        if found is not None:
            put(self._undo, self._t.webhooks, webhook_id, attrs.evolve(found, active=False))

    def active(self, company_ids: Sequence[CompanyId]) -> tuple[Webhook, ...]:
        wanted = set(company_ids)
        return tuple(w for w in self._t.webhooks.values() if w.active and w.company_id in wanted)

    def deliveries(
        self,
        company_id: CompanyId | None,
        webhook_id: WebhookId,
        *,
        before: DeliveryId | None,
        limit: int,
    ) -> tuple[Delivery, ...]:
        self.get(company_id, webhook_id)
        found = [
            d
            for d in reversed(self._t.deliveries.values())
            if d.webhook_id == webhook_id and (before is None or d.id < before)
        ]
        return tuple(found[:limit])

    def delivery(
        self, company_id: CompanyId | None, webhook_id: WebhookId, delivery_id: DeliveryId
    ) -> Delivery:
        self.get(company_id, webhook_id)
        found = self._t.deliveries.get(delivery_id)
        if found is None or found.webhook_id != webhook_id:
            raise UnknownDelivery(delivery_id)
        return found

    def requeue(self, delivery: Delivery, at: datetime) -> Delivery:
        again = attrs.evolve(
            delivery, status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=at
        )
        put(self._undo, self._t.deliveries, delivery.id, again)
        return again


class MemoryOutbox:
    def __init__(self, store: MemoryStore, undo: Undo) -> None:
        self._store = store
        self._t = store.tables
        self._undo = undo

    def _entry(self, entry_id: int) -> OutboxEntry:
        company_id, expense_id, topic, event, recipient_id = self._t.outbox[entry_id - 1]
        return OutboxEntry(
            id=entry_id,
            company_id=company_id,
            expense_id=expense_id,
            topic=topic,
            event=event,
            recipient_id=recipient_id,
        )

    def undispatched(self, limit: int) -> tuple[OutboxEntry, ...]:
        first = self._t.dispatched["count"] + 1
        last = min(len(self._t.outbox), first + limit - 1)
        return tuple(self._entry(i) for i in range(first, last + 1))

    def dispatch(self, entries: Sequence[OutboxEntry], deliveries: Sequence[Delivery]) -> None:
        t = self._t
        for d in deliveries:
            stored = attrs.evolve(d, id=DeliveryId(self._store.next_id("deliveries")))
            put(self._undo, t.deliveries, stored.id, stored)
        # Entries are fanned out oldest first, the whole store held: they are the next ones.
        if entries:
            done = max(t.dispatched["count"], max(e.id for e in entries))
            put(self._undo, t.dispatched, "count", done)

    def claim(self, at: datetime, lease_until: datetime, limit: int) -> tuple[Claim, ...]:
        t = self._t
        blocked: set[tuple[str, int]] = set()
        claims: list[Claim] = []
        # By outbox order, so that the earliest unsettled delivery of a target and expense is
        # met first; whatever it is, it blocks the later ones.
        for d in sorted(t.deliveries.values(), key=lambda d: (d.outbox_id, d.id)):
            if d.status not in _UNSETTLED:
                continue
            key = (d.target, d.expense_id)
            if key in blocked:
                continue
            blocked.add(key)
            held = t.leases.get(d.id)
            due = d.next_attempt_at is None or d.next_attempt_at <= at
            if not due or (held is not None and held > at) or len(claims) >= limit:
                continue
            taken = attrs.evolve(d, attempts=d.attempts + 1)
            put(self._undo, t.deliveries, d.id, taken)
            put(self._undo, t.leases, d.id, lease_until)
            webhook = None if d.webhook_id is None else t.webhooks.get(d.webhook_id)
            claims.append(Claim(taken, self._entry(d.outbox_id), webhook))
        return tuple(claims)

    def settle(self, results: Sequence[tuple[Claim, Outcome, Verdict]], at: datetime) -> None:
        t = self._t
        for claim, outcome, verdict in results:
            current = t.deliveries.get(claim.delivery.id)
            if current is None or current.attempts != claim.delivery.attempts:
                continue  # its subscription was removed meanwhile, or it was claimed again
            settled = attrs.evolve(
                current,
                status=verdict.status,
                next_attempt_at=verdict.next_attempt_at,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
                delivered_at=at if verdict.status is DeliveryStatus.DELIVERED else None,
            )
            put(self._undo, t.deliveries, current.id, settled)
            if current.id in t.leases:
                drop(self._undo, t.leases, current.id)

    def backlog(self) -> Backlog:
        t = self._t
        waiting = [d for d in t.deliveries.values() if d.status in _UNSETTLED]
        oldest = [d.created_at for d in waiting]
        undispatched = len(t.outbox) - t.dispatched["count"]
        if undispatched:
            oldest.append(t.outbox[t.dispatched["count"]][3].at)
        return Backlog(undispatched, len(waiting), min(oldest) if oldest else None)
