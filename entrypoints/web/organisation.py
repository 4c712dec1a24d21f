"""The organisation, for its admins: teams with their ladders, people as the tree of who reports
to whom, policies with their steps; adding a person, and deactivating one after a preview of
the pending steps that will move and to whom.

Everyone else gets the not-allowed page: the same rule (`AdminOnly`) as the admin API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final

import attrs
import msgspec
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, PathParameter, QueryParameter
from litestar.response import Redirect, Template

from entrypoints.http.errors import status_of
from entrypoints.http.schemas import MAX_ID, NO_NUL
from entrypoints.web.site import Viewer, render, waiting
from entrypoints.web.views import FORM, FieldRefused, in_words
from expense_core.errors import (
    AdminOnly,
    DomainError,
    DuplicateEmail,
    InvalidOrgChange,
    LevelOutsideTeam,
    PendingApprovalsStranded,
    ReplacementNotEligible,
    UnknownLevel,
    UnknownManager,
    UnknownTeam,
    UnknownUser,
)
from expense_core.model import (
    CompanyId,
    HierarchyLevel,
    LevelId,
    Policy,
    Role,
    ScopeKind,
    Team,
    TeamId,
    TeamScope,
    User,
    UserId,
)
from expense_core.services import (
    MAX_PAGE,
    ChangePreview,
    ChangeUser,
    ExpenseService,
    NewUser,
    OrgService,
)

ORGANISATION: Final = "/app/organisation"
SELF: Final = "You cannot deactivate yourself: ask another admin."
FormText = Annotated[str, msgspec.Meta(pattern=NO_NUL)]
UserIdPath = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
Count = Annotated[int | None, QueryParameter(ge=0, le=MAX_ID, required=False)]


class PersonForm(msgspec.Struct):
    name: FormText = ""
    email: FormText = ""
    level: FormText = ""
    manager: FormText = ""
    role: FormText = "employee"


class DeactivateForm(msgspec.Struct):
    replacement: FormText = ""


PersonBody = Annotated[PersonForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
DeactivateBody = Annotated[DeactivateForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


# --- what the page shows -------------------------------------------------------------------------


@attrs.frozen
class Person:
    """Someone in the tree, with the people who report to them."""

    user: User
    level: HierarchyLevel | None
    team: Team | None
    reports: tuple[Person, ...]


@attrs.frozen
class Ladder:
    """A team, its levels (most senior first) and its people by level."""

    team: Team
    levels: tuple[tuple[HierarchyLevel, tuple[User, ...]], ...]


@attrs.frozen
class OrgChart:
    """Everything the organisation page shows of one company."""

    ladders: tuple[Ladder, ...]
    tree: tuple[Person, ...]
    people: tuple[User, ...]
    policies: tuple[Policy, ...]
    teams: Mapping[TeamId, Team]
    levels: Mapping[LevelId, HierarchyLevel]

    def name_of(self, user_id: int) -> str:
        found = next((u for u in self.people if u.id == user_id), None)
        return f"user {user_id}" if found is None else found.name

    def scope(self, scope: TeamScope) -> str:
        """A step's scope in words."""
        if scope.kind is ScopeKind.SUBMITTER:
            return "the submitter's team"
        if scope.kind is ScopeKind.COMPANY_WIDE:
            return "the whole company"
        team = None if scope.team_id is None else self.teams.get(scope.team_id)
        return f"team {scope.team_id}" if team is None else team.name


def everyone(org: OrgService, company: CompanyId) -> tuple[User, ...]:
    """Every user of the company, page by page."""
    people: list[User] = []
    cursor: int | None = None
    while True:
        page = org.users(company, cursor=cursor, limit=MAX_PAGE)
        people.extend(page.items)
        if page.next_cursor is None:
            return tuple(people)
        cursor = page.next_cursor


