"""An SMTP sender configured by `SMTP_URL`: one connection per message, STARTTLS whenever the
server offers it, a login when the URL names a user.

One connection per message keeps the sender stateless: a worker that sends a few messages a
minute gains nothing from a kept connection and would have to notice when the server dropped
it. Failures become `MailFailed`, temporary or not as the server's reply class says (RFC 5321:
4xx transient, 5xx permanent), so the caller knows whether to try again. The password never
leaves `SmtpTarget`: not in its `repr`, not in an error message.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from typing import Final
from urllib.parse import unquote, urlsplit

import attrs

DEFAULT_PORT: Final = 25
SCHEME: Final = "smtp"
# A password cut short by one of these characters is the likely cause of a port or path.
_ENCODE: Final = " (in a user or password, '/', '?', '#' and '@' must be percent-encoded)"


class MailFailed(Exception):
    """A message was not handed over; `temporary` when trying again later may succeed."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


def _hidden(password: str | None) -> str:
    return "None" if password is None else "'***'"


@attrs.frozen
class SmtpTarget:
    """Where and as whom to send: the parts of `SMTP_URL`."""

    host: str
    port: int
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=_hidden)

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        """Read `smtp://[user[:password]@]host[:port]`, user and password percent-encoded.

        Raises:
            ValueError: another scheme, no host, a bad port, a password without a user, or a
                path, query or fragment; the message names SMTP_URL and never the password.
        """
        parts = urlsplit(url.strip())
        if parts.scheme.lower() != SCHEME:
            shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
            raise ValueError(f"SMTP_URL must start with smtp://, not {shown}")
        if not parts.hostname:
            raise ValueError("SMTP_URL names no host: smtp://[user[:password]@]host[:port]")
        try:
            port = parts.port
        except ValueError:
            # urllib's own message quotes the text after the last colon, which a mistyped URL
            # may have taken from the password.
            port = 0
        if port == 0:
            raise ValueError(f"SMTP_URL has a port that is not a number in 1-65535{_ENCODE}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"SMTP_URL has a path, query or fragment{_ENCODE}")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if user is None and password is not None:
            raise ValueError("SMTP_URL has a password but no user")
        return cls(host=parts.hostname, port=port or DEFAULT_PORT, user=user, password=password)

    @property
    def redacted_url(self) -> str:
        """The URL without the password, fit for logs and error messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user is not None else ""
        return f"{SCHEME}://{user}{host}:{self.port}"


class SmtpMailer:
    """Sends one message per connection to `target`, as `sender` (the envelope's MAIL FROM).

    `tls_context` checks the server's certificate on STARTTLS: by default the system's trusted
    authorities and the target's host name.
    """

    def __init__(
        self,
        target: SmtpTarget,
        *,
        sender: str,
        timeout_s: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"the SMTP timeout must be positive, not {timeout_s}")
        self.target = target
        self.sender = sender
        self.timeout_s = timeout_s
        self._tls_context = tls_context if tls_context is not None else ssl.create_default_context()

    def __repr__(self) -> str:
        return f"SmtpMailer({self.target.redacted_url}, sender={self.sender!r})"

    def send(self, message: EmailMessage) -> None:
        """Hand `message` to the server for its To, Cc and Bcc recipients.

        Raises:
            MailFailed: on any SMTP or network error; temporary for a 4xx reply, a lost or
                refused connection, a timeout or a TLS failure; not for a 5xx reply or a
                server lacking what is needed (AUTH, a mechanism both sides know).
        """
        step = "connect"
        try:
            # The host goes to the constructor, which connects: STARTTLS checks the
            # certificate against the host given there.
            with contextlib.closing(
                smtplib.SMTP(self.target.host, self.target.port, timeout=self.timeout_s)
            ) as smtp:
                step = "EHLO"
                smtp.ehlo_or_helo_if_needed()
                if smtp.has_extn("starttls"):
                    step = "STARTTLS"
                    smtp.starttls(context=self._tls_context)
                    smtp.ehlo()  # the features offered before TLS no longer count (RFC 3207)
                if self.target.user is not None:
                    step = "AUTH"
                    smtp.login(self.target.user, self.target.password or "")
                step = "send"
                refused = smtp.send_message(message, from_addr=self.sender)
                # The message is with the server: a lost goodbye changes nothing.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
        except OSError as exc:  # smtplib's own errors too: SMTPException is an OSError
            raise self._failed(step, exc) from exc
        if refused:
            # Trying again would send the others a second copy.
            raise MailFailed(self._said(f"send: {_refusals(refused)}"), temporary=False)

    def _failed(self, step: str, exc: OSError) -> MailFailed:
        temporary: bool
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            temporary = all(_transient(code) for code, _ in exc.recipients.values())
            what = _refusals(exc.recipients)
        elif isinstance(exc, smtplib.SMTPResponseException):
            temporary = _transient(exc.smtp_code)
            what = f"{exc.smtp_code} {_text(exc.smtp_error)}"
        elif isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(
            exc, smtplib.SMTPException
        ):  # a lost connection, a refused one, a timeout, a failed TLS handshake
            temporary = True
            what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:  # the server lacks what is needed (AUTH, a mechanism): asking again gets the same
            temporary = False
            what = str(exc)
        return MailFailed(self._said(f"{step}: {what}"), temporary=temporary)

    def _said(self, what: str) -> str:
        text = f"{self.target.redacted_url} {what}"
        password = self.target.password
        return text.replace(password, "***") if password else text


def _transient(code: int) -> bool:
    """Whether a reply code leaves room for a later try: all but the permanent 5xx."""
    return not 500 <= code <= 599


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} refused: {code} {_text(reply)}" for address, (code, reply) in refused.items()
    )
