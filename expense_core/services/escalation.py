"""Escalation sweeps: every overdue step of every company escalated as of one instant, each
expense in its own unit of work, locked and looked at again before it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from expense_core import escalation
from expense_core.errors import InvalidAsOf
from expense_core.escalation import DueStep, Escalation
from expense_core.ports import Clock, UnitOfWork
from expense_core.services._common import save_decision

SWEEP_BATCH = 100


@attrs.frozen
class EscalationService:
    """Run escalation sweeps: what `expense-tracker escalate` (and a worker) calls."""

    new_uow: Callable[[], UnitOfWork]
    clock: Clock

    def sweep(
        self, as_of: datetime | None = None, *, dry_run: bool = False
    ) -> tuple[Escalation, ...]:
        """Escalate every step overdue as of `as_of` (now by default), most overdue first.

        Each expense is locked and looked at again first: a step decided or escalated
        meanwhile (by a concurrent sweep) is left alone, so two sweeps at once escalate a step
        once. An escalated step's clock restarts at the later of `as_of` and now, so a second
        sweep as of the same instant finds nothing more to do. With `dry_run` nothing is locked
        or written: the answer says what a sweep would do.

        Raises:
            InvalidAsOf: an instant without a timezone.
        """
        if as_of is not None and as_of.utcoffset() is None:
            raise InvalidAsOf(as_of.isoformat(), "give it a timezone (Z or an offset)")
        when = self.clock.now() if as_of is None else as_of
        done: list[Escalation] = []
        after: DueStep | None = None
        while True:
            with self.new_uow() as uow:
                due = uow.expenses.due_for_escalation(when, after=after, limit=SWEEP_BATCH)
            for item in due:
                outcome = self._escalate(item, when, dry_run=dry_run)
                if outcome is not None:
                    done.append(outcome)
            if len(due) < SWEEP_BATCH:
                return tuple(done)
            after = due[-1]

    def _escalate(self, item: DueStep, as_of: datetime, *, dry_run: bool) -> Escalation | None:
        with self.new_uow() as uow:
            if dry_run:
                expense = uow.expenses.get(item.company_id, item.expense_id)
            else:
                expense = uow.expenses.get_for_update(item.company_id, item.expense_id)
            current = escalation.due_step(expense, as_of)
            if current is None:
                return None  # decided, closed or escalated since it was found
            submitter = uow.org.member(expense.user_id)
            approver = uow.org.member(current.approver_id)
            policy = uow.org.policy(expense.company_id, expense.policy_id)
            step = next(s for s in policy.steps if s.step_order == current.step_number)
            # Enough candidates that four eyes against the other steps always leaves one.
            higher = escalation.raised(step, approver)
            pool = uow.org.approver_pool(submitter, [higher] * len(expense.approvals))
            planned = escalation.plan(expense, step, submitter, approver, pool, as_of)
            if planned is None or dry_run:
                return planned
            at = self.clock.now()
            decision = escalation.decide(expense, planned, at=at, restart_at=max(at, as_of))
            save_decision(uow, expense, decision)
            uow.commit()
        return planned
