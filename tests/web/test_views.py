"""What the pages show, worked out from the use cases' answers: amounts, times, the history."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from entrypoints.web.views import instant, money, people_in, shown_time, timeline
from expense_core.model import CompanyId, EventKind, ExpenseEvent, ExpenseId, Money, UserId

AT = datetime(2025, 8, 25, 10, 30, 5, tzinfo=UTC)
NAMES = {UserId(6): "Frank Miller", UserId(5): "Eve Davis"}


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0.00", "0.00"),
        ("4000", "4\u202f000.00"),
        ("9999999999.99", "9\u202f999\u202f999\u202f999.99"),
    ],
)
def test_amounts_have_two_decimals_and_thin_space_thousands(amount: str, shown: str) -> None:
    assert money(Money.parse(amount)) == shown


def test_times_are_utc_instants_whatever_the_stores_zone() -> None:
    naive = AT.replace(tzinfo=None)

    assert instant(naive) == instant(AT) == "2025-08-25T10:30:05Z"
    assert shown_time(AT) == "2025-08-25 10:30 UTC"


SENTENCES = {
    EventKind.SUBMITTED: "Submitted by Frank Miller",
    EventKind.APPROVED: "Step 2 approved by Frank Miller",
    EventKind.REJECTED: "Rejected at step 2 by Frank Miller",
    EventKind.WITHDRAWN: "Withdrawn by Frank Miller",
    EventKind.SKIPPED: "Step 2 skipped",
    EventKind.REASSIGNED: "Step 2 moved from user 9 to Eve Davis",
    EventKind.RETURNED: "Sent back at step 2 by Frank Miller",
    EventKind.RESUBMITTED: "Resubmitted by Frank Miller",
    EventKind.ESCALATED: "Step 2 escalated from user 9 to Eve Davis",
    EventKind.ESCALATION_FAILED: "Step 2 could not be escalated",
}


def test_every_kind_of_event_has_its_sentence() -> None:
    assert set(SENTENCES) == set(EventKind)


@pytest.mark.parametrize(("kind", "sentence"), SENTENCES.items(), ids=str)
def test_the_history_tells_each_event_in_words(kind: EventKind, sentence: str) -> None:
    event = ExpenseEvent(
        expense_id=ExpenseId(1),
        company_id=CompanyId(1),
        kind=kind,
        at=AT,
        actor_id=UserId(6),
        step_number=2,
        comment="why",
        approver_id=UserId(5),
        previous_approver_id=UserId(9),
    )

    [moment] = timeline([event], NAMES)

    assert (moment.text, moment.comment, moment.at) == (sentence, "why", AT)


def test_a_delegates_decision_names_the_absent_approver_too() -> None:
    event = ExpenseEvent(
        expense_id=ExpenseId(1),
        company_id=CompanyId(1),
        kind=EventKind.APPROVED,
        at=AT,
        actor_id=UserId(5),
        step_number=1,
        approver_id=UserId(6),
        on_behalf_of=UserId(6),
    )

    [moment] = timeline([event], NAMES)

    assert moment.text == "Step 1 approved by Eve Davis for Frank Miller"


def test_everyone_the_history_names_is_asked_for() -> None:
    moved = ExpenseEvent(
        expense_id=ExpenseId(1),
        company_id=CompanyId(1),
        kind=EventKind.REASSIGNED,
        at=AT,
        actor_id=None,
        step_number=1,
        approver_id=UserId(5),
        previous_approver_id=UserId(9),
    )
    decided = attrs.evolve(
        moved, kind=EventKind.APPROVED, actor_id=UserId(4), on_behalf_of=UserId(3)
    )

    assert people_in([moved, decided]) == {UserId(3), UserId(4), UserId(5), UserId(9)}
