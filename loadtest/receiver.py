"""A webhook receiver for the benchmark: answers 204 to every POST as fast as it can, and counts.

HTTP/1.1 on asyncio streams over uvloop, connections kept open as the worker's client keeps
them (and closed when asked, `Connection: close` or HTTP/1.0). It reads and drops each body
and checks nothing, so that what is measured is the sender. Listens on 127.0.0.1; on a free
port unless told one, and says which on its first line of output, `{"port": N}`. `GET /count`
answers `{"requests": N}`, the POSTs so far; on SIGTERM or Ctrl-C it prints the same line and
exits.

    python -m loadtest.receiver [--port 9000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from typing import Final

import uvloop

NO_CONTENT: Final = b"HTTP/1.1 204 No Content\r\n\r\n"
NOT_FOUND: Final = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
HEAD_LIMIT: Final = 64 * 1024  # bytes of a request line and headers


class Receiver:
    """The count, and the handling of one connection's requests, one after another."""

    def __init__(self) -> None:
        self.requests = 0

    def counted(self) -> bytes:
        return json.dumps({"requests": self.requests}).encode()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._answer(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client went away, or sent something that is not HTTP: drop it
        except ValueError:
            pass  # a malformed request line, length or chunk
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Read one request and answer it; whether the connection stays open."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        fields = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if fields.get("transfer-encoding") == "chunked":
            await _skip_chunks(reader)
        elif length := int(fields.get("content-length") or 0):
            await reader.readexactly(length)
        if method == "POST":
            self.requests += 1
            writer.write(NO_CONTENT)
        elif method == "GET" and target == "/count":
            body = self.counted()
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
        else:
            writer.write(NOT_FOUND)
        await writer.drain()
        return version == "HTTP/1.1" and fields.get("connection") != "close"


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await _skip_trailers(reader)
            return
        await reader.readexactly(size + 2)  # the chunk and its CRLF


async def _skip_trailers(reader: asyncio.StreamReader) -> None:
    """Up to the blank line that ends a chunked body (trailer fields, if any, dropped)."""
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass


async def _run(port: int) -> Receiver:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.serve, "127.0.0.1", port, limit=HEAD_LIMIT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"port": bound}) + "\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()
    return receiver


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.receiver",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="(a free one)")
    args = parser.parse_args(argv)
    # uvloop, as the server runs on: on the benchmark's 2 cores the receiver stands for a
    # machine elsewhere, and on asyncio's own loop it took twice the CPU per request (0.065 to
    # 0.085 ms against 0.031, `python -m loadtest.worker_cost`).
    receiver = uvloop.run(_run(args.port))
    sys.stdout.write(receiver.counted().decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
