"""The sender against a real local HTTP receiver: what arrives, what each answer comes to, and
what happens when the receiver hangs, drips, is not there, redirects, or is not allowed."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trustme
from standardwebhooks import Webhook

from adapters.webhooks import signing
from adapters.webhooks.sender import CHECKED_FOR_S, USER_AGENT, Attempt, WebhookSender
from tests.webhooks.receiver import Receiver

BODY = b'{"type":"expense.approved","timestamp":"2024-05-01T12:00:00Z","data":{}}'


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def sender() -> Iterator[WebhookSender]:
    with WebhookSender(allow_private=True) as opened:
        yield opened


@pytest.fixture
def quick() -> Iterator[WebhookSender]:
    """A sender that gives up after half a second."""
    with WebhookSender(timeout_s=0.5, allow_private=True) as opened:
        yield opened


def signed(secret: str | None = None) -> dict[str, str]:
    return signing.headers(secret or signing.new_secret(), "msg_1", int(time.time()), BODY)


def test_a_delivery_arrives_with_exactly_the_signed_headers_and_body(
    receiver: Receiver, sender: WebhookSender
) -> None:
    secret = signing.new_secret()
    headers = signed(secret)
    attempt = sender.post(f"{receiver.url}/hooks/1?tenant=7", headers, BODY)
    assert attempt == Attempt(status_code=200, error=None, refused=False)
    [received] = receiver.requests
    assert received.path == "/hooks/1?tenant=7"
    assert received.body == BODY
    assert {name: received.headers[name] for name in headers} == headers
    assert received.headers["content-length"] == str(len(BODY))
    assert received.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert received.headers["user-agent"] == USER_AGENT
    assert Webhook(secret).verify(received.body, received.headers)["type"] == "expense.approved"


@pytest.mark.parametrize("status", [201, 204, 400, 404, 410, 429, 500, 503])
def test_the_answer_status_is_the_attempt(
    receiver: Receiver, sender: WebhookSender, status: int
) -> None:
    receiver.answer(status, body=b"some explanation")
    assert sender.post(f"{receiver.url}/hook", signed(), BODY) == Attempt(status, None)


def test_one_kept_open_client_serves_attempt_after_attempt(
    receiver: Receiver, sender: WebhookSender
) -> None:
    receiver.queue(500, 429, path="/hook")
    statuses = [sender.post(f"{receiver.url}/hook", signed(), BODY).status_code for _ in range(3)]
    assert statuses == [500, 429, 200]
    assert [r.path for r in receiver.requests] == ["/hook"] * 3


def test_a_redirect_is_not_followed(receiver: Receiver, sender: WebhookSender) -> None:
    receiver.answer(302, path="/hook", headers={"location": f"{receiver.url}/elsewhere"})
    assert sender.post(f"{receiver.url}/hook", signed(), BODY) == Attempt(302, None)
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_receiver_that_hangs_gives_a_timeout(receiver: Receiver, quick: WebhookSender) -> None:
    receiver.hang()
    try:
        attempt = quick.post(f"{receiver.url}/hook", signed(), BODY)
    finally:
        receiver.release()
    assert attempt == Attempt(status_code=None, error="timeout after 0.5 s")
    assert len(receiver.requests) == 1


def test_a_receiver_dripping_its_answer_is_cut_off_at_the_deadline(
    receiver: Receiver, quick: WebhookSender
) -> None:
    # Every byte comes well within the per-read timeout: only the whole attempt's deadline ends it.
    receiver.answer(drip=True)
    attempt = quick.post(f"{receiver.url}/hook", signed(), BODY)
    assert attempt == Attempt(status_code=None, error="timeout after 0.5 s")


def test_an_answer_whose_body_never_ends_counts_by_its_status(
    receiver: Receiver, quick: WebhookSender
) -> None:
    receiver.answer(202, endless=True)
    assert quick.post(f"{receiver.url}/hook", signed(), BODY) == Attempt(202, None)
    receiver.answer(200)
    assert quick.post(f"{receiver.url}/hook", signed(), BODY) == Attempt(200, None)


def test_a_closed_port_gives_connection_refused(sender: WebhookSender) -> None:
    with socket.socket() as bound:  # bound, never listening: the port stays ours and refuses
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        attempt = sender.post(f"http://127.0.0.1:{port}/token-abc", signed(), BODY)
    assert attempt == Attempt(status_code=None, error="connection refused")


def test_loopback_is_refused_unless_allowed(receiver: Receiver) -> None:
    with WebhookSender() as strict:
        attempt = strict.post(f"{receiver.url}/hook", signed(), BODY)
    assert attempt == Attempt(
        status_code=None,
        error="refused destination: points to a loopback address 127.0.0.1",
        refused=True,
    )
    assert receiver.requests == []


def test_a_name_that_now_resolves_to_a_private_address_is_refused() -> None:
    with WebhookSender(resolve=lambda _host: ["10.0.0.5"]) as strict:
        attempt = strict.post("https://hooks.example/in", signed(), BODY)
    assert attempt == Attempt(
        status_code=None,
        error="refused destination: resolves to a private address 10.0.0.5",
        refused=True,
    )


class Resolutions:
    """A resolver that answers from a script, one answer per lookup, and counts them."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, host: str) -> Iterable[str]:
        self.asked.append(host)
        return self.answers.pop(0)


