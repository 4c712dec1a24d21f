"""The outbox on every adapter: each change writes its notices in its own unit of work, a
subscription's deliveries are made, claimed, leased and settled, and one target's deliveries
about one expense go out in order.

PostgreSQL tests share a database: every test drains the notices written before it
(`Relay.dispatch` until nothing is left) and looks only at its own company's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs
import pytest

from expense_core import workflow
from expense_core.errors import (
    DeliveryNotFailed,
    StepNotReached,
    UnknownDelivery,
    UnknownWebhook,
)
from expense_core.model import ApprovalStep, CompanyId, EventKind, ExpenseId, Policy, UserId
from expense_core.notifications import OutboxEntry, Topic, notices
from expense_core.ports import UnitOfWork
from expense_core.services import (
    LEASE,
    ApproveStep,
    EscalationService,
    ExpenseService,
    RejectExpense,
    Relay,
    ResubmitExpense,
    SendBack,
    SubmitExpense,
    WebhookService,
    WithdrawExpense,
)
from expense_core.visibility import Viewer
from expense_core.webhooks import (
    RETRY_DELAYS,
    Backlog,
    Claim,
    DeliveryStatus,
    Outcome,
    Webhook,
    WebhookId,
)
from tests.clocks import START, TickingClock
from tests.contract.support import Org, add_policy, money, tech_corp

HOUR = timedelta(hours=1)
NOBODY = 2_000_000_000
# Big enough to reach past whatever other tests left waiting in a shared database.
EVERYTHING = 1000


class AnyDestination:
    """Every URL may be called: where a webhook points is not what these tests are about."""

    def refusal(self, url: str) -> str | None:
        return None


class SetClock:
    """A clock that stands still until moved."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@pytest.fixture
def worker_clock() -> SetClock:
    """The worker's time: a day after the changes it delivers (they read `TickingClock`)."""
    return SetClock(START + 24 * HOUR)


@pytest.fixture
def relay(new_uow: Callable[[], UnitOfWork], worker_clock: SetClock) -> Relay:
    """The worker's use cases, every notice written before the test fanned out already."""
    made = Relay(new_uow, worker_clock)
    while made.dispatch():
        pass
    return made


@pytest.fixture
def hooks(new_uow: Callable[[], UnitOfWork], worker_clock: SetClock) -> WebhookService:
    return WebhookService(new_uow, worker_clock, AnyDestination())


def _waiting(new_uow: Callable[[], UnitOfWork], company_id: CompanyId) -> list[OutboxEntry]:
    """The company's notices not yet fanned out, oldest first (read, then let go)."""
    with new_uow() as uow:
        return [e for e in uow.outbox.undispatched(EVERYTHING) if e.company_id == company_id]


def _said(entries: Sequence[OutboxEntry]) -> list[tuple[Topic, EventKind, UserId | None]]:
    return [(e.topic, e.event.kind, e.recipient_id) for e in entries]


def _claim(relay: Relay, company_id: CompanyId) -> list[Claim]:
    return [c for c in relay.claim(EVERYTHING) if c.delivery.company_id == company_id]


def _submit(expenses: ExpenseService, org: Org, policy: Policy | None = None) -> ExpenseId:
    """Grace's expense: under Large Equipment, Frank, then Eve, then David."""
    command = SubmitExpense(
        user_id=org.person(7),
        policy_id=(policy or org.large).id,
        amount=money("2500.00"),
        description="workstation",
    )
    return expenses.submit(command).expense.id


# --- what each change writes -----------------------------------------------------------------


def test_a_submission_writes_its_notices_with_its_event(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, relay: Relay
) -> None:
    expense_id = _submit(expenses, org)
    waiting = _waiting(new_uow, org.id)
    assert _said(waiting) == [
        (Topic.EXPENSE_SUBMITTED, EventKind.SUBMITTED, None),
        (Topic.APPROVAL_REQUESTED, EventKind.SUBMITTED, org.person(6)),
    ]
    [submitted] = expenses.history(expense_id, Viewer.whole_company(org.id))
    for entry in waiting:
        assert (entry.company_id, entry.expense_id, entry.event) == (org.id, expense_id, submitted)
    assert waiting[0].id < waiting[1].id


