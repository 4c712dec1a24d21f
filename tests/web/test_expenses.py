"""New expense, the expense page and its decisions, and my expenses, on the test client."""

from __future__ import annotations

import re

import pytest

from entrypoints.container import Container
from expense_core.model import Money, UserId
from expense_core.services import SubmitExpense
from expense_core.visibility import Viewer
from tests.http.conftest import OtherCompany
from tests.web.conftest import Visit
from tests.web.support import Visitor, error_beside, text_of

NNBSP = "\u202f"


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


# --- new expense ---------------------------------------------------------------------------------


def test_the_form_offers_active_policies_with_their_ranges_and_categories(grace: Visitor) -> None:
    page = grace.get("/app/expenses/new").text

    for label in ("Policy", "Category", "Amount", "Description"):
        assert f">{label}</label>" in page
    assert ">Submit</button>" in page
    assert f"Small Equipment: 0.00 to 1{NNBSP}999.99" in page
    assert f"Large Equipment: 2{NNBSP}000.00 to 999{NNBSP}999{NNBSP}999.99" in page
    assert '<option value="equipment">equipment</option>' in page
    assert '<option value="travel">travel</option>' in page


def test_submitting_opens_the_expense_page(grace: Visitor) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00", description="Workstation")

    page = text_of(grace.get(f"/app/expenses/{expense}").text)
    assert f"Expense #{expense}" in page
    assert f"4{NNBSP}000.00" in page
    assert "Workstation" in page


def test_a_category_lets_the_amount_pick_the_policy(grace: Visitor) -> None:
    expense = grace.new_expense(category="equipment", amount="150.00")

    assert "Small Equipment" in grace.get(f"/app/expenses/{expense}").text


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"policy": "2", "amount": ""}, "amount", "Enter an amount, such as 4000.00."),
        ({"policy": "2", "amount": "12.345"}, "amount", "at most 2 decimal places"),
        ({"policy": "2", "amount": "lots"}, "amount", "not a decimal number"),
        ({"policy": "1", "amount": "0"}, "amount", "greater than 0"),
        ({"policy": "1", "amount": "5000.00"}, "amount", "outside policy 'Small Equipment'"),
        ({"category": "gardening", "amount": "5.00"}, "amount", "No active policy of category"),
        ({"amount": "5.00"}, "policy", "Choose a policy, or a category"),
        ({"policy": "1", "category": "travel", "amount": "5.00"}, "policy", "not both"),
        ({"policy": "99", "amount": "5.00"}, "policy", "Policy 99 does not exist"),
        ({"policy": "x", "amount": "5.00"}, "policy", "Choose a policy from the list."),
        (
            {"policy": "1", "amount": "5.00", "description": "x" * 2001},
            "description",
            "longer than 2000 characters",
        ),
    ],
)
def test_a_refusal_is_told_next_to_its_field_keeping_what_was_typed(
    grace: Visitor, container: Container, form: dict[str, str], field: str, words: str
) -> None:
    typed = {"description": "Kept as typed", **form}

    answer = grace.submit("/app/expenses/new", "/app/expenses/new", typed)

    assert answer.status_code in (400, 404, 409)
    assert words in error_beside(answer.text, field)
    assert f'value="{typed["amount"]}"' in answer.text
    assert f">{typed['description']}</textarea>" in answer.text
    if typed.get("policy", "").isdigit() and typed["policy"] != "99":
        assert f'<option value="{typed["policy"]}" selected>' in answer.text
    company = container.expenses().company_of(UserId(7))
    assert not container.expenses().list_expenses(Viewer.whole_company(company)).items


def test_the_same_form_sent_twice_stores_one_expense(grace: Visitor, container: Container) -> None:
    shown = grace.get("/app/expenses/new").text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', shown)
    token = re.search(r'name="csrf_token" value="([^"]+)"', shown)
    assert key is not None
    assert token is not None
    form = {
        "csrf_token": token.group(1),
        "idempotency_key": key.group(1),
        "policy": "1",
        "amount": "99.00",
    }

    first = grace.post("/app/expenses/new", form)
    again = grace.post("/app/expenses/new", form)

    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    company = container.expenses().company_of(UserId(7))
    assert len(container.expenses().list_expenses(Viewer.whole_company(company)).items) == 1


# --- the expense page ----------------------------------------------------------------------------


def test_the_page_shows_steps_history_and_why_these_approvers(
    grace: Visitor, frank: Visitor
) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00", description="Workstation")
    approved = frank.decide(expense, "approve", "Good for the team")
    assert approved.headers["location"] == f"/app/expenses/{expense}?done=approve"

    page = text_of(grace.get(f"/app/expenses/{expense}").text)

    assert f"Amount 4{NNBSP}000.00 Description Workstation Status pending" in page
    assert "Step 1 : Frank Miller, Manager approved" in page
    assert "Step 2 : Eve Davis, SEM pending" in page
    assert "Step 3 : David Wilson, AD pending" in page
    assert "Submitted by Grace Taylor" in page
    assert "Step 1 approved by Frank Miller “Good for the team”" in page
    assert "Why these approvers" in page
    assert "Eve Davis, SEM: nearest eligible level" in page


