"""`expense-tracker worker` as a process beside the real server, delivering to a real local
receiver (webhooks) and a real SMTP server (e-mail), as docs/notifications.md promises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Final

import httpx
import pytest

from tests.e2e.conftest import Server, StartServer, run_cli
from tests.e2e.workers import (
    StartWorker,
    approve,
    deliveries,
    submit,
    subscribe,
    verified,
    wait_until,
    worker_starter,  # noqa: F401 -- the fixture
)
from tests.mail import conftest as mail
from tests.mail.conftest import SmtpServer
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.e2e

FRANK, EVE = 6, 5
EVERY_NOTICE: Final = ["expense.submitted", "approval.requested", "approval.decided",
                       "expense.approved"]  # fmt: skip
# Bounds on waiting, each far above what it takes (a delivery takes well under a second; the
# first retry comes 15 s after a failure, give or take a fifth).
DELIVERED_WITHIN_S: Final = 30.0
RETRIED_WITHIN_S: Final = 90.0
PUBLIC_URL: Final = "https://expenses.example.test"

# The real SMTP server of tests/mail, for the e-mail tests.
start_smtp_server = mail.start_smtp_server
smtp_server = mail.smtp_server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def server(start_server: StartServer) -> Server:
    return start_server(WEBHOOK_ALLOW_PRIVATE="1")


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as made:
        yield made


def drain(env: dict[str, str]) -> None:
    done = run_cli("worker", "--drain", env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_subscriber_to_everything_gets_an_expenses_notices_signed_and_in_order(
    server: Server, client: httpx.Client, receiver: Receiver, start_worker: StartWorker
) -> None:
    start_worker(server.env, WEBHOOK_ALLOW_PRIVATE="1")
    hook = subscribe(client, f"{receiver.url}/hooks")
    expense_id = submit(client)
    approve(client, expense_id)

    got = receiver.wait_for(4, timeout=DELIVERED_WITHIN_S)
    messages = [verified(hook["secret"], r) for r in got]
    assert [m["type"] for m in messages] == EVERY_NOTICE
    history = client.get(f"/api/expenses/{expense_id}/history").json()["events"]
    for request, message in zip(got, messages, strict=True):
        assert request.path == "/hooks"
        assert request.headers["content-type"] == "application/json"
        assert set(message) == {"type", "timestamp", "data"}
        assert set(message["data"]) == {"expense", "event"}
        assert message["data"]["expense"]["id"] == expense_id
        assert message["data"]["event"] in history
        assert message["timestamp"] == message["data"]["event"]["at"]
    assert len({r.headers["webhook-id"] for r in got}) == 4

    # The subscription's deliveries say the same, newest first, each delivered at once (once
    # the worker has settled the last answer).
    wait_until(
        lambda: all(d["status"] != "pending" for d in deliveries(client, hook["id"])),
        "every attempt settled",
        DELIVERED_WITHIN_S,
    )
    listed = deliveries(client, hook["id"])
    assert [d["event_type"] for d in listed] == EVERY_NOTICE[::-1]
    assert [f"msg_{d['id']}" for d in listed[::-1]] == [r.headers["webhook-id"] for r in got]
    assert {(d["status"], d["attempts"], d["last_status_code"]) for d in listed} == {
        ("delivered", 1, 200)
    }


def test_a_topic_filter_gets_only_its_topics(
    server: Server, client: httpx.Client, receiver: Receiver, start_worker: StartWorker
) -> None:
    start_worker(server.env, WEBHOOK_ALLOW_PRIVATE="1")
    everything = subscribe(client, f"{receiver.url}/all")
    approvals = subscribe(client, f"{receiver.url}/approved", ["expense.approved"])
    approve(client, submit(client))

    # Once the last notice reached the subscriber to everything, every notice was fanned out.
    wait_until(
        lambda: sum(r.path == "/all" for r in receiver.requests) == 4,
        "four messages to the subscriber to everything",
        DELIVERED_WITHIN_S,
    )
    wait_until(
        lambda: all(d["status"] == "delivered" for d in deliveries(client, approvals["id"])),
        "the filtered subscription's deliveries delivered",
        DELIVERED_WITHIN_S,
    )
    assert [d["event_type"] for d in deliveries(client, approvals["id"])] == ["expense.approved"]
    filtered = [r for r in receiver.requests if r.path == "/approved"]
    assert [verified(approvals["secret"], r)["type"] for r in filtered] == ["expense.approved"]
    assert len(deliveries(client, everything["id"])) == 4


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the wait is 15 s: once
def test_a_failed_attempt_is_retried_after_the_backoff_with_the_same_webhook_id(
    server: Server, client: httpx.Client, receiver: Receiver, start_worker: StartWorker
) -> None:
    start_worker(server.env, WEBHOOK_ALLOW_PRIVATE="1")
    receiver.queue(500)
    hook = subscribe(client, f"{receiver.url}/hooks")
    expense_id = submit(client)

    first = receiver.wait_for(1, timeout=DELIVERED_WITHIN_S)[0]
    wait_until(
        lambda: deliveries(client, hook["id"])[-1]["status"] == "retrying",
        "the first attempt settled as retrying",
        DELIVERED_WITHIN_S,
    )
    waiting = deliveries(client, hook["id"])[-1]
    assert (waiting["event_type"], waiting["attempts"]) == ("expense.submitted", 1)
    assert (waiting["last_status_code"], waiting["status"]) == (500, "retrying")
    assert waiting["next_attempt_at"] is not None

    got = receiver.wait_for(3, timeout=RETRIED_WITHIN_S)
    again = got[1]
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    # The expense's next notice waited behind the retried one.
    assert [verified(hook["secret"], r)["type"] for r in got] == [
        "expense.submitted",
        "expense.submitted",
        "approval.requested",
    ]
    assert all(verified(hook["secret"], r)["data"]["expense"]["id"] == expense_id for r in got)
    wait_until(
        lambda: deliveries(client, hook["id"])[-1]["status"] == "delivered",
        "the retried delivery settled",
        DELIVERED_WITHIN_S,
    )
    settled = deliveries(client, hook["id"])[-1]
    assert (settled["attempts"], settled["last_status_code"]) == (2, 200)


def test_a_410_disables_the_subscription_and_fails_the_rest_without_a_call(
    server: Server, client: httpx.Client, receiver: Receiver, start_worker: StartWorker
) -> None:
    start_worker(server.env, WEBHOOK_ALLOW_PRIVATE="1")
    receiver.queue(410)
    hook = subscribe(client, f"{receiver.url}/hooks")
    expense_id = submit(client)

    receiver.wait_for(1, timeout=DELIVERED_WITHIN_S)
    wait_until(
        lambda: client.get(f"/api/webhooks/{hook['id']}").json()["active"] is False,
        "the subscription disabled",
        DELIVERED_WITHIN_S,
    )
    approve(client, expense_id)
    drain({**server.env, "WEBHOOK_ALLOW_PRIVATE": "1"})

    assert len(receiver.requests) == 1
    listed = deliveries(client, hook["id"])[::-1]
    assert [(d["event_type"], d["status"], d["last_status_code"]) for d in listed] == [
        ("expense.submitted", "failed", 410),
        ("approval.requested", "failed", None),
    ]
    assert listed[1]["last_error"] == "the subscription is disabled"
    listed_hooks = client.get("/api/webhooks", params={"company_id": 1}).json()["items"]
    assert [(w["id"], w["active"]) for w in listed_hooks] == [(hook["id"], False)]


def test_sigterm_lets_the_attempt_in_flight_finish_and_exits_0(
    server: Server, client: httpx.Client, receiver: Receiver, start_worker: StartWorker
) -> None:
    worker = start_worker(server.env, WEBHOOK_ALLOW_PRIVATE="1")
    receiver.hang()
    hook = subscribe(client, f"{receiver.url}/hooks")
    submit(client)
    receiver.wait_for(1, timeout=DELIVERED_WITHIN_S)  # held by the receiver: in flight

    worker.process.terminate()
    worker.wait_for_log("stopping after the attempts in flight")
    assert worker.running, "the worker left before its attempt in flight was answered"
    receiver.release()
    assert worker.stop() == 0, worker.text()

    assert "worker stopped" in worker.text()
    listed = deliveries(client, hook["id"])[::-1]
    first = listed[0]
    assert (first["event_type"], first["status"], first["attempts"]) == (
        "expense.submitted",
        "delivered",
        1,
    )
    assert first["last_status_code"] == 200
    # Nothing was begun after the signal: the next notice waits, unattempted.
    assert [(d["status"], d["attempts"]) for d in listed[1:]] == [("pending", 0)]
    assert len(receiver.requests) == 1


def test_check_prints_the_backlog_and_fails_when_the_oldest_is_too_old(server: Server) -> None:
    env = server.env
    empty = run_cli("worker", "--check", env=env)
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout) == {
        "undispatched": 0,
        "undelivered": 0,
        "oldest_undelivered_age_s": None,
    }

    with server.client() as client:
        submit(client)  # its notices wait: no worker runs
    waiting = run_cli("worker", "--check", env=env)
    assert waiting.returncode == 0, waiting.stderr
    backlog = json.loads(waiting.stdout)
    assert backlog["undispatched"] == 2  # expense.submitted, approval.requested
    assert backlog["undelivered"] == 0
    assert backlog["oldest_undelivered_age_s"] > 0
    too_old = run_cli("worker", "--check", "--max-age", "0", env=env)
    assert too_old.returncode == 1, too_old.stderr
    assert json.loads(too_old.stdout)["undispatched"] == 2

    drain(env)
    assert json.loads(run_cli("worker", "--check", env=env).stdout) == {
        "undispatched": 0,
        "undelivered": 0,
        "oldest_undelivered_age_s": None,
    }


def test_drain_exits_0_once_delivered_and_1_while_a_retry_waits(
    server: Server, client: httpx.Client, receiver: Receiver
) -> None:
    env = {**server.env, "WEBHOOK_ALLOW_PRIVATE": "1"}
    hook = subscribe(client, f"{receiver.url}/hooks")
    approve(client, submit(client))
    drain(env)
    assert [verified(hook["secret"], r)["type"] for r in receiver.requests] == EVERY_NOTICE

    receiver.queue(503)
    submit(client, "Second keyboard")
    waits = run_cli("worker", "--drain", "--timeout", "2", env=env)
    assert waits.returncode == 1, waits.stdout + waits.stderr
    assert "still waiting after 2 s" in waits.stderr
    assert deliveries(client, hook["id"])[1]["status"] == "retrying"


def _text_and_html(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def test_approval_requested_emails_the_approver_and_the_delegate_for_them(
    server: Server, client: httpx.Client, smtp_server: SmtpServer, start_worker: StartWorker
) -> None:
    env = {**server.env, "SMTP_URL": smtp_server.url, "PUBLIC_URL": PUBLIC_URL}
    start_worker(env)
    first = submit(client)
    smtp_server.wait_for(1, timeout_s=DELIVERED_WITHIN_S)
    drain(env)
    [alone] = smtp_server.received
    assert alone.rcpt_tos == ("frank.miller@techcorp.com",)
    text, html = _text_and_html(alone.message)
    link = f"{PUBLIC_URL}/app/expenses/{first}"
    assert link in text
    assert link in html
    assert alone.message["Subject"] == (
        f"Approval needed: expense #{first}, 149.90 by Grace Taylor"
    )
    assert "Step 1 of its approval is yours to decide." in text

    now = datetime.now(UTC)
    away = client.put(
        f"/api/users/{FRANK}/delegation",
        json={
            "delegate_id": EVE,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
            "note": "holiday",
        },
    )
    assert away.status_code == 200, away.text
    second = submit(client, "Keyboard for the new hire")
    smtp_server.wait_for(3, timeout_s=DELIVERED_WITHIN_S)
    drain(env)
    later = smtp_server.received[1:]
    assert sorted(r.rcpt_tos for r in later) == [
        ("eve.davis@techcorp.com",),
        ("frank.miller@techcorp.com",),
    ]
    for received in later:
        text, html = _text_and_html(received.message)
        link = f"{PUBLIC_URL}/app/expenses/{second}"
        assert link in text
        assert link in html
        on_behalf = "You are Frank Miller's delegate" in text
        assert on_behalf == (received.rcpt_tos == ("eve.davis@techcorp.com",))


def test_without_smtp_url_the_worker_says_once_that_nothing_is_emailed(
    server: Server, client: httpx.Client, start_worker: StartWorker
) -> None:
    worker = start_worker(server.env)
    submit(client)
    approve(client, submit(client, "Another keyboard"))
    drain(server.env)
    assert worker.stop() == 0
    assert worker.text().count("SMTP_URL is not set") == 1
