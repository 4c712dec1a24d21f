"""Tenant isolation: nobody acts on or reads another company's data; its ids behave as unknown."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from expense_core.errors import DomainError, UnknownExpense, UnknownPolicy, UnknownUser
from expense_core.model import ApprovalStep, CompanyId, ExpenseId, PolicyId, UserId
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    NewPolicy,
    NewUser,
    OrgService,
    RejectExpense,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from tests.unit.support import FRANK, GRACE, LARGE_EQUIPMENT, TECHCORP, money


@attrs.frozen
class Globex:
    company: CompanyId
    boss: UserId
    lead: UserId
    staff: UserId
    travel: PolicyId


@pytest.fixture
def globex(org: OrgService) -> Globex:
    """A second company beside TechCorp: a boss, a lead and a member of staff, one policy."""
    company = org.create_company("Globex")
    team = org.create_team(company.id, "Operations")
    people: list[UserId] = []
    for number, title, name in ((1, "CEO", "Gus"), (2, "Lead", "Hana"), (3, "Staff", "Ivan")):
        level = org.create_level(company.id, team.id, number, title)
        user = org.create_user(
            NewUser(
                company_id=company.id,
                team_id=team.id,
                email=f"{name.lower()}@globex.example",
                name=name,
                hierarchy_level_id=level.id,
                manager_id=people[-1] if people else None,
            )
        )
        people.append(user.id)
    travel = org.create_policy(
        NewPolicy(
            company_id=company.id,
            category="travel",
            name="Globex Travel",
            min_amount=money("0.00"),
            max_amount=money("100000.00"),
            steps=(ApprovalStep(step_order=1, required_level=2),),
        )
    )
    boss, lead, staff = people
    return Globex(company.id, boss, lead, staff, travel.id)


@pytest.fixture
def techcorp_expense(expenses: ExpenseService) -> ExpenseId:
    return expenses.submit(
        SubmitExpense(user_id=GRACE, policy_id=LARGE_EQUIPMENT, amount=money("4000.00"))
    ).expense.id


def test_each_company_gets_its_own_ids_and_routing(
    expenses: ExpenseService, globex: Globex, techcorp_expense: ExpenseId
) -> None:
    submitted = expenses.submit(
        SubmitExpense(user_id=globex.staff, category="travel", amount=money("250.00"))
    )
    assert submitted.expense.company_id == globex.company
    assert [m.id for m in submitted.approvers] == [globex.lead]
    assert submitted.expense.id != techcorp_expense


COMMANDS: list[tuple[str, Callable[[ExpenseService, ExpenseId, Globex], object]]] = [
    ("approve", lambda s, e, g: s.approve(ApproveStep(expense_id=e, user_id=g.lead))),
    (
        "reject",
        lambda s, e, g: s.reject(RejectExpense(expense_id=e, user_id=g.boss, reason="no")),
    ),
    ("withdraw", lambda s, e, g: s.withdraw(WithdrawExpense(expense_id=e, user_id=g.staff))),
    (
        "approve-claiming-the-other-company",
        lambda s, e, g: s.approve(ApproveStep(expense_id=e, user_id=FRANK, company_id=g.company)),
    ),
    ("status", lambda s, e, g: s.status(e, Viewer.whole_company(g.company))),
    ("history", lambda s, e, g: s.history(e, Viewer.whole_company(g.company))),
    ("explain", lambda s, e, g: s.explain(e, Viewer.whole_company(g.company))),
]


@pytest.mark.parametrize("command", [c[1] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_another_companys_expense_behaves_as_unknown_and_stays_untouched(
    expenses: ExpenseService,
    globex: Globex,
    techcorp_expense: ExpenseId,
    command: Callable[[ExpenseService, ExpenseId, Globex], object],
) -> None:
    before = (
        expenses.status(techcorp_expense),
        expenses.history(techcorp_expense, Viewer.whole_company(TECHCORP)),
    )
    with pytest.raises(UnknownExpense, match=f"expense {techcorp_expense} does not exist"):
        command(expenses, techcorp_expense, globex)
    assert (
        expenses.status(techcorp_expense),
        expenses.history(techcorp_expense, Viewer.whole_company(TECHCORP)),
    ) == before


def test_lists_and_inboxes_show_only_their_own_company(
    expenses: ExpenseService, globex: Globex, techcorp_expense: ExpenseId
) -> None:
    assert expenses.list_expenses(Viewer.whole_company(globex.company)).items == ()
    assert [s.id for s in expenses.list_expenses(Viewer.whole_company(TECHCORP)).items] == [
        techcorp_expense
    ]
    # Even someone whose id holds a TechCorp step sees nothing when asking as Globex.
    assert expenses.inbox(FRANK, Viewer.whole_company(globex.company)).items == ()
    assert [i.expense_id for i in expenses.inbox(FRANK).items] == [techcorp_expense]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (
            lambda g: SubmitExpense(
                user_id=g.staff, policy_id=LARGE_EQUIPMENT, amount=money("4000.00")
            ),
            UnknownPolicy,
        ),
        (
            lambda g: SubmitExpense(
                user_id=GRACE, policy_id=g.travel, amount=money("10.00"), company_id=TECHCORP
            ),
            UnknownPolicy,
        ),
        (
            lambda g: SubmitExpense(
                user_id=GRACE,
                policy_id=LARGE_EQUIPMENT,
                amount=money("4000.00"),
                company_id=g.company,
            ),
            UnknownUser,
        ),
    ],
    ids=["other-companys-policy", "policy-of-a-company-named-by-token", "user-of-another-company"],
)
def test_a_submission_cannot_reach_across_companies(
    expenses: ExpenseService,
    globex: Globex,
    command: Callable[[Globex], SubmitExpense],
    error: type[DomainError],
) -> None:
    with pytest.raises(error):
        expenses.submit(command(globex))
    assert expenses.list_expenses(Viewer.whole_company(globex.company)).items == ()
    assert expenses.list_expenses(Viewer.whole_company(TECHCORP)).items == ()


def test_a_category_only_matches_the_submitters_own_policies(
    expenses: ExpenseService, globex: Globex
) -> None:
    # Both companies have a travel policy; each submitter gets their own.
    mine = expenses.submit(SubmitExpense(user_id=GRACE, category="travel", amount=money("100.00")))
    theirs = expenses.submit(
        SubmitExpense(user_id=globex.staff, category="travel", amount=money("100.00"))
    )
    assert mine.expense.policy_id != theirs.expense.policy_id
    assert theirs.expense.policy_id == globex.travel
