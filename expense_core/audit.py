"""The audit log: one entry per admin change, written in the unit of work that makes the change,
naming who did what to which thing, when, with the thing before and after as JSON objects.

Records are built here from core entities, field by field, so that a secret (a webhook's
signing secret, a token's secret or its hash) can never reach the log by accident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Final, NewType, TypeAlias

import attrs

from expense_core.delegation import Delegation
from expense_core.errors import InvalidInput
from expense_core.model import (
    Company,
    CompanyId,
    HierarchyLevel,
    Policy,
    Role,
    Team,
    User,
    UserId,
)
from expense_core.tokens import ApiToken
from expense_core.webhooks import Delivery, Webhook

AuditId = NewType("AuditId", int)

# What a record holds: JSON scalars, and lists and objects of them.
JsonValue: TypeAlias = str | int | bool | list["JsonValue"] | Mapping[str, "JsonValue"] | None
Record: TypeAlias = Mapping[str, JsonValue]

# Who may read a company's audit log: its admins and auditors.
AUDIT_READERS: Final = frozenset({Role.ADMIN, Role.AUDITOR})
TARGET_ID_LIMIT: Final = 32


class TargetType(StrEnum):
    """The kind of thing an entry is about; its `target_id` is that thing's id (a delegation's
    is its absent user's, a token's its 16 hex digits)."""

    COMPANY = "company"
    TEAM = "team"
    LEVEL = "level"
    USER = "user"
    POLICY = "policy"
    DELEGATION = "delegation"
    WEBHOOK = "webhook"
    DELIVERY = "delivery"
    TOKEN = "token"  # noqa: S105 -- a kind of thing, not a secret


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One admin change. `actor_id` is None when nobody in particular acted (the command line,
    demo mode); `before` is None for a creation, `after` for a deletion. Records are read-only
    by convention: nobody changes an entry once made."""

    id: AuditId
    company_id: CompanyId
    actor_id: UserId | None
    at: datetime
    action: str
    target_type: TargetType
    target_id: str
    before: Record | None
    after: Record | None


NEW_ENTRY: Final = AuditId(0)
"""The id of an entry not stored yet."""


def entry(
    *,
    company_id: CompanyId,
    actor_id: UserId | None,
    at: datetime,
    action: str,
    target_type: TargetType,
    target_id: object,
    before: Record | None = None,
    after: Record | None = None,
) -> AuditEntry:
    """An entry to append (its id is given when it is stored)."""
    return AuditEntry(
        id=NEW_ENTRY,
        company_id=company_id,
        actor_id=actor_id,
        at=at,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
    )


@attrs.frozen(kw_only=True)
class AuditFilter:
    """Which entries a page holds: of one kind of target (and one target of it), made at or
    after `since` and before `until`."""

    target_type: TargetType | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, e: AuditEntry) -> bool:
        return (
            (self.target_type is None or e.target_type == self.target_type)
            and (self.target_id is None or e.target_id == self.target_id)
            and (self.since is None or e.at >= self.since)
            and (self.until is None or e.at < self.until)
        )


def audit_filter(
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditFilter:
    """A filter, checked.

    Raises:
        InvalidInput: an unknown target type, a target id without its type or longer than 32
            characters, an instant without a time zone, or `until` not after `since`.
    """
    kind: TargetType | None = None
    if target_type is not None:
        try:
            kind = TargetType(target_type)
        except ValueError:
            known = ", ".join(t.value for t in TargetType)
            raise InvalidInput(f"unknown target_type '{target_type}': use one of {known}") from None
    if target_id is not None:
        if kind is None:
            raise InvalidInput("target_id needs target_type")
        if not target_id or len(target_id) > TARGET_ID_LIMIT:
            raise InvalidInput(f"target_id must be 1 to {TARGET_ID_LIMIT} characters")
    for name, instant in (("since", since), ("until", until)):
        if instant is not None and instant.utcoffset() is None:
            raise InvalidInput(f"{name} needs a time zone (2026-01-31T09:00:00Z)")
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until must be after since")
    return AuditFilter(target_type=kind, target_id=target_id, since=since, until=until)


# --- records: what an entry shows of each kind of thing --------------------------------------


def _instant(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def company_record(company: Company) -> Record:
    return {
        "id": company.id,
        "name": company.name,
        "fallback_approver_id": company.fallback_approver_id,
    }


def team_record(team: Team) -> Record:
    return {"id": team.id, "name": team.name, "is_company_wide": team.is_company_wide}


def level_record(level: HierarchyLevel) -> Record:
    return {
        "id": level.id,
        "team_id": level.team_id,
        "level_number": level.level_number,
        "level_name": level.level_name,
    }


def user_record(user: User) -> Record:
    return {
        "id": user.id,
        "team_id": user.team_id,
        "email": user.email,
        "name": user.name,
        "hierarchy_level_id": user.hierarchy_level_id,
        "manager_id": user.manager_id,
        "role": user.role.value,
        "active": user.active,
    }


def policy_record(policy: Policy) -> Record:
    # Amounts as exact decimal strings: a JSON number may pass through a float on its way.
    return {
        "id": policy.id,
        "category": policy.category,
        "name": policy.name,
        "description": policy.description,
        "min_amount": str(policy.min_amount.value),
        "max_amount": str(policy.max_amount.value),
        "active": policy.active,
        "steps": [
            {
                "step_order": s.step_order,
                "required_level": s.required_level,
                "team_scope": str(s.team_scope),
                "is_required": s.is_required,
                "description": s.description,
                "escalate_after_hours": s.escalate_after_hours,
            }
            for s in policy.steps
        ],
    }


def delegation_record(delegation: Delegation) -> Record:
    return {
        "user_id": delegation.user_id,
        "delegate_id": delegation.delegate_id,
        "starts_at": _instant(delegation.starts_at),
        "ends_at": _instant(delegation.ends_at),
        "note": delegation.note,
    }


def webhook_record(webhook: Webhook) -> Record:
    """Never the signing secret."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.topics),
        "active": webhook.active,
        "created_at": _instant(webhook.created_at),
    }


def delivery_record(delivery: Delivery) -> Record:
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "expense_id": delivery.expense_id,
        "topic": delivery.topic.value,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "next_attempt_at": _instant(delivery.next_attempt_at),
    }


def token_issued(token: ApiToken, actor_id: UserId | None) -> AuditEntry:
    """The entry of a token (or sign-in link) just issued: its record, never its secret."""
    return entry(
        company_id=token.company_id,
        actor_id=actor_id,
        at=token.created_at,
        action="token.issued",
        target_type=TargetType.TOKEN,
        target_id=token.id,
        after=token_record(token),
    )


def token_record(token: ApiToken) -> Record:
    """Never the secret, nor its hash; nor the last use, which is no admin change."""
    return {
        "id": token.id,
        "user_id": token.user_id,
        "name": token.name,
        "created_at": _instant(token.created_at),
        "expires_at": _instant(token.expires_at),
        "revoked_at": _instant(token.revoked_at),
    }
