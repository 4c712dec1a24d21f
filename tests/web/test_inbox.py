"""The inbox and the navigation, on the test client: one by one without JavaScript, one by one
through htmx, and many approved at once."""

from __future__ import annotations

import re

import pytest

from entrypoints.container import Container
from expense_core.model import ExpenseId
from tests.web.conftest import Visit
from tests.web.support import Visitor, csrf_of, text_of


@pytest.fixture
def grace(visit: Visit) -> Visitor:
    person = visit()
    person.sign_in(7)
    return person


@pytest.fixture
def frank(visit: Visit) -> Visitor:
    person = visit()
    person.sign_in(6)
    return person


def waiting(page: str) -> str:
    found = re.search(r'<span class="count" id="waiting"[^>]*>([^<]*)<', page)
    assert found is not None, "no inbox count in the navigation"
    return found.group(1)


@pytest.mark.parametrize(
    "path", ["/app/expenses", "/app/expenses/new", "/app/inbox", "/app/expenses/1"]
)
def test_every_page_has_the_navigation_with_the_count_waiting(
    grace: Visitor, frank: Visitor, path: str
) -> None:
    grace.new_expense(policy="1", amount="10.00")
    grace.new_expense(policy="2", amount="4000.00")

    page = frank.get(path).text

    for link in ('href="/app/expenses"', 'href="/app/expenses/new"', 'href="/app/inbox"'):
        assert link in page
    assert ">My expenses</a>" in page
    assert ">New expense</a>" in page
    assert waiting(page) == "2"
    assert ">Sign out</button>" in page


def test_the_inbox_lists_each_step_waiting_with_a_comment_and_both_decisions(
    grace: Visitor, frank: Visitor
) -> None:
    first = grace.new_expense(policy="1", amount="10.00", description="Headset")
    second = grace.new_expense(policy="2", amount="4000.00", description="Workstation")

    page = frank.get("/app/inbox").text
    items = re.findall(r'<li class="card" id="item-(\d+)">', page)

    assert [int(i) for i in items] == [first, second]  # oldest first
    for expense in (first, second):
        assert f'<label for="comment-{expense}">Comment' in page
        assert f'<input type="checkbox" id="select-{expense}"' in page
        assert f'Approve<span class="visually-hidden"> expense #{expense}</span>' in page
        assert f'Reject<span class="visually-hidden"> expense #{expense}</span>' in page
    assert "Grace Taylor, Large Equipment, step 1" in text_of(page)
    assert ">Approve selected</button>" in page


def test_deciding_from_the_inbox_without_javascript_comes_back_to_it(
    grace: Visitor, frank: Visitor, container: Container
) -> None:
    expense = grace.new_expense(policy="1", amount="10.00")

    answer = frank.submit(
        "/app/inbox",
        f"/app/expenses/{expense}/decide",
        {"decision": "approve", "comment": "Fine", "back": "inbox"},
    )

    assert answer.status_code == 303
    page = frank.get(answer.headers["location"]).text
    assert f"You approved expense #{expense}." in text_of(page)
    assert "Nothing waits for you." in page
    assert container.expenses().status(ExpenseId(expense)).status == "approved"


def test_a_refusal_in_the_inbox_is_told_beside_the_item_keeping_the_comment(
    grace: Visitor, frank: Visitor
) -> None:
    expense = grace.new_expense(policy="1", amount="10.00")
    typed = "x" * 2001

    answer = frank.submit(
        "/app/inbox",
        f"/app/expenses/{expense}/decide",
        {"decision": "reject", "comment": typed, "back": "inbox"},
    )

    assert answer.status_code == 400
    refusal = re.search(rf'id="refusal-{expense}"[^>]*>([^<]*)<', answer.text)
    assert refusal is not None
    assert "longer than 2000 characters" in refusal.group(1)
    assert f">{typed}</textarea>" in answer.text


def test_htmx_gets_the_decided_item_and_the_new_count(grace: Visitor, frank: Visitor) -> None:
    expense = grace.new_expense(policy="1", amount="10.00")
    grace.new_expense(policy="1", amount="20.00")

    answer = frank.submit(
        "/app/inbox",
        f"/app/expenses/{expense}/decide",
        {"decision": "approve", "back": "inbox"},
        headers={"HX-Request": "true"},
    )

    assert answer.status_code == 200
    assert answer.text.startswith(f'<li class="card done" id="item-{expense}"')
    assert f'You approved <a href="/app/expenses/{expense}">expense #{expense}</a>.' in answer.text
    assert 'id="waiting" hx-swap-oob="true">1<' in answer.text


def test_htmx_gets_a_refusal_aimed_at_the_item(grace: Visitor, frank: Visitor) -> None:
    expense = grace.new_expense(policy="1", amount="10.00")

    answer = frank.submit(
        "/app/inbox",
        f"/app/expenses/{expense}/decide",
        {"decision": "reject", "comment": "", "back": "inbox"},
        headers={"HX-Request": "true"},
    )

    assert answer.status_code == 400
    assert answer.headers["HX-Retarget"] == f"#refusal-{expense}"
    assert answer.headers["HX-Reswap"] == "innerHTML"
    assert answer.text.strip() == "Say why: a rejection needs a reason."


def test_approve_selected_decides_each_and_tells_each_outcome(
    visit: Visit, grace: Visitor, frank: Visitor, container: Container
) -> None:
    small = grace.new_expense(policy="1", amount="10.00")
    large = grace.new_expense(policy="2", amount="4000.00")
    theirs = grace.new_expense(policy="1", amount="30.00")
    page = frank.get("/app/inbox").text
    grace.decide(theirs, "withdraw")  # gone from the inbox meanwhile

    answer = frank.post(
        "/app/inbox/approve-selected",
        {
            "csrf_token": csrf_of(page),
            "expense_id": [str(small), str(large), str(theirs)],
            "comment": "All fine",
        },
    )

    assert answer.status_code == 200
    told = text_of(answer.text)
    assert f"Expense #{small}: approved" in told
    assert f"Expense #{large}: approved" in told
    assert f"Expense #{theirs}: Expense {theirs} is already withdrawn." in told
    states = [container.expenses().status(ExpenseId(e)).status for e in (small, large, theirs)]
    assert states == ["approved", "pending", "withdrawn"]
    eve = visit()
    eve.sign_in(5)
    assert f'id="item-{large}"' in eve.get("/app/inbox").text


def test_approve_selected_with_nothing_selected_says_so(frank: Visitor) -> None:
    answer = frank.submit("/app/inbox", "/app/inbox/approve-selected", {})

    assert answer.status_code == 400
    assert "Select at least one expense to approve." in answer.text


def test_htmx_and_styles_are_served_from_the_package(frank: Visitor) -> None:
    htmx = frank.get("/app/static/htmx-2.0.11.min.js")
    css = frank.get("/app/static/app.css")
    licence = frank.get("/app/static/htmx-LICENSE.txt")
    page = frank.get("/app/inbox").text

    assert htmx.status_code == css.status_code == licence.status_code == 200
    assert htmx.text.startswith("var htmx=")
    assert "javascript" in htmx.headers["content-type"]
    assert "Zero-Clause BSD" in licence.text
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from elsewhere


def test_the_pages_stay_out_of_the_api_documentation(frank: Visitor) -> None:
    paths = frank.get("/openapi.json").json()["paths"]

    assert not [path for path in paths if path.startswith("/app")]
