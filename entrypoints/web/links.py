"""One-time sign-in links (`expense-tracker token link`): the link's page names whom it signs
in and asks to confirm, so a mail scanner that opens links spends nothing; confirming spends
the link and signs in."""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from entrypoints.http.schemas import NO_NUL
from entrypoints.web.session import Session
from entrypoints.web.site import MY_EXPENSES, Site, render
from entrypoints.web.views import in_words
from expense_core.errors import Unauthenticated
from expense_core.services import SignInLinks

# The code is in the address: no page of ours hands it on to another site.
PRIVATE: Final = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
Code = Annotated[str, QueryParameter(required=False, max_length=200)]


class LinkForm(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(pattern=NO_NUL, max_length=200)] = ""


LinkBody = Annotated[LinkForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


class SignInLinkPages(Controller):
    """The page of a sign-in link, and its confirmation."""

    path = "/sign-in/link"

    @get("/", sync_to_thread=True)
    def link(
        self,
        request: Request[Any, Any, Any],
        site: NamedDependency[Site],
        links: NamedDependency[SignInLinks],
        code: Code = "",
    ) -> Response[Any]:
        session = site.session_of(request)
        cookies: list[Cookie] = []
        if session is None or session.user_id is not None:
            # A fresh anonymous session carries the confirmation's CSRF token.
            session = Session.anonymous()
            cookies.append(site.cookie(request, session))
        try:
            holder = links.holder(code)
        except Unauthenticated as refused:
            return _refused(site, session, refused, cookies)
        return render(
            "sign_in_link.html",
            None,
            csrf=site.sessions.csrf_token(session),
            code=code,
            name=holder.user.name,
            error=None,
            cookies=cookies,
            headers=PRIVATE,
        )

    @post("/", sync_to_thread=True, status_code=303)
    def confirm(
        self,
        request: Request[Any, Any, Any],
        data: LinkBody,
        site: NamedDependency[Site],
        links: NamedDependency[SignInLinks],
    ) -> Response[Any]:
        try:
            member = links.redeem(data.code)
        except Unauthenticated as refused:
            return _refused(site, site.session_of(request) or Session.anonymous(), refused, [])
        session = Session.signed_in(member.id, site.clock.now())
        return Redirect(MY_EXPENSES, status_code=303, cookies=[site.cookie(request, session)])


def _refused(
    site: Site, session: Session, refused: Unauthenticated, cookies: list[Cookie]
) -> Template:
    return render(
        "sign_in_link.html",
        None,
        csrf=site.sessions.csrf_token(session),
        code="",
        name=None,
        error=in_words(refused),
        status_code=401,
        cookies=cookies,
        headers=PRIVATE,
    )
