"""Webhook subscriptions (`/api/webhooks`): a company's URLs told of its expenses' events.

In demo mode anyone may manage any company's (the body's or query's `company_id`); with
tokens only an `admin` of the company (403 otherwise), and another company's are unknown (404).
Deliveries are made by `expense-tracker worker`, not by the server (docs/notifications.md).
"""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from entrypoints.http.admin import AUTH, Cursor, IdPath, Limit
from entrypoints.http.auth import Caller, admin_company, admin_scope
from entrypoints.http.errors import documented
from entrypoints.http.schemas import MAX_ID
from entrypoints.http.webhook_schemas import (
    DeliveryOut,
    DeliveryPage,
    NewWebhookOut,
    WebhookBody,
    WebhookList,
    WebhookOut,
    delivery_out,
    delivery_page,
    new_webhook_out,
    webhook_out,
)
from expense_core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
)
from expense_core.model import CompanyId
from expense_core.services import WebhookService
from expense_core.webhooks import DeliveryId, WebhookId

CompanyQuery = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=MAX_ID,
        required=False,
        description="The company (AUTH_MODE=demo); with a token, the admin's own.",
    ),
]


def _company(caller: Caller, company_id: int | None) -> CompanyId:
    """The company a subscription request is about: the admin's, or the one it names (demo).

    Raises:
        AdminOnly, UnknownCompany (another company's), InvalidInput (demo, none named).
    """
    scope = admin_scope(caller)
    if scope is not None:
        return scope if company_id is None else admin_company(caller, company_id)
    if company_id is None:
        raise InvalidInput("name the company: give company_id (AUTH_MODE=demo)")
    return CompanyId(company_id)


class WebhookController(Controller):
    """Subscriptions and their deliveries."""

    path = "/api/webhooks"
    tags = ["webhooks"]  # noqa: RUF012 -- Litestar reads this class attribute

    @post(
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Subscribe a URL",
        description=(
            "Answers the subscription with its `whsec_` signing secret, shown this once. "
            "`events` lists event types (`expense.submitted`, `expense.approved`, "
            "`expense.rejected`, `expense.withdrawn`, `expense.returned`, "
            "`expense.resubmitted`, `approval.requested`, `approval.decided`, "
            '`approval.escalated`, `approval.reassigned`) or is `["*"]`. A URL on a '
            "loopback, private, link-local or multicast address is refused (400 "
            "`refused_destination`) unless the server runs with WEBHOOK_ALLOW_PRIVATE=1."
        ),
        responses=documented(*AUTH, InvalidInput, NotFound, body=True),
    )
    def subscribe(
        self,
        data: JSONBody[WebhookBody],
        webhooks: NamedDependency[WebhookService],
        caller: NamedDependency[Caller],
    ) -> NewWebhookOut:
        company = _company(caller, data.company_id)
        actor = None if caller.member is None else caller.member.id
        return new_webhook_out(webhooks.subscribe(company, data.url, data.events, actor_id=actor))

    @get(
        sync_to_thread=True,
        summary="A company's subscriptions",
        description="Active and disabled ones (a receiver that answered 410 Gone), by id.",
        responses=documented(*AUTH, InvalidInput, NotFound),
    )
    def webhooks(
        self,
        webhooks: NamedDependency[WebhookService],
        caller: NamedDependency[Caller],
        company_id: CompanyQuery = None,
    ) -> WebhookList:
        company = _company(caller, company_id)
        return WebhookList([webhook_out(w) for w in webhooks.webhooks(company)])

    @get(
        "/{webhook_id:int}",
        sync_to_thread=True,
        summary="A subscription",
        responses=documented(*AUTH, NotFound),
    )
    def webhook(
        self,
        webhook_id: IdPath,
        webhooks: NamedDependency[WebhookService],
        caller: NamedDependency[Caller],
    ) -> WebhookOut:
        return webhook_out(webhooks.webhook(admin_scope(caller), WebhookId(webhook_id)))

    @delete(
        "/{webhook_id:int}",
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="End a subscription",
        description="Its deliveries, made or waiting, go with it.",
        responses=documented(*AUTH, NotFound),
    )
    def remove(
        self,
        webhook_id: IdPath,
        webhooks: NamedDependency[WebhookService],
        caller: NamedDependency[Caller],
    ) -> None:
        actor = None if caller.member is None else caller.member.id
        webhooks.remove(admin_scope(caller), WebhookId(webhook_id), actor_id=actor)

    @get(
        "/{webhook_id:int}/deliveries",
        sync_to_thread=True,
        summary="A subscription's deliveries",
        description=(
            "Newest first, a page at a time. `status` is `pending`, `delivered`, `retrying` "
            "(`next_attempt_at` says when) or `failed` (retry it by hand)."
        ),
        responses=documented(*AUTH, InvalidInput, NotFound),
    )
    def deliveries(
        self,
        webhook_id: IdPath,
        webhooks: NamedDependency[WebhookService],
        caller: NamedDependency[Caller],
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> DeliveryPage:
        before = None if cursor is None else DeliveryId(cursor)
        page = webhooks.deliveries(
            admin_scope(caller), WebhookId(webhook_id), before=before, limit=limit
        )
        return delivery_page(page)

    @post(
        "/{webhook_id:int}/deliveries/{delivery_id:int}/retry",
        status_code=200,
        sync_to_thread=True,
        summary="Retry a failed delivery",
        description=(
            "Queues it again, due now, its attempts counted afresh; it keeps its "
            "`webhook-id`. Only a failed one (409 `delivery_not_failed`)."
        ),
        responses=documented(*AUTH, NotFound, Conflict),
    )
    def retry(
        self,
        webhook_id: IdPath,
        delivery_id: IdPath,
        webhooks: NamedDependency[WebhookService],
        caller: NamedDependency[Caller],
    ) -> DeliveryOut:
        again = webhooks.retry(
            admin_scope(caller),
            WebhookId(webhook_id),
            DeliveryId(delivery_id),
            actor_id=None if caller.member is None else caller.member.id,
        )
        return delivery_out(again)
