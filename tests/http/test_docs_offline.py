"""/docs and /redoc work without internet: every script, style and icon they load is served
here, from the package that ships them (openapi-ui-bundles), nothing in either page names another
host, and each page's Content-Security-Policy lets a browser load nothing from elsewhere (what the
scripts ask for at run time is checked in Chromium: tests/web/test_docs_browser.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.http.conftest import Client

# Anything that could make a browser reach another host: a scheme-relative or absolute URL.
ELSEWHERE = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s\"'<>]+", re.IGNORECASE)


class Loads(HTMLParser):
    """The URLs a page makes a browser load (scripts, styles, icons, images, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_documentation_page_loads_nothing_from_another_host(client: Client, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    loads = Loads()
    loads.feed(html)

    assert loads.urls, "the page loads its scripts"
    assert all(url.startswith("/docs/assets/") for url in loads.urls), loads.urls
    assert ELSEWHERE.findall(html) == []
    for url in loads.urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0


def test_the_pages_load_their_own_ui(client: Client) -> None:
    swagger, redoc = Loads(), Loads()
    swagger.feed(client.get("/docs").text)
    redoc.feed(client.get("/redoc").text)

    assert any(url.endswith("swagger-ui-bundle.js") for url in swagger.urls)
    assert any(url.endswith("redoc.standalone.js") for url in redoc.urls)
    script = client.get("/docs/assets/redoc.standalone.js")
    assert script.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_documentation_page_lets_a_browser_load_only_from_here(client: Client, page: str) -> None:
    policy = client.get(page).headers["content-security-policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))

    assert directives["default-src"] == "'self'"
    assert directives["base-uri"] == "'none'"
    allowed = {"'self'", "'unsafe-inline'", "'none'", "data:", "blob:"}
    for name, sources in directives.items():
        assert set(sources.split()) <= allowed, (name, sources)


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui-standalone-preset.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
        ("redoc.standalone.js", "text/javascript"),
    ],
)
def test_each_asset_is_served_with_its_type_for_a_day(
    client: Client, name: str, media_type: str
) -> None:
    asset = client.get(f"/docs/assets/{name}")

    assert asset.status_code == 200
    assert asset.headers["content-type"].split(";")[0] == media_type
    assert asset.headers["cache-control"] == "public, max-age=86400"
    assert asset.headers["content-disposition"].startswith("inline")
    assert len(asset.content) > 500


@pytest.mark.parametrize(
    "path",
    [
        "/docs/assets/nothing.js",
        "/docs/assets/..%2F..%2Fpyproject.toml",
        "/docs/assets/",
        "/docs/assets/index.html",
        "/docs/assets/logo-mini.svg",
        "/docs/assets/__init__.py",
    ],
)
def test_only_the_shipped_assets_are_served(client: Client, path: str) -> None:
    assert client.get(path).status_code == 404