def _approve(expenses: ExpenseService, org: Org, *levels: int) -> Callable[[ExpenseId], object]:
    def run(expense_id: ExpenseId) -> object:
        for level in levels:
            expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(level)))
        return None

    return run


DECIDED = (Topic.APPROVAL_DECIDED, EventKind.APPROVED, None)
# What each change to Grace's expense writes: (topic, its event's kind, the level asked to act).
SAYS: dict[str, list[tuple[Topic, EventKind, int | None]]] = {
    "decision": [DECIDED, (Topic.APPROVAL_REQUESTED, EventKind.APPROVED, 5)],
    "final approval": [
        *(DECIDED, (Topic.APPROVAL_REQUESTED, EventKind.APPROVED, 5)),
        *(DECIDED, (Topic.APPROVAL_REQUESTED, EventKind.APPROVED, 4)),
        *(DECIDED, (Topic.EXPENSE_APPROVED, EventKind.APPROVED, None)),
    ],
    "rejection": [
        (Topic.APPROVAL_DECIDED, EventKind.REJECTED, None),
        (Topic.EXPENSE_REJECTED, EventKind.REJECTED, None),
    ],
    "send back": [
        (Topic.APPROVAL_DECIDED, EventKind.RETURNED, None),
        (Topic.EXPENSE_RETURNED, EventKind.RETURNED, None),
    ],
    "withdrawal": [(Topic.EXPENSE_WITHDRAWN, EventKind.WITHDRAWN, None)],
}


@pytest.mark.parametrize("change", list(SAYS))
def test_each_change_writes_its_notices(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    change: str,
) -> None:
    frank, grace = org.person(6), org.person(7)
    act: dict[str, Callable[[ExpenseId], object]] = {
        "decision": _approve(expenses, org, 6),
        "final approval": _approve(expenses, org, 6, 5, 4),
        "rejection": lambda e: expenses.reject(
            RejectExpense(expense_id=e, user_id=frank, reason="no")
        ),
        "send back": lambda e: expenses.send_back(
            SendBack(expense_id=e, user_id=frank, reason="the receipt?")
        ),
        "withdrawal": lambda e: expenses.withdraw(WithdrawExpense(expense_id=e, user_id=grace)),
    }
    expense_id = _submit(expenses, org)
    relay.dispatch()
    before = len(expenses.history(expense_id, Viewer.whole_company(org.id)))
    act[change](expense_id)
    waiting = _waiting(new_uow, org.id)
    assert _said(waiting) == [
        (topic, kind, None if level is None else org.person(level))
        for topic, kind, level in SAYS[change]
    ]
    appended = expenses.history(expense_id, Viewer.whole_company(org.id))[before:]
    assert all(e.expense_id == expense_id and e.event in appended for e in waiting)


def test_a_resubmission_writes_its_notices(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, relay: Relay
) -> None:
    expense_id = _submit(expenses, org)
    expenses.send_back(SendBack(expense_id=expense_id, user_id=org.person(6), reason="receipt?"))
    relay.dispatch()
    expenses.resubmit(
        ResubmitExpense(expense_id=expense_id, user_id=org.person(7), amount=money("2600.00"))
    )
    waiting = _waiting(new_uow, org.id)
    assert _said(waiting) == [
        (Topic.EXPENSE_RESUBMITTED, EventKind.RESUBMITTED, None),
        (Topic.APPROVAL_REQUESTED, EventKind.RESUBMITTED, org.person(6)),
    ]
    assert waiting[0].event == expenses.history(expense_id, Viewer.whole_company(org.id))[-1]


