"""One webhook attempt over HTTP: post, read a little of the answer, say what came of it.

The destination is checked at delivery time, because DNS can change, and the connection goes
only to an address that check passed: the client's network backend connects to the checked
addresses of the destination in hand and to nothing else, so a name that resolves elsewhere a
moment later (DNS rebinding) cannot steer it. The URL keeps its host name, so the Host header,
TLS server name and certificate check are the name's.

A check that passed is used again for `CHECKED_FOR_S`, no longer than a kept-open connection
to an address it passed is used again anyway: parsing and resolving the URL afresh for every
attempt cost as much as signing and encoding it, and asked DNS a thousand times a second for one
receiver. What is reused is the check's own answer (the addresses it passed, which alone may be
connected to), so a private address is never connected to; a refusal is never reused, so a
destination that is fixed is called at its next attempt.

One deadline bounds the whole attempt (connect, TLS, send, answer): every socket operation
waits at most what is left of it, so a receiver dripping bytes cannot hold a worker longer.

The requests go straight to httpcore's connection pool: httpx's client on top of it (cookies,
authentication, redirects, URL and header models) did nothing a webhook needs and cost as much
CPU again per attempt as the pool and the HTTP/1.1 protocol under it.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, NoReturn, Self

import attrs
import httpcore

from adapters.webhooks.destinations import (
    Destination,
    RefusedDestination,
    Resolve,
    check,
    system_resolve,
)

ANSWER_CAP: Final = 64 * 1024  # bytes of an answer's body read, then dropped unread
USER_AGENT: Final = "expense-tracker-webhooks"
# httpx's defaults: connections open at once, kept open when idle, and for how long.
MAX_CONNECTIONS: Final = 100
MAX_KEPT_OPEN: Final = 20
KEPT_OPEN_S: Final = 5.0
# How long a destination's check that passed is used again (see above).
CHECKED_FOR_S: Final = KEPT_OPEN_S


@attrs.frozen
class Attempt:
    """What one post came to: the answer's status, or why there was none."""

    status_code: int | None  # None when no answer
    error: str | None  # short, plain English, never a secret or the URL
    refused: bool = False  # the destination failed its check at delivery time


