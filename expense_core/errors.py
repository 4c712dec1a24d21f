"""Domain errors: each names the rule it guards, carries a stable `code` and a client-fit message.

Every error is one of four kinds (`NotFound`, `Forbidden`, `Conflict`, `InvalidInput`), plus
`Unavailable` for a store that cannot be reached; only the HTTP entrypoint maps kinds to statuses.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import ClassVar


class DomainError(Exception):
    """A refused command or query; nothing was changed."""

    code: ClassVar[str] = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    code = "not_found"


class Forbidden(DomainError):
    code = "forbidden"


class Conflict(DomainError):
    code = "conflict"


class InvalidInput(DomainError):
    code = "invalid_input"


class Unauthenticated(DomainError):
    """The caller did not prove who they are (no token, or an unknown, expired or revoked one)."""

    code = "unauthenticated"

    def __init__(self, message: str = "a valid bearer token is required") -> None:
        super().__init__(message)


class TokenExpired(Unauthenticated):
    code = "token_expired"

    def __init__(self) -> None:
        super().__init__("the bearer token has expired")


class TokenRevoked(Unauthenticated):
    code = "token_revoked"

    def __init__(self) -> None:
        super().__init__("the bearer token was revoked")


class NoUserWithEmail(Unauthenticated):
    """A verified identity (OpenID Connect) whose e-mail address no user of its company has."""

    code = "no_user_with_email"

    def __init__(self, company_id: int, email: str) -> None:
        super().__init__(f"no user of company {company_id} has the e-mail address {email}")


class AmbiguousEmail(Unauthenticated):
    code = "ambiguous_email"

    def __init__(self, company_id: int, email: str) -> None:
        super().__init__(
            f"several users of company {company_id} have the e-mail address {email} "
            "apart from case; an administrator must tell them apart"
        )


class InactiveIdentity(Unauthenticated):
    code = "inactive_identity"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id}, whom the token names by e-mail, is inactive")


class Unavailable(DomainError):
    """The store cannot be reached right now; the caller may retry later."""

    code = "database_unavailable"

    def __init__(self, message: str = "the database is unavailable; retry shortly") -> None:
        super().__init__(message)


# --- not found -------------------------------------------------------------------------------


class UnknownCompany(NotFound):
    code = "unknown_company"

    def __init__(self, company_id: int) -> None:
        super().__init__(f"company {company_id} does not exist")


class UnknownTeam(NotFound):
    code = "unknown_team"

    def __init__(self, team_id: int) -> None:
        super().__init__(f"team {team_id} does not exist")


class UnknownLevel(NotFound):
    code = "unknown_level"

    def __init__(self, level_id: int) -> None:
        super().__init__(f"hierarchy level {level_id} does not exist")


class UnknownUser(NotFound):
    code = "unknown_user"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} does not exist")


class UnknownPolicy(NotFound):
    code = "unknown_policy"

    def __init__(self, policy_id: int) -> None:
        super().__init__(f"policy {policy_id} does not exist")


class UnknownManager(UnknownUser):
    """A manager must be a user of the same company; another company's user is unknown."""

    code = "unknown_manager"

    def __init__(self, manager_id: int) -> None:
        NotFound.__init__(self, f"manager: user {manager_id} does not exist in this company")


class UnknownFallbackApprover(UnknownUser):
    """A fallback approver must be a user of the same company; another company's is unknown."""

    code = "unknown_fallback_approver"

    def __init__(self, user_id: int) -> None:
        NotFound.__init__(self, f"fallback approver: user {user_id} does not exist in this company")


class UnknownExpense(NotFound):
    code = "unknown_expense"

    def __init__(self, expense_id: int) -> None:
        super().__init__(f"expense {expense_id} does not exist")


class UnknownDelegate(UnknownUser):
    """A delegate must be a user of the same company; another company's user is unknown."""

    code = "unknown_delegate"

    def __init__(self, delegate_id: int) -> None:
        NotFound.__init__(self, f"delegate: user {delegate_id} does not exist in this company")


class NoDelegation(NotFound):
    code = "no_delegation"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} has named no delegate")


class UnknownWebhook(NotFound):
    code = "unknown_webhook"

    def __init__(self, webhook_id: int) -> None:
        super().__init__(f"webhook {webhook_id} does not exist")


