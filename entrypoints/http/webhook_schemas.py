"""Webhooks on the wire: the subscription body, the subscription answered (with its secret only
when it is made), deliveries, and their mapping from the core's values."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct, structs

from entrypoints.http.schemas import Id, Timestamp, maybe_timestamp, timestamp
from expense_core.views import Page
from expense_core.webhooks import URL_LIMIT, Delivery, Webhook

Url = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=URL_LIMIT,
        description="Where to POST: an http or https URL on a public address.",
    ),
]
Topic = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=40,
        description="An event type such as `expense.approved`, or `*` for every one.",
    ),
]


class WebhookBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """A subscription: the URL and the event types it wants (`["*"]` for all).
    `company_id` names the company in demo mode; with a token it is the admin's own."""

    url: Url
    events: Annotated[list[Topic], Meta(min_length=1, max_length=20)]
    company_id: Id | None = None


class WebhookOut(Struct):
    """A subscription as listed: never its secret."""

    id: int
    company_id: int
    url: str
    events: list[str]
    active: bool
    created_at: Timestamp


class NewWebhookOut(WebhookOut):
    """A subscription just made, with the secret that signs its messages: shown this once."""

    secret: str


class WebhookList(Struct):
    items: list[WebhookOut]


class DeliveryOut(Struct):
    id: int
    webhook_id: int
    event_type: str
    expense_id: int
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: Timestamp
    delivered_at: str | None


class DeliveryPage(Struct):
    items: list[DeliveryOut]
    next_cursor: int | None


def webhook_out(w: Webhook) -> WebhookOut:
    return WebhookOut(
        id=w.id,
        company_id=w.company_id,
        url=w.url,
        events=list(w.topics),
        active=w.active,
        created_at=timestamp(w.created_at),
    )


def new_webhook_out(w: Webhook) -> NewWebhookOut:
    return NewWebhookOut(**structs.asdict(webhook_out(w)), secret=w.secret)


def delivery_out(d: Delivery) -> DeliveryOut:
    assert d.webhook_id is not None  # noqa: S101 -- a webhook's deliveries name it
    return DeliveryOut(
        id=d.id,
        webhook_id=d.webhook_id,
        event_type=str(d.topic),
        expense_id=d.expense_id,
        status=str(d.status),
        attempts=d.attempts,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        next_attempt_at=maybe_timestamp(d.next_attempt_at),
        created_at=timestamp(d.created_at),
        delivered_at=maybe_timestamp(d.delivered_at),
    )


def delivery_page(page: Page[Delivery]) -> DeliveryPage:
    return DeliveryPage([delivery_out(d) for d in page.items], page.next_cursor)
