"""The audit log (`/api/audit`, `/api/audit.csv`): a company's admin changes, newest first.

With tokens, the company's admins read it (the core decides who: `audit.AUDIT_READERS`), and
only their own company's (another's is unknown, 404). In demo mode the query names the
company. Filters: one kind of target (and one target of it), and a period of time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import Controller, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Stream

from entrypoints.http.admin import Cursor, Limit
from entrypoints.http.audit_schemas import AuditPage, audit_page, csv_chunks
from entrypoints.http.auth import Caller
from entrypoints.http.errors import documented
from entrypoints.http.schemas import MAX_ID
from expense_core.audit import TARGET_ID_LIMIT, TargetType
from expense_core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated, UnknownCompany
from expense_core.model import CompanyId
from expense_core.services import AuditService, ReadAudit

AUTH = (Unauthenticated, Forbidden)
ERRORS = (*AUTH, InvalidInput, NotFound)
CompanyQuery = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=MAX_ID,
        required=False,
        description="The company (required with AUTH_MODE=demo); with a token, the caller's.",
    ),
]
TargetTypeQuery = Annotated[
    str | None,
    QueryParameter(
        required=False,
        max_length=20,
        description="Only entries about this kind of thing: "
        + ", ".join(f"`{t.value}`" for t in TargetType)
        + ".",
    ),
]
TargetIdQuery = Annotated[
    str | None,
    QueryParameter(
        required=False,
        max_length=TARGET_ID_LIMIT,
        description="Only entries about this one (with `target_type`): its id, a token's 16 "
        "hex digits, a delegation's absent user.",
    ),
]
SinceQuery = Annotated[
    str | None,
    QueryParameter(
        required=False,
        max_length=40,
        description="Only entries made at or after this ISO-8601 instant, with its zone "
        "(`2026-01-31T09:00:00Z`).",
    ),
]
UntilQuery = Annotated[
    str | None,
    QueryParameter(
        required=False,
        max_length=40,
        description="Only entries made before this ISO-8601 instant, with its zone.",
    ),
]


def audit_company(caller: Caller, company_id: int | None) -> CompanyId:
    """The company whose log a request reads: the caller's, or the one it names (demo).

    Raises:
        UnknownCompany: another company than the caller's (as if it did not exist).
        InvalidInput: demo mode, and no company named.
    """
    if caller.member is not None:
        own = caller.member.user.company_id
        if company_id is not None and company_id != own:
            raise UnknownCompany(company_id)
        return own
    if company_id is None:
        raise InvalidInput("name the company: give company_id (AUTH_MODE=demo)")
    return CompanyId(company_id)


def _instant(name: str, raw: str | None) -> datetime | None:
    """Raises: InvalidInput for text that is not an ISO-8601 instant."""
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            f"{name} '{raw}' is not an ISO-8601 instant (2026-01-31T09:00:00Z)"
        ) from None


def _query(
    caller: Caller,
    company_id: int | None,
    target_type: str | None,
    target_id: str | None,
    since: str | None,
    until: str | None,
    cursor: int | None,
    limit: int,
) -> ReadAudit:
    return ReadAudit(
        company_id=audit_company(caller, company_id),
        actor_id=None if caller.member is None else caller.member.id,
        target_type=target_type,
        target_id=target_id,
        since=_instant("since", since),
        until=_instant("until", until),
        cursor=cursor,
        limit=limit,
    )


class AuditController(Controller):
    """Who changed what in the organisation, and when."""

    path = "/api"
    tags = ["audit"]  # noqa: RUF012 -- Litestar reads this class attribute

    @get(
        "/audit",
        sync_to_thread=True,
        summary="The audit log",
        description=(
            "Every admin change of the company (organisation, users and roles, policies, the "
            "fallback approver, delegations, webhooks, tokens), newest first, a page at a "
            "time: who (`actor_id`), when, what (`action`, such as `user.updated`), to which "
            "thing (`target_type`, `target_id`), and the thing `before` and `after`. With a "
            "token, for the company's admins (403 `admin_only`). Bad filters are 400 "
            "`invalid_input`."
        ),
        responses=documented(*ERRORS),
    )
    def audit(
        self,
        audit: NamedDependency[AuditService],
        caller: NamedDependency[Caller],
        company_id: CompanyQuery = None,
        target_type: TargetTypeQuery = None,
        target_id: TargetIdQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> AuditPage:
        query = _query(caller, company_id, target_type, target_id, since, until, cursor, limit)
        return audit_page(audit.page(query))

    @get(
        "/audit.csv",
        sync_to_thread=True,
        media_type="text/csv; charset=utf-8",
        cache_control=CacheControlHeader(no_store=True),
        summary="The audit log as CSV",
        description=(
            "The same entries and filters as `GET /api/audit`, every page, streamed as CSV: a "
            "header row (`id,at,company_id,actor_id,action,target_type,target_id,before,"
            "after`), then one row per entry, newest first; `before` and `after` are JSON "
            "text, empty when null."
        ),
        responses=documented(*ERRORS),
        response_description="CSV, one row per entry.",
    )
    def audit_csv(
        self,
        audit: NamedDependency[AuditService],
        caller: NamedDependency[Caller],
        company_id: CompanyQuery = None,
        target_type: TargetTypeQuery = None,
        target_id: TargetIdQuery = None,
        since: SinceQuery = None,
        until: UntilQuery = None,
    ) -> Stream:
        query = _query(caller, company_id, target_type, target_id, since, until, None, 50)
        # Checked now (a refusal is a proper error answer); read page by page as it is sent.
        entries = audit.export(query)
        return Stream(
            csv_chunks(entries),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="audit.csv"'},
        )
