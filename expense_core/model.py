"""Entities and value objects of the approval engine: immutable, exact, and free of infrastructure.

Change means a new object (`attrs.evolve`); collections inside are tuples; ids are `NewType`s.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import NewType

import attrs

from expense_core.errors import InvalidAmount, InvalidTeamScope, InvalidText

CompanyId = NewType("CompanyId", int)
TeamId = NewType("TeamId", int)
LevelId = NewType("LevelId", int)
UserId = NewType("UserId", int)
PolicyId = NewType("PolicyId", int)
ExpenseId = NewType("ExpenseId", int)

NEW_EXPENSE = ExpenseId(0)
"""The id of an expense that has not been stored yet; the store assigns the real one."""

CENT = Decimal("0.01")
LIMIT = Decimal("9999999999.99")  # DECIMAL(12,2)
MOST_SENIOR, MOST_JUNIOR = 1, 10
TEXT_LIMIT = 2000


# --- money -----------------------------------------------------------------------------------


def _exact_cents(_: object, __: attrs.Attribute[Decimal], value: Decimal) -> None:
    if (
        type(value) is not Decimal
        or not value.is_finite()
        or not (0 <= value <= LIMIT)
        or value != value.quantize(CENT)
    ):
        raise InvalidAmount(value)


def _two_places(value: Decimal) -> Decimal:
    # 4000, 4000.0 and 4000.00 are one amount: keep it with exactly two places when exact.
    if type(value) is Decimal and value.is_finite() and -LIMIT <= value <= LIMIT:
        exact = value.quantize(CENT)
        if exact == value:
            return exact
    return value


@attrs.frozen(order=True)
class Money:
    """A non-negative amount in exact cents, always with two places; floats never get in."""

    value: Decimal = attrs.field(converter=_two_places, validator=_exact_cents)

    @classmethod
    def parse(cls, raw: Decimal | int | str) -> Money:
        """Read an amount from a decimal, an int or a decimal string, keeping it exact.

        Raises:
            InvalidAmount: a float, a non-number, more than 2 decimal places or out of range.
        """
        if isinstance(raw, bool | float):
            raise InvalidAmount(raw, "amounts are exact decimals, never binary floats")
        try:
            value = raw if isinstance(raw, Decimal) else Decimal(raw)
        except (InvalidOperation, ValueError, TypeError):
            raise InvalidAmount(raw, "not a decimal number") from None
        if not value.is_finite() or not (0 <= value <= LIMIT):
            raise InvalidAmount(raw)
        exact = value.quantize(CENT)
        if exact != value:
            raise InvalidAmount(raw, "amounts have at most 2 decimal places")
        # "-0" is in range but must not come out as "-0.00".
        return cls(exact.copy_abs())

    @classmethod
    def cents(cls, cents: int) -> Money:
        """Build an amount from a whole number of cents."""
        return cls(Decimal(cents).scaleb(-2).quantize(CENT))

    def __str__(self) -> str:
        return str(self.value)


ZERO = Money(Decimal("0.00"))
MAX_AMOUNT = Money(LIMIT)


# --- organisation ----------------------------------------------------------------------------


class Role(StrEnum):
    """What a user may see and change beyond their own expenses and steps (`visibility.py`).

    `manager` is also implied for anyone with reports (through `manager_id`): what a manager
    sees comes from the reporting chain, whatever role is stored.
    """

    EMPLOYEE = "employee"
    MANAGER = "manager"
    FINANCE = "finance"
    AUDITOR = "auditor"
    ADMIN = "admin"


@attrs.frozen
class Company:
    id: CompanyId
    name: str
    # Who takes a step nobody else is eligible for (the top of the ladder); None: nobody.
    fallback_approver_id: UserId | None = None


@attrs.frozen
class Team:
    id: TeamId
    company_id: CompanyId
    name: str
    is_company_wide: bool = False


@attrs.frozen
class HierarchyLevel:
    """A rung of one team's ladder; level 1 is the most senior."""

    id: LevelId
    company_id: CompanyId
    team_id: TeamId
    level_number: int
    level_name: str


