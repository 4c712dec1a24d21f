"""An accessibility audit of every page, in each state worth checking, in a real headless Chromium
against a real server process: the axe-core engine at 375 px and at 1280 px wide, a title of each
page's own, a skip link to the content, and a keyboard focus that can be seen.

docs/pages.md says what is checked, what is accepted and why, and how to run it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.conftest import Server, run_cli
from tests.web.axe import ACCEPTED, Violation, audit, failing, version
from tests.web.browser import DESKTOP, PHONE, Browser, site

pytestmark = pytest.mark.e2e

SKIP = '<a class="skip" href="#main">Skip to the content</a>'
# The WCAG 2.2 floor for what shows the keyboard focus (1.4.11 non-text contrast).
FOCUS_CONTRAST = 3.0
# Where the keyboard focus is, what it looks like there and what is behind it: one object.
_FOCUSED = """
const element = document.activeElement;
if (!element || element === document.body) return null;
const style = getComputedStyle(element);
let behind = element.parentElement, backdrop = "rgba(0, 0, 0, 0)";
while (behind) {
  const colour = getComputedStyle(behind).backgroundColor;
  if (!/^rgba\\(.*, 0\\)$|^transparent$/.test(colour)) { backdrop = colour; break; }
  behind = behind.parentElement;
}
const box = element.getBoundingClientRect();
return {
  html: element.outerHTML.slice(0, 120),
  outline: style.outlineStyle, width: parseFloat(style.outlineWidth), colour: style.outlineColor,
  backdrop: backdrop === "rgba(0, 0, 0, 0)" ? "rgb(255, 255, 255)" : backdrop,
  shown: box.width > 0 && box.height > 0 && box.left >= 0 && box.right <= window.innerWidth,
  inMain: element.closest("main") !== null, id: element.id,
};
"""


# The first stop of the Tab key in the page's order (no page sets a positive tabindex).
_FIRST_STOP = """
const first = document.querySelector(
  "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex='0']");
return first ? first.outerHTML : "";
"""


@attrs.frozen
class Seen:
    """What one page showed besides axe-core's findings."""

    title: str
    heading: str
    lang: str
    first_stop: str
    # The widths at which the page was audited, and those at which it scrolled sideways.
    widths: tuple[int, ...]
    sideways: tuple[int, ...]


@attrs.define
class Tour:
    """What a walk through every page found: axe-core's violations, and what each page showed,
    by the page's name."""

    browser: Browser
    violations: list[Violation] = attrs.field(factory=list)
    pages: dict[str, Seen] = attrs.field(factory=dict)

    def check(self, page: str) -> None:
        """Audit the page in the window at both widths, and note what it shows."""
        driver = self.browser.driver
        widths, sideways = [], []
        for width, height in (PHONE, DESKTOP):
            _grow(self.browser, width, height)
            self.violations += audit(driver, page)
            widths.append(int(driver.execute_script("return window.innerWidth")))
            if self.browser.scrolls_sideways():
                sideways.append(width)
        self.pages[page] = Seen(
            title=driver.title,
            heading=self.browser.heading(),
            lang=str(driver.execute_script("return document.documentElement.lang")),
            first_stop=str(driver.execute_script(_FIRST_STOP)),
            widths=tuple(widths),
            sideways=tuple(sideways),
        )

    def problems(self) -> dict[str, list[str]]:
        """What the walk found wrong, by kind; none when every page passed."""
        kinds: dict[str, set[str]] = {}
        for page, seen in self.pages.items():
            # The states of one page share its title; two pages never do.
            kinds.setdefault(seen.title, set()).add(page.split(",")[0])
        found = {
            "axe-core violations (page at width: rule (impact: what) on element: html)": [
                str(v) for v in failing(self.violations)
            ],
            "audited at other widths than 375 and 1280 px": [
                f"{p}: {s.widths}" for p, s in self.pages.items() if s.widths != (375, 1280)
            ],
            "the title is not the heading and ' · Expense tracker'": [
                f"{p}: {s.title!r}, heading {s.heading!r}"
                for p, s in self.pages.items()
                if s.title != f"{s.heading} · Expense tracker"
            ],
            "a title shared by two pages": [
                f"{title!r}: {sorted(pages)}" for title, pages in kinds.items() if len(pages) > 1
            ],
            "html lang is not en": [
                f"{p}: {s.lang!r}" for p, s in self.pages.items() if s.lang != "en"
            ],
            "the first Tab stop is not the skip link": [
                f"{p}: {s.first_stop}" for p, s in self.pages.items() if s.first_stop != SKIP
            ],
            "scrolls sideways": [
                f"{p} at {s.sideways} px" for p, s in self.pages.items() if s.sideways
            ],
        }
        return {kind: items for kind, items in found.items() if items}


