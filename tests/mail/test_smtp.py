"""The SMTP sender against a real SMTP server: what arrives, STARTTLS, logins, and which
failures are worth another try."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from urllib.parse import quote

import pytest
import trustme

from adapters.mail import MailFailed, SmtpMailer, SmtpTarget
from tests.mail.conftest import SmtpServer, StartSmtpServer

SENDER = "noreply@expenses.test"
PASSWORD = "p@ss:w/rd %s3cret"  # noqa: S105 (a test server's password)


def note(*to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Expense Tracker <{SENDER}>"
    message["To"] = ", ".join(to or ("Grace Taylor <grace@example.com>",))
    message["Subject"] = "A note"
    message.set_content("Hello.\n")
    return message


def mailer(
    url: str, *, timeout_s: float = 10.0, tls_context: ssl.SSLContext | None = None
) -> SmtpMailer:
    return SmtpMailer(
        SmtpTarget.from_url(url), sender=SENDER, timeout_s=timeout_s, tls_context=tls_context
    )


def login_url(server: SmtpServer, user: str, password: str) -> str:
    return f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@{server.host}:{server.port}"


# --- SMTP_URL ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("smtp://mail.example.com", SmtpTarget("mail.example.com", 25)),
        ("smtp://mail.example.com:2525", SmtpTarget("mail.example.com", 2525)),
        ("SMTP://mail.example.com:587/", SmtpTarget("mail.example.com", 587)),
        ("smtp://alice@mail.example.com", SmtpTarget("mail.example.com", 25, "alice")),
        ("smtp://alice:pw@127.0.0.1:1025", SmtpTarget("127.0.0.1", 1025, "alice", "pw")),
        (
            "smtp://alice%40corp.example:p%40ss%3Aw%2Frd@mail.example.com:587",
            SmtpTarget("mail.example.com", 587, "alice@corp.example", "p@ss:w/rd"),
        ),
        ("smtp://alice:@mail.example.com", SmtpTarget("mail.example.com", 25, "alice", "")),
        ("smtp://[::1]:2525", SmtpTarget("::1", 2525)),
    ],
)
def test_an_smtp_url_names_host_port_and_login(url: str, target: SmtpTarget) -> None:
    assert SmtpTarget.from_url(url) == target


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("smtps://mail.example.com", "must start with smtp://, not smtps://"),
        ("http://mail.example.com", "must start with smtp://"),
        ("mail.example.com:25", "must start with smtp://"),
        ("", "must start with smtp://, not no scheme"),
        ("smtp://", "names no host"),
        ("smtp://alice:s3cret@:25", "names no host"),
        ("smtp://alice:s3cret@mail.example.com:s3cret", "not a number"),
        ("smtp://mail.example.com:70000", "not a number"),
        ("smtp://mail.example.com:0", "not a number"),
        ("smtp://:s3cret@mail.example.com", "a password but no user"),
        ("smtp://alice:s3/cret@mail.example.com", "percent-encoded"),
        ("smtp://mail.example.com/inbox", "path, query or fragment"),
        ("smtp://mail.example.com?tls=1", "path, query or fragment"),
    ],
)
def test_a_wrong_smtp_url_is_refused_without_showing_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL") as refused:
        SmtpTarget.from_url(url)
    assert says in str(refused.value)
    assert "s3cret" not in str(refused.value)


def test_the_password_stays_out_of_reprs() -> None:
    target = SmtpTarget.from_url("smtp://alice:s3cret@mail.example.com:587")
    shown = [repr(target), str(target), repr(SmtpMailer(target, sender=SENDER))]
    assert not [text for text in shown if "s3cret" in text]
    assert "alice" in repr(target)
    assert target.redacted_url == "smtp://alice@mail.example.com:587"
    assert repr(SmtpTarget("mail.example.com", 25)).endswith("user=None, password=None)")


# --- sending ----------------------------------------------------------------------------------


def test_a_message_reaches_the_server(smtp_server: SmtpServer) -> None:
    mailer(smtp_server.url).send(note("Grace Taylor <grace@example.com>", "eve@example.com"))

    [received] = smtp_server.received
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ("grace@example.com", "eve@example.com")
    assert received.message["Subject"] == "A note"
    assert received.message.get_content() == "Hello.\n"
    assert (received.tls, received.login) == (False, None)


def test_each_message_goes_on_a_connection_of_its_own(smtp_server: SmtpServer) -> None:
    sender = mailer(smtp_server.url)
    for _ in range(3):
        sender.send(note())

    assert len(smtp_server.messages) == 3


def test_a_user_in_the_url_logs_in(start_smtp_server: StartSmtpServer) -> None:
    server = start_smtp_server(logins={"alice@corp.example": PASSWORD})

    mailer(login_url(server, "alice@corp.example", PASSWORD)).send(note())

    assert [r.login for r in server.received] == ["alice@corp.example"]


def test_a_wrong_password_fails_for_good_and_is_not_told(
    start_smtp_server: StartSmtpServer,
) -> None:
    server = start_smtp_server(logins={"alice": PASSWORD})

    with pytest.raises(MailFailed) as failed:
        mailer(login_url(server, "alice", "not-" + PASSWORD)).send(note())

    assert failed.value.temporary is False
    assert "AUTH: 535" in str(failed.value)
    assert "p@ss" not in str(failed.value)
    assert f"alice@127.0.0.1:{server.port}" in str(failed.value)
    assert server.received == []


def test_a_login_the_server_does_not_offer_fails_for_good(
    start_smtp_server: StartSmtpServer,
) -> None:
    server = start_smtp_server(auth_require_tls=True)  # no TLS to offer, so no AUTH either

    with pytest.raises(MailFailed, match="AUTH: SMTP AUTH extension not supported") as failed:
        mailer(login_url(server, "alice", PASSWORD)).send(note())

    assert failed.value.temporary is False
    assert server.received == []


# --- STARTTLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def trusting(authority: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test authority, as a private CA would be trusted."""
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return context


