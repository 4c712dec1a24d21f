"""The pages on the in-memory adapter through Litestar's test client (`visitor`, `visit`), and
on a real server process driven by a headless Chromium (`tests/web/test_browser.py`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient
from selenium.webdriver.remote.webdriver import WebDriver

from entrypoints.container import Container
from entrypoints.http import create_app
from entrypoints.settings import AuthMode
from tests.e2e.conftest import Server
from tests.http.conftest import OtherCompany, add_other_company, memory_container
from tests.web.browser import DESKTOP, Browser, ChromiumMissing, chromium, site
from tests.web.support import Visitor

Visit = Callable[[], Visitor]


@pytest.fixture
def container() -> Container:
    return memory_container()


@pytest.fixture
def other(container: Container) -> OtherCompany:
    return add_other_company(container.org())


def browsers(container: Container, base_url: str = "http://testserver.local") -> Iterator[Visit]:
    """Open new browsers (cookie jars of their own) on one app, served by one test client."""
    with TestClient(create_app(container), base_url=base_url) as client:
        yield lambda: Visitor(client)


@pytest.fixture
def visit(container: Container) -> Iterator[Visit]:
    yield from browsers(container)


@pytest.fixture
def visitor(visit: Visit) -> Visitor:
    return visit()


@pytest.fixture
def token_container() -> Container:
    return memory_container(AuthMode.TOKEN)


# --- a real server process and a real headless Chromium ------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def chromium_driver() -> Iterator[WebDriver]:
    """The session's headless Chromium; in CI, not having one fails the run."""
    try:
        driver = chromium()
    except ChromiumMissing as exc:
        if _in_ci():
            pytest.fail(f"CI runs every browser test, but Chromium is missing: {exc}")
        pytest.skip(f"!!! NO CHROMIUM: {exc} to run the browser tests (in CI a failure) !!!")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def web_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a module's browser tests (they work on expenses of their own)."""
    with site(tmp_path_factory.mktemp("web-site")) as server:
        yield server
        # Shown by pytest only when a test failed: what the server said meanwhile.
        sys.stdout.write(f"--- {server.log.name}\n{server.log.read_text(errors='replace')}")


@pytest.fixture
def browser(chromium_driver: WebDriver, web_site: Server) -> Browser:
    """The browser at the site, at desktop size, with nobody signed in."""
    chromium_driver.set_window_size(*DESKTOP)
    chromium_driver.get(f"{web_site.base_url}/app/static/app.css")
    chromium_driver.delete_all_cookies()
    return Browser(chromium_driver, web_site.base_url)
