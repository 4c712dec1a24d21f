"""The admin API on the wire: the bodies it reads, the responses it writes, and their explicit
mapping from the core's entities.

Bodies refuse unknown fields, like the expense API's; a `PATCH` body tells a field left out
(kept) from one set to null (`manager_id: null` clears the manager).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from entrypoints.http.schemas import (
    MAX_ID,
    NO_NUL,
    Category,
    Id,
    MoneyOut,
    Text,
    Timestamp,
    maybe_timestamp,
    money,
)
from expense_core.model import (
    MOST_JUNIOR,
    MOST_SENIOR,
    Company,
    HierarchyLevel,
    Member,
    Role,
    Team,
    User,
)
from expense_core.services import UNCHANGED, PolicyInfo, UserChanged
from expense_core.views import Page

Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_NUL)]
PersonName = Annotated[str, Meta(min_length=1, max_length=255, pattern=NO_NUL)]
Email = Annotated[str, Meta(min_length=3, max_length=100, pattern=NO_NUL)]
LevelNumber = Annotated[
    int, Meta(ge=MOST_SENIOR, le=MOST_JUNIOR, description="1 (most senior) to 10.")
]
Bound = Annotated[
    Decimal,
    Meta(
        description="A JSON number or decimal string, 0.00 to 9999999999.99, 2 places at most.",
        extra_json_schema={"examples": [0, "1999.99"], "extra": {"type": ["number", "string"]}},
    ),
]
Scope = Annotated[
    str,
    Meta(
        max_length=20,
        pattern=NO_NUL,
        description="'submitter', 'company_wide' or 'team:<team_id>'.",
    ),
]


# --- bodies ----------------------------------------------------------------------------------


class CompanyBody(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name


class CompanyPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields to change; those left out keep their value (`fallback_approver_id: null`
    clears it)."""

    fallback_approver_id: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_ID,
                description=(
                    "An active user of the company who takes the steps nobody else is "
                    "eligible for (a CFO, a board member); null for nobody."
                ),
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


