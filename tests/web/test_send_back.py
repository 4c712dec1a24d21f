"""Send back and resubmit on the expense page, on the test client."""

from __future__ import annotations

import re

import pytest

from entrypoints.container import Container
from expense_core.model import ExpenseId, ExpenseStatus
from tests.web.conftest import Visit
from tests.web.support import Visitor, csrf_of, error_beside, text_of

NNBSP = "\u202f"
REASON = "The conference is 3 nights: please claim 3 nights of hotel"


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


def actions_of(page: str) -> list[str]:
    """The buttons and the resubmit link in the page's main part, in order."""
    main = page.partition('<main id="main">')[2]
    found = re.finditer(
        r'<button type="submit"(?: class="\w+")?>([\w ]+)</button>'
        r'|class="button" href="[^"]+">(\w+)</a>',
        main,
    )
    return [m.group(1) or m.group(2) for m in found]


def sent_back(grace: Visitor, frank: Visitor) -> int:
    expense = grace.new_expense(policy="3", amount="1850.00", description="Berlin: 4 nights")
    answer = frank.decide(expense, "send_back", REASON)
    assert answer.status_code == 303, text_of(answer.text)
    return expense


def test_the_current_approver_is_offered_send_back(grace: Visitor, frank: Visitor) -> None:
    expense = grace.new_expense(policy="3", amount="1850.00")

    page = frank.get(f"/app/expenses/{expense}").text

    assert actions_of(page) == ["Approve", "Reject", "Send back"]
    assert '<label for="send_back-reason">What to correct</label>' in page


def test_sending_back_returns_the_expense_with_its_reason(
    grace: Visitor, frank: Visitor, container: Container
) -> None:
    expense = sent_back(grace, frank)

    after = frank.get(f"/app/expenses/{expense}?done=send_back").text
    assert "You sent back this expense." in text_of(after)
    assert actions_of(after) == []
    page = text_of(grace.get(f"/app/expenses/{expense}").text)
    assert "Status returned" in page
    assert f"Sent back at step 1 by Frank Miller “{REASON}”" in page
    assert container.expenses().status(ExpenseId(expense)).status == ExpenseStatus.RETURNED
    assert f"/app/expenses/{expense}" not in frank.get("/app/inbox").text


def test_sending_back_needs_a_reason_told_beside_it(
    grace: Visitor, frank: Visitor, container: Container
) -> None:
    expense = grace.new_expense(policy="3", amount="1850.00")

    refused = frank.decide(expense, "send_back", "  ")

    assert refused.status_code == 400
    assert error_beside(refused.text, "send_back") == (
        "Say why: sending an expense back needs a reason."
    )
    assert container.expenses().status(ExpenseId(expense)).status == ExpenseStatus.PENDING


def test_the_submitter_of_a_returned_expense_may_resubmit_or_withdraw(
    grace: Visitor, frank: Visitor
) -> None:
    expense = sent_back(grace, frank)

    page = grace.get(f"/app/expenses/{expense}").text

    assert actions_of(page) == ["Resubmit", "Withdraw"]
    assert f'href="/app/expenses/{expense}/resubmit"' in page


def test_the_resubmit_form_holds_what_the_expense_says_now(grace: Visitor, frank: Visitor) -> None:
    expense = sent_back(grace, frank)

    form = grace.get(f"/app/expenses/{expense}/resubmit").text

    for label in ("Policy", "Category", "Amount", "Description"):
        assert f">{label}</label>" in form
    assert '<option value="3" selected>' in form
    assert 'value="1850.00"' in form
    assert ">Berlin: 4 nights</textarea>" in form
    assert ">Resubmit</button>" in form


