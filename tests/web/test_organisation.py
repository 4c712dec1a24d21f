"""The organisation page for admins: the tree, ladders and policies; adding a person; and a
deactivation previewed (which steps move, to whom) before it is confirmed."""

from __future__ import annotations

import re

import pytest

from entrypoints.container import Container
from expense_core.model import (
    ApprovalStep,
    CompanyId,
    ExpenseId,
    Money,
    PolicyId,
    Role,
    UserId,
)
from expense_core.services import ChangeUser, NewPolicy
from tests.http.conftest import OtherCompany
from tests.web.conftest import Visit
from tests.web.support import Visitor, error_beside, text_of

NNBSP = "\u202f"


@pytest.fixture
def alice(visit: Visit) -> Visitor:
    """The demo company's CTO, its admin."""
    person = visit()
    person.sign_in(1)
    return person


@pytest.fixture
def grace(visit: Visit) -> Visitor:
    person = visit()
    person.sign_in(7)
    return person


def add_person(alice: Visitor, **form: str) -> int:
    answer = alice.submit("/app/organisation", "/app/organisation/people", form)
    assert answer.status_code == 303, text_of(answer.text)
    found = re.fullmatch(r"/app/organisation\?added=(\d+)", answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return int(found.group(1))


def level_id(page: str, name: str) -> str:
    found = re.search(rf'<option value="(\d+)"[^>]*>Technology: {name} ', page)
    assert found is not None, name
    return found.group(1)


def test_only_admins_have_the_organisation_in_their_navigation(
    alice: Visitor, grace: Visitor
) -> None:
    assert '<a href="/app/organisation"' in alice.get("/app/expenses").text
    assert '<a href="/app/organisation"' not in grace.get("/app/expenses").text


def test_an_error_page_keeps_the_admins_navigation(alice: Visitor, grace: Visitor) -> None:
    missing = alice.get("/app/expenses/999999")
    refused = grace.get("/app/organisation")

    assert missing.status_code == 404
    assert '<a href="/app/organisation"' in missing.text
    assert "Signed in as Alice Chen" in text_of(missing.text)
    assert refused.status_code == 403
    assert '<a href="/app/organisation"' not in refused.text
    assert "Signed in as Grace Taylor" in text_of(refused.text)


def test_anyone_else_is_not_allowed_to_read_or_change_it(grace: Visitor) -> None:
    page = grace.get("/app/organisation")
    preview = grace.get("/app/organisation/people/6/deactivate")
    added = grace.submit("/app/expenses", "/app/organisation/people", {"name": "Mallory"})
    deactivated = grace.submit("/app/expenses", "/app/organisation/people/6/deactivate", {})

    assert [a.status_code for a in (page, preview, added, deactivated)] == [403] * 4
    assert "Only an admin" in text_of(page.text)


def test_the_page_shows_the_ladder_people_and_policies_with_steps(alice: Visitor) -> None:
    page = text_of(alice.get("/app/organisation").text)

    assert "People: who reports to whom" in page
    assert "Alice Chen , CTO (level 1), Technology admin" in page
    assert "Technology CTO (level 1): Alice Chen VP (level 2): Bob Smith" in page
    assert "SDE3 (level 7): Grace Taylor" in page
    assert (
        f"Large Equipment equipment From 2{NNBSP}000.00 to 999{NNBSP}999{NNBSP}999.99 "
        "Manager approval: level 6 or more senior, in the submitter's team "
        "SEM approval: level 5 or more senior, in the submitter's team "
        "AD approval: level 4 or more senior, in the submitter's team"
    ) in page


def test_a_person_added_shows_under_their_manager(alice: Visitor, container: Container) -> None:
    form = alice.get("/app/organisation").text
    for label in ("Name", "Email", "Team and level", "Reports to", "Role"):
        assert f">{label}</label>" in form

    new = add_person(
        alice,
        name="Heidi Park",
        email="heidi.park@techcorp.com",
        level=level_id(form, "SDE3"),
        manager="6",
    )

    assert "Heidi Park was added." in text_of(alice.get(f"/app/organisation?added={new}").text)
    stored = container.org().user(UserId(new)).user
    assert (stored.name, stored.manager_id, stored.active) == ("Heidi Park", UserId(6), True)
    page = alice.get("/app/organisation").text
    frank = page.index(">Frank Miller</span>")
    nested = page.index("<ul>", frank)
    assert nested < page.index(">Heidi Park</span>") < page.index("</ul>", nested)


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"name": "", "email": "x@techcorp.com"}, "name", "User name must be 1 to 255"),
        ({"name": "X", "email": "nope"}, "email", "is not a valid email address"),
        ({"name": "X", "email": "grace.taylor@techcorp.com"}, "email", "already exists"),
        ({"name": "X", "email": "x@techcorp.com", "level": ""}, "level", "Choose a team and"),
        ({"name": "X", "email": "x@techcorp.com", "level": "9999"}, "level", "Choose a team and"),
        (
            {"name": "X", "email": "x@techcorp.com", "manager": "9999"},
            "manager",
            "Manager: user 9999",
        ),
        ({"name": "X", "email": "x@techcorp.com", "role": "king"}, "role", "Choose a role"),
    ],
)
def test_a_refused_person_is_told_beside_the_field_keeping_what_was_typed(
    alice: Visitor, container: Container, form: dict[str, str], field: str, words: str
) -> None:
    page = alice.get("/app/organisation").text
    typed = {"level": level_id(page, "SDE3"), "role": "employee", **form}

    answer = alice.submit("/app/organisation", "/app/organisation/people", typed)

    assert answer.status_code in (400, 404, 409)
    assert words in error_beside(answer.text, field)
    assert f'id="email" name="email" type="email" autocomplete="off" value="{form["email"]}"' in (
        answer.text
    )
    assert len(container.org().users(CompanyId(1)).items) == 7


