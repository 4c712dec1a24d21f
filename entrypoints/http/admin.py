"""The admin API: companies, teams, levels, users and policies, read and changed over HTTP.

In demo mode it is open, as the rest of the demo API. With tokens only an `admin` of the
company may call it (403 otherwise), another company's ids are unknown (404), and new companies
come from `expense-tracker org import`, not from a tenant's token (`auth.py` decides). Changing a
user re-routes the pending approvals the change affects; one nobody could take is refused (409)
with the stranded steps listed, unless the request names an eligible `replacement_approver_id`.
Bodies and responses, and their mapping, are in `admin_schemas.py`.
"""

from __future__ import annotations

from typing import Annotated, Final

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.status_codes import HTTP_201_CREATED
from msgspec import UnsetType

from entrypoints.http.admin_schemas import (
    CompanyBody,
    CompanyOut,
    CompanyPatch,
    LevelBody,
    LevelList,
    LevelOut,
    MemberOut,
    PolicyBody,
    PolicyList,
    PolicyOut,
    TeamBody,
    TeamList,
    TeamOut,
    UserBody,
    UserChangedOut,
    UserOut,
    UserPage,
    UserPatch,
    changed_out,
    company_out,
    level_out,
    member_out,
    patch_value,
    policy_out,
    team_out,
    user_out,
    user_page,
)
from entrypoints.http.auth import Caller, admin_company, admin_scope, allow_company_creation
from entrypoints.http.errors import documented, stranded_response
from entrypoints.http.schemas import MAX_ID
from expense_core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PendingApprovalsStranded,
    Unauthenticated,
)
from expense_core.model import (
    ApprovalStep,
    LevelId,
    Money,
    PolicyId,
    TeamId,
    TeamScope,
    UserId,
)
from expense_core.services import MAX_PAGE, ChangeUser, NewPolicy, NewUser, OrgService

AUTH = (Unauthenticated, Forbidden)
ORG_ERRORS: Final = (*AUTH, InvalidInput, NotFound, Conflict)
IdPath = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Cursor = Annotated[
    int | None,
    QueryParameter(
        ge=1, le=MAX_ID, required=False, description="The `next_cursor` of the previous page."
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size (1 to 100).")]


def _actor(caller: Caller) -> UserId | None:
    """Who makes a change, for the audit log: the token's holder; nobody in demo mode."""
    return None if caller.member is None else caller.member.id


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
        allow_company_creation(caller)
        return company_out(org.create_company(data.name))

    @get(
        "/companies/{company_id:int}",
        sync_to_thread=True,
        summary="A company",
        responses=documented(*AUTH, NotFound),
    )
    def company(
        self, company_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> CompanyOut:
        return company_out(org.company(admin_company(caller, company_id)))

    @patch(
        "/companies/{company_id:int}",
        status_code=200,
        sync_to_thread=True,
        summary="Change a company",
        description=(
            "`fallback_approver_id` names an active user of the company who takes every step "
            "nobody else is eligible for (the CTO's own expense, a vacancy) and the overdue "
            "steps nobody more senior may take; unless they submitted the expense or approve "
            "another step of it. null clears it; another company's or an unknown user is 404 "
            "`unknown_fallback_approver`, an inactive one 409 `fallback_approver_inactive`."
        ),
        responses=documented(*ORG_ERRORS, body=True),
    )
    def change_company(
        self,
        company_id: IdPath,
        data: JSONBody[CompanyPatch],
        org: NamedDependency[OrgService],
        caller: NamedDependency[Caller],
    ) -> CompanyOut:
        company = admin_company(caller, company_id)
        if isinstance(data.fallback_approver_id, UnsetType):
            return company_out(org.company(company))
        fallback = data.fallback_approver_id
        return company_out(
            org.set_fallback_approver(
                company,
                None if fallback is None else UserId(fallback),
                actor_id=_actor(caller),
            )
        )

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
        company = admin_company(caller, company_id)
        team = org.create_team(
            company, data.name, is_company_wide=data.is_company_wide, actor_id=_actor(caller)
        )
        return team_out(team)

    @get(
        "/companies/{company_id:int}/teams",
        sync_to_thread=True,
        summary="A company's teams",
        responses=documented(*AUTH, NotFound),
    )
    def teams(
        self, company_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> TeamList:
        return TeamList(items=[team_out(t) for t in org.teams(admin_company(caller, company_id))])

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
        level = org.create_level(
            company, TeamId(team_id), data.level_number, data.level_name, actor_id=_actor(caller)
        )
        return level_out(level)

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
        return LevelList(items=[level_out(lv) for lv in org.levels(company, TeamId(team_id))])

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
                company_id=admin_company(caller, data.company_id),
                team_id=TeamId(data.team_id),
                email=data.email,
                name=data.name,
                hierarchy_level_id=LevelId(data.hierarchy_level_id),
                manager_id=None if data.manager_id is None else UserId(data.manager_id),
                role=data.role,
                active=data.active,
                actor_id=_actor(caller),
            )
        )
        return user_out(user)

    @get(
        "/users/{user_id:int}",
        sync_to_thread=True,
        summary="A user, with their level",
        responses=documented(*AUTH, NotFound),
    )
    def user(
        self, user_id: IdPath, org: NamedDependency[OrgService], caller: NamedDependency[Caller]
    ) -> MemberOut:
        return member_out(org.user(UserId(user_id), admin_scope(caller)))

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
        page = org.users(admin_company(caller, company_id), cursor=cursor, limit=limit)
        return user_page(page)

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
        manager = patch_value(data.manager_id)
        changed = org.change_user(
            ChangeUser(
                user_id=UserId(user_id),
                company_id=admin_scope(caller),
                actor_id=_actor(caller),
                name=patch_value(data.name),
                email=patch_value(data.email),
                team_id=patch_value(data.team_id),
                hierarchy_level_id=patch_value(data.hierarchy_level_id),
                manager_id=manager,
                role=patch_value(data.role),
                active=patch_value(data.active),
                replacement_approver_id=(
                    None
                    if data.replacement_approver_id is None
                    else UserId(data.replacement_approver_id)
                ),
            )
        )
        return changed_out(changed)

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
        company = admin_company(caller, data.company_id)
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
                        escalate_after_hours=s.escalate_after_hours,
                    )
                    for s in data.steps
                ),
                replaces=None
                if data.replaces_policy_id is None
                else PolicyId(data.replaces_policy_id),
                actor_id=_actor(caller),
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
        return PolicyList(
            items=[policy_out(i) for i in org.policies(admin_company(caller, company_id))]
        )

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
        info = org.deactivate_policy(
            PolicyId(policy_id), admin_scope(caller), actor_id=_actor(caller)
        )
        return policy_out(info)
