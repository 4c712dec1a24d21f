"""ExpenseRepository through the services: submission, decisions, reads, lists, inbox, history."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from expense_core.errors import NoApproverForStep, UnknownExpense
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    EventKind,
    ExpenseId,
    ExpenseStatus,
    Money,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    RejectExpense,
    SubmitExpense,
    Submitted,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from tests.contract.support import Org, add_policy, money, tech_corp

NOBODY = ExpenseId(2_000_000_000)


def _submit(
    expenses: ExpenseService, org: Org, who: int, amount: str, policy: str = "large"
) -> Submitted:
    return expenses.submit(
        SubmitExpense(
            user_id=org.person(who),
            policy_id=getattr(org, policy).id,
            amount=money(amount),
            description=f"{policy} for {who}",
        )
    )


def _approve(expenses: ExpenseService, org: Org, expense_id: ExpenseId, who: int) -> None:
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(who), comments="ok"))


def test_a_submission_is_stored_whole(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    submitted = _submit(expenses, org, 7, "4000.00")
    expense = submitted.expense
    assert expense.id > 0
    assert [m.id for m in submitted.approvers] == [org.person(n) for n in (6, 5, 4)]
    with new_uow() as uow:
        assert uow.expenses.get(org.id, expense.id) == expense
        history = uow.expenses.history(org.id, expense.id)
    assert [e.kind for e in history] == [EventKind.SUBMITTED]
    assert history[0].expense_id == expense.id
    assert history[0].at == expense.submitted_at


def test_the_seed_flow_reads_back_on_the_status_page(expenses: ExpenseService, org: Org) -> None:
    expense_id = _submit(expenses, org, 7, "4000.00").expense.id
    for who in (6, 5, 4):
        _approve(expenses, org, expense_id, who)
    view = expenses.status(expense_id, Viewer.whole_company(org.id))
    assert view.status is ExpenseStatus.APPROVED
    assert view.completed_at is not None
    assert view.completed_at > view.submitted_at
    assert (view.user_id, view.user_name) == (org.person(7), "Grace Taylor")
    assert (view.policy_id, view.policy_name) == (org.large.id, "Large Equipment")
    assert view.amount == money("4000.00")
    assert view.description == "large for 7"
    assert [(a.step_number, a.approver_name, a.approver_level) for a in view.approvals] == [
        (1, "Frank Miller", "Manager"),
        (2, "Eve Davis", "SEM"),
        (3, "David Wilson", "AD"),
    ]
    assert all(a.status is ApprovalStatus.APPROVED for a in view.approvals)
    assert all(a.comments == "ok" and a.required and a.approved_at for a in view.approvals)
    assert view.approvals[-1].approved_at == view.completed_at
    assert expenses.status(expense_id) == view  # demo mode looks in every company


def test_the_status_pages_of_several_expenses_read_at_once_in_any_company(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    other = tech_corp(new_uow)
    mine = _submit(expenses, org, 7, "4000.00").expense.id
    _approve(expenses, org, mine, 6)
    theirs = _submit(expenses, other, 7, "150.00", "small").expense.id
    read = expenses.statuses([theirs, NOBODY, mine, mine])
    assert read == {mine: expenses.status(mine), theirs: expenses.status(theirs)}
    assert [a.status for a in read[mine].approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.PENDING,
        ApprovalStatus.PENDING,
    ]
    assert read[theirs].company_id == other.id != org.id
    assert expenses.statuses([]) == {}
    assert expenses.statuses([NOBODY]) == {}


def test_a_decision_writes_exactly_what_it_decided(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    submitted = _submit(expenses, org, 7, "4000.00").expense
    first = expenses.approve(
        ApproveStep(expense_id=submitted.id, user_id=org.person(6), comments="fine")
    )
    with new_uow() as uow:
        assert uow.expenses.get(org.id, submitted.id) == first.expense
    second = expenses.reject(
        RejectExpense(expense_id=submitted.id, user_id=org.person(5), reason="too dear")
    )
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, submitted.id)
        history = uow.expenses.history(org.id, submitted.id)
    assert stored == second.expense
    assert stored.status is ExpenseStatus.REJECTED
    assert [a.status for a in stored.approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.REJECTED,
        ApprovalStatus.SKIPPED,
    ]
    assert stored.approvals[1].comments == "too dear"
    assert history[0].kind is EventKind.SUBMITTED
    assert history[1:] == (*first.events, *second.events)


def test_get_for_update_and_save_round_trip(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense = _submit(expenses, org, 7, "300.00", "travel").expense
    with new_uow() as uow:
        loaded = uow.expenses.get_for_update(org.id, expense.id)
        assert loaded == expense
        step = attrs.evolve(
            loaded.approvals[0],
            status=ApprovalStatus.APPROVED,
            approved_at=loaded.submitted_at,
            comments="by hand",
        )
        changed = attrs.evolve(loaded, approvals=(step, *loaded.approvals[1:]))
        uow.expenses.save(changed, (), ())
        assert uow.expenses.get(org.id, expense.id) == changed  # a unit of work sees its writes
        uow.commit()
    with new_uow() as uow:
        assert uow.expenses.get(org.id, expense.id) == changed


def test_withdrawal_skips_what_is_pending(expenses: ExpenseService, org: Org) -> None:
    expense_id = _submit(expenses, org, 7, "4000.00").expense.id
    _approve(expenses, org, expense_id, 6)
    decision = expenses.withdraw(WithdrawExpense(expense_id=expense_id, user_id=org.person(7)))
    view = expenses.status(expense_id, Viewer.whole_company(org.id))
    assert view.status is ExpenseStatus.WITHDRAWN
    assert view.completed_at == decision.expense.completed_at
    assert [a.status for a in view.approvals] == [
        ApprovalStatus.APPROVED,
        ApprovalStatus.SKIPPED,
        ApprovalStatus.SKIPPED,
    ]
    kinds = [e.kind for e in expenses.history(expense_id, Viewer.whole_company(org.id))]
    assert kinds == [
        EventKind.SUBMITTED,
        EventKind.APPROVED,
        EventKind.WITHDRAWN,
        EventKind.SKIPPED,
        EventKind.SKIPPED,
    ]


def test_a_submission_without_approvers_writes_nothing(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    # Alice (CTO) has nobody more senior in her team.
    with pytest.raises(NoApproverForStep):
        _submit(expenses, org, 1, "4000.00")
    with new_uow() as uow:
        assert (
            uow.expenses.summaries(org.id, user_id=None, status=None, before=None, limit=10) == ()
        )


def test_exact_amounts_survive_every_read(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    widest = add_policy(
        new_uow, org.id, "anything", (ApprovalStep(step_order=1, required_level=6),),
        low="0.00", high=Money.parse("9999999999.99"),
    )  # fmt: skip
    for text in ("0.01", "0.10", "1200.00", "1234567.89", "9999999999.99"):
        expense = expenses.submit(
            SubmitExpense(user_id=org.person(7), policy_id=widest.id, amount=money(text))
        ).expense
        assert expenses.status(expense.id, Viewer.whole_company(org.id)).amount == money(text)
        with new_uow() as uow:
            assert uow.expenses.get(org.id, expense.id).amount == money(text)
        summary = expenses.list_expenses(Viewer.whole_company(org.id), limit=1).items[0]
        assert (summary.id, summary.amount) == (expense.id, money(text))


def test_another_companys_expense_is_unknown(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    other = tech_corp(new_uow)
    expense_id = _submit(expenses, org, 7, "100.00", "small").expense.id
    with new_uow() as uow:
        for company in (other.id,):
            with pytest.raises(UnknownExpense):
                uow.expenses.get(company, expense_id)
            with pytest.raises(UnknownExpense):
                uow.expenses.view(company, expense_id)
            with pytest.raises(UnknownExpense):
                uow.expenses.history(company, expense_id)
            with pytest.raises(UnknownExpense):
                uow.expenses.get_for_update(company, expense_id)
        assert (
            uow.expenses.summaries(other.id, user_id=None, status=None, before=None, limit=9) == ()
        )
        assert uow.expenses.inbox(other.id, org.person(6), after=None, limit=9) == ()
    with pytest.raises(UnknownExpense):  # the other company's manager cannot act on it
        _approve(expenses, other, expense_id, 6)


def test_get_for_update_by_finds_the_expense_in_an_active_actors_company_only(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    other = tech_corp(new_uow)
    expense = _submit(expenses, org, 7, "300.00", "travel").expense
    with new_uow() as uow:
        # Anyone of the company finds it, not only its submitter and approvers.
        for who in (7, 6, 1):
            assert uow.expenses.get_for_update_by(org.person(who), expense.id) == expense
    with new_uow() as uow:
        assert uow.expenses.get_for_update_by(other.person(6), expense.id) is None
        assert uow.expenses.get_for_update_by(UserId(2_000_000_000), expense.id) is None
        assert uow.expenses.get_for_update_by(org.person(6), NOBODY) is None
    with new_uow() as uow:
        leaver = uow.org.member(org.person(2)).user
        uow.org.update_user(attrs.evolve(leaver, active=False))
        uow.commit()
    with new_uow() as uow:
        assert uow.expenses.get_for_update_by(org.person(2), expense.id) is None


def test_get_for_update_by_then_save_round_trip(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense = _submit(expenses, org, 7, "300.00", "travel").expense
    with new_uow() as uow:
        loaded = uow.expenses.get_for_update_by(org.person(7), expense.id)
        assert loaded == expense
        step = attrs.evolve(loaded.approvals[0], comments="by hand")
        changed = attrs.evolve(loaded, approvals=(step, *loaded.approvals[1:]))
        uow.expenses.save(changed, (), ())
        uow.commit()
    with new_uow() as uow:
        assert uow.expenses.get(org.id, expense.id) == changed


def test_an_unknown_expense_is_unknown_everywhere(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    with new_uow() as uow:
        for read in (uow.expenses.get, uow.expenses.view, uow.expenses.history):
            with pytest.raises(UnknownExpense):
                read(org.id, NOBODY)
        with pytest.raises(UnknownExpense):
            uow.expenses.view(None, NOBODY)
        with pytest.raises(UnknownExpense):
            uow.expenses.get_for_update(org.id, NOBODY)


# --- lists -----------------------------------------------------------------------------------


def test_expenses_list_newest_first_in_pages(expenses: ExpenseService, org: Org) -> None:
    ids = [_submit(expenses, org, 7, f"{100 + i}.00", "small").expense.id for i in range(5)]
    ids += [_submit(expenses, org, 6, "150.00", "travel").expense.id]
    expenses.reject(RejectExpense(expense_id=ids[1], user_id=org.person(6), reason="no"))

    first = expenses.list_expenses(Viewer.whole_company(org.id), limit=4)
    assert [s.id for s in first.items] == ids[::-1][:4]
    assert first.next_cursor == ids[2]
    rest = expenses.list_expenses(Viewer.whole_company(org.id), cursor=first.next_cursor, limit=4)
    assert [s.id for s in rest.items] == ids[1::-1]
    assert rest.next_cursor is None

    mine = expenses.list_expenses(Viewer.whole_company(org.id), user_id=org.person(6))
    assert [s.id for s in mine.items] == [ids[5]]
    rejected = expenses.list_expenses(Viewer.whole_company(org.id), status=ExpenseStatus.REJECTED)
    assert [(s.id, s.status) for s in rejected.items] == [(ids[1], ExpenseStatus.REJECTED)]
    graces_pending = expenses.list_expenses(
        Viewer.whole_company(org.id),
        user_id=org.person(7),
        status=ExpenseStatus.PENDING,
        cursor=ids[4],
        limit=2,
    )
    assert [s.id for s in graces_pending.items] == [ids[3], ids[2]]
    summary = first.items[0]
    assert (summary.company_id, summary.user_id, summary.policy_id) == (
        org.id,
        org.person(6),
        org.travel.id,
    )
    assert summary.completed_at is None
    assert summary.submitted_at == first.items[0].submitted_at


def test_the_inbox_holds_only_steps_one_can_act_on_now(expenses: ExpenseService, org: Org) -> None:
    first = _submit(expenses, org, 7, "4000.00").expense.id  # Frank, then Eve, then David
    second = _submit(expenses, org, 7, "300.00", "travel").expense.id  # Frank, then Eve
    third = _submit(expenses, org, 7, "500.00", "small").expense.id  # Frank

    def inbox(who: int) -> list[tuple[int, int]]:
        page = expenses.inbox(org.person(who), Viewer.whole_company(org.id))
        return [(i.expense_id, i.step_number) for i in page.items]

    assert inbox(6) == [(first, 1), (second, 1), (third, 1)]
    assert inbox(5) == []  # Eve's steps wait for Frank's
    _approve(expenses, org, first, 6)
    assert inbox(5) == [(first, 2)]
    assert inbox(6) == [(second, 1), (third, 1)]
    expenses.withdraw(WithdrawExpense(expense_id=second, user_id=org.person(7)))
    assert inbox(6) == [(third, 1)]
    item = expenses.inbox(org.person(5), Viewer.whole_company(org.id)).items[0]
    assert (item.submitter_id, item.submitter_name) == (org.person(7), "Grace Taylor")
    assert (item.policy_name, item.amount, item.required) == (
        "Large Equipment",
        money("4000.00"),
        True,
    )
    assert item.description == "large for 7"


def test_optional_steps_are_actionable_while_pending(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    policy = add_policy(
        new_uow,
        org.id,
        "training",
        (
            ApprovalStep(step_order=1, required_level=6),
            ApprovalStep(step_order=2, required_level=4, is_required=False),
        ),
    )
    expense_id = expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=policy.id, amount=money("80.00"))
    ).expense.id
    optional = expenses.inbox(
        org.person(4), Viewer.whole_company(org.id)
    ).items  # David holds the optional step 2
    assert [(i.expense_id, i.step_number, i.required) for i in optional] == [(expense_id, 2, False)]
    _approve(expenses, org, expense_id, 6)  # the only required step: the expense closes
    assert expenses.inbox(org.person(4), Viewer.whole_company(org.id)).items == ()
    view = expenses.status(expense_id, Viewer.whole_company(org.id))
    assert view.status is ExpenseStatus.APPROVED
    assert [a.status for a in view.approvals] == [ApprovalStatus.APPROVED, ApprovalStatus.SKIPPED]
    assert [a.required for a in view.approvals] == [True, False]


def test_the_inbox_pages_oldest_first(expenses: ExpenseService, org: Org) -> None:
    ids = [_submit(expenses, org, 7, "10.00", "small").expense.id for _ in range(5)]
    page = expenses.inbox(org.person(6), Viewer.whole_company(org.id), limit=2)
    assert [i.expense_id for i in page.items] == ids[:2]
    page = expenses.inbox(
        org.person(6), Viewer.whole_company(org.id), cursor=page.next_cursor, limit=2
    )
    assert [i.expense_id for i in page.items] == ids[2:4]
    page = expenses.inbox(
        org.person(6), Viewer.whole_company(org.id), cursor=page.next_cursor, limit=2
    )
    assert [i.expense_id for i in page.items] == ids[4:]
    assert page.next_cursor is None
    assert expenses.inbox(UserId(org.person(6)), None).items[0].expense_id == ids[0]


def test_history_keeps_the_order_things_happened_in(expenses: ExpenseService, org: Org) -> None:
    expense_id = _submit(expenses, org, 7, "4000.00").expense.id
    _approve(expenses, org, expense_id, 6)
    _approve(expenses, org, expense_id, 5)
    expenses.reject(RejectExpense(expense_id=expense_id, user_id=org.person(4), reason="no"))
    history = expenses.history(expense_id, Viewer.whole_company(org.id))
    assert [(e.kind, e.step_number, e.actor_id) for e in history] == [
        (EventKind.SUBMITTED, None, org.person(7)),
        (EventKind.APPROVED, 1, org.person(6)),
        (EventKind.APPROVED, 2, org.person(5)),
        (EventKind.REJECTED, 3, org.person(4)),
    ]
    assert [e.at for e in history] == sorted(e.at for e in history)
    assert history[-1].comment == "no"
    assert {(e.company_id, e.expense_id) for e in history} == {(org.id, expense_id)}
