"""The pages in a real headless Chromium against a real server process: the seed's test case 2
by clicking alone, a rejection, a forged form, another company's expense, 375 px, every control
named, and a picture of each page."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.web.browser import PHONE, Browser
from tests.web.screenshots import PAGES, take_screenshots

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_seeds_test_case_2_by_clicking_alone(browser: Browser) -> None:
    browser.sign_in("Grace Taylor")
    expense = browser.submit_expense(
        "Large Equipment", "4000.00", "High-end workstation for ML projects"
    )
    assert browser.status() == "pending"
    assert "4\u202f000.00" in browser.text()
    steps = browser.driver.find_elements(By.CSS_SELECTOR, ".steps li")
    assert [s.text.split(" pending")[0] for s in steps] == [
        "Step 1: Frank Miller, Manager",
        "Step 2: Eve Davis, SEM",
        "Step 3: David Wilson, AD",
    ]

    for approver in ("Frank Miller", "Eve Davis", "David Wilson"):
        browser.sign_in(approver)
        assert browser.driver.find_element(By.ID, "waiting").text.startswith("1")
        browser.approve_in_inbox(expense, f"Fine by {approver.split()[0]}")
        assert browser.driver.find_element(By.ID, "waiting").text.startswith("0")

    browser.sign_in("Grace Taylor")
    browser.follow(f"Expense #{expense}")
    assert browser.status() == "approved"
    history = [m.text for m in browser.driver.find_elements(By.CSS_SELECTOR, ".timeline li p")]
    assert [line for line in history if not line.startswith("“")] == [
        "Submitted by Grace Taylor",
        "Step 1 approved by Frank Miller",
        "Step 2 approved by Eve Davis",
        "Step 3 approved by David Wilson",
    ]
    assert "What you can do" not in browser.text()


def test_a_rejection_with_its_reason(browser: Browser) -> None:
    browser.sign_in("Grace Taylor")
    expense = browser.submit_expense("Business Travel", "800.00", "Conference in Lisbon")

    browser.sign_in("Frank Miller")
    browser.follow("Inbox")
    browser.follow(f"Expense #{expense}")
    browser.press("Reject")
    assert browser.driver.find_element(By.ID, "reject-error").text == (
        "Say why: a rejection needs a reason."
    )
    browser.type("Reason", "Not in this quarter's budget")
    browser.press("Reject")
    assert browser.status() == "rejected"

    browser.sign_in("Grace Taylor")
    browser.open(f"/app/expenses/{expense}")
    assert browser.status() == "rejected"
    assert "Rejected at step 1 by Frank Miller" in browser.text()
    assert "Not in this quarter's budget" in browser.text()


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(browser: Browser) -> None:
    browser.sign_in("Grace Taylor")
    browser.follow("New expense")
    browser.choose("Policy", "Small Equipment")
    browser.type("Amount", "42.00")
    browser.type("Description", "Sent without its token")
    browser.driver.execute_script("document.querySelector('main input[name=csrf_token]').remove()")
    browser.press("Submit")

    assert browser.heading() == "Not allowed"
    assert "did not come from this site" in browser.text()
    browser.open("/app/expenses")
    assert "Sent without its token" not in browser.text()


def test_another_companys_expense_is_the_not_found_page(browser: Browser) -> None:
    browser.sign_in("Homer Simpson", company=2)
    theirs = browser.submit_expense("Globex Equipment", "300.00", "Donuts for the team")

    browser.sign_in("Grace Taylor")
    browser.open(f"/app/expenses/{theirs}")

    assert browser.heading() == "Not found"
    assert "Donuts" not in browser.text()


def test_every_page_at_375_px_has_no_horizontal_scroll_and_names_every_control(
    browser: Browser,
) -> None:
    browser.resize(*PHONE)
    browser.open("/app/")
    visited = {"sign-in": (browser.scrolls_sideways(), browser.unnamed_controls())}
    browser.sign_in("Grace Taylor")
    expense = browser.submit_expense("Large Equipment", "2500.00", "Unbreakable" * 20)
    visited["expense (submitter)"] = (browser.scrolls_sideways(), browser.unnamed_controls())
    for path in ("/app/expenses", "/app/expenses/new", "/app/inbox", "/app/expenses/999999"):
        browser.open(path)
        visited[path] = (browser.scrolls_sideways(), browser.unnamed_controls())
    browser.sign_in("Frank Miller")
    for path in ("/app/inbox", f"/app/expenses/{expense}"):
        browser.open(path)
        visited[f"{path} (approver)"] = (browser.scrolls_sideways(), browser.unnamed_controls())

    assert {page: found for page, found in visited.items() if found != (False, [])} == {}


def test_a_picture_of_each_page(browser: Browser, tmp_path: Path) -> None:
    shots = take_screenshots(browser, tmp_path)

    assert [shot.stem for shot in shots] == list(PAGES)
    for shot in shots:
        assert shot.read_bytes().startswith(PNG), shot
        assert shot.stat().st_size > 10_000, shot
