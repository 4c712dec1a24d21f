"""`expense-tracker worker`: delivers the outbox (signed webhooks, e-mail) and sweeps overdue
steps into escalations, until SIGTERM or Ctrl-C.

Each turn fans new notices out into deliveries, takes as many due ones as it has threads free
(a lease: a worker that dies lets go of them after `LEASE`), starts their attempts, and settles
what the ended ones came to (`expense_core.webhooks.after_attempt` decides retries). Several
workers may run against one PostgreSQL database; on SQLite run one. On SIGTERM the worker
finishes the attempts in flight, settles them and exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime

import attrs
import msgspec

from adapters.mail import MailFailed, SmtpMailer
from adapters.webhooks.sender import WebhookSender
from adapters.webhooks.signing import headers
from entrypoints.http.expense_schemas import event_out, status_response
from entrypoints.mail import approval_request
from entrypoints.settings import Settings
from expense_core.errors import NotFound
from expense_core.services import EscalationService, ExpenseService, OrgService, Relay
from expense_core.webhooks import Channel, Claim, DeliveryStatus, Outcome, Verdict, message_id

log = logging.getLogger("expense_tracker.worker")

_JSON = msgspec.json.Encoder(decimal_format="number")


@attrs.frozen
class Messages:
    """Turns a claim into its message and makes the attempt: a signed POST, or an e-mail."""

    expenses: ExpenseService
    org: OrgService
    sender: WebhookSender
    mailer: SmtpMailer | None
    settings: Settings

    def attempt(self, claim: Claim) -> Outcome:
        try:
            if claim.delivery.channel is Channel.EMAIL:
                return self._mail(claim)
            return self._post(claim)
        except NotFound as e:
            # The expense or person is gone from the store: nothing to tell any more.
            return Outcome(None, e.message, refused=True)
        except Exception as e:
            log.exception("attempt of delivery %s failed", claim.delivery.id)
            return Outcome(None, f"worker error: {type(e).__name__}")

    def body(self, claim: Claim) -> bytes:
        """The message of a webhook delivery: its type, the event's time, the expense as it
        stands now and the event."""
        entry = claim.entry
        view = self.expenses.status(entry.expense_id, entry.company_id)
        return _JSON.encode(
            {
                "type": str(entry.topic),
                "timestamp": event_out(entry.event).at,
                "data": {"expense": status_response(view), "event": event_out(entry.event)},
            }
        )

    def _post(self, claim: Claim) -> Outcome:
        webhook = claim.webhook
        if webhook is None or not webhook.active:
            # Disabled by a 410 Gone: what it still had waiting fails without a call.
            return Outcome(None, "the subscription is disabled", refused=True)
        body = self.body(claim)
        signed = headers(webhook.secret, message_id(claim.delivery.id), int(time.time()), body)
        sent = self.sender.post(webhook.url, signed, body)
        return Outcome(sent.status_code, sent.error, refused=sent.refused)

    def _mail(self, claim: Claim) -> Outcome:
        if self.mailer is None:
            return Outcome(None, "SMTP_URL is not set", refused=True)
        d, entry = claim.delivery, claim.entry
        assert d.recipient_id is not None  # noqa: S101 -- an e-mail delivery names its reader
        view = self.expenses.status(entry.expense_id, entry.company_id)
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
            step_number=entry.event.step_number or 1,
            on_behalf_of_name=absent,
            public_url=self.settings.public_url,
        )
        try:
            self.mailer.send(message)
        except MailFailed as e:
            # A temporary failure is retried as a 503 would be; a permanent one as a 400.
            return Outcome(None if e.temporary else 550, str(e), refused=not e.temporary)
        return Outcome(250)


class _InFlight:
    """The attempts a worker has started and not yet settled, one thread each: at most as many
    as it has threads, so that SIGTERM waits for one attempt's timeout at most."""

    def __init__(self, attempt: Callable[[Claim], Outcome], threads: int) -> None:
        self._attempt = attempt
        self._threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="delivery")
        self._started: dict[Future[Outcome], Claim] = {}

    @property
    def room(self) -> int:
        return self._threads - len(self._started)

    def __bool__(self) -> bool:
        return bool(self._started)

    def start(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            self._started[self._pool.submit(self._attempt, claim)] = claim

    def finished(self) -> list[tuple[Future[Outcome], Claim]]:
        return [(f, claim) for f, claim in self._started.items() if f.done()]

    def forget(self, futures: Iterable[Future[Outcome]]) -> None:
        for f in futures:
            del self._started[f]

    def rest(self, idle_s: float, stop: threading.Event) -> None:
        """Until an attempt finishes, or `idle_s` has passed (sooner on `stop` when idle)."""
        running = [f for f in self._started if not f.done()]
        if running:
            wait(running, timeout=idle_s, return_when=FIRST_COMPLETED)
        else:
            stop.wait(idle_s)

    def finish(self) -> None:
        """Let every attempt started end; the pool's threads with them."""
        self._pool.shutdown(wait=True)


@attrs.define
class Worker:
    """The delivery loop of one process.

    Each turn settles the attempts that have ended, fans new notices out, and starts due
    attempts on the threads that are free: a receiver that hangs holds up one thread until its
    timeout, never the others (a later notice of the same expense waits for it, by the claim's
    rule). An attempt whose settling failed (the database away) is settled on a later turn.
    """

    relay: Relay
    messages: Messages
    escalation: EscalationService | None
    settings: Settings
    stop: threading.Event = attrs.Factory(threading.Event)
    _last_sweep: float = 0.0

    def run(self) -> None:
        """Work until `stop` is set; the attempts in flight are finished and settled first."""
        idle = self.settings.worker_idle_ms / 1000
        flight = self._flight()
        try:
            while not self.stop.is_set():
                try:
                    busy = self.turn(flight)
                except Exception:
                    # A database away, a statement refused: the next turn tries again.
                    log.exception("worker round failed")
                    busy = 0
                if not busy:
                    flight.rest(idle, self.stop)
        finally:
            self._land(flight)

    def turn(self, flight: _InFlight) -> int:
        """Settle what has ended, fan out, start what is due, sweep when due; how much was
        done."""
        done = self._settle(flight)
        done += self.relay.dispatch()
        if flight.room:
            claims = self.relay.claim(limit=flight.room)
            flight.start(claims)
            done += len(claims)
        done += self._sweep()
        return done

    def drain(self, timeout_s: float) -> bool:
        """Work until every notice is delivered or failed; False if some still wait after
        `timeout_s` (a retry due later, or another worker's attempt that never ends)."""
        deadline = time.monotonic() + timeout_s
        idle = self.settings.worker_idle_ms / 1000
        flight = self._flight()
        try:
            while True:
                busy = self.turn(flight)
                if not flight:
                    backlog = self.relay.backlog()
                    if backlog.undispatched == 0 and backlog.undelivered == 0:
                        return True
                if time.monotonic() >= deadline:
                    return False
                if not busy:
                    # Another worker holds what is left, or it is not due yet.
                    flight.rest(idle, self.stop)
        finally:
            self._land(flight)

    def _flight(self) -> _InFlight:
        return _InFlight(self.messages.attempt, self.settings.worker_concurrency)

    def _settle(self, flight: _InFlight) -> int:
        ended = flight.finished()
        if not ended:
            return 0
        results = [(claim, f.result()) for f, claim in ended]
        verdicts = self.relay.settle(results)
        flight.forget(f for f, _ in ended)
        for (claim, outcome), verdict in zip(results, verdicts, strict=True):
            _log_attempt(claim, outcome, verdict)
        return len(ended)

    def _land(self, flight: _InFlight) -> None:
        """Finish the attempts in flight and settle them: once they are done, a last turn's
        work (no new claim is made)."""
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
    age = None
    if backlog.oldest_at is not None:
        age = round((datetime.now(UTC) - _utc(backlog.oldest_at)).total_seconds(), 3)
    return {
        "undispatched": backlog.undispatched,
        "undelivered": backlog.undelivered,
        "oldest_undelivered_age_s": age,
    }


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
