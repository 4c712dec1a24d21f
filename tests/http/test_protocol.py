"""The bounded HTTP protocol over a transport of the test's own: 431 past MAX_HEADER_BYTES however
the head arrives, anything smaller served as uvicorn serves it.

The protocol subclasses uvicorn's httptools protocol (see entrypoints/http/protocol.py for
what it relies on); these tests are what fails, naming the broken assumption, when a uvicorn
upgrade changes any of it.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import tomllib
from pathlib import Path
from typing import Any, Final

import uvicorn
from uvicorn.server import ServerState

from entrypoints.http.protocol import (
    CHECKED_WITH,
    BoundedHttpToolsProtocol,
    HeadHeld,
    max_header_bytes,
)

PYPROJECT: Final = Path(__file__).parents[2] / "pyproject.toml"
LIMIT: Final = max_header_bytes()
ANSWER_WITHIN_S: Final = 5.0


class Transport(asyncio.Transport):
    """Keeps what the protocol writes; closing only marks it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.writes: list[bytes] = []
        self.closed = False
        self.answered = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data
        self.writes.append(bytes(data))
        self.answered.set()

    def close(self) -> None:
        self.closed = True
        self.answered.set()

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    @property
    def status(self) -> str:
        return self.written.split(b" ", 2)[1].decode() if self.written else "none"


FIVE_BYTES: Final = [(b"content-length", b"5")]


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": FIVE_BYTES})
    await send({"type": "http.response.body", "body": b"hello"})


async def _exchange(*parts: bytes, app: Any = _hello) -> Transport:
    """Feed `parts` to a new connection, one read each, until it is answered or closed."""
    config = uvicorn.Config(app, log_config=None, lifespan="off")
    config.load()
    try:
        protocol = BoundedHttpToolsProtocol(
            config=config,
            server_state=ServerState(),
            app_state={},
            _loop=asyncio.get_running_loop(),
        )
    except TypeError as exc:
        raise AssertionError(
            f"uvicorn {uvicorn.__version__} builds HttpToolsProtocol differently "
            f"(checked with {CHECKED_WITH}): {exc}"
        ) from exc
    transport = Transport()
    protocol.connection_made(transport)
    for part in parts:
        if transport.closed:
            break
        protocol.data_received(part)
    await asyncio.wait_for(transport.answered.wait(), ANSWER_WITHIN_S)
    return transport


def test_the_installed_uvicorn_is_the_minor_version_checked_and_pinned() -> None:
    version = importlib.metadata.version("uvicorn")
    pins = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(p for p in pins if p.lower().startswith("uvicorn"))
    assert version.startswith(f"{CHECKED_WITH}."), (
        f"uvicorn {version} is installed; entrypoints/http/protocol.py was checked with "
        f"{CHECKED_WITH}.x: run tests/http/test_protocol.py, then update CHECKED_WITH and the pin"
    )
    assert f">={CHECKED_WITH}" in pin, (
        f"pyproject.toml pins {pin!r}, protocol.py says {CHECKED_WITH}"
    )


def _head(headers: bytes = b"") -> bytes:
    return b"GET /x HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"


def test_a_head_within_the_limit_is_served() -> None:
    padding = b"X-Pad: " + b"a" * (LIMIT - 200) + b"\r\n"
    answer = asyncio.run(_exchange(_head(padding)))
    assert answer.status == "200", (
        f"uvicorn {uvicorn.__version__} no longer serves through the parser callbacks the "
        f"protocol counts in (checked with {CHECKED_WITH}): {bytes(answer.written[:200])!r}"
    )
    assert not answer.closed


def test_an_endless_header_is_cut_off_with_431_as_it_grows() -> None:
    chunk = b"a" * 1024
    chunks = [b"GET /x HTTP/1.1\r\nHost: x\r\nX-Big: ", *[chunk] * (4 * LIMIT // len(chunk))]
    answer = asyncio.run(_exchange(*chunks))
    assert answer.closed
    assert answer.status == "431", (
        f"uvicorn {uvicorn.__version__} no longer passes every read through data_received "
        f"(checked with {CHECKED_WITH}): {bytes(answer.written[:200])!r}"
    )


def test_a_head_over_the_limit_in_one_read_is_answered_431() -> None:
    big = b"X-Big: " + b"a" * LIMIT + b"\r\n"
    answer = asyncio.run(_exchange(_head(big)))
    assert answer.closed
    assert answer.status == "431", (
        f"uvicorn {uvicorn.__version__} no longer answers an error raised in a parser callback "
        f"through send_400_response (checked with {CHECKED_WITH}): {bytes(answer.written[:200])!r}"
    )
    assert answer.written.count(b"HTTP/1.1") == 1


def test_many_small_headers_in_one_read_are_answered_431() -> None:
    many = b"".join(b"X-%d: y\r\n" % i for i in range(LIMIT // 8))
    answer = asyncio.run(_exchange(_head(many)))
    assert answer.status == "431"
    assert answer.closed


def test_a_request_that_is_not_http_still_gets_uvicorns_400() -> None:
    answer = asyncio.run(_exchange(b"HELLO THERE\r\n\r\n"))
    assert answer.status == "400"
    assert answer.closed


def test_a_response_is_written_in_one_write() -> None:
    answer = asyncio.run(_exchange(_head()))
    assert answer.status == "200"
    assert len(answer.writes) == 1, (
        f"uvicorn {uvicorn.__version__} no longer writes a response through the cycle's "
        f"transport made in on_headers_complete (checked with {CHECKED_WITH}): {answer.writes!r}"
    )
    assert answer.writes[0].endswith(b"\r\n\r\nhello")
    assert not answer.closed


def test_a_head_whose_body_is_late_is_written_first_and_alone() -> None:
    body_sent = asyncio.Event()

    async def late(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": FIVE_BYTES})
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"later"})
        body_sent.set()

    async def exchange() -> Transport:
        answer = await _exchange(_head(), app=late)
        head_only = bytes(answer.written)
        await asyncio.wait_for(body_sent.wait(), ANSWER_WITHIN_S)
        assert head_only.startswith(b"HTTP/1.1 200")
        assert head_only.endswith(b"\r\n\r\n")
        return answer

    answer = asyncio.run(exchange())
    assert len(answer.writes) == 2
    assert answer.writes[1] == b"later"


def test_a_held_head_is_written_before_its_connection_closes() -> None:
    async def closing() -> Transport:
        transport = Transport()
        held = HeadHeld(transport, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert transport.writes == []
        held.close()
        return transport

    transport = asyncio.run(closing())
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    assert transport.closed


def test_a_connection_without_keep_alive_gets_its_whole_answer_then_closes() -> None:
    answer = asyncio.run(_exchange(b"GET /x HTTP/1.0\r\nHost: x\r\n\r\n"))
    assert answer.status == "200"
    assert bytes(answer.written).endswith(b"hello")
    assert answer.closed