class TeamBody(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    is_company_wide: bool = False


class LevelBody(Struct, forbid_unknown_fields=True, kw_only=True):
    level_number: LevelNumber
    level_name: Name


class UserBody(Struct, forbid_unknown_fields=True, kw_only=True):
    company_id: Id
    team_id: Id
    hierarchy_level_id: Id
    email: Email
    name: PersonName
    manager_id: Id | None = None
    role: Role = Role.EMPLOYEE
    active: bool = True


class UserPatch(Struct, forbid_unknown_fields=True, kw_only=True):
    """The fields to change; those left out keep their value (`manager_id: null` clears it)."""

    name: PersonName | UnsetType = UNSET
    email: Email | UnsetType = UNSET
    team_id: Id | UnsetType = UNSET
    hierarchy_level_id: Id | UnsetType = UNSET
    manager_id: Id | UnsetType | None = UNSET
    role: Role | UnsetType = UNSET
    active: bool | UnsetType = UNSET
    replacement_approver_id: (
        Annotated[
            int,
            Meta(
                ge=1,
                le=MAX_ID,
                description=(
                    "Who takes the pending approvals nobody else would be eligible for; "
                    "must be eligible for each of them."
                ),
            ),
        ]
        | None
    ) = None


class StepBody(Struct, forbid_unknown_fields=True, kw_only=True):
    step_order: Annotated[int, Meta(ge=1, le=100)]
    required_level: LevelNumber
    team_scope: Scope = "submitter"
    is_required: bool = True
    description: Annotated[str, Meta(max_length=255, pattern=NO_NUL)] | None = None
    # Checked by the core (400 `invalid_escalate_after_hours`), not the schema: a bad value is
    # a rule broken, not a malformed body.
    escalate_after_hours: (
        Annotated[
            int,
            Meta(
                description=(
                    "Escalate this required step once it has been the current one this many "
                    "hours (1 to 8760); null or left out: never."
                )
            ),
        ]
        | None
    ) = None


class PolicyBody(Struct, forbid_unknown_fields=True, kw_only=True):
    """A new policy. To change a policy, create its successor with `replaces_policy_id`: the
    old one is deactivated in the same transaction and keeps the expenses it routed."""

    company_id: Id
    category: Category
    name: Name
    min_amount: Bound
    max_amount: Bound
    steps: Annotated[list[StepBody], Meta(min_length=1, max_length=20)]
    description: Text | None = None
    replaces_policy_id: Id | None = None


# --- responses -------------------------------------------------------------------------------


class CompanyOut(Struct):
    id: int
    name: str
    fallback_approver_id: int | None


class TeamOut(Struct):
    id: int
    company_id: int
    name: str
    is_company_wide: bool


class TeamList(Struct):
    items: list[TeamOut]


class LevelOut(Struct):
    id: int
    company_id: int
    team_id: int
    level_number: int
    level_name: str


class LevelList(Struct):
    """A team's ladder, most senior first."""

    items: list[LevelOut]


class UserOut(Struct):
    id: int
    company_id: int
    team_id: int
    hierarchy_level_id: int
    email: str
    name: str
    manager_id: int | None
    role: Role
    active: bool


class MemberOut(Struct):
    id: int
    company_id: int
    team_id: int
    hierarchy_level_id: int
    level_number: int
    level_name: str
    email: str
    name: str
    manager_id: int | None
    role: Role
    active: bool


class UserPage(Struct):
    """Users by id; pass `next_cursor` as `cursor` for the next page."""

    items: list[UserOut]
    next_cursor: int | None


class ReassignmentOut(Struct):
    expense_id: int
    step_number: int
    previous_approver_id: int
    approver_id: int


class UserChangedOut(Struct):
    """The changed user and each pending step that moved to another approver because of it."""

    user: UserOut
    reassigned: list[ReassignmentOut]


class StepOut(Struct):
    step_order: int
    required_level: int
    team_scope: str
    is_required: bool
    description: str | None
    escalate_after_hours: int | None


class PolicyOut(Struct):
    id: int
    company_id: int
    category: str
    name: str
    description: str | None
    min_amount: MoneyOut
    max_amount: MoneyOut
    active: bool
    in_use: bool
    created_at: Timestamp | None
    steps: list[StepOut]


class PolicyList(Struct):
    items: list[PolicyOut]


class StrandedStep(Struct):
    expense_id: int
    step_number: int


class StrandedBody(Struct):
    """A 409 `pending_approvals_stranded`: the steps nobody eligible could take over."""

    detail: str
    code: str
    stranded: list[StrandedStep]


# --- mapping ---------------------------------------------------------------------------------


def patch_value(value: Any) -> Any:
    """A `UserPatch` field as `ChangeUser` takes it: UNCHANGED if the body left it out."""
    return UNCHANGED if value is UNSET else value


def company_out(company: Company) -> CompanyOut:
    return CompanyOut(
        id=company.id, name=company.name, fallback_approver_id=company.fallback_approver_id
    )


def team_out(team: Team) -> TeamOut:
    return TeamOut(
        id=team.id,
        company_id=team.company_id,
        name=team.name,
        is_company_wide=team.is_company_wide,
    )


def level_out(level: HierarchyLevel) -> LevelOut:
    return LevelOut(
        id=level.id,
        company_id=level.company_id,
        team_id=level.team_id,
        level_number=level.level_number,
        level_name=level.level_name,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        company_id=user.company_id,
        team_id=user.team_id,
        hierarchy_level_id=user.hierarchy_level_id,
        email=user.email,
        name=user.name,
        manager_id=user.manager_id,
        role=user.role,
        active=user.active,
    )


def member_out(member: Member) -> MemberOut:
    user = member.user
    return MemberOut(
        id=user.id,
        company_id=user.company_id,
        team_id=user.team_id,
        hierarchy_level_id=user.hierarchy_level_id,
        level_number=member.level_number,
        level_name=member.level.level_name,
        email=user.email,
        name=user.name,
        manager_id=user.manager_id,
        role=user.role,
        active=user.active,
    )


def user_page(page: Page[User]) -> UserPage:
    return UserPage(items=[user_out(u) for u in page.items], next_cursor=page.next_cursor)


def changed_out(changed: UserChanged) -> UserChangedOut:
    return UserChangedOut(
        user=user_out(changed.user),
        reassigned=[
            ReassignmentOut(
                expense_id=r.expense_id,
                step_number=r.step_number,
                previous_approver_id=r.previous_approver_id,
                approver_id=r.approver_id,
            )
            for r in changed.reassignments
        ],
    )


def policy_out(info: PolicyInfo) -> PolicyOut:
    policy = info.policy
    return PolicyOut(
        id=policy.id,
        company_id=policy.company_id,
        category=policy.category,
        name=policy.name,
        description=policy.description,
        min_amount=money(policy.min_amount),
        max_amount=money(policy.max_amount),
        active=policy.active,
        in_use=info.in_use,
        created_at=maybe_timestamp(policy.created_at),
        steps=[
            StepOut(
                step_order=s.step_order,
                required_level=s.required_level,
                team_scope=str(s.team_scope),
                is_required=s.is_required,
                description=s.description,
                escalate_after_hours=s.escalate_after_hours,
            )
            for s in policy.steps
        ],
    )
