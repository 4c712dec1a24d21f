"""The worker's attempts in flight: each claim's attempt made once on a delivery thread, what
it came to handed back for settling, and none begun once its lease is too short for it (nor
settled: it is taken again when its lease runs out)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import attrs

from entrypoints.container import container_for
from entrypoints.settings import Settings
from entrypoints.worker import _InFlight, worker_for
from expense_core.demo import install_demo
from expense_core.model import (
    ApprovalStep,
    CompanyId,
    EventKind,
    ExpenseEvent,
    ExpenseId,
    Money,
    PolicyId,
    UserId,
)
from expense_core.notifications import OutboxEntry, Topic
from expense_core.services import NewPolicy, SubmitExpense
from expense_core.views import ExpenseView
from expense_core.webhooks import (
    Claim,
    DeliveryId,
    DeliveryStatus,
    Outcome,
    Webhook,
    WebhookId,
    fan_out,
    new_secret,
)

AT = datetime(2024, 5, 1, 12, tzinfo=UTC)
FAR_AHEAD_S = 3600.0
SUBSCRIPTION = Webhook(
    id=WebhookId(1),
    company_id=CompanyId(1),
    url="http://127.0.0.1/hook",
    topics=("*",),
    secret=new_secret(),
    created_at=AT,
)


def claim(n: int) -> Claim:
    company, expense = CompanyId(1), ExpenseId(n)
    event = ExpenseEvent(
        expense_id=expense,
        company_id=company,
        kind=EventKind.SUBMITTED,
        at=AT,
        actor_id=UserId(7),
        step_number=None,
        comment=None,
    )
    entry = OutboxEntry(
        id=n, company_id=company, expense_id=expense, topic=Topic.EXPENSE_SUBMITTED, event=event
    )
    [due] = fan_out(entry, (SUBSCRIPTION,), (), AT)
    delivery = attrs.evolve(due, id=DeliveryId(n), attempts=1)
    return Claim(delivery, entry, None)


class Attempts:
    """Answers each attempt with 200 and remembers which deliveries it was asked to make."""

    def __init__(self) -> None:
        self.made: list[DeliveryId] = []
        self._lock = threading.Lock()

    def __call__(self, claim: Claim, _view: ExpenseView | None) -> tuple[Outcome, float]:
        with self._lock:
            self.made.append(claim.delivery.id)
        return Outcome(200), 0.001


def ended(flight: _InFlight, count: int) -> list[tuple[DeliveryId, Outcome | None]]:
    """Wait (without a deadline of ours) until `count` attempts have ended, and take them."""
    never = threading.Event()
    while len(flight.finished()) < count:
        flight.rest(FAR_AHEAD_S, never, count)
    done = flight.finished()
    flight.forget(len(done))
    return sorted((c.delivery.id, outcome) for c, outcome, _ in done)


def test_each_claim_is_attempted_once_and_handed_back_with_its_outcome() -> None:
    attempts = Attempts()
    flight = _InFlight(attempts, threads=3)
    claims = [claim(n) for n in range(1, 11)]
    flight.start(claims, {}, begin_by=time.monotonic() + FAR_AHEAD_S)
    assert flight.room == flight.capacity - len(claims)
    assert ended(flight, len(claims)) == [(c.delivery.id, Outcome(200)) for c in claims]
    assert sorted(attempts.made) == [c.delivery.id for c in claims]
    assert not flight
    assert flight.room == flight.capacity
    flight.finish()


def test_a_claim_whose_lease_is_too_short_to_begin_is_let_go_unattempted() -> None:
    attempts = Attempts()
    flight = _InFlight(attempts, threads=2)
    claims = [claim(n) for n in range(1, 5)]
    flight.start(claims, {}, begin_by=time.monotonic() - 1)
    assert ended(flight, len(claims)) == [(c.delivery.id, None) for c in claims]
    assert attempts.made == []
    assert not flight
    flight.finish()


def test_a_delivery_let_go_unattempted_is_not_settled_and_stays_leased() -> None:
    settings = Settings(database_url="memory://", webhook_allow_private=True)
    container = container_for(settings)
    install_demo(container.new_uow())
    hook = container.webhooks().subscribe(
        CompanyId(1), "http://127.0.0.1:9/hook", ["expense.submitted"]
    )
    policy = container.org().create_policy(
        NewPolicy(
            company_id=CompanyId(1),
            category="training",
            name="Training",
            min_amount=Money(Decimal("0.00")),
            max_amount=Money(Decimal("100.00")),
            steps=(ApprovalStep(step_order=1, required_level=6),),
        )
    )
    container.expenses().submit(
        SubmitExpense(
            user_id=UserId(7), policy_id=PolicyId(policy.id), amount=Money(Decimal("9.00"))
        )
    )
    relay = container.relay()
    relay.dispatch()
    claims = relay.claim()
    assert [c.delivery.webhook_id for c in claims] == [hook.id]
    with worker_for(container, settings) as worker:
        flight = _InFlight(worker.messages.timed, threads=1)
        flight.start(claims, {}, begin_by=time.monotonic() - 1)
        while len(flight.finished()) < len(claims):
            flight.rest(FAR_AHEAD_S, threading.Event(), len(claims))
        assert worker._settle(flight) == len(claims)
        flight.finish()
    [delivery] = container.webhooks().deliveries(CompanyId(1), hook.id).items
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.PENDING,
        1,
        None,
    )
    assert relay.claim() == ()  # still leased: taken again once the lease has run out
