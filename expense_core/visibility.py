"""Who sees which expense: the rule every read of an expense, its history and lists obey.

A person sees their own expenses, those where they approve a step (or act, through a
delegation in force, for someone who does), and those of everyone below them in the reporting
chain, at any depth (`manager`, implied by having reports). `finance`, `auditor` and `admin`
see the whole company. Anything else is unknown, exactly like another company's expense.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Final

import attrs

from expense_core.model import CompanyId, Expense, Member, Role, UserId

COMPANY_WIDE: Final = frozenset({Role.FINANCE, Role.AUDITOR, Role.ADMIN})
"""The roles that read every expense of their company."""


@attrs.frozen
class Viewer:
    """Who reads: a person of a company with their role, or (`user_id` None) the company as a
    whole, for trusted processes (the worker, the command line) confined to it."""

    company_id: CompanyId
    user_id: UserId | None = None
    role: Role = Role.EMPLOYEE

    @classmethod
    def of(cls, member: Member) -> Viewer:
        """The viewer a signed-in member is."""
        return cls(member.user.company_id, member.id, member.user.role)

    @classmethod
    def whole_company(cls, company_id: CompanyId) -> Viewer:
        """A trusted reader of everything in one company."""
        return cls(company_id)

    @property
    def sees_company(self) -> bool:
        """Whether every expense of the company is visible, without looking at any."""
        return self.user_id is None or self.role in COMPANY_WIDE

    def sight(self, as_of: datetime) -> Sight | None:
        """What an adapter filters a read by; None when the viewer sees the whole company."""
        if self.user_id is None or self.sees_company:
            return None
        return Sight(self.user_id, as_of)


@attrs.frozen
class Sight:
    """A person who sees only some of their company's expenses, and the moment that decides
    which delegations are in force (`ExpenseRepository` reads take it)."""

    viewer_id: UserId
    as_of: datetime


def is_visible(
    expense: Expense,
    viewer_id: UserId,
    *,
    bosses: Collection[UserId],
    covered: Collection[UserId],
) -> bool:
    """Whether a person who does not see the whole company sees the expense.

    `bosses` are the submitter's managers up the reporting chain; `covered` the people whose
    delegation to the viewer is in force.
    """
    if expense.user_id == viewer_id or viewer_id in bosses:
        return True
    return any(a.approver_id == viewer_id or a.approver_id in covered for a in expense.approvals)
