"""`expense-tracker worker`: delivers the outbox (signed webhooks, e-mail) and sweeps overdue
steps into escalations, until SIGTERM or Ctrl-C.

One thread fans new notices out into deliveries; another takes the due ones as delivery
threads free up (a lease: a worker that dies lets go of them after it runs out), starts their
attempts, and settles what the ended ones came to (`expense_core.webhooks.after_attempt` decides
retries). Several workers may run against one PostgreSQL database; on SQLite run one. On
SIGTERM the worker finishes the attempts in flight, settles them and exits.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeAlias

import attrs
import msgspec

from adapters.mail import MailFailed, SmtpMailer, SmtpTarget
from adapters.webhooks.sender import WebhookSender
from adapters.webhooks.signing import headers
from entrypoints.container import Container
from entrypoints.http.expense_schemas import event_out, status_response
from entrypoints.mail import approval_request
from entrypoints.settings import InvalidSetting, Settings
from expense_core.errors import NotFound
from expense_core.model import ApprovalStatus, ExpenseEvent, ExpenseId, UserId
from expense_core.services import LEASE, EscalationService, ExpenseService, OrgService, Relay
from expense_core.views import ExpenseView
from expense_core.visibility import Viewer
from expense_core.webhooks import Channel, Claim, DeliveryStatus, Outcome, Verdict, message_id

if TYPE_CHECKING:
    from entrypoints.metrics import DeliveryMetrics

log = logging.getLogger("expense_tracker.worker")

# How long one webhook attempt may take (connect, send, answer).
ATTEMPT_TIMEOUT_S = 10.0
# Attempts started per delivery thread, one running and the others queued behind it. A turn
# claims and settles about half of them at once (`Worker._loop`): with 4, a turn's statements,
# unit of work and read of the expenses served 8-20 deliveries and cost the worker and
# PostgreSQL more than the deliveries themselves (`python -m loadtest.worker_cost`).
QUEUED_PER_THREAD = 16
# An attempt is begun only while its lease has this long left: the attempt's timeout and a
# little more to settle it. Queued behind attempts that hang, a claim is let go unattempted
# (taken again, by any worker, once its lease has run out) rather than attempted unleased.
LEASE_LEFT_TO_BEGIN_S = ATTEMPT_TIMEOUT_S + 10
# How long a busy turn waits for attempts to end before it settles them and starts more.
BUSY_REST_S = 0.05
# The longest pause between rounds that fail, and between the logs saying they still do.
FAILING_PAUSE_S = 5.0

_JSON = msgspec.json.Encoder(decimal_format="number")


@attrs.frozen
class Messages:
    """Turns a claim into its message and makes the attempt: a signed POST, or an e-mail."""

    expenses: ExpenseService
    org: OrgService
    sender: WebhookSender
    mailer: SmtpMailer | None
    settings: Settings

    def read(self, claims: Sequence[Claim]) -> dict[ExpenseId, ExpenseView]:
        """The expenses a batch of claims tells of, as they stand now, in one read; none if
        that read failed (each attempt then reads its own)."""
        try:
            return self.expenses.statuses([claim.entry.expense_id for claim in claims])
        except Exception:
            log.warning("the expenses of %s deliveries could not be read at once", len(claims))
            return {}

    def timed(self, claim: Claim, view: ExpenseView | None = None) -> tuple[Outcome, float]:
        """`attempt`, and how many seconds it took."""
        started = time.perf_counter()
        outcome = self.attempt(claim, view)
        return outcome, time.perf_counter() - started

    def attempt(self, claim: Claim, view: ExpenseView | None = None) -> Outcome:
        """Make the claimed delivery's attempt, telling of the expense as `view` shows it (as
        it stands now when not given)."""
        try:
            if view is None:
                entry = claim.entry
                view = self.expenses.status(
                    entry.expense_id, Viewer.whole_company(entry.company_id)
                )
            if claim.delivery.channel is Channel.EMAIL:
                return self._mail(claim, view)
            return self._post(claim, view)
        except NotFound as e:
            # The expense or person is gone from the store: nothing to tell any more.
            return Outcome(None, e.message, refused=True)
        except Exception as e:
            log.exception("attempt of delivery %s failed", claim.delivery.id)
            return Outcome(None, f"worker error: {type(e).__name__}")

    @staticmethod
    def body(claim: Claim, view: ExpenseView) -> bytes:
        """The message of a webhook delivery: its type, the event's time, the expense as
        `view` shows it and the event."""
        entry = claim.entry
        event = event_out(entry.event)
        return _JSON.encode(
            {
                "type": str(entry.topic),
                "timestamp": event.at,
                "data": {"expense": status_response(view), "event": event},
            }
        )

    def _post(self, claim: Claim, view: ExpenseView) -> Outcome:
        webhook = claim.webhook
        if webhook is None or not webhook.active:
            # Disabled by a 410 Gone: what it still had waiting fails without a call.
            return Outcome(None, "the subscription is disabled", refused=True)
        body = self.body(claim, view)
        signed = headers(webhook.secret, message_id(claim.delivery.id), int(time.time()), body)
        sent = self.sender.post(webhook.url, signed, body)
        return Outcome(sent.status_code, sent.error, refused=sent.refused)

    def _mail(self, claim: Claim, view: ExpenseView) -> Outcome:
        if self.mailer is None:
            return Outcome(None, "SMTP_URL is not set", refused=True)
        d, entry = claim.delivery, claim.entry
        assert d.recipient_id is not None  # noqa: S101 -- an e-mail delivery names its reader
        reader = self.org.user(d.recipient_id, entry.company_id).user
        absent = None
        if d.on_behalf_of is not None:
            absent = self.org.user(d.on_behalf_of, entry.company_id).user.name
        message = approval_request(
            to_name=reader.name,
            to_email=reader.email,
            sender=self.settings.mail_from,
            expense_id=view.id,
            amount=format(view.amount.value, "f"),
            submitter_name=view.user_name,
            policy_name=view.policy_name,
            description=view.description,
            step_number=_asked_step(view, d.on_behalf_of or d.recipient_id, entry.event),
            on_behalf_of_name=absent,
            public_url=self.settings.public_url,
        )
        try:
            self.mailer.send(message)
        except MailFailed as e:
            # A temporary failure is retried as a 503 would be; a permanent one as a 400.
            return Outcome(None if e.temporary else 550, str(e), refused=not e.temporary)
        return Outcome(250)


# A claim's attempt as queued: the claim, its expense as read, and when it may begin at the
# latest; and as ended: its outcome (None when it was not begun) and how long it took.
_Todo: TypeAlias = tuple[Claim, ExpenseView | None, float]
_Ended: TypeAlias = tuple[Claim, Outcome | None, float]


class _InFlight:
    """The attempts a worker has started and not yet settled: at most `QUEUED_PER_THREAD` per
    thread, so that a turn's few statements serve many attempts while SIGTERM waits for
    little more than one attempt's timeout (attempts not yet begun are dropped then, and let
    go when their lease runs out). An attempt not begun by its `begin_by` is not begun: it
    ends with no outcome, and is let go likewise.

    The delivery threads take claims from one queue and put what each attempt came to on
    another (`queue.SimpleQueue`, in C): a future per attempt, and `concurrent.futures.wait`
    over all of them each turn, cost the worker more CPU than its posts' signing and bodies.
    """

    def __init__(
        self, attempt: Callable[[Claim, ExpenseView | None], tuple[Outcome, float]], threads: int
    ) -> None:
        self._attempt = attempt
        self._capacity = threads * QUEUED_PER_THREAD
        self._todo: queue.SimpleQueue[_Todo | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[_Ended] = queue.SimpleQueue()
        self._held = 0  # started and not yet settled
        self._ended: list[_Ended] = []  # ended, not yet settled
        self._threads = [
            threading.Thread(target=self._work, name=f"delivery_{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def room(self) -> int:
        return self._capacity - self._held

    def __bool__(self) -> bool:
        return self._held > 0

    def start(
        self, claims: Sequence[Claim], views: Mapping[ExpenseId, ExpenseView], begin_by: float
    ) -> None:
        """Queue the claims' attempts, each to begin before `begin_by` (`time.monotonic`)."""
        self._held += len(claims)
        for claim in claims:
            self._todo.put((claim, views.get(claim.entry.expense_id), begin_by))

    def finished(self) -> list[_Ended]:
        """The attempts that have ended and are not settled yet (`forget` them once they are)."""
        self._collect()
        return list(self._ended)

    def forget(self, settled: int) -> None:
        """The first `settled` of `finished` are settled (or let go)."""
        del self._ended[:settled]
        self._held -= settled

    def rest(self, idle_s: float, stop: threading.Event, enough: int | None = None) -> None:
        """Until `enough` more attempts have ended (a thread's worth when not given, or all
        of them), or `idle_s` has passed; sooner on `stop` when nothing is in flight."""
        self._collect()
        running = self._held - len(self._ended)
        if running == 0:
            stop.wait(idle_s)
            return
        wanted = len(self._ended) + min(running, len(self._threads) if enough is None else enough)
        deadline = time.monotonic() + idle_s
        while len(self._ended) < wanted and not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                self._ended.append(self._done.get(timeout=left))
            except queue.Empty:
                return
            self._collect()

    def finish(self) -> None:
        """Let the attempts begun end, and drop those not begun; the threads with them."""
        with contextlib.suppress(queue.Empty):
            while True:
                if self._todo.get_nowait() is not None:
                    self._held -= 1
        for _ in self._threads:
            self._todo.put(None)
        for thread in self._threads:
            thread.join()
        self._collect()

    def _collect(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                self._ended.append(self._done.get_nowait())

    def _work(self) -> None:
        while (taken := self._todo.get()) is not None:
            claim, view, begin_by = taken
            if time.monotonic() > begin_by:
                self._done.put((claim, None, 0.0))
                continue
            outcome, took = self._attempt(claim, view)
            self._done.put((claim, outcome, took))


@attrs.define
class Worker:
    """The delivery loop of one process.

    One thread fans notices out. The other, each turn, settles the attempts that have ended,
    starts due ones while there is room, and sweeps when due: a receiver that hangs holds up
    one delivery thread until its timeout, never the others (a later notice of the same
    expense waits for it, by the claim's rule). An attempt whose settling failed (the database
    away) is settled on a later turn.
    """

    relay: Relay
    messages: Messages
    escalation: EscalationService | None
    settings: Settings
    metrics: DeliveryMetrics | None = None
    stop: threading.Event = attrs.Factory(threading.Event)
    _last_sweep: float = 0.0

    def run(self) -> None:
        """Work until `stop` is set; the attempts in flight are finished and settled first."""
        dispatcher = threading.Thread(
            target=self._loop, args=(self.relay.dispatch,), name="dispatch", daemon=True
        )
        dispatcher.start()
        flight = self._flight()
        try:
            self._loop(lambda: self.turn(flight), flight)
        finally:
            self.stop.set()
            dispatcher.join()
            self._land(flight)

    def _loop(self, step: Callable[[], int], flight: _InFlight | None = None) -> None:
        """Run `step` until `stop` is set, resting when it found nothing to do.

        A step that fails (the database away) is tried again after a pause that doubles up
        to `FAILING_PAUSE_S`; the first failure of a streak is logged with its cause, the
        others once per `FAILING_PAUSE_S` at most."""
        idle = self.settings.worker_idle_ms / 1000
        failing, told = 0, 0.0
        while not self.stop.is_set():
            try:
                busy = step()
            except Exception as e:
                failing += 1
                now = time.monotonic()
                if failing == 1:
                    log.exception("a worker round failed; trying again")
                    told = now
                elif now - told >= FAILING_PAUSE_S:
                    log.warning("worker rounds still failing (%s): %s", failing, e)
                    told = now
                self.stop.wait(min(idle * 2**failing, FAILING_PAUSE_S))
                continue
            if failing:
                log.info("worker rounds succeed again after %s failures", failing)
                failing = 0
            if flight is not None and flight:
                # Half of what may be held ends before the next turn settles it and claims as
                # many again: a turn's statements serve that many deliveries.
                flight.rest(idle if not busy else BUSY_REST_S, self.stop, flight.capacity // 2)
            elif not busy:
                self.stop.wait(idle)

    def turn(self, flight: _InFlight) -> int:
        """Settle what has ended, start what is due while there is room, sweep when due;
        how much was done. (Notices are fanned out by `run`'s other thread.)"""
        done = self._settle(flight)
        room = flight.room
        if room > 0:
            begin_by = time.monotonic() + LEASE.total_seconds() - LEASE_LEFT_TO_BEGIN_S
            claims = self.relay.claim(limit=room, lease=LEASE)
            if claims:
                flight.start(claims, self.messages.read(claims), begin_by)
            done += len(claims)
        return done + self._sweep()

    def drain(self, timeout_s: float) -> bool:
        """Work until every notice is delivered or failed; False if some still wait after
        `timeout_s` (a retry due later, or another worker's attempt that never ends)."""
        deadline = time.monotonic() + timeout_s
        idle = self.settings.worker_idle_ms / 1000
        flight = self._flight()
        try:
            while True:
                busy = self.relay.dispatch() + self.turn(flight)
                if not flight:
                    backlog = self.relay.backlog()
                    if backlog.undispatched == 0 and backlog.undelivered == 0:
                        return True
                if time.monotonic() >= deadline:
                    return False
                if not busy or flight:
                    # Another worker holds what is left, it is not due yet, or attempts run.
                    flight.rest(idle, self.stop)
        finally:
            self._land(flight)

    def _flight(self) -> _InFlight:
        return _InFlight(self.messages.timed, self.settings.worker_concurrency)

    def _settle(self, flight: _InFlight) -> int:
        ended = flight.finished()
        if not ended:
            return 0
        made = [(claim, outcome, took) for claim, outcome, took in ended if outcome is not None]
        if len(made) < len(ended):
            log.warning(
                "%s deliveries were not attempted: queued behind attempts that hung, their lease"
                " would have run out first; they are taken again once it has",
                len(ended) - len(made),
            )
        verdicts = self.relay.settle([(claim, outcome) for claim, outcome, _ in made])
        flight.forget(len(ended))
        for (claim, outcome, took), verdict in zip(made, verdicts, strict=True):
            _log_attempt(claim, outcome, verdict)
            if self.metrics is not None:
                self.metrics.attempted(claim.delivery.channel, verdict.status, took)
        return len(ended)

    def _land(self, flight: _InFlight) -> None:
        """Finish the attempts begun and settle them (no new claim is made)."""
        flight.finish()
        try:
            self._settle(flight)
        except Exception:
            # Unsettled, they are let go after the lease and attempted again (at least once).
            log.exception("the attempts in flight could not be settled")

    def _sweep(self) -> int:
        interval = self.settings.escalation_interval_s
        if self.escalation is None or interval == 0:
            return 0
        now = time.monotonic()
        if self._last_sweep and now - self._last_sweep < interval:
            return 0
        self._last_sweep = now
        return len(self.escalation.sweep())


@contextlib.contextmanager
def worker_for(container: Container, settings: Settings) -> Iterator[Worker]:
    """A worker over the container's services; its HTTP client and mailer closed after."""
    mailer = None
    if settings.smtp_url is None:
        log.info("SMTP_URL is not set: nothing will be e-mailed")
    else:
        try:
            target = SmtpTarget.from_url(settings.smtp_url)
        except ValueError as e:
            raise InvalidSetting(str(e)) from None
        mailer = SmtpMailer(target, sender=settings.mail_from)
    with WebhookSender(
        timeout_s=ATTEMPT_TIMEOUT_S, allow_private=settings.webhook_allow_private
    ) as sender:
        messages = Messages(container.expenses(), container.org(), sender, mailer, settings)
        metrics = container.metrics()
        yield Worker(
            container.relay(),
            messages,
            container.escalation(),
            settings,
            None if metrics is None else metrics.deliveries,
        )


@contextlib.contextmanager
def beside(container: Container, settings: Settings) -> Iterator[None]:
    """A worker on a thread of this process while the block runs: what `serve` does for
    DATABASE_URL=memory://, whose data no other process can reach."""
    with worker_for(container, settings) as worker:
        thread = threading.Thread(target=worker.run, name="notification-worker", daemon=True)
        thread.start()
        try:
            yield
        finally:
            worker.stop.set()
            thread.join()


def _asked_step(view: ExpenseView, approver_id: UserId, event: ExpenseEvent) -> int:
    """The step an approval request asks about: the approver's pending step now (the event
    that asked may be about the step before it), else the event's."""
    for a in view.approvals:
        if a.approver_id == approver_id and a.status is ApprovalStatus.PENDING:
            return a.step_number
    return event.step_number or 1


def _log_attempt(claim: Claim, outcome: Outcome, verdict: Verdict) -> None:
    """One line per attempt: a delivered one for those who look closely, others always."""
    d = claim.delivery
    level = logging.DEBUG if verdict.status is DeliveryStatus.DELIVERED else logging.WARNING
    log.log(
        level,
        "delivery %s (%s, %s of expense %s) attempt %s: %s -> %s",
        d.id,
        d.channel,
        d.topic,
        d.expense_id,
        d.attempts,
        outcome.status_code if outcome.error is None else outcome.error,
        verdict.status,
    )


def check(relay: Relay) -> dict[str, object]:
    """What `worker --check` prints: the backlog, and the age of the oldest undelivered."""
    backlog = relay.backlog()
    age = None if backlog.oldest_at is None else round(backlog.waited(datetime.now(UTC)), 3)
    return {
        "undispatched": backlog.undispatched,
        "undelivered": backlog.undelivered,
        "oldest_undelivered_age_s": age,
    }