def test_every_page_in_every_state_passes_the_audit(
    chromium_driver: WebDriver, web_site: Server
) -> None:
    # One test for the whole walk (it takes a minute or two): every finding is told at once.
    problems = walk_every_page(chromium_driver, web_site).problems()

    assert not problems, told(problems)


def walk_every_page(chromium_driver: WebDriver, web_site: Server) -> Tour:
    """Every page of the site in each state worth checking, as the seed's people see them."""
    chromium_driver.set_window_size(*DESKTOP)
    chromium_driver.get(f"{web_site.base_url}/app/static/app.css")
    chromium_driver.delete_all_cookies()
    browser = Browser(chromium_driver, web_site.base_url)
    walk = Tour(browser)

    browser.open("/app/")
    walk.check("sign-in")
    browser.open("/app/sign-in/link?code=not-a-code")
    walk.check("sign-in link, refused")
    done = run_cli("token", "link", "--user-id", "2", env=web_site.env)
    assert done.returncode == 0, done.stderr
    link = urlsplit(done.stdout.strip().splitlines()[-1])
    browser.open(f"{link.path}?{link.query}")
    walk.check("sign-in link")

    browser.sign_in("Bob Smith")
    walk.check("my expenses, empty")
    browser.follow("Inbox")
    walk.check("inbox, empty")

    browser.sign_in("Grace Taylor")
    browser.follow("New expense")
    browser.type("Amount", "12.345")
    browser.press("Submit")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "[aria-invalid=true]"), browser.text()
    walk.check("new expense, with field errors")
    workstation = browser.submit_expense("Large Equipment", "4000.00", "Workstation for ML")
    walk.check("expense, as submitter")
    trip = browser.submit_expense("Business Travel", "1850.00", "Berlin: flight and 4 nights")
    mouse = browser.submit_expense("Small Equipment", "30.00", "Mouse")
    browser.follow("My expenses")
    walk.check("my expenses, with rows")

    browser.sign_in("Frank Miller")
    browser.follow("Inbox")
    walk.check("inbox, with items")
    item = browser.driver.find_element(By.ID, f"item-{trip}")
    item.find_element(By.CSS_SELECTOR, "button[value=reject]").click()
    browser.wait().until(
        lambda driver: driver.find_element(By.ID, f"refusal-{trip}").text.strip() != ""
    )
    walk.check("inbox, a refusal in place")
    browser.approve_in_inbox(workstation, "Fine by me")
    walk.check("inbox, after an approval in place")
    browser.driver.find_element(By.ID, f"select-{mouse}").click()
    browser.press("Approve selected")
    assert f"Expense #{mouse}: approved" in browser.text()
    walk.check("inbox, approve-selected results")
    browser.open(f"/app/expenses/{trip}")
    walk.check("expense, as approver")
    browser.press("Send back")
    walk.check("expense, as approver, a reason missing")
    browser.type("What to correct", "The conference is 3 nights")
    browser.press("Send back")

    browser.sign_in("Eve Davis")
    browser.open(f"/app/expenses/{workstation}")
    walk.check("expense, as approver, with history")

    browser.sign_in("Grace Taylor")
    browser.open(f"/app/expenses/{trip}")
    walk.check("expense, as submitter, sent back")
    browser.follow("Resubmit")
    walk.check("resubmit")
    browser.open("/app/expenses/999999")
    walk.check("not found")
    browser.open("/app/expenses/new")
    browser.driver.execute_script("document.querySelector('main input[name=csrf_token]').remove()")
    browser.press("Submit")
    walk.check("not allowed")

    browser.sign_in("Alice Chen")
    browser.follow("Organisation")
    walk.check("organisation")
    browser.press("Add person")
    walk.check("organisation, with field errors")
    page = browser.driver.find_element(By.TAG_NAME, "html")
    browser.driver.find_element(By.XPATH, "//a[normalize-space()='Deactivate Eve Davis']").click()
    browser.arrived(page)
    assert browser.driver.find_elements(By.ID, "moves"), browser.text()
    walk.check("deactivation preview")
    return walk


def test_the_sign_in_page_in_token_mode_breaks_no_axe_core_rule(
    chromium_driver: WebDriver, tmp_path: Path
) -> None:
    with site(tmp_path, AUTH_MODE="token") as server:
        chromium_driver.get(f"{server.base_url}/app/static/app.css")
        chromium_driver.delete_all_cookies()
        browser = Browser(chromium_driver, server.base_url)
        walk = Tour(browser)
        browser.open("/app/")
        walk.check("sign-in, token mode")
        browser.type("Token", "et_not-a-token")
        browser.press("Sign in")
        assert browser.driver.find_elements(By.CSS_SELECTOR, "[aria-invalid=true]"), browser.text()
        walk.check("sign-in, token mode, a token refused")

    problems = walk.problems()

    assert list(walk.pages) == ["sign-in, token mode", "sign-in, token mode, a token refused"]
    assert not problems, told(problems)


