"""Draw docs/screenshots/: a picture of each page as the seed's people see it, in Chromium.

    .venv/bin/python -m tests.web.screenshots [FOLDER]

starts its own server on a new SQLite file; `tests/web/test_browser.py` runs the same tour
into a temporary folder, so the pictures cannot fall behind the pages.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Final

from tests.web.browser import Browser, chromium, site

PAGES: Final = (
    "sign-in",
    "my-expenses",
    "new-expense",
    "inbox",
    "expense",
    "sent-back",
    "resubmit",
    "organisation",
    "deactivate",
    "not-found",
)
FOLDER: Final = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def take_screenshots(browser: Browser, folder: Path) -> list[Path]:
    """Walk through every page, leaving a PNG of each in `folder`, named as in `PAGES`."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = [folder / f"{page}.png" for page in PAGES]
    sign_in, mine, new, inbox, expense, sent_back, resubmit, organisation, deactivate, not_found = (
        shots
    )

    browser.open("/app/")
    browser.screenshot(sign_in)

    browser.sign_in("Grace Taylor")
    browser.submit_expense("Small Equipment", "1200.00", "New MacBook Pro for development")
    workstation = browser.submit_expense(
        "Large Equipment", "4000.00", "High-end workstation for ML projects"
    )
    browser.follow("My expenses")
    browser.screenshot(mine)
    browser.follow("New expense")
    browser.choose("Policy", "Small Equipment")
    browser.type("Amount", "2500.00")
    browser.type("Description", "Second monitor and a docking station")
    browser.press("Submit")
    browser.screenshot(new)

    browser.sign_in("Frank Miller")
    browser.approve_in_inbox(workstation, "Approved for team productivity")
    browser.screenshot(inbox)

    browser.sign_in("Eve Davis")
    browser.open(f"/app/expenses/{workstation}")
    browser.screenshot(expense)

    browser.sign_in("Grace Taylor")
    trip = browser.submit_expense("Business Travel", "1850.00", "Berlin: flight and 4 nights")
    browser.sign_in("Frank Miller")
    browser.open(f"/app/expenses/{trip}")
    browser.type("What to correct", "The conference is 3 nights: the fourth is not ours to pay")
    browser.press("Send back")
    browser.sign_in("Grace Taylor")
    browser.open(f"/app/expenses/{trip}")
    browser.screenshot(sent_back)
    browser.follow("Resubmit")
    browser.type("Amount", "1620.00")
    browser.type("Description", "Berlin: flight and 3 nights")
    browser.screenshot(resubmit)

    browser.sign_in("Alice Chen")
    browser.follow("Organisation")
    browser.screenshot(organisation)
    browser.open("/app/organisation/people/6/deactivate")
    browser.screenshot(deactivate)

    browser.sign_in("Homer Simpson", company=2)
    browser.open(f"/app/expenses/{workstation}")
    browser.screenshot(not_found)
    return shots


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else FOLDER
    driver = chromium()
    try:
        with tempfile.TemporaryDirectory() as scratch, site(Path(scratch)) as server:
            for shot in take_screenshots(Browser(driver, server.base_url), folder):
                sys.stderr.write(f"wrote {shot}\n")
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