def test_the_connection_goes_to_the_checked_address_under_the_name(receiver: Receiver) -> None:
    # hooks.example resolves only in the injected resolver: the connection must take the
    # address the check saw, and the request keep the name.
    resolve = Resolutions(["127.0.0.1"])
    with WebhookSender(allow_private=True, resolve=resolve) as sender:
        attempt = sender.post(f"http://hooks.example:{receiver.port}/hook", signed(), BODY)
    assert attempt == Attempt(200, None)
    assert resolve.asked == ["hooks.example"]
    [received] = receiver.requests
    assert received.headers["host"] == f"hooks.example:{receiver.port}"


def test_every_checked_address_is_tried_in_turn(receiver: Receiver) -> None:
    # Nothing listens on 127.0.0.2 at the receiver's port: that one refuses, the next answers.
    resolve = Resolutions(["127.0.0.2", "127.0.0.1"])
    with WebhookSender(allow_private=True, resolve=resolve) as sender:
        attempt = sender.post(f"http://hooks.example:{receiver.port}/hook", signed(), BODY)
    assert attempt == Attempt(200, None)
    assert len(receiver.requests) == 1


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_refused_destination_is_checked_again_at_the_next_post(receiver: Receiver) -> None:
    # The third post finds the connection of the second kept open; its check, reused, passes.
    resolve = Resolutions([], ["127.0.0.1"])
    url = f"http://hooks.example:{receiver.port}/hook"
    with WebhookSender(allow_private=True, resolve=resolve, clock=Clock()) as sender:
        attempts = [sender.post(url, signed(), BODY) for _ in range(3)]
    unresolved = Attempt(None, "refused destination: does not resolve", refused=True)
    assert attempts == [unresolved, Attempt(200, None), Attempt(200, None)]
    assert resolve.asked == ["hooks.example"] * 2
    assert len(receiver.requests) == 2


def test_a_check_that_passed_is_made_again_once_it_is_checked_for_s_old(
    receiver: Receiver,
) -> None:
    resolve = Resolutions(["127.0.0.1"], [])
    url = f"http://hooks.example:{receiver.port}/hook"
    clock = Clock()
    with WebhookSender(allow_private=True, resolve=resolve, clock=clock) as sender:
        first = sender.post(url, signed(), BODY)
        clock.now += CHECKED_FOR_S - 0.001
        reused = sender.post(url, signed(), BODY)
        clock.now += 0.001
        again = sender.post(url, signed(), BODY)
    assert [first, reused] == [Attempt(200, None)] * 2
    assert again == Attempt(None, "refused destination: does not resolve", refused=True)
    assert resolve.asked == ["hooks.example"] * 2
    assert len(receiver.requests) == 2


def test_a_private_address_is_refused_at_every_post_however_often() -> None:
    resolve = Resolutions(*[["10.0.0.5"]] * 3)
    with WebhookSender(resolve=resolve, clock=Clock()) as strict:
        attempts = [strict.post("https://hooks.example/in", signed(), BODY) for _ in range(3)]
    refused = Attempt(None, "refused destination: resolves to a private address 10.0.0.5", True)
    assert attempts == [refused] * 3
    assert resolve.asked == ["hooks.example"] * 3


def test_one_sender_serves_several_threads_at_once(receiver: Receiver) -> None:
    # Each thread's attempt connects by its own check: hosts and paths never cross.
    hosts = [f"hooks-{n}.example" for n in range(4)]
    with (
        WebhookSender(allow_private=True, resolve=lambda _host: ["127.0.0.1"]) as sender,
        ThreadPoolExecutor(max_workers=len(hosts)) as pool,
    ):
        urls = [f"http://{host}:{receiver.port}/{host}" for host in hosts * 5]
        attempts = list(pool.map(lambda url: sender.post(url, signed(), BODY), urls))
    assert attempts == [Attempt(200, None)] * len(urls)
    received = receiver.requests
    assert len(received) == len(urls)
    assert all(r.headers["host"] == f"{r.path[1:]}:{receiver.port}" for r in received)


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_receiver(authority: trustme.CA) -> Iterator[Receiver]:
    """A receiver over TLS, its certificate hooks.example's, from a private authority."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("hooks.example").configure_cert(context)
    with Receiver(tls=context) as running:
        yield running


@pytest.fixture
def trusted(authority: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The authority trusted as the system's would be (a private CA added to its bundle)."""
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))


def over_tls(receiver: Receiver, host: str) -> Attempt:
    """A post to `receiver` under the name `host`, which resolves to it."""
    with WebhookSender(allow_private=True, resolve=Resolutions(["127.0.0.1"])) as sender:
        return sender.post(f"https://{host}:{receiver.port}/hook", signed(), BODY)


@pytest.mark.usefixtures("trusted")
def test_an_https_receiver_is_called_under_its_name_with_its_certificate_checked(
    tls_receiver: Receiver,
) -> None:
    assert over_tls(tls_receiver, "hooks.example") == Attempt(200, None)
    [received] = tls_receiver.requests
    assert received.body == BODY


def test_a_certificate_nobody_vouches_for_is_not_accepted(tls_receiver: Receiver) -> None:
    attempt = over_tls(tls_receiver, "hooks.example")
    why = "unable to get local issuer certificate"
    assert attempt == Attempt(None, f"TLS certificate not accepted: {why}")
    assert tls_receiver.requests == []


@pytest.mark.usefixtures("trusted")
def test_a_certificate_for_another_name_is_not_accepted(tls_receiver: Receiver) -> None:
    # The same server under another name: its certificate is hooks.example's.
    attempt = over_tls(tls_receiver, "other.example")
    why = "it is not valid for the destination's host name"
    assert attempt == Attempt(None, f"TLS certificate not accepted: {why}")
    assert tls_receiver.requests == []