def reporting_tree(
    people: Iterable[User],
    levels: Mapping[LevelId, HierarchyLevel],
    teams: Mapping[TeamId, Team],
) -> tuple[Person, ...]:
    """People under their managers; those without one (or whose manager is not listed) are the
    roots. Each level of the tree most senior first, then by name."""
    listed = {u.id: u for u in people}
    under: dict[int | None, list[User]] = {}
    for user in listed.values():
        manager = user.manager_id if user.manager_id in listed else None
        under.setdefault(manager, []).append(user)

    def ordered(users: list[User]) -> list[User]:
        def key(u: User) -> tuple[int, str, int]:
            level = levels.get(u.hierarchy_level_id)
            return (99 if level is None else level.level_number, u.name, u.id)

        return sorted(users, key=key)

    def grown(user: User, seen: frozenset[int]) -> Person:
        # The core refuses cycles; `seen` only keeps a page from looping on a broken store.
        below = [u for u in ordered(under.get(user.id, [])) if u.id not in seen]
        return Person(
            user,
            levels.get(user.hierarchy_level_id),
            teams.get(user.team_id),
            tuple(grown(u, seen | {u.id}) for u in below),
        )

    return tuple(grown(u, frozenset({u.id})) for u in ordered(under.get(None, [])))


def company_of(org: OrgService, company: CompanyId) -> OrgChart:
    teams = org.teams(company)
    levels = {team.id: org.levels(company, team.id) for team in teams}
    people = everyone(org, company)
    by_level: dict[int, list[User]] = {}
    for user in people:
        by_level.setdefault(user.hierarchy_level_id, []).append(user)
    level_of = {lv.id: lv for ladder in levels.values() for lv in ladder}
    team_of = {t.id: t for t in teams}
    return OrgChart(
        ladders=tuple(
            Ladder(team, tuple((lv, tuple(by_level.get(lv.id, []))) for lv in levels[team.id]))
            for team in teams
        ),
        tree=reporting_tree(people, level_of, team_of),
        people=people,
        policies=tuple(info.policy for info in org.policies(company)),
        teams=team_of,
        levels=level_of,
    )


# --- errors next to their field ------------------------------------------------------------------


def person_field(exc: DomainError) -> str:
    """The field of the add-person form a refusal concerns, or `FORM`."""
    if isinstance(exc, FieldRefused):
        return exc.field
    if isinstance(exc, DuplicateEmail):
        return "email"
    if isinstance(exc, InvalidOrgChange):
        return "email" if "email" in exc.message else "name"
    if isinstance(exc, UnknownManager):
        return "manager"
    if isinstance(exc, UnknownTeam | UnknownLevel | LevelOutsideTeam):
        return "level"
    return FORM


def admin(viewer: Viewer) -> CompanyId:
    """The company an admin administers.

    Raises:
        AdminOnly: the viewer is not an admin.
    """
    if viewer.member.user.role is not Role.ADMIN:
        raise AdminOnly
    return viewer.company_id


def _number(field: str, raw: str, message: str, *, optional: bool = False) -> int | None:
    text = raw.strip()
    if not text and optional:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise FieldRefused(field, message)
    return int(text)


# --- the pages -----------------------------------------------------------------------------------