def test_resubmitting_routes_the_expense_again(
    grace: Visitor, frank: Visitor, container: Container
) -> None:
    expense = sent_back(grace, frank)
    path = f"/app/expenses/{expense}/resubmit"

    done = grace.submit(
        path, path, {"policy": "3", "amount": "1620.00", "description": "Berlin: 3 nights"}
    )

    assert done.status_code == 303
    assert done.headers["location"] == f"/app/expenses/{expense}?done=resubmit"
    page = text_of(grace.get(done.headers["location"]).text)
    assert "You resubmitted this expense." in page
    assert f"Amount 1{NNBSP}620.00 Description Berlin: 3 nights Status pending" in page
    assert "Resubmitted by Grace Taylor" in page
    assert "amount 1850.00 -> 1620.00" in page
    assert "Step 1 : Frank Miller, Manager pending" in page
    assert container.expenses().status(ExpenseId(expense)).status == ExpenseStatus.PENDING
    assert actions_of(frank.get(f"/app/expenses/{expense}").text)[:2] == ["Approve", "Reject"]


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"policy": "3", "amount": ""}, "amount", "Enter an amount, such as 4000.00."),
        ({"policy": "3", "amount": "1.234"}, "amount", "at most 2 decimal places"),
        ({"policy": "1", "amount": "5000.00"}, "amount", "outside policy 'Small Equipment'"),
        ({"policy": "3", "category": "travel", "amount": "5.00"}, "policy", "not both"),
        ({"policy": "99", "amount": "5.00"}, "policy", "Policy 99 does not exist"),
    ],
)
def test_a_refused_resubmission_is_told_beside_its_field_keeping_what_was_typed(
    grace: Visitor,
    frank: Visitor,
    container: Container,
    form: dict[str, str],
    field: str,
    words: str,
) -> None:
    expense = sent_back(grace, frank)
    path = f"/app/expenses/{expense}/resubmit"

    answer = grace.submit(path, path, {"description": "Kept as typed", **form})

    assert answer.status_code in (400, 404)
    assert words in error_beside(answer.text, field)
    assert f'value="{form["amount"]}"' in answer.text
    assert ">Kept as typed</textarea>" in answer.text
    assert container.expenses().status(ExpenseId(expense)).status == ExpenseStatus.RETURNED


def test_only_the_submitter_of_a_returned_expense_gets_the_form(
    grace: Visitor, frank: Visitor
) -> None:
    pending = grace.new_expense(policy="3", amount="900.00")
    returned = sent_back(grace, frank)

    not_returned = grace.get(f"/app/expenses/{pending}/resubmit")
    not_theirs = frank.get(f"/app/expenses/{returned}/resubmit")

    assert not_returned.status_code == 409
    assert "can be resubmitted" in text_of(not_returned.text)
    assert not_theirs.status_code in (403, 404)


def test_a_resubmission_of_an_expense_no_longer_returned_is_the_error_page(
    grace: Visitor, frank: Visitor
) -> None:
    expense = sent_back(grace, frank)
    path = f"/app/expenses/{expense}/resubmit"
    form = grace.get(path).text
    grace.decide(expense, "withdraw")

    answer = grace.post(path, {"csrf_token": csrf_of(form), "amount": "1.00"})

    assert answer.status_code == 409
    assert "That cannot be done now" in text_of(answer.text)


def test_send_back_and_resubmit_without_their_csrf_token_are_refused_and_change_nothing(
    grace: Visitor, frank: Visitor, container: Container
) -> None:
    pending = grace.new_expense(policy="3", amount="900.00")
    returned = sent_back(grace, frank)

    forged = [
        frank.post(f"/app/expenses/{pending}/decide", {"decision": "send_back", "comment": "x"}),
        frank.post(
            f"/app/expenses/{pending}/decide",
            {"decision": "send_back", "comment": "x", "csrf_token": "forged"},
        ),
        grace.post(f"/app/expenses/{returned}/resubmit", {"amount": "1.00"}),
        grace.post(
            f"/app/expenses/{returned}/resubmit", {"amount": "1.00", "csrf_token": "forged"}
        ),
    ]

    assert [answer.status_code for answer in forged] == [403, 403, 403, 403]
    status = container.expenses().status
    assert status(ExpenseId(pending)).status == ExpenseStatus.PENDING
    assert status(ExpenseId(returned)).status == ExpenseStatus.RETURNED
    assert str(status(ExpenseId(returned)).amount.value) == "1850.00"