def test_the_deactivation_preview_names_the_steps_that_move_and_changes_nothing(
    alice: Visitor, grace: Visitor, container: Container
) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00")  # Frank, Eve, David

    preview = alice.get("/app/organisation/people/6/deactivate")

    assert preview.status_code == 200
    shown = text_of(preview.text)
    assert f"Expense #{expense} , step 1: from Frank Miller to Carol Johnson" in shown
    assert ">Deactivate Frank Miller</button>" in preview.text
    assert container.org().user(UserId(6)).user.active is True
    status = container.expenses().status(ExpenseId(expense))
    assert [a.approver_id for a in status.approvals] == [6, 5, 4]


def test_confirming_moves_what_the_preview_said(
    alice: Visitor, grace: Visitor, container: Container
) -> None:
    expense = grace.new_expense(policy="2", amount="4000.00")
    path = "/app/organisation/people/6/deactivate"

    done = alice.submit(path, path, {})

    assert done.status_code == 303
    assert done.headers["location"] == "/app/organisation?deactivated=6&moved=1"
    page = text_of(alice.get(done.headers["location"]).text)
    assert "Frank Miller was deactivated; 1 pending step(s) moved." in page
    assert "Frank Miller , Manager (level 6), Technology inactive" in page
    assert container.org().user(UserId(6)).user.active is False
    status = container.expenses().status(ExpenseId(expense))
    assert [a.approver_id for a in status.approvals] == [3, 5, 4]
    history = text_of(grace.get(f"/app/expenses/{expense}").text)
    # Frank is on the expense no more, yet the history names him.
    assert "Step 1 moved from Frank Miller to Carol Johnson" in history


def add_gifts(container: Container, level: int) -> PolicyId:
    """A policy of one step at `level` or more senior."""
    return (
        container.org()
        .create_policy(
            NewPolicy(
                company_id=CompanyId(1),
                category="gifts",
                name="Gifts",
                min_amount=Money.parse("0.00"),
                max_amount=Money.parse("100.00"),
                steps=(ApprovalStep(step_order=1, required_level=level),),
            )
        )
        .id
    )


def test_a_step_moves_up_the_ladder_when_nobody_nearer_may_take_it(
    alice: Visitor, grace: Visitor, container: Container
) -> None:
    expense = grace.new_expense(policy=str(add_gifts(container, 2)), amount="50.00")  # Bob

    shown = text_of(alice.get("/app/organisation/people/2/deactivate").text)

    assert f"Expense #{expense} , step 1: from Bob Smith to Alice Chen" in shown
    assert "Steps nobody else may take" not in shown


def test_a_stranded_step_is_listed_and_refused_without_an_eligible_replacement(
    visit: Visit, grace: Visitor, container: Container
) -> None:
    expense = grace.new_expense(policy=str(add_gifts(container, 1)), amount="50.00")  # Alice
    container.org().change_user(ChangeUser(user_id=UserId(2), role=Role.ADMIN))
    bob = visit()
    bob.sign_in(2)
    path = "/app/organisation/people/1/deactivate"

    preview = bob.get(path)
    refused = bob.submit(path, path, {"replacement": ""})
    not_eligible = bob.submit(path, path, {"replacement": "2"})

    shown = text_of(preview.text)
    assert "Steps nobody else may take" in shown
    assert f"Expense #{expense} , step 1" in shown
    assert '<label for="replacement">Replacement approver</label>' in preview.text
    assert refused.status_code == not_eligible.status_code == 409
    assert "without an eligible approver" in text_of(refused.text)
    assert "cannot take over step 1" in text_of(not_eligible.text)
    assert '<option value="2" selected>' in not_eligible.text
    assert container.org().user(UserId(1)).user.active is True


def test_organisation_forms_without_their_csrf_token_are_refused_and_change_nothing(
    alice: Visitor, container: Container
) -> None:
    page = alice.get("/app/organisation").text
    person = {
        "name": "Forged",
        "email": "forged@techcorp.com",
        "level": level_id(page, "SDE3"),
        "role": "admin",
    }

    answers = [
        alice.post("/app/organisation/people", person),
        alice.post("/app/organisation/people", {**person, "csrf_token": "forged"}),
        alice.post("/app/organisation/people/6/deactivate", {}),
        alice.post("/app/organisation/people/6/deactivate", {"csrf_token": "forged"}),
    ]

    assert [a.status_code for a in answers] == [403] * 4
    assert len(container.org().users(CompanyId(1)).items) == 7
    assert container.org().user(UserId(6)).user.active is True


def test_another_companys_person_is_not_found(alice: Visitor, other: OtherCompany) -> None:
    path = f"/app/organisation/people/{other.engineer}/deactivate"

    assert alice.get(path).status_code == 404
    assert alice.submit("/app/organisation", path, {}).status_code == 404


def test_an_admin_cannot_deactivate_themselves(alice: Visitor, container: Container) -> None:
    path = "/app/organisation/people/1/deactivate"

    assert 'href="/app/organisation/people/1/deactivate"' not in alice.get("/app/organisation").text
    shown = alice.get(path)
    refused = alice.submit(path, path, {})

    assert "You cannot deactivate yourself" in text_of(shown.text)
    assert ">Deactivate Alice Chen</button>" not in shown.text
    assert refused.status_code == 409
    assert container.org().user(UserId(1)).user.active is True
