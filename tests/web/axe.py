"""The axe-core engine run in the headless Chromium on the page at hand: its violations, and the
few moderate or minor ones this project accepts, each with the reason.

The engine is the `axe.min.js` that the `axe-playwright-python` package ships (read from the
installed package: no CDN, nothing vendored here); only the script is used, Selenium runs it.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Final

import attrs
from selenium.webdriver.remote.webdriver import WebDriver

# rule id -> why a moderate or minor finding of it is accepted. Every other finding fails the
# audit, and a serious or critical one always does.
ACCEPTED: Final[dict[str, str]] = {}
# WCAG 2.0, 2.1 and 2.2 A and AA, and Deque's best practices (landmarks, heading order, one h1,
# a skip link's target, ...): the rules axe runs by default, named so a new axe cannot drop any.
TAGS: Final = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice")
_RUN: Final = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}, resultTypes: ["violations"]})
  .then(
    (results) => done(JSON.stringify({version: axe.version, violations: results.violations})),
    (error) => done(JSON.stringify({error: String(error)})),
  );
"""


@attrs.frozen
class Violation:
    """One element breaking one rule, on one page at one width."""

    page: str
    width: int
    rule: str
    impact: str
    help: str
    target: str
    html: str

    def __str__(self) -> str:
        return (
            f"{self.page} at {self.width} px: {self.rule} ({self.impact}: {self.help}) "
            f"on {self.target}: {self.html}"
        )


def engine() -> str:
    """The axe-core script, as the installed package ships it."""
    return (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def version(driver: WebDriver) -> str:
    """The version of the axe-core engine in the page (loading it first if needed)."""
    _load(driver)
    return str(driver.execute_script("return axe.version"))


def audit(driver: WebDriver, page: str) -> list[Violation]:
    """Run axe-core on the page in the window as it is now; every element of every violation."""
    _load(driver)
    answer = json.loads(driver.execute_async_script(_RUN, list(TAGS)))
    if "error" in answer:
        raise AssertionError(f"axe-core failed on {page}: {answer['error']}")
    width = int(driver.execute_script("return window.innerWidth"))
    return [
        Violation(
            page=page,
            width=width,
            rule=rule["id"],
            impact=rule["impact"] or "unknown",
            help=rule["help"],
            target=" ".join(str(part) for part in node["target"]),
            html=node["html"],
        )
        for rule in answer["violations"]
        for node in rule["nodes"]
    ]


def failing(violations: list[Violation]) -> list[Violation]:
    """The violations the audit fails on: all serious and critical, the rest unless accepted."""
    return [v for v in violations if v.impact in ("critical", "serious") or v.rule not in ACCEPTED]


def _load(driver: WebDriver) -> None:
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(engine())
