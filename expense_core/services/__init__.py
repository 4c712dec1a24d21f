"""Use cases, one module per concern: each wraps one pure decision in one unit of work, or
answers one query.

- `expenses`: submit, approve, reject (one by one or in bulk), send back, resubmit, withdraw
  and read expenses (`ExpenseService`).
- `awaited`: the HTTP API's busiest use cases (submit, approve, status, and in token mode
  every request's bearer token) awaited on an event loop, on the same decisions
  (`AwaitedExpenseService`, `AwaitedAccessService`).
- `organisation`: companies, teams, levels, users and policies (`OrgService`).
- `orgfiles`: whole organisations imported and exported by names (`OrgFiles`).
- `audit`: the audit log of admin changes, read a page at a time or whole (`AuditService`).
- `access`: bearer tokens: issued, listed, revoked, authenticated (`AccessService`).
- `escalation`: sweeps that escalate overdue steps (`EscalationService`).
- `delegations`: who covers for whom while they are away (`DelegationService`).
- `notifications`: webhook subscriptions (`WebhookService`) and the worker's outbox use
  cases (`Relay`).
- `signon`: the user a verified identity (OpenID Connect) names (`SignOnService`).

Commands live beside the service that takes them; every name is also importable from here.
"""

from expense_core.services._common import MAX_PAGE
from expense_core.services.access import (
    TOKEN_PREFIX,
    AccessService,
    IssuedToken,
    IssueToken,
    ListTokens,
    RevokeToken,
    token_id_of,
)
from expense_core.services.audit import AuditService, ReadAudit
from expense_core.services.awaited import AwaitedAccessService, AwaitedExpenseService, Offload
from expense_core.services.delegations import (
    ClearDelegation,
    DelegationService,
    DelegationState,
    SetDelegation,
)
from expense_core.services.escalation import SWEEP_BATCH, EscalationService
from expense_core.services.expenses import (
    BULK_LIMIT,
    KEY_LIMIT,
    ApproveStep,
    BulkAction,
    BulkDecision,
    DecideInBulk,
    ExpenseService,
    RejectExpense,
    ResubmitExpense,
    RoutingExplanation,
    SendBack,
    SubmitExpense,
    Submitted,
    WithdrawExpense,
)
from expense_core.services.notifications import LEASE, Destinations, Relay, WebhookService
from expense_core.services.organisation import (
    EMAIL_LIMIT,
    NEW_USER,
    UNCHANGED,
    ChangePreview,
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
from expense_core.services.sign_in_links import LINK_TTL, IssuedLink, SignInLinks
from expense_core.services.signon import SignOnService

__all__ = [
    "BULK_LIMIT",
    "EMAIL_LIMIT",
    "KEY_LIMIT",
    "LEASE",
    "LINK_TTL",
    "MAX_PAGE",
    "NEW_USER",
    "SWEEP_BATCH",
    "TOKEN_PREFIX",
    "UNCHANGED",
    "AccessService",
    "ApproveStep",
    "AuditService",
    "AwaitedAccessService",
    "AwaitedExpenseService",
    "BulkAction",
    "BulkDecision",
    "ChangePreview",
    "ChangeUser",
    "ClearDelegation",
    "DecideInBulk",
    "DelegationService",
    "DelegationState",
    "Destinations",
    "EscalationService",
    "ExpenseService",
    "ImportReport",
    "IssueToken",
    "IssuedLink",
    "IssuedToken",
    "LevelPlan",
    "ListTokens",
    "NewPolicy",
    "NewUser",
    "Offload",
    "OrgFiles",
    "OrgPlan",
    "OrgService",
    "PersonPlan",
    "PolicyInfo",
    "PolicyPlan",
    "ReadAudit",
    "Reassignment",
    "RejectExpense",
    "Relay",
    "ResubmitExpense",
    "RevokeToken",
    "RoutingExplanation",
    "SendBack",
    "SetDelegation",
    "SignInLinks",
    "SignOnService",
    "StepPlan",
    "SubmitExpense",
    "Submitted",
    "TeamPlan",
    "Unchanged",
    "UserChanged",
    "WebhookService",
    "WithdrawExpense",
    "check_plan",
    "token_id_of",
]
