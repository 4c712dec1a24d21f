"""Policy matching and the rules a company's policies obey."""

from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from expense_core.errors import (
    AmountOutsidePolicy,
    InvalidAmount,
    InvalidPolicy,
    NoPolicyFor,
    PolicyInactive,
    PolicyOverlap,
)
from expense_core.model import ApprovalStep, CompanyId, Money, Policy, PolicyId
from expense_core.policies import (
    check_expense_amount,
    check_new_policy,
    check_policy_covers,
    match_policy,
)
from tests.strategies import CATEGORIES, money, policy_sets
from tests.unit.support import money as m

ONE_STEP = (ApprovalStep(step_order=1, required_level=6),)


def policy(
    policy_id: int,
    low: str,
    high: str,
    *,
    category: str = "equipment",
    name: str | None = None,
    active: bool = True,
    company: int = 1,
    steps: tuple[ApprovalStep, ...] = ONE_STEP,
) -> Policy:
    return Policy(
        id=PolicyId(policy_id),
        company_id=CompanyId(company),
        category=category,
        name=name or f"Policy {policy_id}",
        min_amount=m(low),
        max_amount=m(high),
        steps=steps,
        active=active,
    )


SMALL = policy(1, "0.00", "1999.99", name="Small Equipment")
LARGE = policy(2, "2000.00", "999999999.99", name="Large Equipment")
TRAVEL = policy(3, "0.00", "999999999.99", category="travel", name="Business Travel")
SEED = (SMALL, LARGE, TRAVEL)


# --- a named policy --------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["0.00", "1200.00", "1999.99"])
def test_named_policy_accepts_amounts_in_its_inclusive_range(amount: str) -> None:
    assert check_policy_covers(SMALL, m(amount)) is SMALL


@pytest.mark.parametrize("amount", ["2000.00", "4000.00"])
def test_named_policy_refuses_an_amount_outside_its_range(amount: str) -> None:
    with pytest.raises(AmountOutsidePolicy, match=r"'Small Equipment' \(allowed 0.00 to 1999.99\)"):
        check_policy_covers(SMALL, m(amount))


def test_named_policy_refuses_an_amount_below_its_range() -> None:
    with pytest.raises(AmountOutsidePolicy, match=re.escape("amount 1999.99 is outside")):
        check_policy_covers(LARGE, m("1999.99"))


def test_inactive_policy_cannot_be_named_whatever_the_amount() -> None:
    retired = attrs.evolve(SMALL, active=False)
    with pytest.raises(PolicyInactive, match="policy 1 is inactive"):
        check_policy_covers(retired, m("10.00"))
    with pytest.raises(PolicyInactive):
        check_policy_covers(retired, m("5000.00"))


# --- by category -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "amount", "expected"),
    [
        ("equipment", "0.01", SMALL),
        ("equipment", "1999.99", SMALL),
        ("equipment", "2000.00", LARGE),
        ("equipment", "999999999.99", LARGE),
        ("travel", "12.00", TRAVEL),
    ],
)
def test_category_picks_the_active_policy_whose_range_holds_the_amount(
    category: str, amount: str, expected: Policy
) -> None:
    assert match_policy(SEED, category, m(amount)) is expected


def test_category_without_a_covering_policy_is_refused_naming_category_and_amount() -> None:
    with pytest.raises(
        NoPolicyFor, match=re.escape("category 'equipment' covers amount 1000000000.00")
    ):
        match_policy(SEED, "equipment", m("1000000000.00"))
    with pytest.raises(NoPolicyFor, match=re.escape("category 'meals' covers amount 12.50")):
        match_policy(SEED, "meals", m("12.50"))


def test_category_ignores_inactive_policies() -> None:
    retired_small = attrs.evolve(SMALL, active=False)
    with pytest.raises(NoPolicyFor):
        match_policy((retired_small, LARGE), "equipment", m("100.00"))
    replacement = policy(4, "0.00", "1999.99", name="New Small")
    assert (
        match_policy((retired_small, LARGE, replacement), "equipment", m("100.00")) is replacement
    )


def test_category_is_matched_exactly() -> None:
    with pytest.raises(NoPolicyFor):
        match_policy(SEED, "Equipment", m("100.00"))


def test_expense_amount_must_be_above_zero() -> None:
    with pytest.raises(InvalidAmount, match="greater than 0"):
        check_expense_amount(m("0.00"))
    assert check_expense_amount(m("0.01")) == m("0.01")


@given(policies=policy_sets(), data=st.data())
def test_matching_is_total_and_unique_over_non_overlapping_policies(
    policies: tuple[Policy, ...], data: st.DataObject
) -> None:
    category = data.draw(st.sampled_from(CATEGORIES))
    edges = [
        Money.cents(max(0, int(edge.value * 100) + delta))
        for p in policies
        for edge in (p.min_amount, p.max_amount)
        for delta in (-1, 0, 1)
    ]
    amount = data.draw(st.sampled_from(edges) | money() if edges else money())
    covering = [p for p in policies if p.active and p.category == category and p.covers(amount)]
    assert len(covering) <= 1  # the generated set obeys the no-overlap rule
    if covering:
        assert match_policy(policies, category, amount) is covering[0]
    else:
        with pytest.raises(NoPolicyFor):
            match_policy(policies, category, amount)


