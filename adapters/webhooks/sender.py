"""One webhook attempt over HTTP: post, read a little of the answer, say what came of it.

The destination is checked at delivery time, because DNS can change, and the connection goes
only to an address that check passed: the client is told the checked addresses of the
destination's host (it asks no resolver for it), and every socket it opens is held to the
addresses of the destination in hand, so a name that resolves elsewhere a moment later (DNS
rebinding) cannot steer it. The URL keeps its host name, so the Host header, TLS server name and
certificate check are the name's.

A check that passed is used again for `CHECKED_FOR_S`, no longer than a kept-open connection
to an address it passed is used again anyway: parsing and resolving the URL afresh for every
attempt cost as much as signing and encoding it, and asked DNS a thousand times a second for one
receiver. What is reused is the check's own answer (the addresses it passed, which alone may be
connected to), so a private address is never connected to; a refusal is never reused, so a
destination that is fixed is called at its next attempt.

One deadline bounds the whole attempt (connect, TLS, send, answer), so a receiver dripping bytes
cannot hold a worker longer. Once an answer's head has arrived its status is the outcome, what
becomes of its body after that only costs the connection.

The requests are made by libcurl (pycurl), one handle, with its kept-open connections, per
thread: the whole exchange runs in C without the interpreter's lock. On httpcore's pool (and
h11's protocol in Python) an attempt cost the worker about 0.15 ms of CPU alone and 0.3 ms with
eight delivery threads contending for the lock; on libcurl 0.02-0.04 ms either way.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from ipaddress import IPv6Address, ip_address
from typing import Any, Final, Self

import attrs
import pycurl

from adapters.webhooks.destinations import (
    Destination,
    IPAddress,
    RefusedDestination,
    Resolve,
    check,
    system_resolve,
)

ANSWER_CAP: Final = 64 * 1024  # bytes of an answer's body read, then dropped unread
USER_AGENT: Final = "expense-tracker-webhooks"
# Connections kept open per delivery thread when idle, and for how long; receivers' URLs whose
# checks are kept.
MAX_KEPT_OPEN: Final = 20
KEPT_OPEN_S: Final = 5
MAX_CHECKED: Final = 100
# How long a destination's check that passed is used again (see above).
CHECKED_FOR_S: Final = KEPT_OPEN_S
# What libcurl's failures come to, in a few words with nothing from the request in them.
_SAID: Final = {
    pycurl.E_SSL_CONNECT_ERROR: "TLS handshake failed",
    pycurl.E_GOT_NOTHING: "no valid HTTP answer",
    8: "no valid HTTP answer",  # CURLE_WEIRD_SERVER_REPLY
    pycurl.E_SEND_ERROR: "connection lost while sending",
    pycurl.E_RECV_ERROR: "connection lost while waiting for the answer",
    pycurl.E_PARTIAL_FILE: "connection lost while waiting for the answer",
}
# How libcurl words a certificate's refusal, and how we do (without the host's name).
_CERTIFICATE_PROBLEM: Final = re.compile(
    r"(?:verify result|certificate problem): (?P<why>[^(]+?)(?: \(\d+\))?$"
)
_NOT_FOR_THE_NAME: Final = "it is not valid for the destination's host name"


@attrs.frozen
class Attempt:
    """What one post came to: the answer's status, or why there was none."""

    status_code: int | None  # None when no answer
    error: str | None  # short, plain English, never a secret or the URL
    refused: bool = False  # the destination failed its check at delivery time


