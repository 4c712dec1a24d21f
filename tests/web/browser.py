"""A person at the pages in a real headless Chromium (Debian's `chromium` and `chromium-driver`
through Selenium), on a real server process: the site, the browser, and what people do there.

`python -m tests.web.screenshots` uses the same pieces to draw docs/screenshots/.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import attrs
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.conftest import (
    Server,
    _stop,
    _wait_until_ready,
    cli_command,
    environment,
    free_port,
    run_cli,
)

WAIT_S: Final = 15.0
DESKTOP: Final = (1280, 900)
PHONE: Final = (375, 812)
CONTROLS: Final = "input:not([type=hidden]), select, textarea, button"
# A second company, imported beside the seed's: its people must never see TechCorp's expenses.
GLOBEX: Final = """\
company: Globex
teams:
- name: Engineering
  company_wide: false
  levels:
  - {number: 2, name: Lead}
  - {number: 5, name: Engineer}
users:
- {email: hank@globex.example, name: Hank Scorpio, team: Engineering, level: 2, manager: null,
   role: admin, active: true}
- {email: homer@globex.example, name: Homer Simpson, team: Engineering, level: 5,
   manager: hank@globex.example, role: employee, active: true}
policies:
- name: Globex Equipment
  category: equipment
  description: Anything
  min_amount: '0.00'
  max_amount: '5000.00'
  active: true
  steps:
  - {required_level: 2, team_scope: submitter, is_required: true, description: Lead approval}
"""


class ChromiumMissing(Exception):
    """Debian's chromium or chromium-driver is not installed."""


def chromium() -> WebDriver:
    """A new headless Chromium, driven by the system's chromedriver (never a downloaded one)."""
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        raise ChromiumMissing("apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in CI and containers has no user namespace sandbox
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--lang=en-GB",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


@contextmanager
def site(folder: Path, **settings: str) -> Iterator[Server]:
    """`expense-tracker serve` on a new SQLite file: migrated, seeded with the demo company and
    Globex beside it, on a free port, with `settings` (e.g. AUTH_MODE) in its environment;
    stopped on exit."""
    port = free_port()
    env = environment(
        DATABASE_URL=f"sqlite:///{folder / 'expense_tracker.db'}",
        HOST="127.0.0.1",
        PORT=str(port),
        SESSION_SECRET="pages-under-test",  # noqa: S106 -- a throwaway server's
        **settings,
    )
    org_file = folder / "globex.yaml"
    org_file.write_text(GLOBEX)
    for command in (("db", "upgrade"), ("seed", "demo"), ("org", "import", str(org_file))):
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
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(process, base_url, log)
        yield Server(base_url, env, log)
    finally:
        _stop(process)


@attrs.frozen
class Browser:
    """One browser at the site, and what a person does there, waiting (never sleeping) for
    each page or swap to arrive."""

    driver: WebDriver
    base_url: str

    def wait(self) -> WebDriverWait[WebDriver]:
        # A condition that meets a page or an htmx swap half-way is asked again: Chromium says
        # so with a stale reference or with "does not belong to the document" alike.
        return WebDriverWait(self.driver, WAIT_S, ignored_exceptions=(WebDriverException,))

    def open(self, path: str) -> None:
        self.driver.get(f"{self.base_url}{path}")

    @property
    def path(self) -> str:
        url = self.driver.current_url
        return url.removeprefix(self.base_url)

    def heading(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "main").text

    def field(self, label: str, within: WebElement | None = None) -> WebElement:
        """The control a visible label names."""
        scope = within or self.driver
        found = scope.find_element(By.XPATH, f".//label[normalize-space()='{label}']")
        return self.driver.find_element(By.ID, str(found.get_attribute("for")))

    def type(self, label: str, text: str, within: WebElement | None = None) -> None:
        control = self.field(label, within)
        control.clear()
        control.send_keys(text)

    def choose(self, label: str, starting: str) -> None:
        """Pick the option of a select whose text starts with `starting`."""
        select = Select(self.field(label))
        for option in select.options:
            if option.text.startswith(starting):
                select.select_by_visible_text(option.text)
                return
        raise AssertionError(f"no option of {label} starts with {starting!r}")

    def press(self, button: str, within: WebElement | None = None) -> None:
        """Press a button that loads a new page, and wait for the new page."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        scope = within or self.driver
        scope.find_element(By.XPATH, f".//button[normalize-space()='{button}']").click()
        self.arrived(old)

    def follow(self, link: str) -> None:
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(By.PARTIAL_LINK_TEXT, link).click()
        self.arrived(old)

    def arrived(self, old: WebElement) -> None:
        """Wait until the page `old` belonged to is gone and the next one has loaded whole."""
        self.wait().until(lambda _: _gone(old))
        self.wait().until(
            lambda driver: driver.execute_script("return document.readyState") == "complete"
        )

    def resize(self, width: int, height: int) -> None:
        """Make the window this size, and wait until the page's viewport has followed."""
        self.driver.set_window_size(width, height)
        self.wait().until(lambda driver: driver.execute_script("return window.innerWidth") <= width)

    def sign_in(self, person: str, company: int = 1) -> None:
        self.open(f"/app/?company={company}")
        if self.path.startswith("/app/expenses"):
            self.sign_out()
            self.open(f"/app/?company={company}")
        self.choose("Person", person)
        self.press("Sign in")
        assert self.heading() == "My expenses", self.text()

    def sign_out(self) -> None:
        self.press("Sign out")
        assert self.heading() == "Sign in"

    def submit_expense(self, policy: str, amount: str, description: str) -> int:
        """Fill and send the new-expense form; the id of the expense page it opens."""
        self.follow("New expense")
        self.choose("Policy", policy)
        self.type("Amount", amount)
        self.type("Description", description)
        self.press("Submit")
        assert self.path.startswith("/app/expenses/"), self.text()
        return int(self.path.rsplit("/", 1)[1])

    def approve_in_inbox(self, expense_id: int, comment: str) -> None:
        """Approve one item of the inbox with a comment; htmx swaps the item in place."""
        self.follow("Inbox")
        item = self.driver.find_element(By.ID, f"item-{expense_id}")
        item.find_element(By.NAME, "comment").send_keys(comment)
        item.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        self.wait().until(
            expected_conditions.text_to_be_present_in_element(
                (By.ID, f"item-{expense_id}"), f"You approved expense #{expense_id}."
            )
        )

    def status(self) -> str:
        return self.driver.find_element(By.ID, "expense-status").text

    def unnamed_controls(self) -> list[str]:
        """The controls of the page that have no accessible name, as Chromium computes it."""
        return [
            str(control.get_attribute("outerHTML"))
            for control in self.driver.find_elements(By.CSS_SELECTOR, CONTROLS)
            if not control.accessible_name.strip()
        ]

    def scrolls_sideways(self) -> bool:
        return bool(
            self.driver.execute_script(
                "const root = document.documentElement;return root.scrollWidth > root.clientWidth;"
            )
        )

    def screenshot(self, path: Path) -> None:
        """The whole page (the window grown to its height) as a PNG."""
        size = self.driver.get_window_size()
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(size["width"], max(height + 120, 400))
        try:
            path.write_bytes(self.driver.get_screenshot_as_png())
        finally:
            self.driver.set_window_size(size["width"], size["height"])


def _gone(element: WebElement) -> bool:
    """Whether an element's page has gone. Mid-navigation, Chromium may answer "does not belong
    to the document" rather than a stale reference: either way the old page is gone."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False