# --- new policies ----------------------------------------------------------------------------


def test_new_policy_overlapping_an_active_one_is_refused_naming_it() -> None:
    mid = policy(9, "1500.00", "2500.00", name="Mid Equipment")
    with pytest.raises(PolicyOverlap, match="'Small Equipment' of category 'equipment'"):
        check_new_policy(mid, SEED)


def test_ranges_sharing_one_cent_overlap() -> None:
    with pytest.raises(PolicyOverlap):
        check_new_policy(policy(9, "1999.99", "1999.99"), (SMALL,))


def test_adjacent_ranges_do_not_overlap() -> None:
    assert check_new_policy(policy(9, "0.00", "1999.98"), (LARGE,)).id == 9
    assert check_new_policy(policy(9, "1000.00", "1999.99"), (LARGE,)).id == 9


def test_overlap_only_counts_active_policies_of_the_same_company_and_category() -> None:
    new = policy(9, "100.00", "200.00")
    others = (
        attrs.evolve(SMALL, active=False),
        policy(5, "0.00", "999.00", category="travel"),
        policy(6, "0.00", "999.00", company=2),
    )
    assert check_new_policy(new, others) is new


def test_an_inactive_new_policy_may_overlap() -> None:
    retired = policy(9, "100.00", "200.00", active=False)
    assert check_new_policy(retired, SEED) is retired


def test_a_policy_does_not_overlap_itself() -> None:
    assert check_new_policy(SMALL, SEED) is SMALL


def test_min_may_equal_max_but_not_exceed_it() -> None:
    assert check_new_policy(policy(9, "5.00", "5.00"), ()).id == 9
    with pytest.raises(InvalidPolicy, match="above max_amount"):
        check_new_policy(policy(9, "5.01", "5.00"), ())


@pytest.mark.parametrize(
    ("category", "name", "message"),
    [
        ("", "Meals", "category must be"),
        ("   ", "Meals", "category must be"),
        ("c" * 51, "Meals", "category must be"),
        ("meals", "", "name must be"),
        ("meals", " ", "name must be"),
        ("meals", "n" * 101, "name must be"),
    ],
)
def test_new_policy_needs_a_category_and_a_name_within_limits(
    category: str, name: str, message: str
) -> None:
    new = attrs.evolve(policy(9, "0.00", "1.00"), category=category, name=name)
    with pytest.raises(InvalidPolicy, match=message):
        check_new_policy(new, ())


def test_category_and_name_at_their_limits_are_accepted() -> None:
    new = attrs.evolve(policy(9, "0.00", "1.00"), category="c" * 50, name="n" * 100)
    assert check_new_policy(new, ()) is new


def step(
    order: int, level: int = 6, *, required: bool = True, text: str | None = None
) -> ApprovalStep:
    return ApprovalStep(
        step_order=order, required_level=level, is_required=required, description=text
    )


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((), "at least one approval step"),
        ((step(2),), r"numbered 1..1 in order, got \[2\]"),
        ((step(1), step(3)), r"got \[1, 3\]"),
        ((step(2), step(1)), r"got \[2, 1\]"),
        ((step(1), step(1)), r"got \[1, 1\]"),
        ((step(1, 0),), "required_level must be between 1 and 10, got 0"),
        ((step(1), step(2, 11)), "step 2: required_level must be between 1 and 10, got 11"),
        ((step(1, text="d" * 256),), "description exceeds 255"),
        ((step(1, required=False),), "at least one required step"),
        ((step(1, required=False), step(2, required=False)), "at least one required step"),
    ],
)
def test_malformed_steps_are_refused(steps: tuple[ApprovalStep, ...], message: str) -> None:
    with pytest.raises(InvalidPolicy, match=message):
        check_new_policy(policy(9, "0.00", "1.00", steps=steps), ())


def test_well_formed_steps_are_accepted() -> None:
    steps = (step(1, 10), step(2, 1, required=False, text="d" * 255), step(3, 5))
    new = policy(9, "0.00", "1.00", steps=steps)
    assert check_new_policy(new, ()) is new


@given(candidates=st.lists(st.tuples(money(0, 5000), money(0, 5000)), max_size=12))
def test_policies_accepted_one_by_one_never_overlap(
    candidates: list[tuple[Money, Money]],
) -> None:
    accepted: list[Policy] = []
    for number, (a, b) in enumerate(candidates, start=1):
        new = policy(number, str(min(a, b)), str(max(a, b)))
        overlaps = [
            p for p in accepted if p.min_amount <= new.max_amount and new.min_amount <= p.max_amount
        ]
        if overlaps:
            with pytest.raises(PolicyOverlap):
                check_new_policy(new, accepted)
        else:
            accepted.append(check_new_policy(new, accepted))
    for first in accepted:
        for second in accepted:
            if first is not second:
                assert first.max_amount < second.min_amount or second.max_amount < first.min_amount