def test_starttls_is_used_when_offered(
    start_smtp_server: StartSmtpServer, server_tls: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    server = start_smtp_server(tls_context=server_tls)

    mailer(server.url, tls_context=trusting).send(note())

    assert [r.tls for r in server.received] == [True]


def test_the_login_waits_for_tls_when_the_server_wants_it(
    start_smtp_server: StartSmtpServer, server_tls: ssl.SSLContext, trusting: ssl.SSLContext
) -> None:
    server = start_smtp_server(
        logins={"alice": PASSWORD}, tls_context=server_tls, auth_require_tls=True
    )

    mailer(login_url(server, "alice", PASSWORD), tls_context=trusting).send(note())

    assert [(r.tls, r.login) for r in server.received] == [(True, "alice")]


def test_an_untrusted_certificate_stops_the_message(
    start_smtp_server: StartSmtpServer, server_tls: ssl.SSLContext
) -> None:
    server = start_smtp_server(tls_context=server_tls)

    with pytest.raises(MailFailed, match=r"STARTTLS: .*CERTIFICATE_VERIFY_FAILED") as failed:
        mailer(server.url).send(note())  # the system's authorities know no test CA

    assert failed.value.temporary is True
    assert server.received == []


# --- failures ---------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting to it is refused."""
    with socket.socket() as reserved:
        reserved.bind(("127.0.0.1", 0))
        yield int(reserved.getsockname()[1])


def test_a_refused_connection_is_worth_another_try(closed_port: int) -> None:
    with pytest.raises(MailFailed, match="connect: ConnectionRefusedError") as failed:
        mailer(f"smtp://127.0.0.1:{closed_port}").send(note())

    assert failed.value.temporary is True


def test_a_silent_server_times_out() -> None:
    # Listening but never accepting: the kernel completes the connection, no greeting comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(MailFailed, match=r"connect: .*timed out") as failed:
            mailer(f"smtp://127.0.0.1:{port}", timeout_s=0.5).send(note())

    assert failed.value.temporary is True


@pytest.mark.parametrize(
    ("reply", "temporary"),
    [("451 4.3.0 Mailbox busy, try later", True), ("550 5.1.1 No such user", False)],
)
def test_a_refused_recipient_is_retried_only_on_a_4xx_reply(
    start_smtp_server: StartSmtpServer, reply: str, temporary: bool
) -> None:
    server = start_smtp_server(refuse={"grace@example.com": reply})

    with pytest.raises(MailFailed) as failed:
        mailer(server.url).send(note("grace@example.com"))

    assert failed.value.temporary is temporary
    assert f"grace@example.com refused: {reply}" in str(failed.value)
    assert server.received == []


def test_one_recipient_refused_among_several_is_not_sent_again(
    start_smtp_server: StartSmtpServer,
) -> None:
    server = start_smtp_server(refuse={"grace@example.com": "451 4.3.0 Mailbox busy"})

    with pytest.raises(MailFailed, match=r"grace@example\.com refused: 451") as failed:
        mailer(server.url).send(note("grace@example.com", "eve@example.com"))

    assert failed.value.temporary is False  # eve has her copy: another try would send a second
    assert [r.rcpt_tos for r in server.received] == [("eve@example.com",)]


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SmtpMailer(SmtpTarget("mail.example.com", 25), sender=SENDER, timeout_s=0)
