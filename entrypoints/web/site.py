"""What every page handler stands on: the site (sessions, sign-in mode, clock), the person
signed in, the navigation, and how a page is rendered around them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import attrs
from litestar import Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.response import Template

from entrypoints.settings import AuthMode
from entrypoints.web.session import CSRF_FIELD, SESSION_COOKIE, Session, Sessions
from expense_core import visibility
from expense_core.errors import NotFound, Unauthenticated
from expense_core.model import CompanyId, Member, Role, UserId
from expense_core.ports import Clock
from expense_core.services import MAX_PAGE, AccessService, ExpenseService, OrgService

HOME: Final = "/app/"
MY_EXPENSES: Final = "/app/expenses"
VIEWER_STATE: Final = "web_viewer"


class SignInRequired(NotAuthorizedException):
    """Nobody is signed in (or their sign-in ended): the page sends them to sign in."""


@attrs.frozen
class IssuerChoice:
    """An OpenID Connect issuer the sign-in page offers a button for (AUTH_MODE=oidc)."""

    url: str
    label: str  # what the button names: the issuer's host


@attrs.frozen
class Site:
    """The pages' own configuration, built once with the app."""

    sessions: Sessions
    auth_mode: AuthMode
    clock: Clock
    issuers: tuple[IssuerChoice, ...] = ()  # AUTH_MODE=oidc: whom the sign-in page offers

    def session_of(self, request: Request[Any, Any, Any]) -> Session | None:
        return self.sessions.open(request.cookies.get(SESSION_COOKIE), self.clock.now())

    def cookie(self, request: Request[Any, Any, Any], session: Session) -> Cookie:
        # Secure when the browser came over HTTPS (uvicorn reads X-Forwarded-Proto from a
        # trusted proxy), so the cookie never travels in clear text once it did not.
        return self.sessions.cookie(session, secure=request.url.scheme == "https")


@attrs.frozen
class Viewer:
    """The person signed in, and the CSRF token of their session."""

    member: Member
    csrf: str

    @property
    def id(self) -> UserId:
        return self.member.id

    @property
    def company_id(self) -> CompanyId:
        return self.member.user.company_id

    @property
    def name(self) -> str:
        return self.member.user.name

    @property
    def reader(self) -> visibility.Viewer:
        """Who the use cases show expenses to: this person, with their role."""
        return visibility.Viewer.of(self.member)


@attrs.frozen
class Nav:
    """The navigation every signed-in page carries."""

    csrf: str
    name: str | None = None
    waiting: str | None = None  # how many steps wait in the inbox ("100+" past a full page)
    admin: bool = False  # whether the navigation links to the organisation


def signed_in(
    request: Request[Any, Any, Any],
    site: NamedDependency[Site],
    org: NamedDependency[OrgService],
    access: NamedDependency[AccessService],
) -> Viewer:
    """The person whose session the request carries; for a session signed in with an API
    token, only while that token is neither revoked nor expired (one read either way).

    Raises:
        SignInRequired: no session, an anonymous one, an ended one, a person who has left, or
            a token revoked or run out since the sign-in.
    """
    session = site.session_of(request)
    if session is None or session.user_id is None:
        raise SignInRequired
    try:
        if session.token_id is None:
            member = org.user(session.user_id)
        else:
            member = access.signed_in_with(session.token_id)
    except (NotFound, Unauthenticated):
        raise SignInRequired from None
    if not member.user.active or member.id != session.user_id:
        raise SignInRequired
    viewer = Viewer(member, site.sessions.csrf_token(session))
    request.state[VIEWER_STATE] = viewer  # so an error page's navigation is theirs too
    return viewer


def signed_in_viewer(request: Request[Any, Any, Any]) -> Viewer | None:
    """The person `signed_in` found for this request, if a handler asked for them."""
    viewer = request.state.get(VIEWER_STATE)
    return viewer if isinstance(viewer, Viewer) else None


def waiting(expenses: ExpenseService, viewer: Viewer) -> str:
    """The count the navigation shows beside Inbox: one page of the inbox, counted."""
    inbox = expenses.inbox(viewer.id, viewer.reader, limit=MAX_PAGE)
    return waiting_count(len(inbox.items), more=inbox.next_cursor is not None)


def policy_choices(org: OrgService, viewer: Viewer) -> dict[str, Any]:
    """What an expense form offers: the company's active policies, and their categories."""
    policies = [info.policy for info in org.policies(viewer.company_id) if info.policy.active]
    return {"policies": policies, "categories": sorted({p.category for p in policies})}


def waiting_count(count: int, *, more: bool) -> str:
    return f"{count}+" if more else str(count)


def render(
    template: str,
    viewer: Viewer | Nav | None,
    *,
    waiting: str | None = None,
    status_code: int = 200,
    cookies: Iterable[Cookie] = (),
    headers: dict[str, str] | None = None,
    here: str = "",
    **context: Any,
) -> Template:
    """A page: the template with the navigation (when someone is signed in) and `context`."""
    nav = (
        Nav(viewer.csrf, viewer.name, waiting, viewer.member.user.role is Role.ADMIN)
        if isinstance(viewer, Viewer)
        else viewer
    )
    csrf = context.pop("csrf", None) or (None if nav is None else nav.csrf)
    return Template(
        template_name=template,
        context={"nav": nav, "csrf": csrf, "here": here, **context},
        status_code=status_code,
        cookies=list(cookies),
        headers=headers,
    )


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """Whether htmx sent the request (and so wants a fragment, not a page)."""
    return request.headers.get("hx-request") == "true"


SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_check(site: Site) -> Callable[[Request[Any, Any, Any]], Awaitable[None]]:
    """The hook that refuses, before any handler runs, a form posted without its session's
    CSRF token (403): nothing is read from it and nothing changes."""

    async def check(request: Request[Any, Any, Any]) -> None:
        if request.method in SAFE_METHODS:
            return
        form = await request.form()
        token = form.get(CSRF_FIELD)
        if not site.sessions.csrf_matches(
            site.session_of(request), token if isinstance(token, str) else None
        ):
            raise PermissionDeniedException("the form's CSRF token is missing or not its session's")

    return check
