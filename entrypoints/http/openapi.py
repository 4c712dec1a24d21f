"""The API's documentation: the OpenAPI document and the one place it is read, the seed's paths.

Swagger UI at /docs, ReDoc at /redoc, the document at /openapi.json, drawn by Litestar's render
plugins from scripts served here (/docs/assets/, shipped in a package), so the pages work on a
machine without internet and name no other host; Litestar's own /schema answers 404. The
document is Litestar's, finished here: links from a submission to what a client can do next
with its ids, and `additionalProperties: false` on the bodies that refuse unknown fields.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Final

import msgspec
from litestar import Litestar, Request, Router, get
from litestar.connection import ASGIConnection
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.params import PathParameter
from litestar.response import File

from entrypoints.http import admin_schemas, expense_schemas
from entrypoints.settings import AuthMode, Settings

DESCRIPTION: Final = """\
A B2B expense tracker with hierarchical, policy-driven, multi-step approval workflows.

Errors are JSON `{"detail": ..., "code": ...}`: `detail` for people, `code` (stable) for programs.
Amounts are JSON numbers (or decimal strings) with at most 2 decimal places, read exactly.

**AUTH_MODE=demo** (the seed's contract): the actor is the id in the body or query; anyone can
act as anyone. **AUTH_MODE=token**: send `Authorization: Bearer <token>` (issued with
`expense-tracker token issue --user-id N`); the actor is the token's user, every read is confined
to their company, and a body id naming someone else is refused (403).
"""

# OpenAPI links: what a client (or a stateful test) can do next with an answer's ids.
_EXPENSE_ID = {"expense_id": "$response.body#/expense_id"}
_READ_NEXT = {
    "status": ("ApiExpensesExpenseIdStatusStatus", _EXPENSE_ID, None),
    "history": ("ApiExpensesExpenseIdHistoryHistory", _EXPENSE_ID, None),
}
_FIRST_APPROVER = "$response.body#/approvals_required/0/approver_id"
LINKS: Final[dict[tuple[str, str, str], dict[str, tuple[str, Any, Any]]]] = {
    ("/api/expenses", "post", "201"): {
        **_READ_NEXT,
        "approve_first_step": (
            "ApiExpensesApproveApprove",
            None,
            {"expense_id": "$response.body#/expense_id", "approver_id": _FIRST_APPROVER},
        ),
        "reject_at_first_step": (
            "ApiExpensesRejectReject",
            None,
            {
                "expense_id": "$response.body#/expense_id",
                "approver_id": _FIRST_APPROVER,
                "reason": "over budget",
            },
        ),
        "withdraw": (
            "ApiExpensesExpenseIdWithdrawWithdraw",
            _EXPENSE_ID,
            {"user_id": "$request.body#/user_id"},
        ),
        "explain_approvers": ("ApiExpensesExpenseIdApproversExplainExplain", _EXPENSE_ID, None),
        "send_back_from_first_step": (
            "ApiExpensesSendBackSendBack",
            None,
            {
                "expense_id": "$response.body#/expense_id",
                "approver_id": _FIRST_APPROVER,
                "reason": "receipts, please",
            },
        ),
    },
    ("/api/expenses/approve", "post", "200"): _READ_NEXT,
    ("/api/expenses/reject", "post", "200"): _READ_NEXT,
    ("/api/expenses/{expense_id}/withdraw", "post", "200"): _READ_NEXT,
}
BODY_MODULES: Final[tuple[ModuleType, ...]] = (expense_schemas, admin_schemas)


def _closed_bodies() -> frozenset[str]:
    """The wire schemas that refuse unknown fields (422), by name."""
    return frozenset(
        name
        for module in BODY_MODULES
        for name, value in vars(module).items()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__struct_config__.forbid_unknown_fields
    )


def openapi_document(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document, with the links from a submission to its decisions and reads, and
    `additionalProperties: false` on the bodies that refuse unknown fields (as they do: a
    client reading the document must not believe that extra fields are accepted)."""
    document = app.openapi_schema.to_schema()
    components = document.get("components", {}).get("schemas", {})
    for name in _closed_bodies() & components.keys():
        components[name]["additionalProperties"] = False
    paths = document.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {
                "operationId": operation,
                **({"parameters": parameters} if parameters else {}),
                **({"requestBody": body} if body else {}),
            }
            for name, (operation, parameters, body) in links.items()
        }
    return document


