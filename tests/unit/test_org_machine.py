"""Org changes (leaving, coming back, moving team or level, changing manager) mixed with
submissions and decisions, through the services on the memory adapter.

After every step: each pending expense's pending approvals are held by active people eligible
for their step (seniority, scope, four eyes against the expense's other approvers, never the
submitter), and every expense's history only grows. A refused org change changes nothing.
"""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from adapters.memory import MemoryStore
from expense_core.approvers import ineligibility
from expense_core.demo import install_demo
from expense_core.errors import DomainError, PendingApprovalsStranded
from expense_core.model import (
    ApprovalStep,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    LevelId,
    Money,
    ScopeKind,
    TeamId,
    TeamScope,
    UserId,
)
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
from tests.clocks import TickingClock
from tests.unit.support import TECHCORP

TECHNOLOGY = TeamId(1)
CATEGORIES = ("equipment", "travel", "audit")
AMOUNTS = (Money.cents(80_000), Money.cents(400_000))


def grow_techcorp(org: OrgService) -> tuple[TeamId, dict[TeamId, list[LevelId]]]:
    """Beside the demo's ladder of seven: a second person at levels 3 to 6, a company-wide
    Finance team of four, and an audit policy with a Finance step."""
    for number in (3, 4, 5, 6):
        org.create_user(
            NewUser(
                company_id=TECHCORP,
                team_id=TECHNOLOGY,
                email=f"twin{number}@techcorp.com",
                name=f"Twin {number}",
                hierarchy_level_id=LevelId(number),
            )
        )
    finance = org.create_team(TECHCORP, "Finance", is_company_wide=True)
    finance_levels = [
        org.create_level(TECHCORP, finance.id, n, f"Finance {n}").id for n in (2, 4, 6)
    ]
    for i, level in enumerate((*finance_levels, finance_levels[-1])):
        org.create_user(
            NewUser(
                company_id=TECHCORP,
                team_id=finance.id,
                email=f"finance{i}@techcorp.com",
                name=f"Finance {i}",
                hierarchy_level_id=level,
            )
        )
    org.create_policy(
        NewPolicy(
            company_id=TECHCORP,
            category="audit",
            name="Audit",
            min_amount=Money.cents(0),
            max_amount=Money.cents(99_999_999),
            steps=(
                ApprovalStep(step_order=1, required_level=6),
                ApprovalStep(
                    step_order=2,
                    required_level=4,
                    team_scope=TeamScope(ScopeKind.TEAM, finance.id),
                ),
                ApprovalStep(
                    step_order=3,
                    required_level=3,
                    team_scope=TeamScope(ScopeKind.COMPANY_WIDE),
                    is_required=False,
                ),
            ),
        )
    )
    technology = [LevelId(n) for n in range(1, 8)]
    return finance.id, {TECHNOLOGY: technology, finance.id: finance_levels}


PEOPLE = st.integers(1, 15).map(UserId)


