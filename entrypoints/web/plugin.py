"""The pages as one Litestar plugin: their router under /app (its dependencies, CSRF hook and
error pages), the static files (htmx, CSS) under /app/static, and the Jinja templates.

`create_app` registers it with one line; the pages share the app's services through the
container, and nothing of theirs reaches the API's routes.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Router
from litestar.config.app import AppConfig
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from entrypoints.container import Container
from entrypoints.ports import SignInFlow
from entrypoints.settings import AuthMode
from entrypoints.web.errors import page_error_handlers
from entrypoints.web.links import SignInLinkPages
from entrypoints.web.oidc import Flows, OidcSignInPages, issuer_choices
from entrypoints.web.organisation import OrganisationPages
from entrypoints.web.pages import ExpensePages, InboxPages, SignInPages
from entrypoints.web.resubmit import ResubmitPages
from entrypoints.web.session import SECRET_VARIABLE, Sessions
from entrypoints.web.site import Site, csrf_check, signed_in
from entrypoints.web.views import instant, money, shown_time
from expense_core.services import (
    AccessService,
    ExpenseService,
    OrgService,
    SignInLinks,
    SignOnService,
)

log = logging.getLogger("expense_tracker.web")

HERE: Final = Path(__file__).resolve().parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"
STATIC_MAX_AGE_S: Final = 3600


def environment() -> Environment:
    """The Jinja environment of the pages: autoescaped, and strict about unknown names."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, instant=instant, shown_time=shown_time)
    return env


class WebPages(InitPluginProtocol):
    """Pages for people over the container's services.

    Sessions are signed with `secret`, by default the settings' `session_secret`
    (SESSION_SECRET, which `serve` draws for its workers when unset); without one a random
    secret is drawn, so sign-ins end with the process and, with several workers, hold only on
    the worker that made them (a warning says so at start).
    """

    def __init__(self, container: Container, secret: str | None = None) -> None:
        self._container = container
        given = container.settings().session_secret if secret is None else secret
        self._secret_given = bool(given)
        self._secret = given or secrets.token_urlsafe(32)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        container = self._container
        settings = container.settings()
        site = Site(
            sessions=Sessions(self._secret),
            auth_mode=settings.auth_mode,
            clock=container.clock(),
            issuers=issuer_choices([url for url, _ in settings.oidc_issuers])
            if settings.auth_mode is AuthMode.OIDC
            else (),
        )

        def the_site() -> Site:
            return site

        def expenses() -> ExpenseService:
            return container.expenses()

        def org() -> OrgService:
            return container.org()

        def access() -> AccessService:
            return container.access()

        def sign_in_links() -> SignInLinks:
            return SignInLinks(container.new_uow(), container.clock())

        handlers: list[type] = [
            SignInPages,
            ExpensePages,
            InboxPages,
            ResubmitPages,
            OrganisationPages,
            SignInLinkPages,
        ]
        dependencies = {
            "site": Provide(the_site, sync_to_thread=False),
            "expenses": Provide(expenses, sync_to_thread=False),
            "org": Provide(org, sync_to_thread=False),
            "access": Provide(access, sync_to_thread=False),
            "links": Provide(sign_in_links, sync_to_thread=False),
            "viewer": Provide(signed_in, sync_to_thread=True),
        }
        if settings.auth_mode is AuthMode.OIDC:
            # Sign-in at the identity provider: the pages' only way in with AUTH_MODE=oidc.
            flows = Flows(self._secret)

            def the_flows() -> Flows:
                return flows

            def sign_in_flow() -> SignInFlow:
                flow = container.sign_in_flow()
                assert flow is not None  # noqa: S101 -- the container makes one for oidc
                return flow

            def sign_on() -> SignOnService:
                return container.sign_on()

            handlers.append(OidcSignInPages)
            dependencies |= {
                "flows": Provide(the_flows, sync_to_thread=False),
                "sign_in_flow": Provide(sign_in_flow, sync_to_thread=False),
                "sign_on": Provide(sign_on, sync_to_thread=False),
            }
        pages = Router(
            path="/app",
            route_handlers=handlers,
            dependencies=dependencies,
            before_request=csrf_check(site),
            exception_handlers=page_error_handlers(site),
            include_in_schema=False,
        )
        static = create_static_files_router(
            path="/app/static",
            directories=[STATIC],
            name="web_static",
            cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE_S),
            include_in_schema=False,
        )
        app_config.route_handlers = [*app_config.route_handlers, pages, static]
        app_config.template_config = TemplateConfig(
            instance=JinjaTemplateEngine.from_environment(environment())
        )
        app_config.on_startup = [*app_config.on_startup, self._warn_without_secret]
        return app_config

    def _warn_without_secret(self) -> None:
        if not self._secret_given:
            log.warning(
                "%s is not set: sign-ins to the pages end when this process stops and, with "
                "several workers, hold only on the worker that made them; set it to a long "
                "random value shared by every worker",
                SECRET_VARIABLE,
            )