# Swagger UI's and ReDoc's own distributions, as openapi-ui-bundles ships them (static files
# only, no dependencies): each name served, the folder of the package it lies in, its type.
ASSETS_PATH: Final = "/docs/assets"
_BUNDLES: Final = "openapi_ui_bundles"
ASSETS: Final = {
    "swagger-ui-bundle.js": ("swagger_ui/vendor", "text/javascript"),
    "swagger-ui-standalone-preset.js": ("swagger_ui/vendor", "text/javascript"),
    "swagger-ui.css": ("swagger_ui/vendor", "text/css"),
    "favicon-32x32.png": ("swagger_ui/vendor", "image/png"),
    "redoc.standalone.js": ("redoc/vendor", "text/javascript"),
}
# What the pages may load: this server's files alone (inline, the page's own script and styles,
# data: the images in Swagger UI's styles, blob: ReDoc's search worker). A browser so refuses
# what the scripts would fetch from elsewhere: ReDoc's side menu draws Redocly's logo from its CDN.
PAGE_POLICY: Final = {
    "Content-Security-Policy": "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline' blob:",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "worker-src 'self' blob:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        )
    )
}
_FAVICON: Final = f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>"


def asset_file(name: str) -> Path:
    """Where one of `ASSETS` lies in the installed package.

    Raises:
        NotFoundException: a name that is not one of them.
    """
    if name not in ASSETS:
        raise NotFoundException
    folder, _ = ASSETS[name]
    return Path(str(resources.files(_BUNDLES).joinpath(*folder.split("/"), name)))


_SWAGGER = SwaggerRenderPlugin(
    js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
    css_url=f"{ASSETS_PATH}/swagger-ui.css",
    standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
    favicon=_FAVICON,
)
_REDOC = RedocRenderPlugin(
    js_url=f"{ASSETS_PATH}/redoc.standalone.js", google_fonts=False, favicon=_FAVICON
)


@get(
    "/docs",
    media_type=MediaType.HTML,
    response_headers=PAGE_POLICY,
    include_in_schema=False,
    sync_to_thread=False,
)
def swagger_ui(request: Request[Any, Any, Any]) -> bytes:
    return _SWAGGER.render(request, openapi_document(request.app))


@get(
    "/redoc",
    media_type=MediaType.HTML,
    response_headers=PAGE_POLICY,
    include_in_schema=False,
    sync_to_thread=False,
)
def redoc(request: Request[Any, Any, Any]) -> bytes:
    return _REDOC.render(request, openapi_document(request.app))


@get("/openapi.json", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return openapi_document(request.app)


@get(
    f"{ASSETS_PATH}/{{name:str}}",
    include_in_schema=False,
    sync_to_thread=False,
)
def docs_asset(name: Annotated[str, PathParameter(max_length=64)]) -> File:
    return File(
        asset_file(name),
        content_disposition_type="inline",
        media_type=ASSETS[name][1],
        headers={"Cache-Control": "public, max-age=86400"},
    )


DOCUMENTATION: Final = (swagger_ui, redoc, openapi_json, docs_asset)


def _elsewhere(_: ASGIConnection[Any, Any, Any, Any], __: BaseRouteHandler) -> None:
    raise NotFoundException


def openapi_config(settings: Settings, version: str) -> OpenAPIConfig:
    """The document's title, tags and security, and where Litestar's own pages go: nowhere.

    Litestar always mounts a router of its own for them (at /schema), and cannot mount it at
    the root, where the seed put the pages: its default page takes the router's root, which is
    the seed's health check (`Handler already registered for path '/'`). So the seed's paths are
    served above (`DOCUMENTATION`), and Litestar's router answers 404, as any unknown path.
    """
    token = settings.auth_mode is not AuthMode.DEMO
    return OpenAPIConfig(
        title="Expense Tracker API",
        version=version,
        description=DESCRIPTION,
        tags=[
            Tag(name="expenses", description="Submit, decide on and read expenses."),
            Tag(name="health", description="Liveness and readiness."),
            Tag(name="admin", description="Companies, teams, levels, users and policies."),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description=(
                        "A token from `expense-tracker token issue` (AUTH_MODE=token), or a JWT "
                        "of a trusted OpenID Connect issuer (AUTH_MODE=oidc)."
                    ),
                )
            }
        ),
        security=[{"bearer": []}] if token else None,
        openapi_router=Router(
            "/schema", route_handlers=[], include_in_schema=False, guards=[_elsewhere]
        ),
        render_plugins=[JsonRenderPlugin()],
    )
