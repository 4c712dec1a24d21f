"""Notifications: a company's webhook subscriptions, and the worker's use cases that fan the
outbox out into deliveries, take them, and settle what each attempt came to.

Sending itself (HTTP, SMTP) is not the core's: the worker makes each attempt with the claim
these use cases give it and reports the `Outcome`. Subscribing, ending a subscription and
retrying a delivery append to the audit log, naming the `actor_id` given (None in demo mode).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol

import attrs

from expense_core.audit import TargetType, delivery_record, entry, webhook_record
from expense_core.errors import DeliveryNotFailed, RefusedDestination
from expense_core.model import CompanyId, UserId
from expense_core.notifications import Topic
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import check_page, page_of
from expense_core.views import Page
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
    after_attempt,
    check_topics,
    check_url,
    fan_out,
    new_secret,
)

# How long a claim holds a delivery: longer than an attempt may take (a 10 s timeout), so that
# only a worker that died lets go of one early.
LEASE = timedelta(seconds=60)


class Destinations(Protocol):
    """Where webhooks may point: the network's view of a URL (DNS), outside the core."""

    def refusal(self, url: str) -> str | None:
        """Why the URL may not be called (it resolves to a private address...), or None."""
        ...


@attrs.frozen
class WebhookService:
    """Subscribe a company's URLs to notices, list them and their deliveries, retry one."""

    new_uow: Callable[[], UnitOfWork]
    clock: Clock
    destinations: Destinations

    def subscribe(
        self,
        company_id: CompanyId,
        url: str,
        events: Sequence[str],
        *,
        actor_id: UserId | None = None,
    ) -> Webhook:
        """A new subscription, with the secret that signs its messages (shown this once).

        Raises:
            InvalidWebhook: a malformed URL or an unknown event type.
            RefusedDestination: the URL points inside the network.
            UnknownCompany.
        """
        topics = check_topics(events)
        check_url(url)
        why = self.destinations.refusal(url)
        if why is not None:
            raise RefusedDestination(why)
        with self.new_uow() as uow:
            uow.org.company(company_id)
            stored = uow.webhooks.add(
                Webhook(
                    id=WebhookId(0),
                    company_id=company_id,
                    url=url,
                    topics=topics,
                    secret=new_secret(),
                    created_at=self.clock.now(),
                )
            )
            uow.audit.append(
                entry(
                    company_id=company_id,
                    actor_id=actor_id,
                    at=stored.created_at,
                    action="webhook.created",
                    target_type=TargetType.WEBHOOK,
                    target_id=stored.id,
                    after=webhook_record(stored),
                )
            )
            uow.commit()
        return stored

    def webhooks(self, company_id: CompanyId) -> tuple[Webhook, ...]:
        with self.new_uow() as uow:
            uow.org.company(company_id)
            return uow.webhooks.of_company(company_id)

    def webhook(self, company_id: CompanyId | None, webhook_id: WebhookId) -> Webhook:
        """Raises: UnknownWebhook."""
        with self.new_uow() as uow:
            return uow.webhooks.get(company_id, webhook_id)

    def remove(
        self,
        company_id: CompanyId | None,
        webhook_id: WebhookId,
        *,
        actor_id: UserId | None = None,
    ) -> None:
        """End a subscription; its deliveries go with it.

        Raises:
            UnknownWebhook.
        """
        with self.new_uow() as uow:
            webhook = uow.webhooks.get(company_id, webhook_id)
            uow.webhooks.remove(company_id, webhook_id)
            uow.audit.append(
                entry(
                    company_id=webhook.company_id,
                    actor_id=actor_id,
                    at=self.clock.now(),
                    action="webhook.deleted",
                    target_type=TargetType.WEBHOOK,
                    target_id=webhook.id,
                    before=webhook_record(webhook),
                )
            )
            uow.commit()

    def deliveries(
        self,
        company_id: CompanyId | None,
        webhook_id: WebhookId,
        *,
        before: DeliveryId | None = None,
        limit: int = 50,
    ) -> Page[Delivery]:
        """Newest first, a page at a time.

        Raises:
            UnknownWebhook, InvalidInput (the page).
        """
        check_page(before, limit)
        with self.new_uow() as uow:
            found = uow.webhooks.deliveries(company_id, webhook_id, before=before, limit=limit + 1)
        return page_of(found, limit, lambda d: d.id)

    def retry(
        self,
        company_id: CompanyId | None,
        webhook_id: WebhookId,
        delivery_id: DeliveryId,
        *,
        actor_id: UserId | None = None,
    ) -> Delivery:
        """Queue a failed delivery again, due now, with its attempts counted afresh.

        Raises:
            UnknownWebhook, UnknownDelivery, DeliveryNotFailed.
        """
        with self.new_uow() as uow:
            delivery = uow.webhooks.delivery(company_id, webhook_id, delivery_id)
            if delivery.status is not DeliveryStatus.FAILED:
                raise DeliveryNotFailed(delivery_id, delivery.status)
            at = self.clock.now()
            again = uow.webhooks.requeue(delivery, at)
            uow.audit.append(
                entry(
                    company_id=delivery.company_id,
                    actor_id=actor_id,
                    at=at,
                    action="delivery.retried",
                    target_type=TargetType.DELIVERY,
                    target_id=delivery.id,
                    before=delivery_record(delivery),
                    after=delivery_record(again),
                )
            )
            uow.commit()
        return again


