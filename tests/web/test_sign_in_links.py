"""One-time sign-in links on the pages: the link's page names whom it signs in, confirming
signs in once; a used, expired or forged link signs nobody in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from entrypoints.container import Container
from entrypoints.mail import sign_in_link_url as link_url
from expense_core.model import UserId
from expense_core.services import SignInLinks
from tests.e2e.conftest import environment, run_cli
from tests.web.conftest import Visit, browsers
from tests.web.support import csrf_of, text_of


@pytest.fixture
def token_visit(token_container: Container) -> Iterator[Visit]:
    yield from browsers(token_container)


def a_link(container: Container, user: int = 6) -> str:
    issued = SignInLinks(container.new_uow(), container.clock()).issue(UserId(user))
    return link_url("http://testserver.local", issued.code).removeprefix("http://testserver.local")


def test_a_link_signs_in_once(token_visit: Visit, token_container: Container) -> None:
    link = a_link(token_container)
    first, second = token_visit(), token_visit()

    page = first.get(link)
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"
    assert ">Sign in as Frank Miller</button>" in page.text
    answer = first.post(
        "/app/sign-in/link", {"csrf_token": csrf_of(page.text), "code": link.split("code=")[1]}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/expenses"
    assert "Frank Miller" in first.get("/app/expenses").text

    again = second.get(link)
    assert again.status_code == 401
    assert "The sign-in link was used already." in text_of(again.text)
    assert second.get("/app/expenses").headers["location"] == "/app/"


def test_opening_the_link_spends_nothing(token_visit: Visit, token_container: Container) -> None:
    link = a_link(token_container)
    visitor = token_visit()

    visitor.get(link)
    shown = visitor.get(link)

    assert ">Sign in as Frank Miller</button>" in shown.text


def test_a_forged_code_or_form_signs_nobody_in(
    token_visit: Visit, token_container: Container
) -> None:
    link = a_link(token_container)
    code = link.split("code=")[1]
    visitor = token_visit()
    page = visitor.get(link)

    forged = visitor.get("/app/sign-in/link?code=0123456789abcdef.nope")
    without_csrf = visitor.post("/app/sign-in/link", {"code": code})
    wrong = visitor.post(
        "/app/sign-in/link", {"csrf_token": csrf_of(page.text), "code": code + "x"}
    )

    assert forged.status_code == wrong.status_code == 401
    assert "The sign-in link is unknown." in text_of(forged.text)
    assert without_csrf.status_code == 403
    assert visitor.get("/app/expenses").headers["location"] == "/app/"
    assert ">Sign in as Frank Miller</button>" in visitor.get(link).text  # still unspent


@pytest.mark.e2e
def test_the_command_prints_a_link_under_the_public_url(tmp_path: Path) -> None:
    env = environment(
        DATABASE_URL=f"sqlite:///{tmp_path / 'links.db'}", PUBLIC_URL="https://pay.example/"
    )
    for command in (("db", "upgrade"), ("seed", "demo")):
        assert run_cli(*command, env=env).returncode == 0

    done = run_cli("token", "link", "--user-id", "6", env=env)
    listed = run_cli("token", "list", "--user-id", "6", env=env)

    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"https://pay\.example/app/sign-in/link\?code=[0-9a-f]{16}\.\S+", link)
    assert "sign-in link" in listed.stdout