class UnknownDelivery(NotFound):
    code = "unknown_delivery"

    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"delivery {delivery_id} does not exist for this webhook")


class UnknownToken(NotFound):
    code = "unknown_token"

    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id} does not exist")


# --- invalid input ---------------------------------------------------------------------------


class InvalidAmount(InvalidInput):
    code = "invalid_amount"

    def __init__(self, value: object, why: str = "") -> None:
        reason = why or (
            "an amount must be a finite decimal between 0.00 and 9999999999.99 "
            "with at most 2 decimal places"
        )
        super().__init__(f"invalid amount {value}: {reason}")


class AmountOutsidePolicy(InvalidInput):
    code = "amount_outside_policy"

    def __init__(self, policy_name: str, amount: Decimal, low: Decimal, high: Decimal) -> None:
        super().__init__(
            f"amount {amount} is outside policy '{policy_name}' (allowed {low} to {high})"
        )


class NoPolicyFor(InvalidInput):
    code = "no_policy_for"

    def __init__(self, category: str, amount: Decimal) -> None:
        super().__init__(f"no active policy of category '{category}' covers amount {amount}")


class PolicyChoiceRequired(InvalidInput):
    code = "policy_choice_required"

    def __init__(self, rule: str = "exactly one") -> None:
        super().__init__(f"name {rule} of policy_id or category")


class InvalidText(InvalidInput):
    code = "invalid_text"

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field} {why}")


class ReasonRequired(InvalidInput):
    code = "reason_required"

    def __init__(self, what: str = "a rejection") -> None:
        super().__init__(f"{what} needs a non-empty reason")


class InvalidTeamScope(InvalidInput):
    code = "invalid_team_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"invalid team_scope '{scope}': use 'submitter', 'company_wide' or 'team:<team_id>'"
        )


class InvalidPolicy(InvalidInput):
    code = "invalid_policy"


class InvalidOrgChange(InvalidInput):
    code = "invalid_org_change"


class InvalidOrgFile(InvalidInput):
    """An organisation file breaks a rule; the message names the entry."""

    code = "invalid_org_file"


class InvalidEscalation(InvalidInput):
    code = "invalid_escalate_after_hours"

    def __init__(self, step: int, why: str) -> None:
        super().__init__(f"step {step}: escalate_after_hours {why}")


class InvalidWebhook(InvalidInput):
    code = "invalid_webhook"


class RefusedDestination(InvalidInput):
    """A webhook URL that points inside the network (loopback, private, link-local...)."""

    code = "refused_destination"

    def __init__(self, why: str) -> None:
        super().__init__(f"url: {why}; webhooks may only call public addresses")


class InvalidAsOf(InvalidInput):
    code = "invalid_as_of"

    def __init__(self, raw: str, why: str) -> None:
        super().__init__(f"invalid instant '{raw}': {why}")


class ManagerCycle(InvalidInput):
    code = "manager_cycle"

    def __init__(self, user_id: int, manager_id: int) -> None:
        super().__init__(
            f"user {manager_id} cannot manage user {user_id}: the reporting chain would loop"
        )


class LevelOutsideTeam(InvalidInput):
    code = "level_outside_team"

    def __init__(self, level_id: int, team_id: int) -> None:
        super().__init__(f"hierarchy level {level_id} is not a level of team {team_id}")


class InvalidBulkSize(InvalidInput):
    code = "invalid_bulk_size"

    def __init__(self, size: int, most: int) -> None:
        super().__init__(f"a bulk call takes 1 to {most} decisions, got {size}")


class NaiveTimestamp(InvalidInput):
    code = "naive_timestamp"

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field} {value} has no time zone; give one, e.g. 2026-12-01T00:00:00Z")


class TimestampOutOfRange(InvalidInput):
    code = "timestamp_out_of_range"

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field} {value} is out of range in UTC (years 1 to 9999)")


class DelegationPeriodEmpty(InvalidInput):
    code = "delegation_period_empty"

    def __init__(self, starts_at: object, ends_at: object) -> None:
        super().__init__(f"ends_at ({ends_at}) must be after starts_at ({starts_at})")


class SelfDelegation(InvalidInput):
    code = "self_delegation"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} cannot be their own delegate")


