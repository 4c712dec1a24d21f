"""Policy matching (which policy routes an expense) and the rules a company's policies obey."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from expense_core.errors import (
    AmountOutsidePolicy,
    InvalidAmount,
    InvalidEscalation,
    InvalidPolicy,
    NoPolicyFor,
    PolicyInactive,
    PolicyOverlap,
)
from expense_core.model import MOST_JUNIOR, MOST_SENIOR, ApprovalStep, Money, Policy

CATEGORY_LIMIT = 50
NAME_LIMIT = 100
ESCALATION_HOURS_LIMIT = 24 * 365  # a year: a deadline further off is a typo, not a policy


def check_expense_amount(amount: Money) -> Money:
    """Hold an expense amount to the rule that it is strictly positive.

    Raises:
        InvalidAmount: the amount is zero.
    """
    if not amount.value:
        raise InvalidAmount(amount.value, "an expense amount must be greater than 0")
    return amount


def check_policy_covers(policy: Policy, amount: Money) -> Policy:
    """Accept a policy the submitter named, if it may route this amount.

    Raises:
        PolicyInactive: the policy is inactive.
        AmountOutsidePolicy: the amount lies outside the policy's inclusive range.
    """
    if not policy.active:
        raise PolicyInactive(policy.id)
    if not policy.covers(amount):
        raise AmountOutsidePolicy(
            policy.name, amount.value, policy.min_amount.value, policy.max_amount.value
        )
    return policy


def match_policy(policies: Iterable[Policy], category: str, amount: Money) -> Policy:
    """Choose the one active policy of a category whose range holds the amount.

    Raises:
        NoPolicyFor: no active policy of that category covers the amount.
    """
    for policy in policies:
        if policy.active and policy.category == category and policy.covers(amount):
            # Ranges of active policies never overlap, so the first cover is the only one.
            return policy
    raise NoPolicyFor(category, amount.value)


def check_new_policy(policy: Policy, existing: Iterable[Policy]) -> Policy:
    """Validate a policy before it is created: shape, steps, and no overlap with active peers.

    Raises:
        InvalidPolicy: an empty name or category, min above max, or malformed steps.
        PolicyOverlap: an active policy of the same company and category shares part of the range.
    """
    if not policy.category.strip() or len(policy.category) > CATEGORY_LIMIT:
        raise InvalidPolicy(f"category must be 1 to {CATEGORY_LIMIT} characters")
    if not policy.name.strip() or len(policy.name) > NAME_LIMIT:
        raise InvalidPolicy(f"name must be 1 to {NAME_LIMIT} characters")
    if policy.min_amount > policy.max_amount:
        raise InvalidPolicy(
            f"min_amount {policy.min_amount} is above max_amount {policy.max_amount}"
        )
    check_steps(policy.steps)
    if policy.active:
        for other in existing:
            if (
                other.active
                and other.id != policy.id
                and other.company_id == policy.company_id
                and other.category == policy.category
                and other.min_amount <= policy.max_amount
                and policy.min_amount <= other.max_amount
            ):
                raise PolicyOverlap(
                    policy.category, other.name, other.min_amount.value, other.max_amount.value
                )
    return policy


def check_steps(steps: Sequence[ApprovalStep]) -> None:
    """Steps are numbered 1..N without gaps, ask for a level 1..10, and one at least is required;
    a required step may escalate after 1 to 8,760 hours (a year).

    Raises:
        InvalidPolicy: naming the first broken rule.
        InvalidEscalation: an `escalate_after_hours` out of range, or on an optional step.
    """
    if not steps:
        raise InvalidPolicy("a policy needs at least one approval step")
    orders = [s.step_order for s in steps]
    if orders != list(range(1, len(steps) + 1)):
        raise InvalidPolicy(f"steps must be numbered 1..{len(steps)} in order, got {orders}")
    for step in steps:
        if not MOST_SENIOR <= step.required_level <= MOST_JUNIOR:
            raise InvalidPolicy(
                f"step {step.step_order}: required_level must be between "
                f"{MOST_SENIOR} and {MOST_JUNIOR}, got {step.required_level}"
            )
        if step.description is not None and len(step.description) > 255:
            raise InvalidPolicy(f"step {step.step_order}: description exceeds 255 characters")
        check_escalation(step)
    if not any(s.is_required for s in steps):
        raise InvalidPolicy("a policy needs at least one required step")


def check_escalation(step: ApprovalStep) -> None:
    """Hold a step's `escalate_after_hours` to 1..8,760 (a year), on required steps only.

    Raises:
        InvalidEscalation: naming the step and what is wrong.
    """
    hours = step.escalate_after_hours
    if hours is None:
        return
    if not 1 <= hours <= ESCALATION_HOURS_LIMIT:
        raise InvalidEscalation(
            step.step_order, f"must be between 1 and {ESCALATION_HOURS_LIMIT} (a year), got {hours}"
        )
    if not step.is_required:
        # An optional step never waits for anyone, so it is never overdue.
        raise InvalidEscalation(
            step.step_order, "is for required steps; an optional one never waits"
        )
