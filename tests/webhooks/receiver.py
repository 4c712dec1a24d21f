"""A real HTTP receiver for webhook tests: it records what it is sent and answers as told.

For the sender's tests and the worker's and fault tests alike: start it (or use it as a
context manager), point a destination at `url`, read `requests` or `wait_for` them, and change
its answers while it runs: a standing answer per path, a queue of statuses answered first, a
hang that holds every request until released, bodies that never end, headers that drip.
"""

from __future__ import annotations

import ssl
import threading
from collections import deque
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple, Self, cast
from urllib.parse import urlsplit

import attrs

HOLD_LIMIT_S = 60.0  # a hung request is answered, a drip ended, after this at the latest
PACE_S = 0.05  # between the bytes of a drip; how soon `stop` is noticed


class Received(NamedTuple):
    """One request as it arrived: path (with its query), headers (names lower-cased), body."""

    path: str
    headers: dict[str, str]
    body: bytes


@attrs.frozen
class Answer:
    """How the receiver answers a request."""

    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    endless: bool = False  # after the headers, body bytes until the client goes away
    drip: bool = False  # the status line and a header one byte at a time, never finished


class Receiver:
    """A `ThreadingHTTPServer` on 127.0.0.1 (a free port unless told), in a thread of its own."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        """Listen on `port` (0: a free one), e.g. one a destination named while nothing
        listened there; over TLS with `tls` (a server context)."""
        self._server = _Server((host, port), self)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": PACE_S}, daemon=True
        )
        self._changed = threading.Condition()
        self._requests: list[Received] = []
        self._answers: dict[str | None, Answer] = {}
        self._queued: dict[str | None, deque[int]] = {}
        self._released = threading.Event()
        self._released.set()
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash: `f"{receiver.url}/hooks/1"`."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Received]:
        """What has arrived so far, oldest first (a copy)."""
        with self._changed:
            return list(self._requests)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung and endless answers end too."""
        self.stopping.set()
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def answer(
        self,
        status: int = 200,
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        endless: bool = False,
        drip: bool = False,
    ) -> None:
        """Answer requests to `path` (its query aside; None: every path without its own) so."""
        with self._changed:
            self._answers[path] = Answer(status, dict(headers or {}), body, endless, drip)

    def queue(self, *statuses: int, path: str | None = None) -> None:
        """Answer the next requests to `path` with these statuses, one each, in order."""
        with self._changed:
            self._queued.setdefault(path, deque()).extend(statuses)

    def hang(self) -> None:
        """Hold every request from now on, after recording it, until `release`."""
        self._released.clear()

    def release(self) -> None:
        """Let held requests be answered, and answer the next ones at once."""
        self._released.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once at least `count` have arrived.

        Raises:
            TimeoutError: fewer arrived within `timeout` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{len(self._requests)} of {count} requests arrived")
            return list(self._requests)

    def _record(self, received: Received) -> Answer:
        path = urlsplit(received.path).path
        with self._changed:
            self._requests.append(received)
            self._changed.notify_all()
            for key in (path, None):
                if queued := self._queued.get(key):
                    return attrs.evolve(self._answer_for(path), status=queued.popleft())
            return self._answer_for(path)

    def _answer_for(self, path: str) -> Answer:
        return self._answers.get(path) or self._answers.get(None) or Answer()

    def _hold(self) -> None:
        self._released.wait(HOLD_LIMIT_S)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        super().__init__(address, _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
    timeout = 30  # an idle kept-alive connection does not hold its thread forever

    def do_POST(self) -> None:
        receiver = cast(_Server, self.server).receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = receiver._record(Received(self.path, headers, body))
        receiver._hold()
        try:
            if answer.drip:
                self._drip(receiver)
            elif answer.endless:
                self._flood(receiver, answer)
            else:
                self._send(answer)
        except OSError:  # the client went away (timed out, or read enough): nothing to answer
            self.close_connection = True

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _flood(self, receiver: Receiver, answer: Answer) -> None:
        self.close_connection = True
        self.send_response(answer.status)
        self.send_header("connection", "close")  # the body ends when the connection does
        self.end_headers()
        chunk = answer.body or b"x" * 65536
        while not receiver.stopping.is_set():
            self.wfile.write(chunk)

    def _drip(self, receiver: Receiver) -> None:
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\nx-drip: ")
        for _ in range(int(HOLD_LIMIT_S / PACE_S)):  # then the connection just closes
            if receiver.stopping.wait(PACE_S):
                return
            self.wfile.write(b"a")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read `requests`, not the log."""
