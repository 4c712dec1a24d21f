"""Use cases, one module per concern: each wraps one pure decision in one unit of work, or
answers one query.

- `expenses`: submit, approve, reject, withdraw and read expenses (`ExpenseService`).
- `organisation`: companies, teams, levels, users and policies (`OrgService`).
- `orgfiles`: whole organisations imported and exported by names (`OrgFiles`).
- `access`: bearer tokens (`AccessService`).
- `delegations`: who covers for whom while they are away (`DelegationService`).

Commands live beside the service that takes them; every name is also importable from here.
"""

from expense_core.services._common import MAX_PAGE
from expense_core.services.access import TOKEN_PREFIX, AccessService
from expense_core.services.delegations import (
    ClearDelegation,
    DelegationService,
    DelegationState,
    SetDelegation,
)
from expense_core.services.expenses import (
    KEY_LIMIT,
    ApproveStep,
    ExpenseService,
    RejectExpense,
    RoutingExplanation,
    SubmitExpense,
    Submitted,
    WithdrawExpense,
)
from expense_core.services.organisation import (
    EMAIL_LIMIT,
    NEW_USER,
    UNCHANGED,
    ChangeUser,
    NewPolicy,
    NewUser,
    OrgService,
    PolicyInfo,
    Reassignment,
    Unchanged,
    UserChanged,
)
from expense_core.services.orgfiles import (
    ImportReport,
    LevelPlan,
    OrgFiles,
    OrgPlan,
    PersonPlan,
    PolicyPlan,
    StepPlan,
    TeamPlan,
    check_plan,
)

__all__ = [
    "EMAIL_LIMIT",
    "KEY_LIMIT",
    "MAX_PAGE",
    "NEW_USER",
    "TOKEN_PREFIX",
    "UNCHANGED",
    "AccessService",
    "ApproveStep",
    "ChangeUser",
    "ClearDelegation",
    "DelegationService",
    "DelegationState",
    "ExpenseService",
    "ImportReport",
    "LevelPlan",
    "NewPolicy",
    "NewUser",
    "OrgFiles",
    "OrgPlan",
    "OrgService",
    "PersonPlan",
    "PolicyInfo",
    "PolicyPlan",
    "Reassignment",
    "RejectExpense",
    "RoutingExplanation",
    "SetDelegation",
    "StepPlan",
    "SubmitExpense",
    "Submitted",
    "TeamPlan",
    "Unchanged",
    "UserChanged",
    "WithdrawExpense",
    "check_plan",
]