@pytest.mark.parametrize(
    ("person", "actions"),
    [(7, ["Withdraw"]), (6, ["Approve", "Reject"]), (5, []), (1, [])],
)
def test_the_page_offers_the_actions_the_person_may_take_now(
    visit: Visit, grace: Visitor, person: int, actions: list[str]
) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00")
    someone = visit()
    someone.sign_in(person)

    page = someone.get(f"/app/expenses/{expense}").text

    offered = re.findall(r'<button type="submit"(?: class="danger")?>(\w+)</button>', page)
    assert offered == actions


def test_a_step_reached_is_offered_to_its_approver(visit: Visit, grace: Visitor) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00")
    frank, eve = visit(), visit()
    frank.sign_in(6)
    eve.sign_in(5)
    frank.decide(expense, "approve")

    assert ">Approve</button>" in eve.get(f"/app/expenses/{expense}").text


def test_a_rejection_needs_a_reason_told_beside_it(grace: Visitor, frank: Visitor) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00")

    refused = frank.decide(expense, "reject", "   ")
    rejected = frank.decide(expense, "reject", "Over budget")

    assert refused.status_code == 400
    assert error_beside(refused.text, "reject") == "Say why: a rejection needs a reason."
    assert rejected.status_code == 303
    page = text_of(grace.get(f"/app/expenses/{expense}").text)
    assert "Status rejected" in page
    assert "Rejected at step 1 by Frank Miller “Over budget”" in page


def test_the_submitter_withdraws(grace: Visitor) -> None:
    expense = grace.new_expense(policy="1", amount="10.00")

    done = grace.decide(expense, "withdraw")

    assert done.status_code == 303
    page = text_of(grace.get(done.headers["location"]).text)
    assert "You withdrew this expense." in page
    assert "Status withdrawn" in page
    assert "Withdraw" not in page.replace("Withdrawn by", "")


def test_a_decision_the_engine_refuses_is_told_on_the_page(grace: Visitor) -> None:
    expense = grace.new_expense(policy="1", amount="10.00")

    refused = grace.decide(expense, "approve", "my own")

    assert refused.status_code == 403
    assert "cannot decide on it" in text_of(refused.text)


def test_another_companys_expense_is_not_found(
    grace: Visitor, container: Container, other: OtherCompany
) -> None:
    theirs = container.expenses().submit(
        SubmitExpense(
            user_id=other.engineer, policy_id=other.policy_id, amount=Money.parse("50.00")
        )
    )
    path = f"/app/expenses/{theirs.expense.id}"

    shown = grace.get(path)
    decided = grace.submit("/app/expenses", f"{path}/decide", {"decision": "withdraw"})

    assert shown.status_code == decided.status_code == 404
    assert "Not found" in text_of(shown.text)
    assert "My expenses" in shown.text  # the navigation stays
    assert container.expenses().status(theirs.expense.id).status == "pending"


def test_an_expense_id_out_of_range_is_a_page_too(grace: Visitor) -> None:
    answer = grace.get("/app/expenses/99999999999")

    assert answer.status_code == 400
    assert "this page cannot read" in text_of(answer.text)


# --- my expenses ---------------------------------------------------------------------------------


def test_my_expenses_lists_mine_newest_first_in_keyset_pages(
    grace: Visitor, frank: Visitor
) -> None:
    mine = [grace.new_expense(policy="1", amount=f"{n}.00") for n in range(1, 24)]
    frank.new_expense(policy="1", amount="7.77")

    first = grace.get("/app/expenses").text
    shown = [int(i) for i in re.findall(r'<a href="/app/expenses/(\d+)">', first)]
    more = re.search(r'href="(/app/expenses\?cursor=\d+)" rel="next"', first)
    assert more is not None
    second = grace.get(more.group(1)).text
    rest = [int(i) for i in re.findall(r'<a href="/app/expenses/(\d+)">', second)]

    assert shown + rest == sorted(mine, reverse=True)
    assert len(shown) == 20
    assert 'rel="next"' not in second


def test_my_expenses_filter_by_status(grace: Visitor) -> None:
    kept = grace.new_expense(policy="1", amount="1.00")
    withdrawn = grace.new_expense(policy="1", amount="2.00")
    grace.decide(withdrawn, "withdraw")

    pending = grace.get("/app/expenses?status=pending").text
    gone = grace.get("/app/expenses?status=withdrawn").text
    fragment = grace.get("/app/expenses?status=withdrawn", **{"HX-Request": "true"}).text
    unknown = grace.get("/app/expenses?status=lost")

    assert f"/app/expenses/{kept}" in pending
    assert f"/app/expenses/{withdrawn}" not in pending
    assert f"/app/expenses/{withdrawn}" in gone
    assert f"/app/expenses/{kept}" not in gone
    assert '<option value="withdrawn" selected>' in gone
    assert fragment.startswith('<section id="expense-list"')
    assert f"/app/expenses/{withdrawn}" in fragment
    assert unknown.status_code == 400
