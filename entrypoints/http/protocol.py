"""uvicorn's HTTP protocol with a bound on the size of a request's head (line and headers), and
a response written in one system call.

uvicorn's httptools protocol takes a request line and headers of any size (httptools, like the
llhttp parser under it, has no limit): a client sending an endless header makes the worker
buffer it all. Past MAX_HEADER_BYTES the request is answered 431 and the connection closed.

No public seam does this, so this adapter stays, and stays small. uvicorn's documented
`h11_max_incomplete_event_size` answers 400, and bounds only a head still arriving: one that
comes in a single read (a 20 KB header, 10,000 small ones) is taken whole. Granian answers 431
itself, but also past 100 headers, and when a request outlasts the shutdown grace period it
drops the connection where uvicorn lets the app answer 503. The adapter relies on four things
of uvicorn's `HttpToolsProtocol` (uvicorn is pinned to the minor version checked, CHECKED_WITH):
- it is built as `(config, server_state, app_state, _loop)` and parses with httptools, calling
  the parser callbacks `on_message_begin`, `on_url`, `on_header`, `on_headers_complete`;
- an exception raised in a callback makes `data_received` answer with `send_400_response(msg)`;
- the connection's transport is `self.transport`;
- `on_headers_complete` makes the request's `RequestResponseCycle` as `self.cycle`, before its
  task first runs, and the cycle writes the response through its own `transport` attribute.

uvicorn writes a response's status line and headers, then its body, in two writes: two system
calls for every answer, one of the costliest lines of a request (`py-spy` under the mix). Each
cycle writes through `HeadHeld`, which joins the two: 4-5 us less server CPU per request on
this machine (a Litestar hello-world under keep-alive load, alternated runs).

tests/http/test_protocol.py drives the class over a transport of its own and fails, naming
what no longer holds, when an upgrade changes any of these.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from entrypoints.settings import Settings

CHECKED_WITH: Final = "0.55"  # uvicorn's minor version; pyproject.toml pins it

TOO_LARGE_BODY: Final = (
    b'{"detail": "the request line and headers are too large", "code": "headers_too_large"}'
)
TOO_LARGE: Final = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(TOO_LARGE_BODY)).encode() + b"\r\n\r\n" + TOO_LARGE_BODY
)


@functools.cache
def max_header_bytes() -> int:
    """MAX_HEADER_BYTES of this process's environment (uvicorn builds protocols by class)."""
    return Settings.from_env().max_header_bytes


class HeadHeld:
    """A connection's transport as one response sees it: its status line and headers are held
    back and written with the first part of its body, one system call where uvicorn makes two
    (a response whose body does not follow at once has them written at the loop's next turn)."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif self._transport.is_closing():
            self._transport.write(data)
        else:
            self._held = data
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadTooLarge(Exception):
    """Raised from a parser callback: uvicorn then answers (`send_400_response`) and closes."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts a request's head twice: the bytes read while it is incomplete (so that an endless
    header is cut off as it grows), and its parsed line and headers (exact, however few reads
    brought them). Each response is written through a `HeadHeld`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._parsed_bytes = 0
        self._in_head = True
        self._too_large = False
        self._limit = max_header_bytes()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._parsed_bytes = True, 0, 0

    def on_url(self, url: bytes) -> None:
        self._parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        # None when the first request upgraded (no cycle is made for it).
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            # The cycle only writes, closes and asks is_closing: what HeadHeld answers.
            cycle.transport = HeadHeld(self.transport, self.loop)  # type: ignore[assignment]

    def _parsed(self, size: int) -> None:
        self._parsed_bytes += size
        if self._parsed_bytes > self._limit:
            self._too_large = True
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        self.transport.write(TOO_LARGE)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in the head after this read: every byte counted belongs to it.
        if self._in_head and self._head_bytes > self._limit and not self.transport.is_closing():
            self.transport.write(TOO_LARGE)
            self.transport.close()
