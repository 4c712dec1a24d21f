"""Send back, resubmit and the organisation in a real headless Chromium against a real server
process: by clicking alone, at 375 px without sideways scroll, every control named."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.web.browser import PHONE, Browser

pytestmark = pytest.mark.e2e


def test_an_expense_sent_back_is_corrected_and_resubmitted(browser: Browser) -> None:
    browser.sign_in("Grace Taylor")
    expense = browser.submit_expense("Business Travel", "1850.00", "Berlin: flight and 4 nights")

    browser.sign_in("Frank Miller")
    browser.open(f"/app/expenses/{expense}")
    browser.press("Send back")
    assert browser.driver.find_element(By.ID, "send_back-error").text == (
        "Say why: sending an expense back needs a reason."
    )
    browser.type("What to correct", "The conference is 3 nights")
    browser.press("Send back")
    assert browser.status() == "returned"
    assert "What you can do" not in browser.text()

    browser.sign_in("Grace Taylor")
    browser.open(f"/app/expenses/{expense}")
    assert "The conference is 3 nights" in browser.text()
    browser.follow("Resubmit")
    assert browser.heading() == f"Resubmit expense #{expense}"
    browser.type("Amount", "1620.00")
    browser.type("Description", "Berlin: flight and 3 nights")
    browser.press("Resubmit")
    assert browser.status() == "pending"
    assert "You resubmitted this expense." in browser.text()
    assert "1\u202f620.00" in browser.text()

    browser.sign_in("Frank Miller")
    browser.approve_in_inbox(expense, "Thanks")


def test_an_admin_adds_a_person_and_deactivates_one_after_the_preview(browser: Browser) -> None:
    browser.sign_in("Homer Simpson", company=2)
    expense = browser.submit_expense("Globex Equipment", "120.00", "Donuts")
    assert browser.driver.find_elements(By.LINK_TEXT, "Organisation") == []

    browser.sign_in("Hank Scorpio", company=2)
    browser.follow("Organisation")
    assert browser.heading() == "Organisation"
    browser.type("Name", "Marge Bouvier")
    browser.type("Email", "marge@globex.example")
    browser.choose("Team and level", "Engineering: Lead")
    browser.choose("Reports to", "Hank Scorpio")
    browser.choose("Role", "admin")
    browser.press("Add person")
    assert "Marge Bouvier was added." in browser.text()

    # Hank holds Homer's step; Marge, a Lead too, is whom it moves to.
    browser.sign_in("Marge Bouvier", company=2)
    browser.follow("Organisation")
    # Each person's link reads "Deactivate" on screen and names them to a screen reader.
    page = browser.driver.find_element(By.TAG_NAME, "html")
    browser.driver.find_element(
        By.XPATH, "//a[normalize-space()='Deactivate Hank Scorpio']"
    ).click()
    browser.arrived(page)
    assert browser.heading() == "Deactivate Hank Scorpio"
    moves = browser.driver.find_element(By.ID, "moves").text
    assert f"Expense #{expense}, step 1: from Hank Scorpio to Marge Bouvier" in moves
    browser.press("Deactivate Hank Scorpio")
    assert "Hank Scorpio was deactivated; 1 pending step(s) moved." in browser.text()
    browser.follow("Inbox")
    assert browser.driver.find_elements(By.ID, f"item-{expense}") != []


def test_the_new_pages_at_375_px_have_no_horizontal_scroll_and_name_every_control(
    browser: Browser,
) -> None:
    browser.sign_in("Grace Taylor")
    expense = browser.submit_expense("Business Travel", "300.00", "Taxi " * 40)
    browser.sign_in("Frank Miller")
    browser.open(f"/app/expenses/{expense}")
    browser.type("What to correct", "Receipts, please")
    browser.press("Send back")
    browser.resize(*PHONE)
    visited = {}
    browser.sign_in("Grace Taylor")
    for path in (f"/app/expenses/{expense}", f"/app/expenses/{expense}/resubmit"):
        browser.open(path)
        visited[path] = (browser.scrolls_sideways(), browser.unnamed_controls())
    browser.sign_in("Alice Chen")
    for path in ("/app/organisation", "/app/organisation/people/6/deactivate"):
        browser.open(path)
        visited[path] = (browser.scrolls_sideways(), browser.unnamed_controls())

    assert {page: found for page, found in visited.items() if found != (False, [])} == {}