class WebhookSender:
    """Posts webhook requests over one kept-open HTTP client; safe to share between threads."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        allow_private: bool = False,
        resolve: Resolve = system_resolve,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_s = timeout_s
        self._allow_private = allow_private
        self._resolve = resolve
        self._clock = clock
        # URL -> (when its check stops being used, the destination it passed); shared by the
        # delivery threads: a lost race only checks once more.
        self._checked: dict[str, tuple[float, Destination]] = {}
        self._current = _Current()
        # No proxy (the connection is the checked one) and no redirect followed (it could lead
        # anywhere the check never saw): httpcore does neither.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=MAX_KEPT_OPEN,
            keepalive_expiry=KEPT_OPEN_S,
            network_backend=_PinnedBackend(self._current),
        )
        # The socket operations' own timeouts; the attempt's deadline cuts each (`_left`).
        self._timeouts = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)}

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Attempt:
        """Check the destination, post the body, and tell what came back."""
        try:
            destination = self._destination(url)
        except RefusedDestination as refused:
            return Attempt(status_code=None, error=f"refused destination: {refused}", refused=True)
        self._current.destination = destination
        self._current.deadline = time.monotonic() + self._timeout_s
        parsed = destination.url
        target = httpcore.URL(
            scheme=parsed.raw_scheme, host=parsed.raw_host, port=parsed.port, target=parsed.raw_path
        )
        sent = [(b"user-agent", USER_AGENT.encode())]
        sent += [(k.encode(), v.encode()) for k, v in headers.items()]
        try:
            with self._pool.stream(
                "POST", target, headers=sent, content=body, extensions=self._timeouts
            ) as answer:
                _drop(answer)
                return Attempt(status_code=answer.status, error=None)
        except httpcore.TimeoutException:
            return Attempt(status_code=None, error=f"timeout after {self._timeout_s:g} s")
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            return Attempt(status_code=None, error=_described(exc))
        finally:
            self._current.destination = None

    def _destination(self, url: str) -> Destination:
        """The URL's destination as its last check passed it, checked again when that was
        `CHECKED_FOR_S` ago or more.

        Raises:
            RefusedDestination: see `check`.
        """
        now = self._clock()
        known = self._checked.get(url)
        if known is not None and now < known[0]:
            return known[1]
        destination = check(url, allow_private=self._allow_private, resolve=self._resolve)
        if len(self._checked) >= MAX_CONNECTIONS:  # many receivers: keep the live ones
            self._checked = {u: k for u, k in list(self._checked.items()) if now < k[0]}
        self._checked[url] = (now + CHECKED_FOR_S, destination)
        return destination

    def close(self) -> None:
        """Close the kept-open connections."""
        self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _drop(answer: httpcore.Response) -> None:
    """Read at most `ANSWER_CAP` bytes of the answer's body and forget them.

    The status is the answer: a body that is too long, or does not end before the deadline,
    only costs the connection (closed instead of kept), never the attempt's outcome.
    """
    read = 0
    try:
        for chunk in answer.iter_stream():  # as sent: a compressed body is never inflated
            read += len(chunk)
            if read >= ANSWER_CAP:
                return
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException):
        return


def _described(exc: httpcore.NetworkError | httpcore.ProtocolError) -> str:
    """A transport failure in a few words, with nothing from the request in them."""
    causes = list(_chain(exc))
    if isinstance(exc, httpcore.ConnectError):
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return "connection refused"
        if bad_certificate := next(
            (c for c in causes if isinstance(c, ssl.SSLCertVerificationError)), None
        ):
            return f"TLS certificate not accepted: {bad_certificate.verify_message}"
        if any(isinstance(c, ssl.SSLError) for c in causes):
            return "TLS handshake failed"
        reason = next((c.strerror for c in causes if isinstance(c, OSError) and c.strerror), None)
        return f"could not connect: {reason.lower()}" if reason else "could not connect"
    if isinstance(exc, httpcore.RemoteProtocolError):
        return "no valid HTTP answer"
    if isinstance(exc, httpcore.WriteError):
        return "connection lost while sending"
    if isinstance(exc, httpcore.ReadError):
        return "connection lost while waiting for the answer"
    return f"transport error ({type(exc).__name__})"


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


class _Current(threading.local):
    """The attempt in hand on this thread: httpcore does a sync request's I/O in its caller."""

    destination: Destination | None = None
    deadline: float = 0.0


def _left(current: _Current, timeout: float | None, late: type[Exception]) -> float:
    """The wait allowed to one socket operation: its own timeout, cut to the deadline."""
    left = current.deadline - time.monotonic()
    if left <= 0:
        raise late("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to the checked addresses of the attempt in hand, first one that answers."""

    def __init__(self, current: _Current) -> None:
        self._current = current
        self._system = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        destination = self._current.destination
        if destination is None or (host, port) != (destination.host, destination.port):
            raise httpcore.ConnectError(f"{host}:{port} was not checked")
        failure: httpcore.ConnectError | None = None
        for address in destination.addresses:
            try:
                stream = self._system.connect_tcp(
                    str(address),
                    port,
                    timeout=_left(self._current, timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:  # refused or unreachable: try the next one
                failure = exc
            else:
                return _BoundedStream(stream, self._current)
        raise failure or httpcore.ConnectError("no address to connect to")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> NoReturn:
        raise httpcore.ConnectError("webhooks go over TCP only")


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the deadline of the attempt using it."""

    def __init__(self, stream: httpcore.NetworkStream, current: _Current) -> None:
        self._stream = stream
        self._current = current

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._current, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(self._current, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        wait = _left(self._current, timeout, httpcore.ConnectTimeout)
        return _BoundedStream(
            self._stream.start_tls(ssl_context, server_hostname, wait), self._current
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)