class OrganisationPages(Controller):
    """The organisation page, adding a person, and deactivating one after a preview."""

    path = "/organisation"

    @get("/", sync_to_thread=True)
    def organisation(
        self,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
        added: Count = None,
        deactivated: Count = None,
        moved: Count = None,
    ) -> Template:
        company = admin(viewer)
        notice = None
        shown = company_of(org, company)
        if added is not None:
            notice = f"{shown.name_of(added)} was added."
        elif deactivated is not None:
            notice = (
                f"{shown.name_of(deactivated)} was deactivated; {moved or 0} pending step(s) moved."
            )
        return _organisation(viewer, expenses, shown, PersonForm(), notice=notice)

    @post("/people", sync_to_thread=True, status_code=303)
    def add_person(
        self,
        data: PersonBody,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Response[Any]:
        company = admin(viewer)
        try:
            user = org.create_user(_new_user(org, company, data))
        except DomainError as refused:
            if status_of(refused) >= 500:
                raise
            return _organisation(
                viewer,
                expenses,
                company_of(org, company),
                data,
                errors={person_field(refused): in_words(refused)},
                status_code=status_of(refused),
            )
        return Redirect(f"{ORGANISATION}?added={user.id}", status_code=303)

    @get("/people/{user_id:int}/deactivate", sync_to_thread=True)
    def preview(
        self,
        user_id: UserIdPath,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Template:
        company = admin(viewer)
        return _deactivation(viewer, expenses, org, company, UserId(user_id))

    @post("/people/{user_id:int}/deactivate", sync_to_thread=True, status_code=303)
    def deactivate(
        self,
        user_id: UserIdPath,
        data: DeactivateBody,
        viewer: NamedDependency[Viewer],
        expenses: NamedDependency[ExpenseService],
        org: NamedDependency[OrgService],
    ) -> Response[Any]:
        company = admin(viewer)
        leaving = UserId(user_id)
        org.user(leaving, company)  # someone unknown (or of another company): not found
        if leaving == viewer.id:
            # Their own sign-in would end with it, and nobody would be left to undo it.
            return _deactivation(
                viewer, expenses, org, company, leaving, error=SELF, status_code=409
            )
        try:
            replacement = _number(
                "replacement", data.replacement, "Choose someone from the list.", optional=True
            )
            changed = org.change_user(
                ChangeUser(
                    user_id=leaving,
                    company_id=company,
                    actor_id=viewer.id,
                    active=False,
                    replacement_approver_id=None if replacement is None else UserId(replacement),
                )
            )
        except (
            PendingApprovalsStranded,
            ReplacementNotEligible,
            FieldRefused,
            UnknownUser,  # the replacement: the person leaving is known
        ) as refused:
            return _deactivation(
                viewer,
                expenses,
                org,
                company,
                leaving,
                error=in_words(refused),
                chosen=data.replacement,
                status_code=400 if isinstance(refused, UnknownUser) else status_of(refused),
            )
        moved = len(changed.reassignments)
        return Redirect(f"{ORGANISATION}?deactivated={leaving}&moved={moved}", status_code=303)


def _new_user(org: OrgService, company: CompanyId, data: PersonForm) -> NewUser:
    level_id = _number("level", data.level, "Choose a team and level from the list.") or 0
    manager = _number("manager", data.manager, "Choose a manager from the list.", optional=True)
    try:
        role = Role(data.role)
    except ValueError:
        raise FieldRefused("role", "Choose a role from the list.") from None
    level = next(
        (lv for t in org.teams(company) for lv in org.levels(company, t.id) if lv.id == level_id),
        None,
    )
    if level is None:
        raise FieldRefused("level", "Choose a team and level from the list.")
    return NewUser(
        company_id=company,
        team_id=level.team_id,
        email=data.email,
        name=data.name,
        hierarchy_level_id=LevelId(level_id),
        manager_id=None if manager is None else UserId(manager),
        role=role,
    )


def _organisation(
    viewer: Viewer,
    expenses: ExpenseService,
    company: OrgChart,
    typed: PersonForm,
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    return render(
        "organisation.html",
        viewer,
        waiting=waiting(expenses, viewer),
        here="organisation",
        company=company,
        viewer_id=viewer.id,
        roles=list(Role),
        typed=typed,
        notice=notice,
        errors=errors or {},
        form_error=(errors or {}).get(FORM),
        status_code=status_code,
    )


def _deactivation(
    viewer: Viewer,
    expenses: ExpenseService,
    org: OrgService,
    company: CompanyId,
    user_id: UserId,
    *,
    error: str | None = None,
    chosen: str = "",
    status_code: int = 200,
) -> Template:
    leaving = org.user(user_id, company)
    preview: ChangePreview | None = None
    if leaving.user.active and user_id != viewer.id:
        preview = org.preview_change_user(
            ChangeUser(user_id=user_id, company_id=company, actor_id=viewer.id, active=False)
        )
    people = everyone(org, company)
    return render(
        "deactivate.html",
        viewer,
        waiting=waiting(expenses, viewer),
        here="organisation",
        leaving=leaving,
        preview=preview,
        is_self=user_id == viewer.id,
        names={u.id: u.name for u in people},
        candidates=[u for u in people if u.active and u.id != user_id],
        error=error,
        chosen=chosen,
        status_code=status_code,
    )
