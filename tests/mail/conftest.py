"""A real SMTP server for the tests (aiosmtpd, in a thread of its own, on a free port) that
keeps what it receives: the message and what the session knew of it (TLS, login).

`smtp_server` is a plain one; `start_smtp_server` starts others that ask for a login or offer
STARTTLS. Every server started is stopped when its test ends.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from email.message import EmailMessage
from typing import Protocol

import attrs
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@attrs.frozen
class Received:
    """One message as the server took it."""

    message: EmailMessage
    mail_from: str
    rcpt_tos: tuple[str, ...]
    tls: bool  # the session had switched to TLS (STARTTLS) before the message
    login: str | None  # the user the session logged in as


class _Recorder:
    """aiosmtpd's handler: refuses the recipients it is told to, keeps every message and wakes
    whoever waits for them."""

    def __init__(self, refuse: Mapping[str, str]) -> None:
        self.refuse = dict(refuse)
        self.received: list[Received] = []
        self.arrived = threading.Condition()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        assert isinstance(envelope.content, bytes)
        # As a mail reader stores it: lines end in \n, not SMTP's \r\n.
        content = envelope.content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        login: object = session.auth_data if session.authenticated else None
        received = Received(
            message=message,
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            tls=session.ssl is not None,
            login=login if isinstance(login, str) else None,
        )
        with self.arrived:
            self.received.append(received)
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


def _authenticator(logins: Mapping[str, str]) -> Callable[..., AuthResult]:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode()
        if logins.get(user) != auth_data.password.decode():
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)

    return authenticate


class _OnFreePort(Controller):
    """A controller that listens on a port the system picks (port 0), so parallel test runs
    never race for one."""

    def _trigger_server(self) -> None:
        # aiosmtpd's readiness probe connects to `self.port`: give it the port actually bound.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it bare


class SmtpServer:
    """A running SMTP server on 127.0.0.1 and what it has received."""

    host = "127.0.0.1"

    def __init__(self, controller: Controller, recorder: _Recorder) -> None:
        self._controller = controller
        self._recorder = recorder

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        """An `SMTP_URL` for the server, without a login."""
        return f"smtp://{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self._recorder.arrived:
            return list(self._recorder.received)

    @property
    def messages(self) -> list[EmailMessage]:
        return [r.message for r in self.received]

    def wait_for(self, count: int, *, timeout_s: float = 30.0) -> list[Received]:
        """What was received once there are at least `count` messages (for senders in other
        threads or processes); fails the test after `timeout_s`."""
        with self._recorder.arrived:
            if not self._recorder.arrived.wait_for(
                lambda: len(self._recorder.received) >= count, timeout=timeout_s
            ):
                pytest.fail(
                    f"the SMTP server received {len(self._recorder.received)} messages "
                    f"in {timeout_s} s, not {count}"
                )
            return list(self._recorder.received)

    def stop(self) -> None:
        self._controller.stop()


class StartSmtpServer(Protocol):
    def __call__(
        self,
        *,
        logins: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        auth_require_tls: bool = False,
        refuse: Mapping[str, str] | None = None,
    ) -> SmtpServer: ...


@pytest.fixture
def start_smtp_server() -> Iterator[StartSmtpServer]:
    """Start SMTP servers: accepting the `logins` (user -> password) when given, offering
    STARTTLS with `tls_context` when given (AUTH only after it with `auth_require_tls`),
    answering RCPT TO for the addresses in `refuse` with the reply given ("550 5.1.1 ...")."""
    running: list[SmtpServer] = []

    def start(
        *,
        logins: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        auth_require_tls: bool = False,
        refuse: Mapping[str, str] | None = None,
    ) -> SmtpServer:
        recorder = _Recorder(refuse or {})
        controller = _OnFreePort(
            recorder,
            hostname=SmtpServer.host,
            port=0,
            server_hostname="mail.test",
            tls_context=tls_context,
            authenticator=_authenticator(logins) if logins is not None else None,
            auth_require_tls=auth_require_tls,
        )
        controller.start()
        server = SmtpServer(controller, recorder)
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def smtp_server(start_smtp_server: StartSmtpServer) -> SmtpServer:
    """A plain SMTP server: no TLS, no login."""
    return start_smtp_server()
