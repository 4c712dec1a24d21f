"""Workers sharing one PostgreSQL outbox: what one holds, another skips (`SKIP LOCKED`).

First two units of work at once, one holding what it took while the other takes: the second
gets the rest, never the first's, and never a later notice of what the first holds, even once
it has fanned that notice out before the first (which must then go out first). Then
workers in threads fan out, claim and settle everything: each notice is fanned out once, each
delivery taken once, and one subscription's deliveries about one expense in their order.

A statement timeout bounds every wait: a lock waited on instead of skipped fails the test
rather than hanging it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from adapters.sql import SqlDatabase
from expense_core.model import ExpenseId
from expense_core.notifications import Topic
from expense_core.services import LEASE, ExpenseService, Relay, SubmitExpense
from expense_core.webhooks import Claim, Outcome, Webhook, WebhookId, fan_out, new_secret
from tests.clocks import START, TickingClock
from tests.contract.support import Org, money, tech_corp

pytestmark = pytest.mark.postgres

THREADS = 4
AT = START + timedelta(days=1)


@pytest.fixture
def db(postgres_url: str) -> Iterator[SqlDatabase]:
    db = SqlDatabase.connect(postgres_url, pool_size=THREADS + 1, statement_timeout_ms=30_000)
    try:
        yield db
    finally:
        db.dispose()


def _subscribed(db: SqlDatabase, org: Org, how_many: int) -> list[WebhookId]:
    """Subscriptions of `org` to every notice."""
    made = []
    with db.unit_of_work() as uow:
        for n in range(how_many):
            webhook = Webhook(
                id=WebhookId(0),
                company_id=org.id,
                url=f"https://example.com/{n}",
                topics=("*",),
                secret=new_secret(),
                created_at=START,
            )
            made.append(uow.webhooks.add(webhook).id)
        uow.commit()
    return made


def _submitted(db: SqlDatabase, org: Org, how_many: int) -> list[ExpenseId]:
    """Grace's expenses: each writes expense.submitted, then approval.requested (Frank)."""
    service = ExpenseService(db.unit_of_work, TickingClock())
    command = SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("20.00"))
    return [service.submit(command).expense.id for _ in range(how_many)]


def test_two_units_of_work_take_disjoint_notices_and_deliveries(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work)
    _subscribed(db, org, 2)
    _submitted(db, org, 10)
    with db.unit_of_work() as first, db.unit_of_work() as second:
        held = first.outbox.undispatched(5)
        rest = second.outbox.undispatched(100)
        assert len(held) == 5
        assert len(rest) == 15
        assert {e.id for e in held}.isdisjoint(e.id for e in rest)
    relay = Relay(db.unit_of_work, TickingClock(start=AT, step=timedelta(0)))
    while relay.dispatch():
        pass
    # 10 expenses x 2 subscriptions: one claimable delivery each (approval.requested waits).
    with db.unit_of_work() as first, db.unit_of_work() as second:
        taken = first.outbox.claim(AT, AT + LEASE, 6)
        others = second.outbox.claim(AT, AT + LEASE, 100)
        assert len(taken) == 6
        assert len(others) == 14
        assert {c.delivery.id for c in taken}.isdisjoint(c.delivery.id for c in others)
        assert all(c.entry.topic is Topic.EXPENSE_SUBMITTED for c in (*taken, *others))
        first.commit()
        second.commit()
    with db.unit_of_work() as third:
        assert third.outbox.claim(AT, AT + LEASE, 100) == ()


def test_a_later_notice_fanned_out_first_waits_for_the_earlier_one(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work)
    _subscribed(db, org, 1)
    [expense_id] = _submitted(db, org, 1)
    with db.unit_of_work() as uow:
        webhooks = uow.webhooks.active([org.id])
    with db.unit_of_work() as first:
        # The first worker holds expense.submitted; the second fans out approval.requested.
        [held] = first.outbox.undispatched(1)
        with db.unit_of_work() as second:
            [later] = second.outbox.undispatched(100)
            assert (held.topic, later.topic) == (Topic.EXPENSE_SUBMITTED, Topic.APPROVAL_REQUESTED)
            second.outbox.dispatch([later], fan_out(later, webhooks, (), AT))
            second.commit()
        with db.unit_of_work() as third:
            assert third.outbox.claim(AT, AT + LEASE, 100) == ()
        first.outbox.dispatch([held], fan_out(held, webhooks, (), AT))
        first.commit()
    with db.unit_of_work() as third:
        [claim] = third.outbox.claim(AT, AT + LEASE, 100)
    assert (claim.entry.id, claim.delivery.expense_id) == (held.id, expense_id)


def test_workers_in_threads_deliver_everything_once_and_in_order(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work)
    webhooks = _subscribed(db, org, 3)
    expenses = _submitted(db, org, 40)
    relay = Relay(db.unit_of_work, TickingClock(start=AT, step=timedelta(0)))
    log: list[Claim] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def work() -> None:
        start.wait(timeout=60)
        for _ in range(10_000):
            # Small odd batches: one expense's two notices often fall in two workers' batches.
            relay.dispatch(limit=7)
            claims = relay.claim(limit=5)
            with lock:
                log.extend(claims)
            relay.settle([(c, Outcome(200)) for c in claims])
            backlog = relay.backlog()
            if backlog.undispatched == backlog.undelivered == 0:
                return
        raise AssertionError("the workers did not finish")

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(lambda _: work(), range(THREADS)))

    taken = Counter(c.delivery.id for c in log)
    assert set(taken.values()) == {1}
    assert len(taken) == len(webhooks) * len(expenses) * 2
    order: dict[tuple[int | None, ExpenseId], list[Topic]] = {}
    for c in log:
        order.setdefault((c.delivery.webhook_id, c.delivery.expense_id), []).append(c.entry.topic)
    assert set(order) == {(w, e) for w in webhooks for e in expenses}
    for topics in order.values():
        assert topics == [Topic.EXPENSE_SUBMITTED, Topic.APPROVAL_REQUESTED]
    with db.unit_of_work() as uow:
        for w in webhooks:
            delivered = uow.webhooks.deliveries(org.id, w, before=None, limit=1000)
            assert {d.status for d in delivered} == {"delivered"}
            assert {d.attempts for d in delivered} == {1}
            assert len(delivered) == len(expenses) * 2
        assert uow.outbox.undispatched(1) == ()