class DelegateInactive(InvalidInput):
    code = "delegate_inactive"

    def __init__(self, delegate_id: int) -> None:
        super().__init__(f"delegate: user {delegate_id} is inactive")


class DelegateAuditor(InvalidInput):
    code = "delegate_auditor"

    def __init__(self, delegate_id: int) -> None:
        super().__init__(f"delegate: user {delegate_id} is an auditor, and auditors decide nothing")


class InvalidTokenTtl(InvalidInput):
    code = "invalid_token_ttl"

    def __init__(self, ttl: timedelta, shortest: timedelta, longest: timedelta) -> None:
        super().__init__(
            f"a token lives from {_span(shortest)} to {_span(longest)}, not {_span(ttl)}"
        )


def _span(span: timedelta) -> str:
    """A span as people say it: in days or hours when it is whole ones."""
    for unit, name in ((timedelta(days=1), "day"), (timedelta(hours=1), "hour")):
        if span and span % unit == timedelta(0):
            count = span // unit
            return f"{count} {name}{'' if count == 1 else 's'}"
    return str(span)


# --- forbidden -------------------------------------------------------------------------------


class NotYourStep(Forbidden):
    code = "not_your_step"

    def __init__(self, expense_id: int, actor: int) -> None:
        super().__init__(
            f"user {actor} is not an approver of a pending step of expense {expense_id}"
        )


class SelfApproval(Forbidden):
    code = "self_approval"

    def __init__(self, expense_id: int) -> None:
        super().__init__(f"the submitter of expense {expense_id} cannot decide on it")


class NotSubmitter(Forbidden):
    code = "not_submitter"

    def __init__(self, expense_id: int, actor: int, action: str = "withdraw") -> None:
        super().__init__(
            f"only the submitter may {action} expense {expense_id}; user {actor} is not"
        )


class OptionalStepCannotReject(Forbidden):
    code = "optional_step_cannot_reject"

    def __init__(self, expense_id: int, step: int) -> None:
        super().__init__(
            f"step {step} of expense {expense_id} is optional: its approver may approve, not reject"
        )


class OptionalStepCannotSendBack(Forbidden):
    code = "optional_step_cannot_send_back"

    def __init__(self, expense_id: int, step: int) -> None:
        super().__init__(
            f"step {step} of expense {expense_id} is optional: its approver may approve, "
            "not send the expense back"
        )


class AdminOnly(Forbidden):
    code = "admin_only"

    def __init__(self, what: str = "the organisation") -> None:
        super().__init__(f"only an admin of the company may change or read {what}")


class DelegateNotEligible(Forbidden):
    code = "delegate_not_eligible"

    def __init__(self, expense_id: int, step: int, actor: int, absent: int, why: str) -> None:
        super().__init__(
            f"user {actor} may not decide step {step} of expense {expense_id} for user {absent}: "
            f"they {why}"
        )


class ReadOnlyRole(Forbidden):
    """An auditor asked to change something: auditors read, they never change anything."""

    code = "read_only_role"

    def __init__(self, user_id: int, action: str) -> None:
        super().__init__(
            f"user {user_id} is an auditor and may not {action}: auditors read, they change nothing"
        )


class InactiveUser(Forbidden):
    code = "inactive_user"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} is inactive")


# --- conflict --------------------------------------------------------------------------------


class ExpenseClosed(Conflict):
    code = "expense_closed"

    def __init__(self, expense_id: int, status: str) -> None:
        super().__init__(f"expense {expense_id} is already {status}")


class DeliveryNotFailed(Conflict):
    code = "delivery_not_failed"

    def __init__(self, delivery_id: int, status: str) -> None:
        super().__init__(f"delivery {delivery_id} is {status}; only a failed one can be retried")


class ExpenseNotReturned(Conflict):
    code = "expense_not_returned"

    def __init__(self, expense_id: int, status: str) -> None:
        super().__init__(
            f"expense {expense_id} is {status}: only an expense sent back to its submitter "
            "(returned) can be resubmitted"
        )


class StepNotReached(Conflict):
    code = "step_not_reached"

    def __init__(self, expense_id: int, step: int, current: int) -> None:
        super().__init__(
            f"step {step} of expense {expense_id} waits for step {current} to be approved first"
        )


