"""The rules of webhook deliveries: what follows an attempt, topics, URLs, fan-out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expense_core.errors import InvalidWebhook
from expense_core.model import CompanyId, EventKind, ExpenseEvent, ExpenseId, UserId
from expense_core.notifications import OutboxEntry, Topic
from expense_core.webhooks import (
    JITTER,
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    Channel,
    DeliveryStatus,
    Outcome,
    Webhook,
    WebhookId,
    after_attempt,
    check_topics,
    check_url,
    fan_out,
    new_secret,
)
from tests.clocks import START

attempts = st.integers(min_value=1, max_value=MAX_ATTEMPTS)
spreads = st.floats(min_value=-1.0, max_value=1.0)


@given(attempts, st.integers(min_value=200, max_value=299), spreads)
def test_a_2xx_answer_delivers(n: int, code: int, spread: float) -> None:
    verdict = after_attempt(n, Outcome(code), START, spread)
    assert (verdict.status, verdict.next_attempt_at) == (DeliveryStatus.DELIVERED, None)


@given(
    attempts,
    st.one_of(st.none(), st.just(429), st.integers(min_value=500, max_value=599)),
    spreads,
)
def test_a_transient_failure_is_retried_on_schedule_until_the_last_attempt(
    n: int, code: int | None, spread: float
) -> None:
    verdict = after_attempt(n, Outcome(code, None if code else "timeout"), START, spread)
    if n >= MAX_ATTEMPTS:
        assert (verdict.status, verdict.next_attempt_at) == (DeliveryStatus.FAILED, None)
        return
    assert verdict.status is DeliveryStatus.RETRYING
    assert verdict.next_attempt_at is not None
    wait = verdict.next_attempt_at - START
    planned = RETRY_DELAYS[n - 1]
    assert planned * (1 - JITTER) <= wait <= planned * (1 + JITTER)
    assert not verdict.disable_webhook


@given(attempts, st.integers(min_value=300, max_value=499).filter(lambda c: c not in (410, 429)))
def test_any_other_answer_fails_at_once(n: int, code: int) -> None:
    verdict = after_attempt(n, Outcome(code), START, 0.0)
    assert (verdict.status, verdict.disable_webhook) == (DeliveryStatus.FAILED, False)


def test_gone_fails_and_disables_the_subscription() -> None:
    verdict = after_attempt(1, Outcome(410), START, 0.0)
    assert (verdict.status, verdict.disable_webhook) == (DeliveryStatus.FAILED, True)


def test_a_refused_destination_is_not_retried() -> None:
    verdict = after_attempt(1, Outcome(None, "private address", refused=True), START, 0.0)
    assert verdict.status is DeliveryStatus.FAILED


def test_the_schedule_grows_and_spans_about_a_day() -> None:
    assert list(RETRY_DELAYS) == sorted(RETRY_DELAYS)
    assert RETRY_DELAYS[0] <= timedelta(seconds=30)
    assert timedelta(hours=18) <= sum(RETRY_DELAYS, timedelta()) <= timedelta(hours=30)
    assert MAX_ATTEMPTS == 8


def test_topics_are_checked_and_sorted() -> None:
    assert check_topics(["expense.approved", "approval.requested", "expense.approved"]) == (
        "approval.requested",
        "expense.approved",
    )
    assert check_topics(["*"]) == ("*",)
    for bad in ([], ["*", "expense.approved"], ["expense.paid"]):
        with pytest.raises(InvalidWebhook):
            check_topics(bad)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example/",
        "http://",
        "https://user:pw@x.example/",
        "http://x.example:0/",
        "x" * 2001,
    ],
)
def test_urls_that_cannot_be_called_are_refused(url: str) -> None:
    with pytest.raises(InvalidWebhook):
        check_url(url)


def test_a_secret_is_24_random_bytes_in_base64() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(first) == len("whsec_") + 32
    assert first != second


def _hook(hook_id: int, company: int, topics: tuple[str, ...], active: bool = True) -> Webhook:
    return Webhook(
        id=WebhookId(hook_id),
        company_id=CompanyId(company),
        url="https://x.example/",
        topics=topics,
        secret=new_secret(),
        created_at=START,
        active=active,
    )


@given(st.sampled_from(sorted(Topic)))
def test_a_notice_goes_to_each_subscription_of_its_company_that_wants_it(topic: Topic) -> None:
    entry = OutboxEntry(
        id=5,
        company_id=CompanyId(1),
        expense_id=ExpenseId(9),
        topic=topic,
        event=ExpenseEvent(
            expense_id=ExpenseId(9),
            company_id=CompanyId(1),
            kind=EventKind.SUBMITTED,
            at=START,
            actor_id=UserId(7),
        ),
    )
    hooks = [
        _hook(1, 1, ("*",)),
        _hook(2, 1, (str(topic),)),
        _hook(3, 1, tuple(sorted({"expense.approved", "approval.decided"} - {str(topic)}))),
        _hook(4, 2, ("*",)),
        _hook(5, 1, ("*",), active=False),
    ]
    made = fan_out(entry, hooks, [(UserId(3), None), (UserId(4), UserId(3))], START)
    assert [d.webhook_id for d in made if d.channel is Channel.WEBHOOK] == [1, 2]
    mails = [(d.recipient_id, d.on_behalf_of) for d in made if d.channel is Channel.EMAIL]
    assert mails == [(3, None), (4, 3)]
    assert {(d.status, d.attempts, d.outbox_id, d.next_attempt_at) for d in made} == {
        (DeliveryStatus.PENDING, 0, 5, START)
    }