class OrgChanges(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        install_demo(self.store.unit_of_work)
        self.org = OrgService(self.store.unit_of_work, TickingClock())
        self.finance, self.ladders = grow_techcorp(self.org)
        self.expenses = ExpenseService(self.store.unit_of_work, TickingClock())
        self.histories: dict[ExpenseId, tuple[ExpenseEvent, ...]] = {}

    def snapshot(self) -> dict[ExpenseId, tuple[ExpenseEvent, ...]]:
        return {e: self.expenses.history(e, Viewer.whole_company(TECHCORP)) for e in self.histories}

    def change(self, cmd: ChangeUser) -> None:
        before = self.snapshot()
        with self.store.unit_of_work() as uow:
            user_before = uow.org.member(cmd.user_id).user
        try:
            changed = self.org.change_user(cmd)
        except DomainError as refused:
            event(f"change refused: {refused.code}")
            assert self.snapshot() == before
            with self.store.unit_of_work() as uow:
                assert uow.org.member(cmd.user_id).user == user_before
            stranded = refused.stranded if isinstance(refused, PendingApprovalsStranded) else None
            assert stranded != ()
            return
        event("change moved approvals" if changed.reassignments else "change moved nothing")

    # --- expenses

    @rule(submitter=PEOPLE, category=st.sampled_from(CATEGORIES), amount=st.sampled_from(AMOUNTS))
    def submit(self, submitter: UserId, category: str, amount: Money) -> None:
        try:
            submitted = self.expenses.submit(
                SubmitExpense(user_id=submitter, category=category, amount=amount)
            )
        except DomainError as refused:
            event(f"submission refused: {refused.code}")
            return
        self.histories[submitted.expense.id] = ()

    @precondition(lambda self: self.histories)
    @rule(data=st.data())
    def approve_current_step(self, data: st.DataObject) -> None:
        expense_id = data.draw(st.sampled_from(sorted(self.histories)))
        with self.store.unit_of_work() as uow:
            current = uow.expenses.get(TECHCORP, expense_id).current_step
        if current is None:
            return
        self.expenses.approve(ApproveStep(expense_id=expense_id, user_id=current.approver_id))

    # --- organisation

    @rule(user=PEOPLE, replacement=st.none() | PEOPLE)
    def leave(self, user: UserId, replacement: UserId | None) -> None:
        self.change(ChangeUser(user_id=user, active=False, replacement_approver_id=replacement))

    @rule(user=PEOPLE)
    def come_back(self, user: UserId) -> None:
        self.change(ChangeUser(user_id=user, active=True))

    @rule(user=PEOPLE, rung=st.integers(0, 6), other_team=st.booleans())
    def move(self, user: UserId, rung: int, other_team: bool) -> None:
        with self.store.unit_of_work() as uow:
            team = uow.org.member(user).user.team_id
        if other_team:
            team = self.finance if team == TECHNOLOGY else TECHNOLOGY
        ladder = self.ladders[team]
        level = ladder[min(rung, len(ladder) - 1)]
        self.change(ChangeUser(user_id=user, team_id=team, hierarchy_level_id=level))

    @rule(user=PEOPLE, manager=st.none() | PEOPLE)
    def change_manager(self, user: UserId, manager: UserId | None) -> None:
        self.change(ChangeUser(user_id=user, manager_id=manager))

    # --- invariants

    @invariant()
    def pending_steps_are_held_by_eligible_people(self) -> None:
        with self.store.unit_of_work() as uow:
            for expense_id in self.histories:
                expense = uow.expenses.get(TECHCORP, expense_id)
                if expense.status is not ExpenseStatus.PENDING:
                    continue
                submitter = uow.org.member(expense.user_id)
                steps = {s.step_order: s for s in uow.org.policy(TECHCORP, expense.policy_id).steps}
                approvers = [a.approver_id for a in expense.approvals]
                assert len(set(approvers)) == len(approvers)  # four eyes
                assert expense.user_id not in approvers
                for approval in expense.approvals:
                    if not approval.is_pending:
                        continue
                    holder = uow.org.member(approval.approver_id)
                    taken = {
                        a.approver_id: a.step_number
                        for a in expense.approvals
                        if a.step_number != approval.step_number
                    }
                    why = ineligibility(steps[approval.step_number], submitter, holder, taken)
                    assert why is None, f"expense {expense_id} step {approval.step_number}: {why}"

    @invariant()
    def what_the_store_derives_matches_its_tables(self) -> None:
        # The store keeps members, ladders and gathered pools in step with user changes (and
        # rollbacks); a store reading the same tables afresh must see exactly the same.
        fresh = MemoryStore()
        fresh.tables = self.store.tables
        for kind, key in [("company", TECHCORP), *(("team", t) for t in self.store.tables.teams)]:
            assert self.store.ladder(kind, key) == fresh.ladder(kind, key)
        with self.store.unit_of_work() as live, fresh.unit_of_work() as rebuilt:
            policies = live.org.company_policies(TECHCORP)
            for user_id in self.store.tables.users:
                submitter = live.org.member(user_id)
                assert submitter == rebuilt.org.member(user_id)
                for policy in policies:
                    assert live.org.approver_pool(
                        submitter, policy.steps
                    ) == rebuilt.org.approver_pool(rebuilt.org.member(user_id), policy.steps)

    @invariant()
    def history_only_grows(self) -> None:
        for expense_id, seen in self.snapshot().items():
            before = self.histories[expense_id]
            assert seen[: len(before)] == before
            self.histories[expense_id] = seen


# Short runs keep the CI profile's 200 examples quick; a few steps already mix every rule.
OrgChanges.TestCase.settings = settings(OrgChanges.TestCase.settings, stateful_step_count=15)
TestOrgChanges = OrgChanges.TestCase
