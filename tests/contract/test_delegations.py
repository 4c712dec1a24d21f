"""DelegationRepository, the covers a decision's locking read finds, a delegate's decisions
and inbox: the same on every adapter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from expense_core.delegation import Delegation
from expense_core.errors import DelegateNotEligible, DelegationCycle, NotYourStep
from expense_core.model import (
    NEW_EXPENSE,
    ApprovalStatus,
    EventKind,
    Expense,
    ExpenseId,
    ExpenseStatus,
    Policy,
    PolicyId,
    Role,
)
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ApproveStep,
    ClearDelegation,
    DelegationService,
    ExpenseService,
    RejectExpense,
    SetDelegation,
    SubmitExpense,
)
from expense_core.visibility import Viewer
from tests.clocks import START, TickingClock
from tests.contract.support import Org, money, tech_corp

DAY = timedelta(days=1)
NOBODY = ExpenseId(2_000_000_000)


def _away(org: Org, who: int, delegate: int, *, start: int = -1, days: int = 14) -> Delegation:
    """Person `who` (by level) away from `start` days after START, covered by `delegate`."""
    return Delegation(
        company_id=org.id,
        user_id=org.person(who),
        delegate_id=org.person(delegate),
        starts_at=START + start * DAY + timedelta(microseconds=7),
        ends_at=START + (start + days) * DAY,
        note="holiday",
    )


def _store(new_uow: Callable[[], UnitOfWork], *delegations: Delegation) -> None:
    with new_uow() as uow:
        for d in delegations:
            uow.delegations.put(d)
        uow.commit()


def _submit(expenses: ExpenseService, org: Org, who: int, policy: str, amount: str) -> ExpenseId:
    return expenses.submit(
        SubmitExpense(
            user_id=org.person(who), policy_id=getattr(org, policy).id, amount=money(amount)
        )
    ).expense.id


# --- the store -------------------------------------------------------------------------------


def test_a_delegation_is_stored_replaced_and_removed(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    frank, other = org.person(6), org.person(4)
    first, second = _away(org, 6, 5), _away(org, 6, 3, start=2, days=1)
    with new_uow() as uow:
        assert uow.delegations.get(org.id, frank) is None
        uow.delegations.put(first)
        uow.commit()
    with new_uow() as uow:
        stored = uow.delegations.get(org.id, frank)
        assert stored == first
        assert stored is not None
        assert stored.starts_at.microsecond == START.microsecond + 7  # every store keeps them
        uow.delegations.put(second)  # one per user: the new one replaces the old
        uow.delegations.put(_away(org, 4, 5))
        uow.commit()
    with new_uow() as uow:
        assert uow.delegations.get(org.id, frank) == second
        assert uow.delegations.remove(org.id, frank) is True
        assert uow.delegations.remove(org.id, frank) is False
        uow.commit()
    with new_uow() as uow:
        assert uow.delegations.get(org.id, frank) is None
        assert uow.delegations.get(org.id, other) == _away(org, 4, 5)


def test_a_delegation_is_confined_to_its_company(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    elsewhere = tech_corp(new_uow)
    _store(new_uow, _away(org, 6, 5))
    with new_uow() as uow:
        assert uow.delegations.get(elsewhere.id, org.person(6)) is None
        assert uow.delegations.remove(elsewhere.id, org.person(6)) is False
        assert uow.delegations.get(org.id, org.person(6)) is not None


def test_an_uncommitted_delegation_is_rolled_back(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    _store(new_uow, _away(org, 6, 5))
    with new_uow() as uow:
        uow.delegations.put(_away(org, 6, 3))
        uow.delegations.remove(org.id, org.person(6))
    with new_uow() as uow:
        assert uow.delegations.get(org.id, org.person(6)) == _away(org, 6, 5)


def test_the_service_sets_reads_and_clears_a_delegation(
    new_uow: Callable[[], UnitOfWork], org: Org, clock: TickingClock
) -> None:
    delegations = DelegationService(new_uow, clock)
    away = _away(org, 6, 5)
    state = delegations.set(
        SetDelegation(
            user_id=org.person(6),
            delegate_id=org.person(5),
            starts_at=away.starts_at,
            ends_at=away.ends_at,
            note="holiday",
        )
    )
    assert (state.delegation, state.active) == (away, True)
    assert delegations.get(org.person(6), org.id).delegation == away
    with pytest.raises(DelegationCycle):
        delegations.set(
            SetDelegation(
                user_id=org.person(5),
                delegate_id=org.person(6),
                starts_at=away.starts_at,
                ends_at=away.starts_at + DAY,
            )
        )
    delegations.clear(ClearDelegation(user_id=org.person(6)))
    with new_uow() as uow:
        assert uow.delegations.get(org.id, org.person(6)) is None
        assert uow.delegations.get(org.id, org.person(5)) is None


# --- the locking read ------------------------------------------------------------------------


@pytest.mark.parametrize("known_company", [True, False])
def test_the_locking_read_finds_the_actors_covers(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org, known_company: bool
) -> None:
    expense_id = _submit(expenses, org, 7, "large", "2500.00")  # Frank, Eve, David
    frank_away, david_away = _away(org, 6, 3), _away(org, 4, 3, start=5)
    _store(new_uow, frank_away, david_away, _away(org, 5, 2))
    company = org.id if known_company else None
    with new_uow() as uow:
        found = uow.expenses.get_for_decision(company, org.person(3), expense_id)
        assert found is not None
        expense, covers, role = found
        assert role is Role.EMPLOYEE
        assert expense == uow.expenses.get(org.id, expense_id)
        assert [
            (c.step_number, c.delegation, c.required_level, c.delegate_level) for c in covers
        ] == [(1, frank_away, 6, 3), (3, david_away, 4, 3)]
        # Someone nobody named finds the expense alone.
        assert uow.expenses.get_for_decision(company, org.person(1), expense_id) == (
            expense,
            (),
            Role.EMPLOYEE,
        )
        assert uow.expenses.get_for_decision(company, org.person(3), NOBODY) is None


def test_the_locking_read_by_actor_misses_another_companys_expense(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    elsewhere = tech_corp(new_uow)
    expense_id = _submit(expenses, org, 7, "small", "10.00")
    with new_uow() as uow:
        assert uow.expenses.get_for_decision(None, elsewhere.person(3), expense_id) is None
        assert uow.expenses.get_for_decision(elsewhere.id, org.person(3), expense_id) is None


# --- deciding as a delegate ------------------------------------------------------------------


def test_a_delegate_approves_and_the_history_says_for_whom(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _submit(expenses, org, 7, "large", "2500.00")
    _store(new_uow, _away(org, 6, 3))
    decision = expenses.approve(
        ApproveStep(expense_id=expense_id, user_id=org.person(3), comments="for Frank")
    )
    assert (decision.step_number, decision.on_behalf_of) == (1, org.person(6))
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, expense_id)
        history = uow.expenses.history(org.id, expense_id)
    assert stored == decision.expense
    assert (stored.approvals[0].approver_id, stored.approvals[0].status) == (
        org.person(6),
        ApprovalStatus.APPROVED,
    )
    assert [(e.kind, e.actor_id, e.on_behalf_of) for e in history] == [
        (EventKind.SUBMITTED, org.person(7), None),
        (EventKind.APPROVED, org.person(3), org.person(6)),
    ]


def test_a_delegate_rejects_for_the_absent_approver(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _submit(expenses, org, 7, "travel", "300.00")  # Frank, then Eve
    _store(new_uow, _away(org, 6, 4))
    decision = expenses.reject(
        RejectExpense(expense_id=expense_id, user_id=org.person(4), reason="no", company_id=org.id)
    )
    assert decision.on_behalf_of == org.person(6)
    with new_uow() as uow:
        history = uow.expenses.history(org.id, expense_id)
    assert [(e.kind, e.step_number, e.on_behalf_of) for e in history[1:]] == [
        (EventKind.REJECTED, 1, org.person(6)),
        (EventKind.SKIPPED, 2, org.person(6)),
    ]


def test_a_delegate_is_refused_outside_the_period_and_where_not_eligible(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _submit(expenses, org, 7, "large", "2500.00")  # Frank, Eve, David
    _store(new_uow, _away(org, 6, 5), _away(org, 4, 2, start=3))
    with pytest.raises(DelegateNotEligible):  # Eve approves step 2 herself: four eyes
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(5)))
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(6)))
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(5)))
    with pytest.raises(NotYourStep):  # Bob covers for David only from day 3
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(2)))
    with new_uow() as uow:
        assert uow.expenses.get(org.id, expense_id).approvals[2].status is ApprovalStatus.PENDING


# --- the inbox -------------------------------------------------------------------------------


def test_the_inbox_lists_the_steps_a_delegate_may_decide_now(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    small = _submit(expenses, org, 7, "small", "10.00")  # Frank
    large = _submit(expenses, org, 7, "large", "2500.00")  # Frank, Eve, David
    carols_own = _submit(expenses, org, 4, "small", "20.00")  # David submits: Carol approves
    travel = _submit(expenses, org, 7, "travel", "50.00")  # Frank, Eve
    expenses.approve(ApproveStep(expense_id=travel, user_id=org.person(6)))  # Eve's turn now
    _store(new_uow, _away(org, 6, 5), _away(org, 4, 5, start=3))
    eve = expenses.inbox(org.person(5), Viewer.whole_company(org.id))
    # Frank's small one for Frank; the large one not (Eve holds its step 2); her own travel step.
    assert [(i.expense_id, i.step_number, i.on_behalf_of) for i in eve.items] == [
        (small, 1, org.person(6)),
        (travel, 2, None),
    ]
    assert carols_own not in [i.expense_id for i in eve.items]
    # Pages continue across own and delegated items.
    first = expenses.inbox(org.person(5), Viewer.whole_company(org.id), limit=1)
    assert [i.expense_id for i in first.items] == [small]
    rest = expenses.inbox(
        org.person(5), Viewer.whole_company(org.id), cursor=first.next_cursor, limit=1
    )
    assert [i.expense_id for i in rest.items] == [travel]
    assert rest.next_cursor is None
    # Frank's inbox is unchanged: his steps stay his.
    frank = expenses.inbox(org.person(6), Viewer.whole_company(org.id))
    assert [(i.expense_id, i.on_behalf_of) for i in frank.items] == [(small, None), (large, None)]


def test_the_inbox_leaves_out_steps_a_delegate_is_too_junior_for(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    travel = _submit(expenses, org, 7, "travel", "50.00")  # Frank (6), Eve (5)
    expenses.approve(ApproveStep(expense_id=travel, user_id=org.person(6)))
    _store(new_uow, _away(org, 5, 6))  # Frank covers for Eve, but her step needs level 5
    assert expenses.inbox(org.person(6), Viewer.whole_company(org.id)).items == ()
    with pytest.raises(DelegateNotEligible):
        expenses.approve(ApproveStep(expense_id=travel, user_id=org.person(6)))


def test_the_inbox_of_someone_covering_for_nobody_now_is_their_own(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    small = _submit(expenses, org, 7, "small", "10.00")
    _store(new_uow, _away(org, 6, 3, start=3))  # from day 3 only
    assert expenses.inbox(org.person(3), Viewer.whole_company(org.id)).items == ()
    assert [
        i.expense_id for i in expenses.inbox(org.person(6), Viewer.whole_company(org.id)).items
    ] == [small]


def test_the_inbox_of_someone_covering_for_two_pages_through_both(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    first = _submit(expenses, org, 7, "small", "10.00")  # Frank
    travel = _submit(expenses, org, 7, "travel", "50.00")  # Frank, then Eve
    expenses.approve(ApproveStep(expense_id=travel, user_id=org.person(6)))
    last = _submit(expenses, org, 7, "small", "30.00")  # Frank
    _store(new_uow, _away(org, 6, 3), _away(org, 5, 3))  # Carol covers for Frank and Eve
    expected = [(first, org.person(6)), (travel, org.person(5)), (last, org.person(6))]
    whole = expenses.inbox(org.person(3), Viewer.whole_company(org.id))
    assert [(i.expense_id, i.on_behalf_of) for i in whole.items] == expected
    seen, cursor = [], None
    for _ in range(3):
        page = expenses.inbox(org.person(3), Viewer.whole_company(org.id), cursor=cursor, limit=1)
        seen += [(i.expense_id, i.on_behalf_of) for i in page.items]
        cursor = page.next_cursor
    assert seen == expected
    assert cursor is None


@pytest.mark.parametrize("known_company", [True, False])
def test_the_locking_read_finds_an_expense_without_steps(
    new_uow: Callable[[], UnitOfWork], org: Org, known_company: bool
) -> None:
    with new_uow() as uow:
        policy = uow.org.add_policy(
            Policy(id=PolicyId(0), company_id=org.id, category="misc", name="Nothing to approve")
        )
        stored = uow.expenses.add(
            Expense(
                id=NEW_EXPENSE,
                company_id=org.id,
                user_id=org.person(7),
                policy_id=policy.id,
                amount=money("5.00"),
                description=None,
                status=ExpenseStatus.PENDING,
                submitted_at=START,
            ),
            [],
            [],
        )
        uow.commit()
    _store(new_uow, _away(org, 6, 3))
    with new_uow() as uow:
        company = org.id if known_company else None
        assert uow.expenses.get_for_decision(company, org.person(3), stored.id) == (
            stored,
            (),
            Role.EMPLOYEE,
        )
        assert uow.expenses.get_for_update(org.id, stored.id) == stored