@attrs.frozen(kw_only=True)
class User:
    id: UserId
    company_id: CompanyId
    team_id: TeamId
    email: str
    name: str
    hierarchy_level_id: LevelId
    active: bool = True
    manager_id: UserId | None = None
    role: Role = Role.EMPLOYEE


@attrs.frozen
class Member:
    """A user seen with their level: what approver resolution reasons about."""

    user: User
    level: HierarchyLevel

    @property
    def id(self) -> UserId:
        return self.user.id

    @property
    def level_number(self) -> int:
        return self.level.level_number


# --- policies --------------------------------------------------------------------------------


class ScopeKind(StrEnum):
    SUBMITTER = "submitter"
    COMPANY_WIDE = "company_wide"
    TEAM = "team"


@attrs.frozen
class TeamScope:
    """Where a step looks for its approver: the submitter's team, the company, or one team."""

    kind: ScopeKind
    team_id: TeamId | None = None

    @classmethod
    def parse(cls, raw: str) -> TeamScope:
        """Read a stored scope: 'submitter', 'company_wide' or 'team:<team_id>'.

        Raises:
            InvalidTeamScope: anything else.
        """
        if raw == ScopeKind.SUBMITTER:
            return SUBMITTER_SCOPE
        if raw == ScopeKind.COMPANY_WIDE:
            return COMPANY_SCOPE
        prefix, _, team = raw.partition(":")
        # ASCII only: str.isdigit() also admits digits int() refuses ("²") or stores differently.
        if (
            prefix == ScopeKind.TEAM
            and team.isascii()
            and team.isdigit()
            and int(team) > 0
            and team[0] != "0"
        ):
            return cls(ScopeKind.TEAM, TeamId(int(team)))
        raise InvalidTeamScope(raw)

    @property
    def demands_seniority(self) -> bool:
        """In the submitter's team or company-wide, nobody is approved by a peer or subordinate."""
        return self.kind is not ScopeKind.TEAM

    def __str__(self) -> str:
        return f"team:{self.team_id}" if self.kind is ScopeKind.TEAM else str(self.kind)


SUBMITTER_SCOPE = TeamScope(ScopeKind.SUBMITTER)
COMPANY_SCOPE = TeamScope(ScopeKind.COMPANY_WIDE)


@attrs.frozen(kw_only=True)
class ApprovalStep:
    step_order: int
    required_level: int
    team_scope: TeamScope = SUBMITTER_SCOPE
    is_required: bool = True
    description: str | None = None
    id: int = 0
    # A required step current for longer is escalated by the sweep; None: it never is.
    escalate_after_hours: int | None = None


@attrs.frozen(kw_only=True)
class Policy:
    id: PolicyId
    company_id: CompanyId
    category: str
    name: str
    min_amount: Money = ZERO
    max_amount: Money = attrs.field(default=Money(Decimal("999999999.99")))
    steps: tuple[ApprovalStep, ...] = ()
    description: str | None = None
    active: bool = True
    created_at: datetime | None = None

    def covers(self, amount: Money) -> bool:
        return self.min_amount.value <= amount.value <= self.max_amount.value


# --- expenses --------------------------------------------------------------------------------


class ExpenseStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    # Sent back to its submitter: not terminal, it waits to be resubmitted or withdrawn.
    RETURNED = "returned"


# Module globals: an enum member looked up on its class is slow on Python 3.11 (see workflow).
_OPEN, _RETURNED = ExpenseStatus.PENDING, ExpenseStatus.RETURNED


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SKIPPED = "skipped"


