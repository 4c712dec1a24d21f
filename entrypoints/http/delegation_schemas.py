"""Delegations on the wire: the body that names a delegate, the stored delegation answered,
and their mapping to and from the core's values. Times are ISO-8601 with a zone."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, Struct

from entrypoints.http.schemas import Id, Text, Timestamp, timestamp
from expense_core.services import DelegationState

Instant = Annotated[
    datetime,
    Meta(
        description="ISO-8601 with a time zone (a time without one is refused).",
        examples=["2026-12-01T00:00:00Z"],
    ),
]


class DelegationBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """Who acts for the user from `starts_at` (included) until `ends_at` (excluded)."""

    delegate_id: Id
    starts_at: Instant
    ends_at: Instant
    note: Text | None = None


class DelegationOut(Struct):
    """A stored delegation; `active` says whether its period holds the moment of the answer."""

    user_id: int
    delegate_id: int
    starts_at: Timestamp
    ends_at: Timestamp
    note: str | None
    active: bool
    company_id: int


def delegation_out(state: DelegationState) -> DelegationOut:
    d = state.delegation
    return DelegationOut(
        user_id=d.user_id,
        delegate_id=d.delegate_id,
        starts_at=timestamp(d.starts_at),
        ends_at=timestamp(d.ends_at),
        note=d.note,
        active=state.active,
        company_id=d.company_id,
    )
