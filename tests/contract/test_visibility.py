"""Who sees which expense, on every adapter: the submitter, the approvers and their delegates
in force, everyone up the submitter's reporting chain, and finance, auditors and admins of the
company; nobody else, and an expense nobody may see is unknown, like another company's."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from expense_core.delegation import Delegation
from expense_core.errors import UnknownExpense, UnknownUser
from expense_core.model import ExpenseId, Role, User, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import ChangeUser, ExpenseService, NewUser, OrgService, SubmitExpense
from expense_core.visibility import Viewer
from tests.clocks import START
from tests.contract.support import Org, money, tech_corp

_emails = itertools.count(1)


@pytest.fixture
def org(new_uow: Callable[[], UnitOfWork]) -> Org:
    """TechCorp where each person reports to the next more senior one (Grace to Frank ...)."""
    return tech_corp(new_uow, managers=True)


def _person(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    *,
    level: int = 7,
    role: Role = Role.EMPLOYEE,
    manager: UserId | None = None,
) -> User:
    return OrgService(new_uow).create_user(
        NewUser(
            company_id=org.id,
            team_id=org.team.id,
            email=f"someone{next(_emails)}@techcorp.example",
            name="Someone Else",
            hierarchy_level_id=org.levels[level].id,
            manager_id=manager,
            role=role,
        )
    )


def _viewer(user: User) -> Viewer:
    return Viewer(user.company_id, user.id, user.role)


def _graces(expenses: ExpenseService, org: Org) -> ExpenseId:
    """Grace's small expense: Frank, her manager, approves its one step."""
    return expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("10.00"))
    ).expense.id


def _sees(expenses: ExpenseService, viewer: Viewer, expense_id: ExpenseId) -> bool:
    """Whether every read agrees the viewer sees the expense (and it is listed for them)."""
    listed = expense_id in [s.id for s in expenses.list_expenses(viewer, limit=100).items]
    try:
        expenses.status(expense_id, viewer)
    except UnknownExpense:
        for read in (expenses.history, expenses.explain):
            with pytest.raises(UnknownExpense, match=f"expense {expense_id} does not exist"):
                read(expense_id, viewer)
        assert not listed
        return False
    assert expenses.history(expense_id, viewer)
    assert expenses.explain(expense_id, viewer).expense.id == expense_id
    assert listed
    return True


def test_the_submitter_the_approver_and_the_chain_above_see_an_expense(
    expenses: ExpenseService, org: Org
) -> None:
    expense_id = _graces(expenses, org)
    for level in range(1, 8):  # Grace, Frank (approver and manager), and everyone above
        assert _sees(expenses, _viewer(org.people[level]), expense_id), level


def test_a_colleague_outside_the_chain_sees_nothing_of_it(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork]
) -> None:
    expense_id = _graces(expenses, org)
    peer = _person(new_uow, org, manager=org.person(6))  # Grace's peer, also under Frank
    loner = _person(new_uow, org, level=2, role=Role.MANAGER)  # a manager of nobody
    for someone in (peer, loner):
        assert not _sees(expenses, _viewer(someone), expense_id)
        assert expenses.list_expenses(_viewer(someone)).items == ()


@pytest.mark.parametrize("role", [Role.FINANCE, Role.AUDITOR, Role.ADMIN])
def test_finance_auditors_and_admins_see_the_whole_company(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork], role: Role
) -> None:
    expense_id = _graces(expenses, org)
    assert _sees(expenses, _viewer(_person(new_uow, org, role=role)), expense_id)


def test_another_companys_people_see_nothing_whatever_their_role(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork]
) -> None:
    expense_id = _graces(expenses, org)
    other = tech_corp(new_uow)
    outsider = _person(new_uow, other, role=Role.ADMIN)
    assert not _sees(expenses, _viewer(outsider), expense_id)


def test_a_delegate_sees_the_expenses_of_the_approver_they_cover_for_while_in_force(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork]
) -> None:
    expense_id = _graces(expenses, org)
    cover = _person(new_uow, org, level=5)
    viewer = _viewer(cover)
    assert not _sees(expenses, viewer, expense_id)
    delegation = Delegation(
        company_id=org.id,
        user_id=org.person(6),
        delegate_id=cover.id,
        starts_at=START.replace(year=2024),
        ends_at=START.replace(year=2026),
    )
    with new_uow() as uow:
        uow.delegations.put(delegation)
        uow.commit()
    assert _sees(expenses, viewer, expense_id)
    # Over (or not yet begun): the delegate sees no more than before.
    with new_uow() as uow:
        uow.delegations.put(Delegation(**{**_fields(delegation), "ends_at": START}))
        uow.commit()
    assert not _sees(expenses, viewer, expense_id)


def _fields(d: Delegation) -> dict[str, object]:
    return {
        "company_id": d.company_id,
        "user_id": d.user_id,
        "delegate_id": d.delegate_id,
        "starts_at": d.starts_at,
        "ends_at": d.ends_at,
    }


def test_a_manager_sees_what_their_reports_at_any_depth_submit_and_loses_it_when_moved(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork]
) -> None:
    boss = _person(new_uow, org, level=3)
    middle = _person(new_uow, org, level=6, manager=boss.id)
    worker = _person(new_uow, org, level=7, manager=middle.id)
    expense_id = expenses.submit(
        SubmitExpense(user_id=worker.id, policy_id=org.small.id, amount=money("10.00"))
    ).expense.id
    assert _sees(expenses, _viewer(boss), expense_id)
    # The middle manager reports to nobody now: the chain above them is gone.
    OrgService(new_uow).change_user(ChangeUser(user_id=middle.id, manager_id=None))
    assert not _sees(expenses, _viewer(boss), expense_id)
    assert _sees(expenses, _viewer(middle), expense_id)


def test_lists_filter_before_paging_and_never_count_the_unseen(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork]
) -> None:
    peer = _person(new_uow, org, level=6, manager=org.person(5))
    theirs = expenses.submit(
        SubmitExpense(user_id=peer.id, policy_id=org.small.id, amount=money("5.00"))
    ).expense.id
    graces = [_graces(expenses, org) for _ in range(3)]
    frank = _viewer(org.people[6])
    first = expenses.list_expenses(frank, limit=2)
    assert [s.id for s in first.items] == [graces[2], graces[1]]
    rest = expenses.list_expenses(frank, cursor=first.next_cursor, limit=2)
    assert [s.id for s in rest.items] == [graces[0]]
    assert rest.next_cursor is None
    assert theirs not in [s.id for s in expenses.list_expenses(frank, limit=100).items]
    eve = _viewer(org.people[5])  # above both Frank and the peer
    assert [s.id for s in expenses.list_expenses(eve, limit=100).items] == [*graces[::-1], theirs]


def test_an_inbox_is_its_approvers_unless_the_viewer_sees_the_company(
    expenses: ExpenseService, org: Org, new_uow: Callable[[], UnitOfWork]
) -> None:
    expense_id = _graces(expenses, org)
    frank = org.person(6)
    assert [i.expense_id for i in expenses.inbox(frank, _viewer(org.people[6])).items] == [
        expense_id
    ]
    with pytest.raises(UnknownUser):
        expenses.inbox(frank, _viewer(org.people[5]))  # his own manager, still not his inbox
    auditor = _viewer(_person(new_uow, org, role=Role.AUDITOR))
    assert [i.expense_id for i in expenses.inbox(frank, auditor).items] == [expense_id]
