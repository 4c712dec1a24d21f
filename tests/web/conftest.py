"""The pages on the in-memory adapter through Litestar's test client (`visitor`, `visit`), and
on a real server process driven by a headless Chromium (`tests/web/test_browser.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from litestar.testing import TestClient

from entrypoints.container import Container
from entrypoints.http import create_app
from entrypoints.settings import AuthMode
from tests.http.conftest import OtherCompany, add_other_company, memory_container
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