def test_an_escalation_writes_its_notices(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    expenses: ExpenseService,
    clock: TickingClock,
    relay: Relay,
) -> None:
    policy = add_policy(
        new_uow,
        org.id,
        "training",
        (ApprovalStep(step_order=1, required_level=6, escalate_after_hours=24),),
        name="Training",
    )
    expense_id = _submit(expenses, org, policy)
    relay.dispatch()
    EscalationService(new_uow, clock).sweep(START + 30 * HOUR)
    waiting = _waiting(new_uow, org.id)
    # Frank's step moved to Eve, the next one up: she is asked to act.
    assert _said(waiting) == [
        (Topic.APPROVAL_ESCALATED, EventKind.ESCALATED, None),
        (Topic.APPROVAL_REQUESTED, EventKind.ESCALATED, org.person(5)),
    ]
    assert waiting[0].event == expenses.history(expense_id, Viewer.whole_company(org.id))[-1]


def test_a_change_that_rolls_back_leaves_no_notice(
    new_uow: Callable[[], UnitOfWork], org: Org, expenses: ExpenseService, relay: Relay
) -> None:
    expense_id = _submit(expenses, org)
    relay.dispatch()
    with new_uow() as uow:
        expense = uow.expenses.get_for_update(org.id, expense_id)
        decision = workflow.approve(expense, org.person(6), None, START + HOUR)
        said = notices(expense, decision.expense, decision.events)
        uow.expenses.save(decision.expense, decision.events, said)
        assert said  # something to lose
        # no commit
    assert _waiting(new_uow, org.id) == []
    with pytest.raises(StepNotReached):
        expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(5)))
    assert _waiting(new_uow, org.id) == []
    # A committed change does write them.
    expenses.approve(ApproveStep(expense_id=expense_id, user_id=org.person(6)))
    assert len(_waiting(new_uow, org.id)) == 2


# --- subscriptions ---------------------------------------------------------------------------


def test_subscriptions_are_listed_found_and_removed_by_their_company(
    new_uow: Callable[[], UnitOfWork], org: Org, hooks: WebhookService
) -> None:
    other = tech_corp(new_uow)
    first = hooks.subscribe(
        org.id, "https://example.com/a", ["expense.approved", "approval.decided"]
    )
    second = hooks.subscribe(org.id, "https://example.com/b", ["*"])
    theirs = hooks.subscribe(other.id, "https://example.com/c", ["*"])
    assert first.topics == ("approval.decided", "expense.approved")
    assert second.topics == ("*",)
    assert first.secret.startswith("whsec_")
    assert first.secret != second.secret
    assert first.active
    assert hooks.webhooks(org.id) == (first, second)
    assert hooks.webhook(org.id, first.id) == first
    assert hooks.webhook(None, theirs.id) == theirs
    with pytest.raises(UnknownWebhook):
        hooks.webhook(org.id, theirs.id)
    with pytest.raises(UnknownWebhook):
        hooks.remove(org.id, theirs.id)
    with pytest.raises(UnknownWebhook):
        hooks.deliveries(org.id, theirs.id)
    hooks.remove(org.id, first.id)
    assert hooks.webhooks(org.id) == (second,)
    with pytest.raises(UnknownWebhook):
        hooks.remove(org.id, first.id)
    hooks.remove(None, theirs.id)
    assert hooks.webhooks(other.id) == ()
    with new_uow() as uow:
        assert uow.webhooks.remove(None, WebhookId(NOBODY)) is False
        assert uow.webhooks.active([org.id, other.id]) == (second,)
        uow.webhooks.disable(second.id)
        uow.commit()
    with new_uow() as uow:
        assert uow.webhooks.active([org.id]) == ()
        assert uow.webhooks.of_company(org.id) == (attrs.evolve(second, active=False),)


# --- deliveries ------------------------------------------------------------------------------


def _subscribe(hooks: WebhookService, org: Org, *events: str) -> Webhook:
    return hooks.subscribe(org.id, f"https://example.com/{'-'.join(events)}", events)