class EventKind(StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    SKIPPED = "skipped"
    REASSIGNED = "reassigned"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    ESCALATED = "escalated"
    ESCALATION_FAILED = "escalation_failed"


@attrs.frozen(kw_only=True)
class Approval:
    """One step of one expense, fixed to its approver at submission."""

    step_number: int
    approver_id: UserId
    approver_level_id: LevelId
    required: bool = True
    status: ApprovalStatus = ApprovalStatus.PENDING
    approved_at: datetime | None = None
    comments: str | None = None
    # The policy step's `escalate_after_hours`, copied at submission as the approver is.
    escalate_after_hours: int | None = None
    # When the sweep escalates this step: set while it is the current one and may escalate,
    # cleared once it is decided, closed, or its escalation failed.
    escalate_at: datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.status is ApprovalStatus.PENDING


@attrs.frozen(kw_only=True)
class Expense:
    id: ExpenseId
    company_id: CompanyId
    user_id: UserId
    policy_id: PolicyId
    amount: Money
    description: str | None
    status: ExpenseStatus
    submitted_at: datetime
    completed_at: datetime | None = None
    approvals: tuple[Approval, ...] = ()

    @property
    def is_terminal(self) -> bool:
        """Approved, rejected or withdrawn: nothing changes it any more."""
        status = self.status
        return status is not _OPEN and status is not _RETURNED

    @property
    def is_returned(self) -> bool:
        return self.status is _RETURNED

    @property
    def current_step(self) -> Approval | None:
        """The lowest-numbered pending required approval: the only one that may block."""
        for a in self.approvals:
            if a.required and a.status is ApprovalStatus.PENDING:
                return a
        return None

    @property
    def pending_required(self) -> int:
        count = 0
        for a in self.approvals:
            if a.required and a.status is ApprovalStatus.PENDING:
                count += 1
        return count

    def with_id(self, expense_id: ExpenseId) -> Expense:
        """The same expense under the id a store assigned it."""
        # The constructor, not `attrs.evolve`, which reads every field through the class's
        # attribute list first: every submission stamps its expense, and evolve made up a tenth
        # of the memory engine's time per cycle (py-spy over `make bench-memory`).
        return Expense(
            id=expense_id,
            company_id=self.company_id,
            user_id=self.user_id,
            policy_id=self.policy_id,
            amount=self.amount,
            description=self.description,
            status=self.status,
            submitted_at=self.submitted_at,
            completed_at=self.completed_at,
            approvals=self.approvals,
        )

    def approval(self, step_number: int) -> Approval:
        return next(a for a in self.approvals if a.step_number == step_number)


@attrs.frozen(kw_only=True)
class ExpenseEvent:
    """One change in an expense's life; history is appended to, never rewritten."""

    expense_id: ExpenseId
    company_id: CompanyId
    kind: EventKind
    at: datetime
    actor_id: UserId | None
    step_number: int | None = None
    comment: str | None = None
    approver_id: UserId | None = None
    previous_approver_id: UserId | None = None
    # The absent approver a delegate decided for; `actor_id` is the delegate.
    on_behalf_of: UserId | None = None


def with_expense_id(
    events: Iterable[ExpenseEvent], expense_id: ExpenseId
) -> tuple[ExpenseEvent, ...]:
    """Stamp the store-assigned id on the events of a newly stored expense."""
    # The constructor rather than `attrs.evolve`, as `Expense.with_id`.
    return tuple(
        [
            ExpenseEvent(
                expense_id=expense_id,
                company_id=e.company_id,
                kind=e.kind,
                at=e.at,
                actor_id=e.actor_id,
                step_number=e.step_number,
                comment=e.comment,
                approver_id=e.approver_id,
                previous_approver_id=e.previous_approver_id,
                on_behalf_of=e.on_behalf_of,
            )
            for e in events
        ]
    )


def check_text(field: str, value: str | None, *, required: bool = False) -> str | None:
    """Hold a free-text field to the length limit; the text is kept as given.

    Raises:
        InvalidText: longer than 2,000 characters, or empty (or blank) when required.
    """
    if value is None:
        if required:
            raise InvalidText(field, "is required")
        return None
    if len(value) > TEXT_LIMIT:
        raise InvalidText(field, f"is longer than {TEXT_LIMIT} characters")
    stripped = value.strip()
    if required and not stripped:
        raise InvalidText(field, "must not be empty")
    return value
