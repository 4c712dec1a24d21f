"""OrgService.preview_change_user on every adapter: what a user change would move, and to whom,
told before it is confirmed, changing nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from expense_core.errors import ReplacementNotEligible, UnknownUser
from expense_core.model import CompanyId, ExpenseId, Policy, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import ChangeUser, ExpenseService, OrgService, SubmitExpense
from tests.contract.support import Org, add_policy, money, steps, tech_corp


def _submit(expenses: ExpenseService, org: Org, who: int, policy: Policy, amount: str) -> ExpenseId:
    return expenses.submit(
        SubmitExpense(user_id=org.person(who), policy_id=policy.id, amount=money(amount))
    ).expense.id


def _snapshot(
    new_uow: Callable[[], UnitOfWork], org: Org, expense: ExpenseId
) -> tuple[object, ...]:
    with new_uow() as uow:
        return (
            uow.expenses.get(org.id, expense),
            uow.expenses.history(org.id, expense),
            tuple(uow.org.users(org.id, after=None, limit=100)),
        )


def test_the_preview_names_each_step_that_would_move_and_changes_nothing(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    expense = _submit(expenses, org, 7, org.large, "2500.00")  # Frank, Eve, David
    before = _snapshot(new_uow, org, expense)
    leaving = ChangeUser(user_id=org.person(6), active=False, actor_id=org.person(1))

    preview = org_service.preview_change_user(leaving)

    assert preview.user.active is False
    assert preview.stranded == ()
    assert [
        (r.expense_id, r.step_number, r.previous_approver_id, r.approver_id)
        for r in preview.reassignments
    ] == [(expense, 1, org.person(6), org.person(3))]
    assert _snapshot(new_uow, org, expense) == before
    # Confirmed, the change does what the preview said.
    assert org_service.change_user(leaving).reassignments == preview.reassignments


def test_the_preview_lists_what_nobody_could_take_instead_of_refusing(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org_service: OrgService
) -> None:
    org = tech_corp(new_uow)
    policy = add_policy(new_uow, org.id, "gifts", steps(1), name="Gifts")  # the CTO only
    expense = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=policy.id, amount=money("50.00"))
    ).expense.id

    preview = org_service.preview_change_user(ChangeUser(user_id=org.person(1), active=False))

    assert preview.stranded == ((expense, 1),)
    assert preview.reassignments == ()
    with new_uow() as uow:
        assert uow.org.member(org.person(1)).user.active is True
    with pytest.raises(ReplacementNotEligible):
        org_service.preview_change_user(
            ChangeUser(user_id=org.person(1), active=False, replacement_approver_id=org.person(2))
        )


def test_a_change_that_moves_nothing_previews_nothing(
    org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    _submit(expenses, org, 7, org.small, "10.00")  # Frank

    preview = org_service.preview_change_user(ChangeUser(user_id=org.person(2), active=False))

    assert (preview.reassignments, preview.stranded) == ((), ())


def test_another_companys_user_is_unknown_to_the_preview(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    other = tech_corp(new_uow)

    with pytest.raises(UnknownUser):
        org_service.preview_change_user(
            ChangeUser(user_id=other.person(6), active=False, company_id=CompanyId(org.id))
        )
    assert org_service.user(UserId(other.person(6))).user.active is True
