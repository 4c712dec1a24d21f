"""AUTH_MODE=oidc in a real headless Chromium: a real server process trusting the tests' local
issuer (`tests/oidc/issuer.py`), and a person who presses its button, is sent to the issuer,
which approves at once, and lands back on the pages signed in."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.conftest import (
    Server,
    _stop,
    _wait_until_ready,
    cli_command,
    environment,
    free_port,
    run_cli,
)
from tests.oidc.issuer import AUDIENCE, AUTHORIZE, GRACE_EMAIL, TOKEN, LocalIssuer
from tests.web.browser import DESKTOP, Browser

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


@pytest.fixture(scope="module")
def oidc_site(tmp_path_factory: pytest.TempPathFactory, issuer: LocalIssuer) -> Iterator[Server]:
    """`expense-tracker serve` in oidc mode on a new SQLite file seeded with the demo company,
    trusting `issuer` for it, its PUBLIC_URL its own address."""
    folder = tmp_path_factory.mktemp("oidc-site")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = environment(
        DATABASE_URL=f"sqlite:///{folder / 'expense_tracker.db'}",
        HOST="127.0.0.1",
        PORT=str(port),
        SESSION_SECRET="oidc-pages-under-test",  # noqa: S106 -- a throwaway server's
        AUTH_MODE="oidc",
        OIDC_ISSUER=f"{issuer.url}=1",
        OIDC_AUDIENCE=AUDIENCE,
        PUBLIC_URL=base_url,
    )
    for command in (("db", "upgrade"), ("seed", "demo")):
        done = run_cli(*command, env=env)
        assert done.returncode == 0, done.stderr
    log = folder / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 -- our own command
            [*cli_command(), "serve"],
            env={**env, "LOG_LEVEL": "INFO"},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_ready(process, base_url, log)
        yield Server(base_url, env, log, process)
    finally:
        _stop(process)
        # Shown by pytest only when a test failed: what the server said meanwhile.
        sys.stdout.write(f"--- {log.name}\n{log.read_text(errors='replace')}")


@pytest.fixture
def browser(chromium_driver: WebDriver, oidc_site: Server) -> Browser:
    chromium_driver.set_window_size(*DESKTOP)
    chromium_driver.get(f"{oidc_site.base_url}/app/static/app.css")
    chromium_driver.delete_all_cookies()
    return Browser(chromium_driver, oidc_site.base_url)


def test_pressing_the_issuers_button_signs_in_there_and_lands_on_my_expenses(
    browser: Browser, issuer: LocalIssuer
) -> None:
    browser.open("/app/")
    assert browser.heading() == "Sign in"
    assert browser.driver.find_elements(By.NAME, "token") == []
    assert browser.unnamed_controls() == []

    browser.press(f"Sign in with {urlsplit(issuer.url).netloc}")

    assert browser.heading() == "My expenses", browser.text()
    assert browser.path == "/app/expenses"
    assert "Grace Taylor" in browser.driver.find_element(By.TAG_NAME, "nav").text
    # The browser went to the issuer and back; the server exchanged the code itself.
    assert issuer.asked.count(AUTHORIZE) == 1
    assert issuer.asked.count(TOKEN) == 1
    browser.sign_out()
    assert browser.driver.find_elements(By.NAME, "issuer") != []


def test_a_person_unknown_to_the_company_is_told_so_and_stays_signed_out(
    browser: Browser, issuer: LocalIssuer
) -> None:
    issuer.desk.email = "stranger@techcorp.com"
    try:
        browser.open("/app/")
        browser.press(f"Sign in with {urlsplit(issuer.url).netloc}")
    finally:
        issuer.desk.email = GRACE_EMAIL

    assert browser.heading() == "Sign in"
    error = browser.driver.find_element(By.ID, "oidc-error").text
    assert "no user of company 1 has the e-mail address stranger@techcorp.com" in error
    browser.open("/app/expenses")
    assert browser.heading() == "Sign in"
