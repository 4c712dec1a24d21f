"""The pages show a person only the expenses the use cases let them see: a colleague's expense
page is the not-found page, as another company's is."""

from __future__ import annotations

from entrypoints.container import Container
from expense_core.model import Money, PolicyId, UserId
from expense_core.services import SubmitExpense
from tests.web.conftest import Visit
from tests.web.support import text_of


def test_a_colleagues_expense_page_is_not_found_unless_theirs_to_see(
    visit: Visit, container: Container
) -> None:
    # Frank's expense goes to Eve; Grace, below him, neither submits nor approves it.
    franks = container.expenses().submit(
        SubmitExpense(user_id=UserId(6), policy_id=PolicyId(1), amount=Money.parse("50.00"))
    )
    path = f"/app/expenses/{franks.expense.id}"
    grace, eve, alice = visit(), visit(), visit()
    grace.sign_in(7)
    eve.sign_in(5)
    alice.sign_in(1)  # the demo's admin: the whole company

    shown = grace.get(path)

    assert shown.status_code == 404
    assert "Not found" in text_of(shown.text)
    assert "50.00" not in text_of(shown.text)
    assert eve.get(path).status_code == alice.get(path).status_code == 200