def test_a_notice_becomes_one_delivery_per_active_subscription_that_wants_it(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    every = _subscribe(hooks, org, "*")
    approvals = _subscribe(hooks, org, "expense.approved")
    requests = _subscribe(hooks, org, "approval.requested")
    stopped = _subscribe(hooks, org, "*")
    with new_uow() as uow:
        uow.webhooks.disable(stopped.id)
        uow.commit()
    expense_id = _submit(expenses, org)
    entries = _waiting(new_uow, org.id)
    assert relay.dispatch() >= 2
    assert _waiting(new_uow, org.id) == []
    got = hooks.deliveries(org.id, every.id).items
    # Newest first.
    assert [(d.topic, d.outbox_id) for d in got] == [(e.topic, e.id) for e in reversed(entries)]
    for d in got:
        assert (d.company_id, d.expense_id, d.webhook_id, d.channel) == (
            org.id,
            expense_id,
            every.id,
            "webhook",
        )
        assert (d.recipient_id, d.on_behalf_of, d.status, d.attempts) == (None, None, "pending", 0)
        assert d.created_at == d.next_attempt_at == worker_clock.at
        assert (d.last_status_code, d.last_error, d.delivered_at) == (None, None, None)
    assert [d.topic for d in hooks.deliveries(org.id, requests.id).items] == [
        Topic.APPROVAL_REQUESTED
    ]
    assert hooks.deliveries(org.id, approvals.id).items == ()
    assert hooks.deliveries(org.id, stopped.id).items == ()
    # The approvals subscription hears of the expense's approval, and only of it.
    _approve(expenses, org, 6, 5, 4)(expense_id)
    while relay.dispatch():
        pass
    assert [d.topic for d in hooks.deliveries(org.id, approvals.id).items] == [
        Topic.EXPENSE_APPROVED
    ]
    assert len(hooks.deliveries(org.id, every.id).items) == 2 + 6


def test_deliveries_are_paged_newest_first(
    org: Org, expenses: ExpenseService, relay: Relay, hooks: WebhookService
) -> None:
    webhook = _subscribe(hooks, org, "expense.submitted")
    submitted = [_submit(expenses, org) for _ in range(5)]
    while relay.dispatch():
        pass
    first = hooks.deliveries(org.id, webhook.id, limit=2)
    assert [d.expense_id for d in first.items] == submitted[:2:-1]
    assert first.next_cursor == first.items[-1].id
    second = hooks.deliveries(None, webhook.id, before=first.items[-1].id, limit=2)
    assert [d.expense_id for d in second.items] == submitted[2:0:-1]
    assert second.next_cursor == second.items[-1].id
    last = hooks.deliveries(org.id, webhook.id, before=second.items[-1].id, limit=2)
    assert [d.expense_id for d in last.items] == submitted[:1]
    assert last.next_cursor is None
    ids = [d.id for page in (first, second, last) for d in page.items]
    assert ids == sorted(ids, reverse=True)


def test_an_attempts_outcome_settles_its_delivery(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    kept = _subscribe(hooks, org, "expense.submitted")
    gone = _subscribe(hooks, org, "expense.submitted")
    first, second = _submit(expenses, org), _submit(expenses, org)
    relay.dispatch()
    worker_clock.advance(timedelta(seconds=1))
    claims = _claim(relay, org.id)
    assert len(claims) == 4
    assert all(c.delivery.attempts == 1 for c in claims)
    for c in claims:
        assert c.webhook is not None
        assert c.webhook.id == c.delivery.webhook_id
        assert c.entry.id == c.delivery.outbox_id
        assert (c.entry.topic, c.entry.expense_id) == (
            Topic.EXPENSE_SUBMITTED,
            c.delivery.expense_id,
        )
    answers: dict[tuple[WebhookId | None, ExpenseId], int] = {
        (kept.id, first): 200,
        (kept.id, second): 500,
        (gone.id, first): 400,
    }
    answers[gone.id, second] = 410
    outcomes = [(c, Outcome(answers[c.delivery.webhook_id, c.delivery.expense_id])) for c in claims]
    worker_clock.advance(timedelta(seconds=2))
    at = worker_clock.at
    relay.settle(outcomes)
    settled = {
        (w.id, d.expense_id): d for w in (kept, gone) for d in hooks.deliveries(org.id, w.id).items
    }
    delivered = settled[kept.id, first]
    assert (delivered.status, delivered.last_status_code, delivered.delivered_at) == (
        DeliveryStatus.DELIVERED,
        200,
        at,
    )
    assert delivered.next_attempt_at is None
    retrying = settled[kept.id, second]
    assert (retrying.status, retrying.last_status_code, retrying.attempts) == (
        DeliveryStatus.RETRYING,
        500,
        1,
    )
    assert retrying.next_attempt_at is not None
    assert at + RETRY_DELAYS[0] * 0.8 <= retrying.next_attempt_at <= at + RETRY_DELAYS[0] * 1.2
    for key in ((gone.id, first), (gone.id, second)):
        failed = settled[key]
        assert (failed.status, failed.next_attempt_at, failed.delivered_at) == (
            DeliveryStatus.FAILED,
            None,
            None,
        )
        assert failed.last_status_code == answers[key]
    # 410 Gone stopped the subscription; a 400 alone would not have.
    assert hooks.webhook(org.id, gone.id).active is False
    assert hooks.webhook(org.id, kept.id).active is True
    # Nothing else is due until the retry is.
    assert _claim(relay, org.id) == []
    worker_clock.at = retrying.next_attempt_at
    [again] = _claim(relay, org.id)
    assert (again.delivery.id, again.delivery.attempts) == (retrying.id, 2)
    relay.settle([(again, Outcome(None, error="connection refused"))])
    retried = hooks.deliveries(org.id, kept.id).items[0]
    assert (retried.status, retried.last_status_code, retried.last_error) == (
        DeliveryStatus.RETRYING,
        None,
        "connection refused",
    )


def test_only_a_failed_delivery_is_queued_again(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    webhook = _subscribe(hooks, org, "expense.submitted")
    other = _subscribe(hooks, org, "expense.submitted")
    _submit(expenses, org)
    _submit(expenses, org)
    relay.dispatch()
    claims = [c for c in _claim(relay, org.id) if c.delivery.webhook_id == webhook.id]
    relay.settle([(claims[0], Outcome(422)), (claims[1], Outcome(200))])
    failed, delivered = claims[0].delivery.id, claims[1].delivery.id
    worker_clock.advance(HOUR)
    again = hooks.retry(org.id, webhook.id, failed)
    assert (again.id, again.status, again.attempts, again.next_attempt_at) == (
        failed,
        DeliveryStatus.PENDING,
        0,
        worker_clock.at,
    )
    assert hooks.deliveries(org.id, webhook.id).items[1] == again
    for not_failed in (failed, delivered):
        with pytest.raises(DeliveryNotFailed):
            hooks.retry(None, webhook.id, not_failed)
    with pytest.raises(UnknownDelivery):
        hooks.retry(org.id, other.id, failed)
    with pytest.raises(UnknownWebhook):
        hooks.retry(tech_corp(new_uow).id, webhook.id, failed)
    [taken] = [c for c in _claim(relay, org.id) if c.delivery.webhook_id == webhook.id]
    assert (taken.delivery.id, taken.delivery.attempts) == (failed, 1)


def _one_claimed(
    hooks: WebhookService, org: Org, expenses: ExpenseService, relay: Relay
) -> tuple[Webhook, Claim]:
    """A subscription to submissions, one submission, and its one delivery claimed."""
    webhook = _subscribe(hooks, org, "expense.submitted")
    _submit(expenses, org)
    relay.dispatch()
    [taken] = _claim(relay, org.id)
    return webhook, taken


def test_a_lease_that_runs_out_lets_the_delivery_be_claimed_again(
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    _, taken = _one_claimed(hooks, org, expenses, relay)
    worker_clock.advance(LEASE - timedelta(seconds=1))
    assert _claim(relay, org.id) == []
    worker_clock.advance(timedelta(seconds=1))
    [again] = _claim(relay, org.id)
    assert again.delivery.id == taken.delivery.id
    assert (taken.delivery.attempts, again.delivery.attempts) == (1, 2)
    relay.settle([(again, Outcome(204))])
    worker_clock.advance(2 * LEASE)
    assert _claim(relay, org.id) == []


def test_a_claim_taken_over_settles_nothing_late(
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    webhook, taken = _one_claimed(hooks, org, expenses, relay)
    worker_clock.advance(LEASE)
    [again] = _claim(relay, org.id)
    # The first attempt is settled only now (its worker lost the database for longer than its
    # lease, say): the delivery is the second claim's, and stays as that claim left it.
    relay.settle([(taken, Outcome(204))])
    [waiting] = hooks.deliveries(org.id, webhook.id).items
    assert (waiting.status, waiting.attempts, waiting.delivered_at) == (
        DeliveryStatus.PENDING,
        2,
        None,
    )
    assert _claim(relay, org.id) == []  # still held by the second claim
    relay.settle([(again, Outcome(503))])
    [settled] = hooks.deliveries(org.id, webhook.id).items
    assert (settled.status, settled.attempts, settled.last_status_code) == (
        DeliveryStatus.RETRYING,
        2,
        503,
    )


def test_one_targets_deliveries_about_one_expense_go_out_in_order(
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    one, two = _subscribe(hooks, org, "*"), _subscribe(hooks, org, "*")
    expense_id = _submit(expenses, org)
    relay.dispatch()
    # Each subscription's first notice (expense.submitted); the second waits behind it.
    claims = _claim(relay, org.id)
    assert sorted((c.delivery.webhook_id, c.entry.topic) for c in claims) == [
        (one.id, Topic.EXPENSE_SUBMITTED),
        (two.id, Topic.EXPENSE_SUBMITTED),
    ]
    [first] = [c for c in claims if c.delivery.webhook_id == one.id]
    # Held, then failing and not yet due again: the later one still waits.
    assert _claim(relay, org.id) == []
    relay.settle([(first, Outcome(503))])
    assert _claim(relay, org.id) == []
    worker_clock.advance(LEASE)
    [first, held_again] = sorted(_claim(relay, org.id), key=lambda c: c.delivery.webhook_id or 0)
    assert first.entry.topic == held_again.entry.topic == Topic.EXPENSE_SUBMITTED
    relay.settle([(first, Outcome(200))])
    [second] = _claim(relay, org.id)
    assert (second.delivery.webhook_id, second.entry.topic) == (one.id, Topic.APPROVAL_REQUESTED)
    assert second.delivery.expense_id == expense_id
    # Another expense of the same subscription does not wait for this one.
    _submit(expenses, org)
    relay.dispatch()
    assert [(c.delivery.webhook_id, c.entry.topic) for c in _claim(relay, org.id)] == [
        (one.id, Topic.EXPENSE_SUBMITTED),
        (two.id, Topic.EXPENSE_SUBMITTED),
    ]


def test_a_removed_subscription_takes_its_deliveries_with_it(
    org: Org, expenses: ExpenseService, relay: Relay, hooks: WebhookService
) -> None:
    webhook = _subscribe(hooks, org, "*")
    _submit(expenses, org)
    relay.dispatch()
    before = relay.backlog()
    [taken] = _claim(relay, org.id)
    hooks.remove(org.id, webhook.id)
    after = relay.backlog()
    assert after.undelivered == before.undelivered - 2
    relay.settle([(taken, Outcome(200))])  # nothing left to settle: skipped
    assert relay.backlog() == after
    assert _claim(relay, org.id) == []


def test_the_backlog_counts_what_waits_and_since_when(
    org: Org,
    expenses: ExpenseService,
    relay: Relay,
    hooks: WebhookService,
    worker_clock: SetClock,
) -> None:
    before = relay.backlog()
    assert before.undispatched == 0
    _subscribe(hooks, org, "*")
    expense_id = _submit(expenses, org)
    [submitted] = expenses.history(expense_id, Viewer.whole_company(org.id))

    def oldest(*instants: datetime | None) -> datetime | None:
        known = [i for i in instants if i is not None]
        return min(known) if known else None

    assert relay.backlog() == Backlog(2, before.undelivered, oldest(before.oldest_at, submitted.at))
    relay.dispatch()
    made_at = worker_clock.at
    assert relay.backlog() == Backlog(0, before.undelivered + 2, oldest(before.oldest_at, made_at))
    for _ in range(2):
        worker_clock.advance(timedelta(seconds=1))
        relay.settle([(c, Outcome(200)) for c in _claim(relay, org.id)])
    assert relay.backlog() == Backlog(0, before.undelivered, before.oldest_at)
