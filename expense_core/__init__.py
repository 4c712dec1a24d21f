"""expense_core: a pure, exact approval engine for B2B expenses.

Import the services and commands from here; plug in a unit of work (the in-memory one in
`adapters.memory`, or `adapters.sql`) and a clock.
"""

from expense_core.approvers import ApproverPool, RoutedStep, StepExplanation, Verdict
from expense_core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unavailable,
)
from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    CompanyId,
    EventKind,
    ExpenseId,
    ExpenseStatus,
    LevelId,
    Money,
    PolicyId,
    Role,
    TeamId,
    TeamScope,
    UserId,
)
from expense_core.services import (
    AccessService,
    ApproveStep,
    EscalationService,
    ExpenseService,
    NewPolicy,
    NewUser,
    OrgService,
    RejectExpense,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    Submitted,
    WithdrawExpense,
)
from expense_core.visibility import Viewer

__all__ = [
    "AccessService",
    "ApprovalStatus",
    "ApprovalStep",
    "ApproveStep",
    "ApproverPool",
    "CompanyId",
    "Conflict",
    "DomainError",
    "EscalationService",
    "EventKind",
    "ExpenseId",
    "ExpenseService",
    "ExpenseStatus",
    "Forbidden",
    "InvalidInput",
    "LevelId",
    "Money",
    "NewPolicy",
    "NewUser",
    "NotFound",
    "OrgService",
    "PolicyId",
    "RejectExpense",
    "ResubmitExpense",
    "Role",
    "RoutedStep",
    "SendBack",
    "StepExplanation",
    "SubmitExpense",
    "Submitted",
    "TeamId",
    "TeamScope",
    "Unavailable",
    "UserId",
    "Verdict",
    "Viewer",
    "WithdrawExpense",
]