class StepAlreadyDecided(Conflict):
    code = "step_already_decided"

    def __init__(self, expense_id: int, step: int, status: str) -> None:
        super().__init__(f"step {step} of expense {expense_id} is already {status}")


class ExpenseChanged(Conflict):
    """A decision read its expense without a lock and another change was written before it
    (`UnitOfWork.commit_next_write`): nothing of it was written; decide again on what is
    stored now."""

    code = "expense_changed"

    def __init__(self, expense_id: int) -> None:
        super().__init__(f"expense {expense_id} changed while it was being decided; retry")


class OrgChanged(Conflict):
    """A submission was decided on what the organisation was when read, and it changed before
    the submission was written (`AwaitedExpenses.add`): nothing was written; decide again on
    the organisation as it is now."""

    code = "org_changed"

    def __init__(self) -> None:
        super().__init__("the organisation changed while the expense was being submitted; retry")


class NoApproverForStep(Conflict):
    code = "no_approver_for_step"

    def __init__(self, step: int, required_level: int, scope: str) -> None:
        self.step = step
        super().__init__(
            f"no eligible approver for step {step} (level {required_level} or more senior, "
            f"scope '{scope}')"
        )


class FallbackApproverInactive(Conflict):
    code = "fallback_approver_inactive"

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} is inactive and cannot be the fallback approver")


class FallbackApproverAuditor(Conflict):
    code = "fallback_approver_auditor"

    def __init__(self, user_id: int) -> None:
        super().__init__(
            f"user {user_id} is an auditor and cannot be the fallback approver: auditors "
            "approve nothing"
        )


class PolicyInactive(Conflict):
    code = "policy_inactive"

    def __init__(self, policy_id: int) -> None:
        super().__init__(f"policy {policy_id} is inactive and cannot be used")


class PolicyOverlap(Conflict):
    code = "policy_overlap"

    def __init__(self, category: str, other: str, low: Decimal, high: Decimal) -> None:
        super().__init__(
            f"the range overlaps active policy '{other}' of category '{category}' ({low} to {high})"
        )


class DuplicateEmail(Conflict):
    code = "duplicate_email"

    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email} already exists in this company")


class DuplicateName(Conflict):
    code = "duplicate_name"

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"{what} '{name}' already exists")


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key '{key}' was already used for a different request; use a new key"
        )


class IdempotencyKeyRace(Conflict):
    """Two requests with one key raced; the loser is answered from the winner's record."""

    code = "idempotency_key_in_flight"

    def __init__(self, key: str) -> None:
        super().__init__(f"a request with idempotency key '{key}' is already being processed")


class StoreNotEmpty(Conflict):
    code = "store_not_empty"

    def __init__(self, company: str) -> None:
        super().__init__(
            f"the demo organisation needs an empty database; company 1 is already '{company}'"
        )


class PendingApprovalsStranded(Conflict):
    """A change would leave pending approvals with nobody eligible to take them over."""

    code = "pending_approvals_stranded"

    def __init__(self, user_id: int, stranded: tuple[tuple[int, int], ...]) -> None:
        self.stranded = stranded
        listed = ", ".join(f"expense {e} step {s}" for e, s in stranded)
        super().__init__(
            f"changing user {user_id} leaves pending approvals without an eligible approver "
            f"({listed}); name an eligible replacement_approver_id"
        )


class ReplacementNotEligible(Conflict):
    code = "replacement_not_eligible"

    def __init__(self, replacement_id: int, expense_id: int, step: int, why: str) -> None:
        super().__init__(
            f"user {replacement_id} cannot take over step {step} of expense {expense_id}: {why}"
        )


class OrgFileDisagrees(Conflict):
    """An organisation file names something the database already holds differently."""

    code = "org_file_disagrees"

    def __init__(self, what: str, differences: str) -> None:
        super().__init__(
            f"{what} already exists with other values ({differences}); change it through the "
            "API, or fix the file"
        )


class DelegationCycle(Conflict):
    code = "delegation_cycle"

    def __init__(self, user_id: int, delegate_id: int) -> None:
        super().__init__(
            f"user {delegate_id} has named user {user_id} as their delegate for an overlapping "
            "period; two people cannot cover for each other at once"
        )
