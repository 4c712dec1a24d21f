"""Webhook subscriptions and the life of a delivery: pure rules, no network.

A subscription names a company's URL and the topics it wants (`*` for all); its `whsec_`
secret signs every message and is shown once. Each outbox notice becomes one delivery per
subscription that wants it (and one per person e-mailed), delivered at least once and, for
one subscription, in the order of the expense's notices. An attempt's outcome decides what
follows (`after_attempt`):

- a 2xx answer: `delivered`;
- no answer (a timeout, a refused or broken connection), 429 or 5xx: `retrying`, after
  `RETRY_DELAYS[n]` (plus or minus a fifth, at random) for the n-th failed attempt, until
  `MAX_ATTEMPTS` attempts have been made, then `failed`;
- 410 Gone: `failed`, and the subscription is disabled;
- any other answer, or a destination refused as private: `failed` at once.

A failed delivery stays visible and can be queued again by hand.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, NewType
from urllib.parse import urlsplit

import attrs

from expense_core.errors import InvalidWebhook
from expense_core.model import CompanyId, ExpenseId, UserId
from expense_core.notifications import TOPICS, OutboxEntry, Topic

WebhookId = NewType("WebhookId", int)
DeliveryId = NewType("DeliveryId", int)

EVERY_TOPIC: Final = "*"
URL_LIMIT: Final = 2000
# The wait after the 1st, 2nd, ... failed attempt: times four each time, about 23 hours in all.
RETRY_DELAYS: Final = tuple(timedelta(seconds=15 * 4**n) for n in range(7))
MAX_ATTEMPTS: Final = len(RETRY_DELAYS) + 1
# How far a wait may stray from its schedule, either way, so that failures spread out.
JITTER: Final = 0.2


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"


class Channel(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


@attrs.frozen(kw_only=True)
class Webhook:
    id: WebhookId
    company_id: CompanyId
    url: str
    topics: tuple[str, ...]
    secret: str
    created_at: datetime
    active: bool = True

    def wants(self, topic: str) -> bool:
        return self.active and (EVERY_TOPIC in self.topics or topic in self.topics)


@attrs.frozen(kw_only=True)
class Delivery:
    """One notice on its way to one subscription (or to one person's mailbox)."""

    id: DeliveryId
    company_id: CompanyId
    outbox_id: int
    expense_id: ExpenseId
    topic: Topic
    channel: Channel
    webhook_id: WebhookId | None
    recipient_id: UserId | None
    # The absent approver whose delegate this e-mail tells, if it tells a delegate.
    on_behalf_of: UserId | None
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None

    @property
    def target(self) -> str:
        """Whom it goes to: one subscription (`webhook:3`) or one person's mailbox
        (`email:12`). One target's deliveries about one expense go out in outbox order."""
        if self.channel is Channel.WEBHOOK:
            return f"webhook:{self.webhook_id}"
        return f"email:{self.recipient_id}"


@attrs.frozen
class Claim:
    """A delivery taken by one worker for one attempt (already counted in `attempts`), with
    what it needs to make it: the notice and, for a webhook, the subscription."""

    delivery: Delivery
    entry: OutboxEntry
    webhook: Webhook | None


@attrs.frozen
class Backlog:
    """How far behind delivery is: what waits (notices not yet fanned out, deliveries not yet
    settled) and since when the oldest of them has waited."""

    undispatched: int
    undelivered: int
    oldest_at: datetime | None

    def waited(self, now: datetime) -> float:
        """Seconds the oldest waiting item has waited at `now`; 0 when nothing waits."""
        if self.oldest_at is None:
            return 0.0
        return max((now - self.oldest_at).total_seconds(), 0.0)


@attrs.frozen
class Outcome:
    """What one attempt came to: the receiver's status code, or why there was none."""

    status_code: int | None
    error: str | None = None
    # The destination was refused (a private address) or the message can never be sent.
    refused: bool = False


@attrs.frozen
class Verdict:
    status: DeliveryStatus
    next_attempt_at: datetime | None
    disable_webhook: bool = False


def check_topics(topics: Iterable[str]) -> tuple[str, ...]:
    """The topics of a subscription, each once and sorted; `["*"]` for every one.

    Raises:
        InvalidWebhook: none given, or one that is not a topic.
    """
    given = sorted(set(topics))
    if not given:
        raise InvalidWebhook("events: name at least one event type, or '*' for all")
    if EVERY_TOPIC in given:
        if len(given) > 1:
            raise InvalidWebhook("events: '*' already means every event type; give it alone")
        return (EVERY_TOPIC,)
    unknown = [t for t in given if t not in TOPICS]
    if unknown:
        known = ", ".join(sorted(TOPICS))
        raise InvalidWebhook(f"events: unknown event type '{unknown[0]}' (known: {known}, or '*')")
    return tuple(given)


def check_url(url: str) -> str:
    """An http(s) URL with a host and no credentials (where it points is checked elsewhere).

    Raises:
        InvalidWebhook: anything else.
    """
    if len(url) > URL_LIMIT:
        raise InvalidWebhook(f"url: longer than {URL_LIMIT} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise InvalidWebhook(f"url: not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook("url: must start with http:// or https://")
    if not parts.hostname:
        raise InvalidWebhook("url: names no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhook("url: must not carry a user name or password")
    if port == 0:
        raise InvalidWebhook("url: port 0 is not a port")
    return url


def after_attempt(attempts: int, outcome: Outcome, at: datetime, spread: float) -> Verdict:
    """What follows the `attempts`-th attempt (counting it), made at `at`.

    `spread`, in [-1, 1], places a retry's wait within its jitter (a random draw by the caller).
    """
    code = outcome.status_code
    if code is not None and 200 <= code < 300:
        return Verdict(DeliveryStatus.DELIVERED, None)
    if code == 410:
        return Verdict(DeliveryStatus.FAILED, None, disable_webhook=True)
    transient = code is None or code == 429 or code >= 500
    if outcome.refused or not transient or attempts >= MAX_ATTEMPTS:
        return Verdict(DeliveryStatus.FAILED, None)
    wait = RETRY_DELAYS[attempts - 1] * (1 + JITTER * max(-1.0, min(1.0, spread)))
    return Verdict(DeliveryStatus.RETRYING, at + wait)


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes one: `whsec_` and 24 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def fan_out(
    entry: OutboxEntry,
    webhooks: Iterable[Webhook],
    mail_to: Iterable[tuple[UserId, UserId | None]],
    at: datetime,
) -> list[Delivery]:
    """The deliveries of one notice, due at once: one per subscription that wants its topic,
    and one per (person, absent approver they act for) of `mail_to`."""
    made = [
        _delivery(entry, at, Channel.WEBHOOK, webhook_id=w.id)
        for w in webhooks
        if w.company_id == entry.company_id and w.wants(entry.topic)
    ]
    made.extend(
        _delivery(entry, at, Channel.EMAIL, recipient_id=person, on_behalf_of=absent)
        for person, absent in mail_to
    )
    return made


def _delivery(
    entry: OutboxEntry,
    at: datetime,
    channel: Channel,
    *,
    webhook_id: WebhookId | None = None,
    recipient_id: UserId | None = None,
    on_behalf_of: UserId | None = None,
) -> Delivery:
    """A new delivery of a notice, due at once."""
    return Delivery(
        id=DeliveryId(0),
        company_id=entry.company_id,
        outbox_id=entry.id,
        expense_id=entry.expense_id,
        topic=entry.topic,
        channel=channel,
        webhook_id=webhook_id,
        recipient_id=recipient_id,
        on_behalf_of=on_behalf_of,
        status=DeliveryStatus.PENDING,
        attempts=0,
        created_at=at,
        next_attempt_at=at,
    )


def message_id(delivery_id: DeliveryId) -> str:
    """The `webhook-id` of a delivery: one per notice and subscription, the same on every try."""
    return f"msg_{delivery_id}"
