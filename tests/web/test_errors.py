"""Errors as pages: a database that is down, nobody signed in under htmx, a path beside /app/."""

from __future__ import annotations

from entrypoints.container import container_for
from entrypoints.settings import Settings
from tests.web.conftest import browsers
from tests.web.support import Visitor, text_of

UNREACHABLE = "postgresql+psycopg://nobody:nothing@127.0.0.1:1/none?connect_timeout=2"


def test_a_database_that_is_down_is_a_page_that_says_try_again() -> None:
    visitors = browsers(container_for(Settings(database_url=UNREACHABLE)))
    try:
        answer = next(visitors)().get("/app/")
    finally:
        visitors.close()

    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
    assert "Try again shortly" in text_of(answer.text)
    assert "psycopg" not in answer.text


def test_htmx_is_told_where_to_sign_in(visitor: Visitor) -> None:
    answer = visitor.get("/app/inbox", **{"HX-Request": "true"})

    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/app/"


def test_sign_in_answers_with_and_without_its_slash(visitor: Visitor) -> None:
    assert visitor.get("/app").status_code == visitor.get("/app/").status_code == 200