def test_axe_core_is_a_current_engine(browser: Browser) -> None:
    browser.open("/app/")
    major, minor = (int(part) for part in version(browser.driver).split(".")[:2])
    assert (major, minor) >= (4, 10)


def test_the_audit_finds_an_unnamed_field_and_faint_text(browser: Browser) -> None:
    browser.open("/app/")
    browser.driver.execute_script(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        ' \'<input id="nameless"><p id="faint" style="color: #bbb">Faint words</p>\')'
    )

    found = failing(audit(browser.driver, "sign-in, spoilt"))

    assert {("label", "#nameless"), ("color-contrast", "#faint")} <= {
        (v.rule, v.target) for v in found
    }, found


def test_each_accepted_rule_says_why() -> None:
    assert all(why.strip() for why in ACCEPTED.values())


def test_the_first_tab_shows_the_skip_link_which_moves_the_focus_to_the_content(
    browser: Browser,
) -> None:
    browser.sign_in("Grace Taylor")
    for size in (PHONE, DESKTOP):
        _grow(browser, *size)
        browser.open("/app/expenses/new")
        ActionChains(browser.driver).send_keys(Keys.TAB).perform()
        skip = browser.driver.execute_script(_FOCUSED)
        assert skip["html"].startswith('<a class="skip" href="#main">'), skip
        assert skip["shown"], skip
        # Enter moves where the next Tab starts from (the browser's sequential focus navigation
        # starting point): to the content, past the navigation.
        ActionChains(browser.driver).send_keys(Keys.ENTER, Keys.TAB).perform()
        first = browser.driver.execute_script(_FOCUSED)
        assert first["inMain"], first


def test_the_keyboard_focus_is_seen_on_every_control_of_every_kind_of_page(
    browser: Browser,
) -> None:
    browser.sign_in("Grace Taylor")
    expense = browser.submit_expense("Business Travel", "120.00", "Taxi to the airport")
    browser.sign_in("Frank Miller")
    unseen: list[dict[str, object]] = []
    for path in ("/app/inbox", f"/app/expenses/{expense}", "/app/expenses/new", "/app/expenses"):
        browser.open(path)
        seen = set()
        for _ in range(200):  # more than any page has: the walk ends where it started
            ActionChains(browser.driver).send_keys(Keys.TAB).perform()
            focused = browser.driver.execute_script(_FOCUSED)
            if focused is None or focused["html"] in seen:
                break
            seen.add(focused["html"])
            if not _visible_focus(focused):
                unseen.append({"page": path, **focused})
        assert len(seen) > 5, path

    assert unseen == []


def test_after_an_approval_in_place_the_keyboard_stays_on_the_item(browser: Browser) -> None:
    browser.sign_in("Grace Taylor")
    first = browser.submit_expense("Small Equipment", "40.00", "Keyboard")
    second = browser.submit_expense("Small Equipment", "50.00", "Mouse")
    browser.sign_in("Frank Miller")
    browser.follow("Inbox")

    browser.driver.find_element(By.ID, f"comment-{first}").send_keys("Fine")
    ActionChains(browser.driver).send_keys(Keys.TAB, Keys.ENTER).perform()
    browser.wait().until(
        lambda driver: "You approved" in driver.find_element(By.ID, f"item-{first}").text
    )

    # htmx moves the focus once the swap has settled, a moment after the text is in.
    card = "return document.activeElement.closest('li.card')?.id ?? null"
    browser.wait().until(lambda driver: driver.execute_script(card) == f"item-{first}")
    ActionChains(browser.driver).send_keys(Keys.TAB, Keys.TAB).perform()
    # Past the link in the message, the next item's checkbox.
    assert browser.driver.execute_script(_FOCUSED)["id"] == f"select-{second}"


def told(problems: dict[str, list[str]]) -> str:
    return "\n".join(f"{kind}:\n  " + "\n  ".join(items) for kind, items in problems.items())


def _visible_focus(focused: dict[str, object]) -> bool:
    return (
        focused["outline"] not in ("none", "hidden")
        and float(str(focused["width"])) >= 2
        and _contrast(str(focused["colour"]), str(focused["backdrop"])) >= FOCUS_CONTRAST
    )


def _contrast(one: str, other: str) -> float:
    """The WCAG contrast ratio of two computed `rgb(...)` colours."""
    lighter, darker = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(colour: str) -> float:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", colour)[:3])

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def _grow(browser: Browser, width: int, height: int) -> None:
    """Make the window this size, wider or narrower, and wait until the viewport has followed."""
    browser.driver.set_window_size(width, height)
    browser.wait().until(
        lambda driver: abs(driver.execute_script("return window.innerWidth") - width) <= 20
    )
