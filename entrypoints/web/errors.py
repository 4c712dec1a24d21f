"""Errors as pages: the same statuses as the API (`entrypoints.http.errors` decides them), told
in words on a page that keeps the navigation; nobody signed in is sent to sign in."""

from __future__ import annotations

import logging
from typing import Any, Final

from litestar import Request, Response
from litestar.exceptions import HTTPException, PermissionDeniedException, ValidationException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap

from entrypoints.http.errors import RETRY_AFTER_SECONDS, request_id_of, status_of
from entrypoints.web.session import Session
from entrypoints.web.site import (
    HOME,
    Nav,
    SignInRequired,
    Site,
    Viewer,
    is_htmx,
    render,
    signed_in_viewer,
)
from entrypoints.web.views import in_words
from expense_core.errors import DomainError

log = logging.getLogger("expense_tracker.web")

CSRF_REFUSED: Final = (
    "This form has expired or did not come from this site, so nothing was changed. "
    "Go back, reload the page and try again."
)
TITLES: Final = {
    400: "That was not understood",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "That cannot be done now",
    503: "Try again shortly",
}
EXPLANATIONS: Final = {
    404: "There is no such page, or what it shows is not yours to see.",
    503: "The database cannot be reached right now. Nothing was changed; "
    "try again in a few seconds.",
}


def page_error_handlers(site: Site) -> ExceptionHandlersMap:
    """The exception handlers of the pages' router."""

    def error_page(
        request: Request[Any, Any, Any],
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response[Any]:
        # The navigation without the inbox count: an error page reads nothing more. The person
        # is the one the handler had already read, if it got that far (see `signed_in`).
        viewer: Viewer | Nav | None = signed_in_viewer(request)
        session = site.session_of(request)
        if viewer is None and session is not None and session.user_id is not None:
            viewer = Nav(site.sessions.csrf_token(session))
        return render(
            "error.html",
            viewer,
            status_code=status,
            headers=headers,
            title=TITLES.get(status, "Something went wrong"),
            message=message,
        )

    def sign_in_first(request: Request[Any, Any, Any], _: SignInRequired) -> Response[Any]:
        # A fresh anonymous session replaces an ended one, so the sign-in page shows its form.
        cookie = site.cookie(request, Session.anonymous())
        if is_htmx(request):
            return Response(
                content="", status_code=401, headers={"HX-Redirect": HOME}, cookies=[cookie]
            )
        return Redirect(HOME, status_code=303, cookies=[cookie])

    def refused(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
        status = status_of(exc)
        if status == 500:
            return unexpected(request, exc)
        if status == 404:
            return error_page(request, status, EXPLANATIONS[404])
        if status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return error_page(request, status, EXPLANATIONS[503], headers)
        return error_page(request, status, in_words(exc))

    def forbidden(request: Request[Any, Any, Any], _: PermissionDeniedException) -> Response[Any]:
        return error_page(request, 403, CSRF_REFUSED)

    def invalid(request: Request[Any, Any, Any], _: ValidationException) -> Response[Any]:
        return error_page(request, 400, "The request had a value this page cannot read.")

    def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        if exc.status_code >= 500:
            return unexpected(request, exc)
        if exc.status_code == 404:
            return error_page(request, 404, EXPLANATIONS[404])
        return error_page(request, exc.status_code, str(exc.detail))

    def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        request_id = request_id_of(request)
        log.error(
            "unexpected error (request %s, %s %s)",
            request_id,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        message = f"Something broke on our side. Quote request id {request_id} when reporting it."
        return error_page(request, 500, message)

    return {
        SignInRequired: sign_in_first,
        DomainError: refused,
        PermissionDeniedException: forbidden,
        ValidationException: invalid,
        HTTPException: http_error,
        Exception: unexpected,
    }
