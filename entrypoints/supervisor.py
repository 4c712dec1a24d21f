"""`serve --workers N`: N uvicorn servers in their own processes on one listening socket, which
this process owns and closes first when told to stop.

uvicorn's own supervisor keeps its copy of the socket open until every worker has finished
(closing it first was proposed upstream, Kludex/uvicorn#2010, and not merged): meanwhile the
kernel goes on accepting connections that nobody will answer. Here SIGTERM or SIGINT closes the
socket at once, so new connections are refused while each worker finishes the requests it has
in flight within its grace period. A worker that dies is replaced, as uvicorn's supervisor
does, unless it failed to start: a new one would fail the same way, so the server stops.

Only uvicorn's public API is used: a `Config`, and a `Server` run on sockets handed to it, as
process managers (gunicorn's uvicorn worker) run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
from collections.abc import Callable
from multiprocessing.context import SpawnProcess
from typing import Any, Final

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("expense_tracker.supervisor")

STOP_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)
CHECK_EVERY_S: Final = 0.5  # how soon a dead worker is noticed
BACKLOG: Final = 2048  # uvicorn's default


def supervise(
    app: str,
    workers: int,
    host: str,
    port: int,
    options: dict[str, Any],
    on_exit: Callable[[int], None] | None = None,
) -> bool:
    """Serve the app factory `app` (an import string) from `workers` processes until SIGTERM or
    SIGINT, uvicorn `options` applying to each; False when a worker failed to start.
    `on_exit` hears the pid of each worker that has exited (the metrics forget its gauges)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, port), family=family, backlog=BACKLOG) as listener:
        return asyncio.run(_run(listener, workers, app, options, on_exit or _ignore))


def _ignore(_: int) -> None:
    """No one listens for exits."""


async def _run(
    listener: socket.socket,
    workers: int,
    app: str,
    options: dict[str, Any],
    on_exit: Callable[[int], None],
) -> bool:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    spawn = multiprocessing.get_context("spawn")

    def start() -> SpawnProcess:
        worker = spawn.Process(target=_serve, args=(app, options, listener))
        worker.start()
        return worker

    running = [start() for _ in range(workers)]
    failed = False
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_EVERY_S)
            if stop.is_set():
                break
            for index, worker in enumerate(running):
                if worker.is_alive():
                    continue
                if worker.exitcode == STARTUP_FAILURE:
                    log.error("a worker failed to start: stopping")
                    failed = True
                    stop.set()
                    break
                log.warning("worker %s exited (%s): starting another", worker.pid, worker.exitcode)
                if worker.pid is not None:
                    on_exit(worker.pid)
                running[index] = start()
    finally:
        # Refused from here on, rather than queued where nobody will answer them.
        listener.close()
        for worker in running:
            worker.terminate()  # SIGTERM: uvicorn finishes the requests in flight, then exits
        for worker in running:
            worker.join()
            if worker.pid is not None:
                on_exit(worker.pid)
    return not failed


def _serve(app: str, options: dict[str, Any], listener: socket.socket) -> None:
    """A worker process: one uvicorn server on the socket its supervisor listens on."""
    uvicorn.Server(uvicorn.Config(app, factory=True, **options)).run(sockets=[listener])
