"""The admin API: companies, teams, levels, users and policies, read and changed over HTTP.

In demo mode it is open, as the rest of the demo API. With tokens only an `admin` of the
company may call it (403 otherwise), another company's ids are unknown (404), and new companies
come from `expense-tracker org import`, not from a tenant's token. Changing a user re-routes
the pending approvals the change affects; one nobody could take is refused (409) with the
stranded steps listed, unless the request names an eligible `replacement_approver_id`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Final

from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_409_CONFLICT
from msgspec import UNSET, Meta, Struct, UnsetType

from entrypoints.http.auth import Caller
from entrypoints.http.errors import documented
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
from expense_core.errors import (
    AdminOnly,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PendingApprovalsStranded,
    Unauthenticated,
    UnknownCompany,
)
from expense_core.model import (
    MOST_JUNIOR,
    MOST_SENIOR,
    ApprovalStep,
    Company,
    CompanyId,
    HierarchyLevel,
    LevelId,
    Member,
    Money,
    PolicyId,
    Role,
    Team,
    TeamId,
    TeamScope,
    User,
    UserId,
)
from expense_core.services import (
    MAX_PAGE,
    UNCHANGED,
    ChangeUser,
    NewPolicy,
    NewUser,
    OrgService,
    PolicyInfo,
    UserChanged,
)
from expense_core.views import Page

AUTH = (Unauthenticated, Forbidden)
IdPath = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
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


class CompanyCreationClosed(Forbidden):
    code = "company_creation_closed"

    def __init__(self) -> None:
        super().__init__(
            "with AUTH_MODE=token new companies are created with `expense-tracker org import`"
        )


# --- bodies ----------------------------------------------------------------------------------


class CompanyBody(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name


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


def stranded_response(_: Request[Any, Any, Any], exc: Exception) -> Response[StrandedBody]:
    assert isinstance(exc, PendingApprovalsStranded)  # noqa: S101 -- registered for this type
    body = StrandedBody(
        detail=exc.message,
        code=exc.code,
        stranded=[StrandedStep(expense_id=e, step_number=s) for e, s in exc.stranded],
    )
    return Response(body, status_code=HTTP_409_CONFLICT)


def _company_out(company: Company) -> CompanyOut:
    return CompanyOut(id=company.id, name=company.name)


def _team_out(team: Team) -> TeamOut:
    return TeamOut(
        id=team.id,
        company_id=team.company_id,
        name=team.name,
        is_company_wide=team.is_company_wide,
    )


def _level_out(level: HierarchyLevel) -> LevelOut:
    return LevelOut(
        id=level.id,
        company_id=level.company_id,
        team_id=level.team_id,
        level_number=level.level_number,
        level_name=level.level_name,
    )


def _user_out(user: User) -> UserOut:
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


def _member_out(member: Member) -> MemberOut:
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


def _user_page(page: Page[User]) -> UserPage:
    return UserPage(items=[_user_out(u) for u in page.items], next_cursor=page.next_cursor)


def _changed_out(changed: UserChanged) -> UserChangedOut:
    return UserChangedOut(
        user=_user_out(changed.user),
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
            )
            for s in policy.steps
        ],
    )


# --- who may -----------------------------------------------------------------------------------


def admin_scope(caller: Caller) -> CompanyId | None:
    """The company an admin caller is confined to; None in demo mode.

    Raises:
        AdminOnly: a token of someone who is not an admin.
    """
    if caller.member is None:
        return None
    if caller.member.user.role is not Role.ADMIN:
        raise AdminOnly
    return caller.member.user.company_id


def _company(caller: Caller, company_id: int) -> CompanyId:
    scope = admin_scope(caller)
    if scope is not None and scope != company_id:
        raise UnknownCompany(company_id)
    return CompanyId(company_id)


def _patch_value(value: Any) -> Any:
    return UNCHANGED if value is UNSET else value


ORG_ERRORS: Final = (*AUTH, InvalidInput, NotFound, Conflict)
Cursor = Annotated[
    int | None,
    QueryParameter(
        ge=1, le=MAX_ID, required=False, description="The `next_cursor` of the previous page."
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size (1 to 100).")]


class AdminController(Controller):
    """Companies, teams, levels, users and policies."""

    path = "/api"
    tags = ["admin"]  # noqa: RUF012 -- Litestar reads this class attribute
    exception_handlers = {PendingApprovalsStranded: stranded_response}  # noqa: RUF012 -- as tags

    @post(
        "/companies",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create a company",
        description="Demo mode only; with tokens, companies come from `org import` (403).",
        responses=documented(*ORG_ERRORS, body=True),
    )
    def create_company(
        self,
        data: JSONBody[CompanyBody],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> CompanyOut:
        if caller.member is not None:
            raise CompanyCreationClosed
        return _company_out(org.create_company(data.name))

    @get(
        "/companies/{company_id:int}",
        sync_to_thread=True,
        summary="A company",
        responses=documented(*AUTH, NotFound),
    )
    def company(
        self, company_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> CompanyOut:
        return _company_out(org.company(_company(caller, company_id)))

    @post(
        "/companies/{company_id:int}/teams",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create a team",
        description="Team names are unique within a company (409 `duplicate_name`).",
        responses=documented(*ORG_ERRORS, body=True),
    )
    def create_team(
        self,
        company_id: IdPath,
        data: JSONBody[TeamBody],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> TeamOut:
        company = _company(caller, company_id)
        return _team_out(org.create_team(company, data.name, is_company_wide=data.is_company_wide))

    @get(
        "/companies/{company_id:int}/teams",
        sync_to_thread=True,
        summary="A company's teams",
        responses=documented(*AUTH, NotFound),
    )
    def teams(
        self, company_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> TeamList:
        return TeamList(items=[_team_out(t) for t in org.teams(_company(caller, company_id))])

    @post(
        "/teams/{team_id:int}/levels",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Add a level to a team's ladder",
        description="level_number 1 (most senior) to 10, unique per team (409 `duplicate_name`).",
        responses=documented(*ORG_ERRORS, body=True),
    )
    def create_level(
        self,
        team_id: IdPath,
        data: JSONBody[LevelBody],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> LevelOut:
        company = org.team_company(TeamId(team_id), admin_scope(caller))
        level = org.create_level(company, TeamId(team_id), data.level_number, data.level_name)
        return _level_out(level)

    @get(
        "/teams/{team_id:int}/levels",
        sync_to_thread=True,
        summary="A team's ladder, most senior first",
        responses=documented(*AUTH, NotFound),
    )
    def levels(
        self, team_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> LevelList:
        company = org.team_company(TeamId(team_id), admin_scope(caller))
        return LevelList(items=[_level_out(lv) for lv in org.levels(company, TeamId(team_id))])

    @post(
        "/users",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create a user",
        description=(
            "Emails are unique per company; the level must be one of the team's; the manager "
            "a user of the same company."
        ),
        responses=documented(*ORG_ERRORS, body=True),
    )
    def create_user(
        self,
        data: JSONBody[UserBody],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> UserOut:
        user = org.create_user(
            NewUser(
                company_id=_company(caller, data.company_id),
                team_id=TeamId(data.team_id),
                email=data.email,
                name=data.name,
                hierarchy_level_id=LevelId(data.hierarchy_level_id),
                manager_id=None if data.manager_id is None else UserId(data.manager_id),
                role=data.role,
                active=data.active,
            )
        )
        return _user_out(user)

    @get(
        "/users/{user_id:int}",
        sync_to_thread=True,
        summary="A user, with their level",
        responses=documented(*AUTH, NotFound),
    )
    def user(
        self, user_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> MemberOut:
        return _member_out(org.user(UserId(user_id), admin_scope(caller)))

    @get(
        "/companies/{company_id:int}/users",
        sync_to_thread=True,
        summary="A company's users, by id",
        responses=documented(*AUTH, InvalidInput, NotFound),
    )
    def users(
        self,
        company_id: IdPath,
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> UserPage:
        page = org.users(_company(caller, company_id), cursor=cursor, limit=limit)
        return _user_page(page)

    @patch(
        "/users/{user_id:int}",
        status_code=200,
        sync_to_thread=True,
        summary="Change a user",
        description=(
            "Fields left out keep their value. Deactivating a user, or moving them to another "
            "team or level, re-routes each pending approval they hold under the current rules "
            "(a `reassigned` event each); if some would have no eligible approver the change is "
            "refused (409 `pending_approvals_stranded`, listing them) unless "
            "`replacement_approver_id` names someone eligible for them."
        ),
        responses=documented(*ORG_ERRORS, body=True),
    )
    def change_user(
        self,
        user_id: IdPath,
        data: JSONBody[UserPatch],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> UserChangedOut:
        manager = _patch_value(data.manager_id)
        changed = org.change_user(
            ChangeUser(
                user_id=UserId(user_id),
                company_id=admin_scope(caller),
                actor_id=None if caller.member is None else caller.member.id,
                name=_patch_value(data.name),
                email=_patch_value(data.email),
                team_id=_patch_value(data.team_id),
                hierarchy_level_id=_patch_value(data.hierarchy_level_id),
                manager_id=manager,
                role=_patch_value(data.role),
                active=_patch_value(data.active),
                replacement_approver_id=(
                    None
                    if data.replacement_approver_id is None
                    else UserId(data.replacement_approver_id)
                ),
            )
        )
        return _changed_out(changed)

    @post(
        "/policies",
        status_code=HTTP_201_CREATED,
        sync_to_thread=True,
        summary="Create a policy with its steps",
        description=(
            "Steps are numbered 1..N without gaps, ask for a level 1..10 and a valid team_scope, "
            "and one at least is required. Active ranges of one category must not overlap "
            "(409 `policy_overlap`). A policy never changes once created: give its successor "
            "`replaces_policy_id`."
        ),
        responses=documented(*ORG_ERRORS, body=True),
    )
    def create_policy(
        self,
        data: JSONBody[PolicyBody],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> PolicyOut:
        company = _company(caller, data.company_id)
        policy = org.create_policy(
            NewPolicy(
                company_id=company,
                category=data.category,
                name=data.name,
                description=data.description,
                min_amount=Money.parse(data.min_amount),
                max_amount=Money.parse(data.max_amount),
                steps=tuple(
                    ApprovalStep(
                        step_order=s.step_order,
                        required_level=s.required_level,
                        team_scope=TeamScope.parse(s.team_scope),
                        is_required=s.is_required,
                        description=s.description,
                    )
                    for s in data.steps
                ),
                replaces=None
                if data.replaces_policy_id is None
                else PolicyId(data.replaces_policy_id),
            )
        )
        return policy_out(org.policy(policy.id, company))

    @get(
        "/policies/{policy_id:int}",
        sync_to_thread=True,
        summary="A policy with its steps",
        responses=documented(*AUTH, NotFound),
    )
    def policy(
        self, policy_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> PolicyOut:
        return policy_out(org.policy(PolicyId(policy_id), admin_scope(caller)))

    @get(
        "/companies/{company_id:int}/policies",
        sync_to_thread=True,
        summary="A company's policies, active or not",
        responses=documented(*AUTH, NotFound),
    )
    def policies(
        self, company_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> PolicyList:
        return PolicyList(items=[policy_out(i) for i in org.policies(_company(caller, company_id))])

    @post(
        "/policies/{policy_id:int}/deactivate",
        status_code=200,
        sync_to_thread=True,
        summary="Deactivate a policy",
        description=(
            "The policy stops routing new expenses; those it routed keep it and their "
            "approvers. Deactivating an inactive policy changes nothing."
        ),
        responses=documented(*AUTH, NotFound),
    )
    def deactivate_policy(
        self, policy_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> PolicyOut:
        return policy_out(org.deactivate_policy(PolicyId(policy_id), admin_scope(caller)))
