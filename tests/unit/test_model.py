"""Value objects: Money is exact cents within DECIMAL(12,2); scopes and free text are checked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from expense_core.errors import InvalidAmount, InvalidTeamScope, InvalidText
from expense_core.model import (
    COMPANY_SCOPE,
    LIMIT,
    MAX_AMOUNT,
    SUBMITTER_SCOPE,
    ZERO,
    Approval,
    ApprovalStatus,
    CompanyId,
    EventKind,
    Expense,
    ExpenseEvent,
    ExpenseId,
    ExpenseStatus,
    LevelId,
    Money,
    PolicyId,
    ScopeKind,
    TeamId,
    TeamScope,
    UserId,
    check_text,
    with_expense_id,
)
from tests.strategies import LIMIT_CENTS, money

# --- Money -----------------------------------------------------------------------------------


def test_money_keeps_exact_cents() -> None:
    amount = Money(Decimal("1200.10"))
    assert amount.value == Decimal("1200.10")
    assert str(amount) == "1200.10"


@pytest.mark.parametrize("raw", ["4000", "4000.0", "4000.00", "4E3"])
def test_money_holds_every_exact_amount_with_two_places(raw: str) -> None:
    assert str(Money(Decimal(raw))) == "4000.00"


def test_money_accepts_both_ends_of_its_range() -> None:
    assert Money(Decimal("0.00")) == ZERO
    assert Money(LIMIT).value == Decimal("9999999999.99")
    assert MAX_AMOUNT.value == LIMIT


@pytest.mark.parametrize(
    "value",
    [
        Decimal("10000000000.00"),  # one cent past DECIMAL(12,2)
        Decimal("-0.01"),
        Decimal("0.001"),
        Decimal("12.345"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("-Infinity"),
    ],
)
def test_money_refuses_what_is_not_exact_cents_in_range(value: Decimal) -> None:
    with pytest.raises(InvalidAmount):
        Money(value)


@pytest.mark.parametrize("value", [1.5, 2, "3.00"])
def test_money_refuses_anything_but_a_decimal(value: object) -> None:
    with pytest.raises(InvalidAmount):
        Money(value)  # type: ignore[arg-type]  # the wrong type is the point


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1200, "1200.00"),
        (0, "0.00"),
        ("1200.00", "1200.00"),
        ("0.5", "0.50"),
        ("4000", "4000.00"),
        ("1e3", "1000.00"),
        (" 12.30 ", "12.30"),
        (Decimal("4000"), "4000.00"),
        (Decimal("0.10"), "0.10"),
        ("9999999999.99", "9999999999.99"),
        (9999999999, "9999999999.00"),
    ],
)
def test_parse_accepts_ints_strings_and_decimals_as_two_place_amounts(
    raw: Decimal | int | str, expected: str
) -> None:
    parsed = Money.parse(raw)
    assert str(parsed) == expected
    assert parsed.value == Decimal(expected)
    assert parsed.value.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "raw",
    [
        1.5,
        0.1,
        1200.0,
        float("nan"),
        float("inf"),
        float("-inf"),
        True,
        False,
        "NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "1.001",
        "0.005",
        Decimal("12.345"),
        "-0.01",
        -1,
        "10000000000",
        "10000000000.00",
        10**12,
        Decimal("1E+10"),
        "abc",
        "",
        "1,00",
        "12.3.4",
    ],
)
def test_parse_refuses_floats_non_numbers_extra_places_and_out_of_range(raw: object) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(raw)  # type: ignore[arg-type]  # some of these types are the point


def test_parse_refuses_a_float_even_when_it_is_a_whole_number_of_cents() -> None:
    with pytest.raises(InvalidAmount, match="never binary floats"):
        Money.parse(0.5)  # type: ignore[arg-type]  # a float is the point


def test_parse_reads_negative_zero_as_plain_zero() -> None:
    parsed = Money.parse("-0")
    assert parsed == ZERO
    assert str(parsed) == "0.00"


def test_cents_builds_the_same_amount_as_its_decimal() -> None:
    assert Money.cents(123456) == Money(Decimal("1234.56"))
    assert str(Money.cents(5)) == "0.05"


def test_amounts_order_by_value_not_by_text() -> None:
    assert Money.parse("9.99") < Money.parse("10.00") < Money.parse("100")


@given(a=money(), b=money())
def test_amounts_compare_as_their_values(a: Money, b: Money) -> None:
    assert (a < b, a <= b, a > b, a >= b) == (
        a.value < b.value,
        a.value <= b.value,
        a.value > b.value,
        a.value >= b.value,
    )


@pytest.mark.parametrize("other", [Decimal("1.00"), 1, "1.00", None])
def test_amounts_do_not_compare_with_other_kinds_of_value(other: object) -> None:
    amount = Money(Decimal("1.00"))
    for compare in (
        lambda: amount < other,  # type: ignore[operator]  # the refusal is the point
        lambda: amount <= other,  # type: ignore[operator]
        lambda: amount > other,  # type: ignore[operator]
        lambda: amount >= other,  # type: ignore[operator]
    ):
        with pytest.raises(TypeError):
            compare()


@given(cents=st.integers(0, LIMIT_CENTS))
def test_parse_round_trips_every_amount_in_range(cents: int) -> None:
    amount = Money.cents(cents)
    text = f"{cents // 100}.{cents % 100:02d}"
    assert str(amount) == text
    assert Money.parse(text) == amount
    assert Money.parse(amount.value) == amount
    assert Money.parse(str(amount)).value.as_tuple() == amount.value.as_tuple()


@given(amount=money(), extra=st.integers(1, 9))
def test_parse_refuses_any_fraction_of_a_cent(amount: Money, extra: int) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(f"{amount.value}{extra}")


@given(cents=st.integers(LIMIT_CENTS + 1, 10**20))
def test_parse_refuses_every_amount_past_the_limit(cents: int) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(Decimal(cents).scaleb(-2))


# --- team scopes -----------------------------------------------------------------------------


def test_scope_reads_the_three_stored_forms() -> None:
    assert TeamScope.parse("submitter") == SUBMITTER_SCOPE
    assert TeamScope.parse("company_wide") == COMPANY_SCOPE
    assert TeamScope.parse("team:12") == TeamScope(ScopeKind.TEAM, TeamId(12))
    assert str(TeamScope.parse("team:12")) == "team:12"
    assert str(COMPANY_SCOPE) == "company_wide"


def test_only_a_named_team_scope_admits_peers() -> None:
    assert SUBMITTER_SCOPE.demands_seniority
    assert COMPANY_SCOPE.demands_seniority
    assert not TeamScope.parse("team:3").demands_seniority


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "team",
        "team:",
        "team:0",
        "team:01",
        "team:-1",
        "team:x",
        "team:1:2",
        "Submitter",
        " submitter",
        "company-wide",
        "team:\u00b2",  # superscript two: a digit to str.isdigit, not to int()
        "team:\uff11",  # fullwidth one: stored scopes are ASCII
    ],
)
def test_scope_refuses_anything_else(raw: str) -> None:
    with pytest.raises(InvalidTeamScope):
        TeamScope.parse(raw)


@given(raw=st.text(max_size=12))
def test_scope_parse_either_reads_a_canonical_form_or_refuses(raw: str) -> None:
    try:
        scope = TeamScope.parse(raw)
    except InvalidTeamScope:
        return
    assert str(scope) == raw


# --- free text -------------------------------------------------------------------------------


def test_text_may_be_absent_unless_required() -> None:
    assert check_text("description", None) is None
    with pytest.raises(InvalidText, match="reason is required"):
        check_text("reason", None, required=True)


def test_text_is_held_to_two_thousand_characters() -> None:
    assert check_text("description", "x" * 2000) == "x" * 2000
    with pytest.raises(InvalidText, match="longer than 2000"):
        check_text("description", "x" * 2001)


def test_required_text_must_not_be_blank() -> None:
    with pytest.raises(InvalidText, match="must not be empty"):
        check_text("reason", "  \n", required=True)
    assert check_text("reason", " no ", required=True) == " no "


# --- builders --------------------------------------------------------------------------------

AT, LATER = datetime(2025, 8, 25, 10, 30, tzinfo=UTC), datetime(2025, 8, 26, 9, 0, tzinfo=UTC)
APPROVAL = Approval(
    step_number=2,
    approver_id=UserId(5),
    approver_level_id=LevelId(6),
    required=False,
    status=ApprovalStatus.APPROVED,
    approved_at=AT,
    comments="fine",
)
EXPENSE = Expense(
    id=ExpenseId(3),
    company_id=CompanyId(4),
    user_id=UserId(7),
    policy_id=PolicyId(8),
    amount=Money(Decimal("12.34")),
    description="desk",
    status=ExpenseStatus.APPROVED,
    submitted_at=AT,
    completed_at=LATER,
    approvals=(APPROVAL,),
)
EVENT = ExpenseEvent(
    expense_id=ExpenseId(3),
    company_id=CompanyId(4),
    kind=EventKind.REASSIGNED,
    at=LATER,
    actor_id=UserId(9),
    step_number=2,
    comment="moved",
    approver_id=UserId(10),
    previous_approver_id=UserId(5),
)


def test_an_expense_takes_a_stored_id_and_keeps_the_rest() -> None:
    stamped = EXPENSE.with_id(ExpenseId(42))
    assert stamped.id == 42
    assert attrs.astuple(stamped, recurse=False)[1:] == attrs.astuple(EXPENSE, recurse=False)[1:]


def test_events_take_their_expense_s_stored_id_and_keep_the_rest() -> None:
    stamped = with_expense_id([EVENT, attrs.evolve(EVENT, step_number=3)], ExpenseId(42))
    assert [e.expense_id for e in stamped] == [42, 42]
    assert [e.step_number for e in stamped] == [2, 3]
    assert attrs.astuple(stamped[0], recurse=False)[1:] == attrs.astuple(EVENT, recurse=False)[1:]