@attrs.frozen
class Relay:
    """The worker's use cases, each its own unit of work.

    `mail` says whether e-mail is configured: only then does `approval.requested` become
    e-mail deliveries (to the approver, and to their delegate while a delegation is in force).
    """

    new_uow: Callable[[], UnitOfWork]
    clock: Clock
    mail: bool = False
    # A draw in [-1, 1] that places each retry within its jitter.
    spread: Callable[[], float] = attrs.field(default=lambda: random.uniform(-1.0, 1.0))  # noqa: S311 -- jitter, not a secret

    def dispatch(self, limit: int = 200) -> int:
        """Fan out at most `limit` of the oldest notices into deliveries; how many were."""
        with self.new_uow() as uow:
            entries = uow.outbox.undispatched(limit)
            if not entries:
                return 0
            at = self.clock.now()
            webhooks = uow.webhooks.active(sorted({e.company_id for e in entries}))
            made: list[Delivery] = []
            for entry in entries:
                mail_to: list[tuple[UserId, UserId | None]] = []
                if self.mail and entry.topic is Topic.APPROVAL_REQUESTED:
                    assert entry.recipient_id is not None  # noqa: S101 -- a request names one
                    mail_to.append((entry.recipient_id, None))
                    away = uow.delegations.get(entry.company_id, entry.recipient_id)
                    if away is not None and away.is_active(at):
                        mail_to.append((away.delegate_id, entry.recipient_id))
                made.extend(fan_out(entry, webhooks, mail_to, at))
            uow.outbox.dispatch(entries, made)
            uow.commit()
        return len(entries)

    def claim(self, limit: int = 50, lease: timedelta = LEASE) -> tuple[Claim, ...]:
        """Take at most `limit` due deliveries for one attempt each (see `Outbox.claim`),
        held for `lease`: longer than the worker may take to attempt them all."""
        with self.new_uow() as uow:
            at = self.clock.now()
            claims = uow.outbox.claim(at, at + lease, limit)
            uow.commit()
        return claims

    def settle(self, results: Sequence[tuple[Claim, Outcome]]) -> tuple[Verdict, ...]:
        """Record what each attempt came to; a 410 disables its subscription."""
        if not results:
            return ()
        at = self.clock.now()
        judged = [
            (claim, outcome, after_attempt(claim.delivery.attempts, outcome, at, self.spread()))
            for claim, outcome in results
        ]
        with self.new_uow() as uow:
            uow.outbox.settle(judged, at)
            for claim, _, verdict in judged:
                if verdict.disable_webhook and claim.webhook is not None:
                    uow.webhooks.disable(claim.webhook.id)
            uow.commit()
        return tuple(verdict for _, _, verdict in judged)

    def backlog(self) -> Backlog:
        with self.new_uow() as uow:
            return uow.outbox.backlog()
