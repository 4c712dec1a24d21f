"""Escalation: which overdue steps move, and to whom.

A required step carries the instant it is due (`Approval.escalate_at`, set when it becomes the
current step). Once that instant has passed, the step goes to the nearest eligible person
strictly more senior than its approver in the step's scope (four eyes, never the submitter),
else to the company's fallback approver; if neither may take it, it stays where it is and the
escalation fails, once. The fallback approver is the top of the ladder: a step they hold goes
no further (else it would bounce between them and whoever is more senior).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import attrs

from expense_core import workflow
from expense_core.approvers import (
    FALLBACK_RULE,
    ApproverPool,
    fallback_ineligibility,
    may_approve,
)
from expense_core.model import (
    Approval,
    ApprovalStep,
    CompanyId,
    Expense,
    ExpenseId,
    Member,
    UserId,
)
from expense_core.workflow import Decision

SENIOR_RULE = "nearest eligible person more senior than the approver"


@attrs.frozen(order=True)
class DueStep:
    """A step a store found past its deadline: what a sweep locks and looks at next. Sweeps
    take them most overdue first: by deadline, then expense id."""

    escalate_at: datetime
    expense_id: ExpenseId
    company_id: CompanyId = attrs.field(order=False)
    step_number: int = attrs.field(order=False)


@attrs.frozen(kw_only=True)
class Escalation:
    """What a sweep does, or would do, to one overdue step: move it from `previous` to
    `approver` by `rule`, or, with no `approver`, leave it and say `why` nobody may take it."""

    company_id: CompanyId
    expense_id: ExpenseId
    step_number: int
    previous: Member
    approver: Member | None
    overdue: timedelta
    rule: str

    @property
    def escalated(self) -> bool:
        return self.approver is not None


def due_step(expense: Expense, as_of: datetime) -> Approval | None:
    """The expense's current step if its deadline has passed as of `as_of`, else None."""
    if expense.is_terminal:
        return None
    current = expense.current_step
    if current is None or current.escalate_at is None or current.escalate_at > as_of:
        return None
    return current


def raised(step: ApprovalStep, approver: Member) -> ApprovalStep:
    """The step as escalation reads it: the same scope, asking for someone strictly more
    senior than its approver (level 0, nobody, above a level-1 approver)."""
    return attrs.evolve(step, required_level=min(step.required_level, approver.level_number - 1))


def other_approvers(expense: Expense, step_number: int) -> dict[UserId, int]:
    """The approvers of the expense's other steps, with their step: who four eyes excludes."""
    return {a.approver_id: a.step_number for a in expense.approvals if a.step_number != step_number}


def choose_target(
    step: ApprovalStep,
    submitter: Member,
    approver: Member,
    pool: ApproverPool,
    taken: Mapping[UserId, int],
) -> tuple[Member | None, str]:
    """Choose who an overdue step goes to, and by which rule; or None, and why nobody may.

    The nearest eligible person strictly more senior than the step's `approver` in the step's
    scope wins (the largest level number below theirs, ties to the lowest user id), never the
    submitter nor an approver of another step (`taken`); else the company's fallback approver,
    under the fallback's own rules (not the submitter, not in `taken`, active). A step the
    fallback approver holds goes nowhere: they are the top of the ladder. `pool` must be
    gathered for `raised(step, approver)`.
    """
    fallback = pool.fallback
    if fallback is not None and fallback.id == approver.id:
        return None, "the approver is the company's fallback approver, the top of the ladder"
    higher = raised(step, approver)
    best: Member | None = None
    for member in pool.everyone():
        if member.level_number < approver.level_number and may_approve(
            higher, submitter, member, taken
        ):
            key = (-member.level_number, member.id)
            if best is None or key < (-best.level_number, best.id):
                best = member
    if best is not None:
        return best, SENIOR_RULE
    nobody = "nobody more senior is eligible"
    if fallback is None:
        return None, f"{nobody} and the company names no fallback approver"
    why = fallback_ineligibility(submitter, fallback, taken)
    if why is not None:
        return None, f"{nobody} and the fallback approver, {fallback.user.name}, {why}"
    return fallback, FALLBACK_RULE


def plan(
    expense: Expense,
    step: ApprovalStep,
    submitter: Member,
    approver: Member,
    pool: ApproverPool,
    as_of: datetime,
) -> Escalation | None:
    """What escalating the expense's overdue step as of `as_of` would do; None if no step of
    it is overdue then. `step` is the policy's step for the expense's current one, `approver`
    that step's current approver, `pool` gathered for `raised(step, approver)`."""
    current = due_step(expense, as_of)
    if current is None or current.escalate_at is None:
        return None
    chosen, rule = choose_target(
        step, submitter, approver, pool, other_approvers(expense, current.step_number)
    )
    return Escalation(
        company_id=expense.company_id,
        expense_id=expense.id,
        step_number=current.step_number,
        previous=approver,
        approver=chosen,
        overdue=as_of - current.escalate_at,
        rule=rule,
    )


def decide(
    expense: Expense, escalation: Escalation, *, at: datetime, restart_at: datetime
) -> Decision:
    """Carry out a planned escalation: the step moves and its clock restarts at `restart_at`,
    or it stays and its clock stops (`escalation_failed`).

    Raises:
        ExpenseClosed, StepAlreadyDecided, SelfApproval: see `workflow.escalate`.
    """
    if escalation.approver is None:
        return workflow.fail_escalation(
            expense, escalation.step_number, escalation.rule, overdue=escalation.overdue, at=at
        )
    return workflow.escalate(
        expense,
        escalation.step_number,
        escalation.approver,
        overdue=escalation.overdue,
        at=at,
        restart_at=restart_at,
    )
