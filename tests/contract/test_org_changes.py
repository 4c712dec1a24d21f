"""OrgRepository's admin side: lists, user changes, policy deactivation and use, pending work;
and OrgService's re-routing when approvers leave or move, on every adapter."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from expense_core.errors import (
    DuplicateEmail,
    DuplicateName,
    LevelOutsideTeam,
    ManagerCycle,
    PendingApprovalsStranded,
    PolicyOverlap,
    ReplacementNotEligible,
    UnknownManager,
    UnknownPolicy,
    UnknownTeam,
    UnknownUser,
)
from expense_core.model import (
    EventKind,
    ExpenseId,
    LevelId,
    Money,
    Policy,
    PolicyId,
    TeamId,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import (
    ApproveStep,
    ChangeUser,
    ExpenseService,
    NewPolicy,
    NewUser,
    OrgService,
    SubmitExpense,
)
from expense_core.visibility import Viewer
from tests.contract.support import Org, add_policy, money, steps, tech_corp

NOBODY = 2_000_000_000


def _submit(expenses: ExpenseService, org: Org, who: int, policy: Policy, amount: str) -> ExpenseId:
    return expenses.submit(
        SubmitExpense(user_id=org.person(who), policy_id=policy.id, amount=money(amount))
    ).expense.id


def _add_person(
    service: OrgService, org: Org, level: int, email: str, *, manager: UserId | None = None
) -> UserId:
    return service.create_user(
        NewUser(
            company_id=org.id,
            team_id=org.team.id,
            email=email,
            name=email.split("@")[0].title(),
            hierarchy_level_id=org.levels[level].id,
            manager_id=manager,
        )
    ).id


# --- lists -----------------------------------------------------------------------------------


def test_teams_and_levels_are_listed_in_order(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    finance = org_service.create_team(org.id, "Finance", is_company_wide=True)
    org_service.create_level(org.id, finance.id, 4, "Controller")
    org_service.create_level(org.id, finance.id, 2, "CFO")
    other = tech_corp(new_uow)
    with new_uow() as uow:
        assert uow.org.teams(org.id) == (org.team, finance)
        assert [lv.level_number for lv in uow.org.levels(org.id, finance.id)] == [2, 4]
        assert uow.org.levels(org.id, org.team.id) == tuple(org.levels[n] for n in range(1, 8))
        assert uow.org.levels(other.id, finance.id) == ()
        assert uow.org.company_of_team(finance.id) == org.id
        with pytest.raises(UnknownTeam):
            uow.org.company_of_team(TeamId(NOBODY))
        assert uow.org.company_of_policy(org.small.id) == org.id
        with pytest.raises(UnknownPolicy):
            uow.org.company_of_policy(PolicyId(NOBODY))


def test_users_come_in_keyset_pages(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    tech_corp(new_uow)  # a neighbour whose people never show up
    everyone = sorted(u.id for u in org.people.values())
    with new_uow() as uow:
        first = uow.org.users(org.id, after=None, limit=3)
        rest = uow.org.users(org.id, after=first[-1].id, limit=10)
    assert [u.id for u in first] == everyone[:3]
    assert [u.id for u in rest] == everyone[3:]
    assert first[0] == org.people[1]


def test_the_service_pages_users_with_a_cursor(org: Org, org_service: OrgService) -> None:
    page = org_service.users(org.id, limit=4)
    assert page.next_cursor == page.items[-1].id
    last = org_service.users(org.id, cursor=page.next_cursor, limit=4)
    assert len(page.items) + len(last.items) == 7
    assert last.next_cursor is None


# --- user changes ----------------------------------------------------------------------------


def test_a_user_change_reads_back(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    grace = org.people[7]
    changed = attrs.evolve(grace, name="Grace T.", email="gt@techcorp.example", active=False)
    with new_uow() as uow:
        assert uow.org.update_user(changed) == changed
        uow.commit()
    with new_uow() as uow:
        assert uow.org.member(grace.id).user == changed
        assert uow.org.user_by_email(org.id, "gt@techcorp.example") == changed
        assert uow.org.user_by_email(org.id, grace.email) is None


def test_a_user_change_rolls_back_with_its_unit_of_work(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    grace = org.people[7]
    with new_uow() as uow:
        uow.org.update_user(attrs.evolve(grace, email="gone@techcorp.example"))
    with new_uow() as uow:
        assert uow.org.member(grace.id).user == grace
        assert uow.org.user_by_email(org.id, grace.email) == grace
        assert uow.org.user_by_email(org.id, "gone@techcorp.example") is None


def test_a_user_cannot_take_a_colleagues_email_or_change_company(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    grace = org.people[7]
    with new_uow() as uow:
        with pytest.raises(DuplicateEmail):
            uow.org.update_user(attrs.evolve(grace, email=org.people[6].email))
        with pytest.raises(UnknownUser):
            uow.org.update_user(attrs.evolve(grace, company_id=other.id, email="x@globex.example"))
        with pytest.raises(UnknownUser):
            uow.org.update_user(attrs.evolve(grace, id=UserId(NOBODY)))


def test_the_service_checks_a_changed_user(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    chained = tech_corp(new_uow, managers=True)
    finance = org_service.create_team(org.id, "Finance")
    with pytest.raises(ManagerCycle):
        org_service.change_user(ChangeUser(user_id=chained.person(1), manager_id=chained.person(7)))
    with pytest.raises(ManagerCycle):
        org_service.change_user(ChangeUser(user_id=org.person(3), manager_id=org.person(3)))
    with pytest.raises(UnknownManager):
        org_service.change_user(ChangeUser(user_id=org.person(7), manager_id=chained.person(1)))
    with pytest.raises(LevelOutsideTeam):
        org_service.change_user(ChangeUser(user_id=org.person(7), team_id=finance.id))
    with pytest.raises(UnknownUser):
        org_service.change_user(ChangeUser(user_id=org.person(7), company_id=chained.id))
    changed = org_service.change_user(
        ChangeUser(user_id=chained.person(7), manager_id=None, name="Grace")
    ).user
    assert (changed.manager_id, changed.name) == (None, "Grace")


# --- policies --------------------------------------------------------------------------------


def test_a_deactivated_policy_makes_way_for_its_successor(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    with pytest.raises(PolicyOverlap):
        add_policy(new_uow, org.id, "travel", steps(6), name="Travel v2")
    with new_uow() as uow:
        # Below the service's overlap rule, the store keeps one active policy per min_amount.
        with pytest.raises(DuplicateName):
            uow.org.add_policy(attrs.evolve(org.travel, name="Twin"))
        assert uow.org.add_policy(attrs.evolve(org.travel, name="Old", active=False)).id > 0
    successor = org_service.create_policy(
        NewPolicy(
            company_id=org.id,
            category="travel",
            name="Travel v2",
            min_amount=org.travel.min_amount,
            max_amount=org.travel.max_amount,
            steps=steps(5),
            replaces=org.travel.id,
        )
    )
    with new_uow() as uow:
        assert uow.org.policies(org.id, "travel") == (successor,)
        assert uow.org.policy(org.id, org.travel.id).active is False
        listed = uow.org.company_policies(org.id)
    assert [p.id for p in listed] == [org.small.id, org.large.id, org.travel.id, successor.id]
    assert listed[2] == attrs.evolve(org.travel, active=False)


def test_deactivating_another_companys_policy_is_unknown(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    with new_uow() as uow, pytest.raises(UnknownPolicy):
        uow.org.deactivate_policy(other.id, org.small.id)


def test_a_policy_is_in_use_once_it_routed_an_expense(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    with new_uow() as uow:
        assert uow.org.policy_in_use(org.id, org.small.id) is False
    expense = _submit(expenses, org, 7, org.small, "100.00")
    assert expenses.status(expense, Viewer.whole_company(org.id)).policy_active is True
    info = org_service.deactivate_policy(org.small.id, org.id)
    assert (info.policy.active, info.in_use) == (False, True)
    # The expense keeps the policy that routed it, and shows it is no longer the current one.
    view = expenses.status(expense, Viewer.whole_company(org.id))
    assert (view.policy_id, view.policy_active) == (org.small.id, False)
    with new_uow() as uow:
        assert uow.org.policy_in_use(org.id, org.small.id) is True
        assert uow.org.policy_in_use(org.id, org.large.id) is False
    assert org_service.deactivate_policy(org.small.id).policy.active is False  # idempotent


# --- pending work and re-routing -------------------------------------------------------------


def test_pending_work_is_found_by_holder_and_by_submitter(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService
) -> None:
    first = _submit(expenses, org, 7, org.large, "2500.00")  # Frank, Eve, David
    second = _submit(expenses, org, 6, org.travel, "300.00")  # Eve, David
    expenses.approve(ApproveStep(expense_id=second, user_id=org.person(5)))
    expenses.approve(ApproveStep(expense_id=second, user_id=org.person(4)))
    third = _submit(expenses, org, 7, org.small, "10.00")  # Frank
    with new_uow() as uow:
        assert uow.org.pending_held_by(org.id, org.person(5)) == (first,)
        assert uow.org.pending_held_by(org.id, org.person(6)) == (first, third)
        assert uow.org.pending_submitted_by(org.id, org.person(7)) == (first, third)
        assert uow.org.pending_submitted_by(org.id, org.person(6)) == ()
        assert uow.org.pending_held_by(org.id, org.person(1)) == ()


def test_a_departing_approver_hands_over_to_the_next_eligible_person(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    expense = _submit(expenses, org, 7, org.large, "2500.00")  # Frank, Eve, David
    changed = org_service.change_user(
        ChangeUser(user_id=org.person(6), active=False, actor_id=org.person(1))
    )
    # Step 1 needs level 6 or above: Eve and David hold steps 2 and 3, so Carol (3) takes it.
    assert [
        (r.step_number, r.previous_approver_id, r.approver_id) for r in changed.reassignments
    ] == [(1, org.person(6), org.person(3))]
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, expense)
        history = uow.expenses.history(org.id, expense)
    assert [a.approver_id for a in stored.approvals] == [org.person(n) for n in (3, 5, 4)]
    moved = history[-1]
    assert (moved.kind, moved.step_number, moved.actor_id) == (
        EventKind.REASSIGNED,
        1,
        org.person(1),
    )
    assert (moved.previous_approver_id, moved.approver_id) == (org.person(6), org.person(3))
    expenses.approve(ApproveStep(expense_id=expense, user_id=org.person(3)))


def test_a_leaving_approver_hands_over_up_the_ladder(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org_service: OrgService
) -> None:
    org = tech_corp(new_uow)
    policy = add_policy(new_uow, org.id, "gifts", steps(2), name="Gifts")  # VP or above
    expense = _submit(expenses, org, 7, policy, "50.00")  # Bob (VP)
    changed = org_service.change_user(ChangeUser(user_id=org.person(2), active=False))
    assert [(r.expense_id, r.approver_id) for r in changed.reassignments] == [
        (expense, org.person(1))
    ]


def test_a_named_replacement_takes_what_nobody_else_can(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org_service: OrgService
) -> None:
    org = tech_corp(new_uow)
    policy = add_policy(new_uow, org.id, "gifts", steps(1), name="Gifts")  # the CTO only
    expense = _submit(expenses, org, 7, policy, "50.00")
    with pytest.raises(PendingApprovalsStranded) as refused:
        org_service.change_user(ChangeUser(user_id=org.person(1), active=False))
    assert refused.value.stranded == ((expense, 1),)
    with new_uow() as uow:
        assert uow.org.member(org.person(1)).user.active is True  # nothing was written
    with pytest.raises(ReplacementNotEligible, match="level 2 is junior"):
        org_service.change_user(
            ChangeUser(user_id=org.person(1), active=False, replacement_approver_id=org.person(2))
        )
    cto = _add_person(org_service, org, 1, "cto2@techcorp.example")
    org_service.change_user(ChangeUser(user_id=cto, active=False))
    with pytest.raises(ReplacementNotEligible, match="inactive"):
        org_service.change_user(
            ChangeUser(user_id=org.person(1), active=False, replacement_approver_id=cto)
        )
    org_service.change_user(ChangeUser(user_id=cto, active=True))
    changed = org_service.change_user(
        ChangeUser(user_id=org.person(1), active=False, replacement_approver_id=cto)
    )
    assert [(r.expense_id, r.approver_id) for r in changed.reassignments] == [(expense, cto)]


def test_moving_a_submitter_replaces_approvers_who_are_no_longer_senior(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    expense = _submit(expenses, org, 7, org.travel, "300.00")  # Frank, Eve
    # Grace is promoted to level 5: Frank (6) and Eve (5) are no longer senior to her.
    changed = org_service.change_user(
        ChangeUser(user_id=org.person(7), hierarchy_level_id=LevelId(org.levels[5].id))
    )
    with new_uow() as uow:
        stored = uow.expenses.get(org.id, expense)
    assert [a.approver_id for a in stored.approvals] == [org.person(4), org.person(3)]
    assert len(changed.reassignments) == 2


def test_a_promotion_reroutes_to_whoever_the_rules_now_choose(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    expense = _submit(expenses, org, 7, org.small, "10.00")  # Frank
    _add_person(org_service, org, 6, "frank2@techcorp.example")
    changed = org_service.change_user(
        ChangeUser(user_id=org.person(6), hierarchy_level_id=LevelId(org.levels[4].id))
    )
    with new_uow() as uow:
        holder = uow.expenses.get(org.id, expense).approvals[0].approver_id
    assert holder != org.person(6)
    assert [r.approver_id for r in changed.reassignments] == [holder]


def test_closed_expenses_are_never_rerouted(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, org_service: OrgService
) -> None:
    expense = _submit(expenses, org, 7, org.small, "10.00")
    expenses.approve(ApproveStep(expense_id=expense, user_id=org.person(6)))
    with new_uow() as uow:
        before = uow.expenses.history(org.id, expense)
    assert (
        org_service.change_user(ChangeUser(user_id=org.person(6), active=False)).reassignments == ()
    )
    with new_uow() as uow:
        assert uow.expenses.history(org.id, expense) == before


def test_money_in_policies_survives_listing(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService
) -> None:
    infos = org_service.policies(org.id)
    assert [i.policy.id for i in infos] == [org.small.id, org.large.id, org.travel.id]
    assert infos[0].policy.max_amount == Money(Decimal("1999.99"))
    assert not any(i.in_use for i in infos)


def test_a_company_is_found_by_its_name(new_uow: Callable[[], UnitOfWork]) -> None:
    with new_uow() as uow:
        first = uow.org.add_company("Name Twins Ltd")
        uow.org.add_company("Name Twins Ltd")
        uow.commit()
    with new_uow() as uow:
        assert uow.org.company_named("Name Twins Ltd") == first
        assert uow.org.company_named("name twins ltd") is None