class WebhookSender:
    """Posts webhook requests, each thread over its own kept-open connections; safe to share
    between threads."""

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
        self._own = threading.local()
        self._lock = threading.Lock()
        self._opened: list[_Client] = []

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Attempt:
        """Check the destination, post the body, and tell what came back."""
        try:
            destination = self._destination(url)
        except RefusedDestination as refused:
            return Attempt(status_code=None, error=f"refused destination: {refused}", refused=True)
        client: _Client | None = getattr(self._own, "client", None)
        if client is None:
            client = self._own.client = _Client(self._timeout_s)
            with self._lock:
                self._opened.append(client)
        return client.post(destination, headers, body)

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
        if len(self._checked) >= MAX_CHECKED:  # many receivers: keep the live ones
            self._checked = {u: k for u, k in list(self._checked.items()) if now < k[0]}
        self._checked[url] = (now + CHECKED_FOR_S, destination)
        return destination

    def close(self) -> None:
        """Close the kept-open connections (of every thread: call it once they are done)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for client in opened:
            client.close()
        self._own = threading.local()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Client:
    """One thread's libcurl handle, and the attempt it is making."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._destination: Destination | None = None
        self._status = 0
        self._head_ended = False
        self._read = 0
        self._pinned: dict[tuple[str, int], tuple[IPAddress, ...]] = {}
        self._sockets: list[socket.socket] = []
        curl = self._curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals: we run on threads
        # No proxy, whatever the environment says (the connection is the checked one), no
        # redirect followed (it could lead anywhere the check never saw), http(s) only.
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        # HTTP/1.1 over TLS too, as receivers of webhooks are built for (libcurl would offer
        # HTTP/2 to an https URL).
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.TIMEOUT_MS, max(1, round(timeout_s * 1000)))
        curl.setopt(pycurl.USERAGENT, USER_AGENT)
        curl.setopt(pycurl.MAXCONNECTS, MAX_KEPT_OPEN)
        curl.setopt(pycurl.MAXAGE_CONN, KEPT_OPEN_S)
        curl.setopt(pycurl.OPENSOCKETFUNCTION, self._open)
        curl.setopt(pycurl.HEADERFUNCTION, self._header)
        curl.setopt(pycurl.WRITEFUNCTION, self._body)
        # The system's certificate authorities, as Python's own TLS would trust.
        trusted = ssl.get_default_verify_paths()
        if trusted.cafile:
            curl.setopt(pycurl.CAINFO, trusted.cafile)
        if trusted.capath:
            curl.setopt(pycurl.CAPATH, trusted.capath)

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> Attempt:
        curl = self._curl
        self._pin(destination)
        self._destination, self._status, self._head_ended, self._read = destination, 0, False, 0
        curl.setopt(pycurl.URL, str(destination.url))
        sent = [f"{name}: {value}" for name, value in headers.items()]
        sent.append("Expect:")  # the body goes at once, never after a 100 Continue
        curl.setopt(pycurl.HTTPHEADER, sent)
        curl.setopt(pycurl.POSTFIELDS, body)
        try:
            curl.perform()
        except pycurl.error as exc:
            if self._head_ended:  # the body was cut short, capped or late: the status counts
                return Attempt(status_code=self._status, error=None)
            return Attempt(status_code=None, error=self._described(exc))
        finally:
            self._destination = None
            for opened in self._sockets:
                opened.close()
            self._sockets.clear()
        return Attempt(status_code=curl.getinfo(pycurl.RESPONSE_CODE), error=None)

    def _pin(self, destination: Destination) -> None:
        """Have the handle connect to the destination's host at the checked addresses only."""
        where = (destination.host, destination.port)
        if self._pinned.get(where) == destination.addresses or destination.by_address:
            return
        addresses = ",".join(_bracketed(a) for a in destination.addresses)
        host = f"{destination.host}:{destination.port}"
        self._curl.setopt(pycurl.RESOLVE, [f"-{host}", f"{host}:{addresses}"])
        self._pinned[where] = destination.addresses

    def _open(self, purpose: int, address: Any) -> socket.socket | int:
        """A socket to `address` if the attempt in hand may connect there: one of its
        destination's checked addresses, at its port."""
        family, kind, protocol, peer = address
        destination = self._destination
        if destination is None or peer[1] != destination.port:
            return pycurl.SOCKET_BAD
        try:
            wanted = ip_address(peer[0])
        except ValueError:
            return pycurl.SOCKET_BAD
        if wanted not in destination.addresses:
            return pycurl.SOCKET_BAD
        opened = socket.socket(family, kind, protocol)
        self._sockets.append(opened)  # pycurl connects a copy of it: closed after the attempt
        return opened

    def _header(self, line: bytes) -> None:
        """Follow the answer's head: its status line, then its end (an empty line). A head of
        1xx is followed by another."""
        if line.startswith(b"HTTP/"):
            parts = line.split(None, 2)
            self._status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        elif line in (b"\r\n", b"\n"):
            self._head_ended = self._status >= 200

    def _body(self, chunk: bytes) -> int | None:
        """Count the answer's body and drop it; past `ANSWER_CAP`, stop reading it (the
        transfer fails, the status stands). A compressed body is never inflated."""
        self._read += len(chunk)
        return 0 if self._read >= ANSWER_CAP else None

    def _described(self, exc: pycurl.error) -> str:
        """A transport failure in a few words, with nothing from the request in them."""
        if len(exc.args) != 2:
            return "transport error"
        code, message = exc.args
        if code == pycurl.E_OPERATION_TIMEDOUT:
            return f"timeout after {self._timeout_s:g} s"
        if code == pycurl.E_COULDNT_CONNECT:
            number = self._curl.getinfo(pycurl.OS_ERRNO)
            if number == errno.ECONNREFUSED:
                return "connection refused"
            return (
                f"could not connect: {os.strerror(number).lower()}"
                if number
                else "could not connect"
            )
        if code == pycurl.E_PEER_FAILED_VERIFICATION:
            return f"TLS certificate not accepted: {_certificate_problem(message)}"
        return _SAID.get(code, f"transport error (libcurl error {code})")

    def close(self) -> None:
        self._curl.close()


def _certificate_problem(message: str) -> str:
    """What libcurl says is wrong with a certificate, in our words."""
    if "subject name" in message or "does not match" in message:
        return _NOT_FOR_THE_NAME
    found = _CERTIFICATE_PROBLEM.search(message)
    return found["why"].strip() if found else "it could not be verified"


def _bracketed(address: IPAddress) -> str:
    return f"[{address}]" if isinstance(address, IPv6Address) else str(address)
