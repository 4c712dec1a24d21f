"""`expense-tracker worker`: deliver the outbox (webhooks, e-mail) and sweep escalations."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import threading
from typing import Final

from rich.console import Console

from entrypoints.cli.common import FAILED, OK, Commands, Usage, opened, where
from entrypoints.heap import settle_heap
from entrypoints.settings import MEMORY_URL, Settings
from entrypoints.worker import check, worker_for

log = logging.getLogger("expense_tracker.worker")

_STOPPING: Final = (signal.SIGTERM, signal.SIGINT)


def add_commands(commands: Commands) -> None:
    """Add `worker` to the command's parser."""
    parser = commands.add_parser(
        "worker",
        help="deliver webhooks and e-mail, and escalate overdue steps",
        description=(
            "Fan the outbox's notices out into deliveries and make them: signed webhooks, and "
            "e-mail to whoever must act when SMTP_URL is set; every ESCALATION_INTERVAL_S, "
            "sweep overdue steps into escalations. Runs until SIGTERM or Ctrl-C, which let the "
            "attempts in flight finish. Several workers may share one PostgreSQL database. "
            "See docs/notifications.md."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="print the backlog as JSON; exit 1 if the oldest waits longer than --max-age",
    )
    mode.add_argument(
        "--drain",
        action="store_true",
        help="work until every notice is delivered or failed (at most --timeout), then exit",
    )
    parser.add_argument(
        "--max-age", type=float, default=300.0, metavar="S", help="for --check (default 300)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="for --drain (default 60)"
    )
    parser.set_defaults(command=work)


def work(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} is empty in a new process: nothing to deliver")
    with opened(settings) as container:
        if args.check:
            backlog = check(container.relay())
            sys.stdout.write(json.dumps(backlog) + "\n")
            age = backlog["oldest_undelivered_age_s"]
            return FAILED if isinstance(age, float) and age > args.max_age else OK
        with worker_for(container, settings) as worker:
            if args.drain:
                if worker.drain(args.timeout):
                    console.print(
                        f"nothing waits: every notice delivered or failed ({where(settings)})"
                    )
                    return OK
                console.print(
                    f"[red]still waiting after {args.timeout:g} s:[/] {check(worker.relay)}"
                )
                return FAILED
            _stop_on_signals(worker.stop)
            settle_heap()
            log.info("worker started (%s)", where(settings))
            worker.run()
            log.info("worker stopped")
    return OK


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and Ctrl-C end the loop after the round in flight, rather than interrupt it.

    The handlers do nothing themselves: a handler runs on the main thread between two of its
    bytecodes, perhaps while that thread holds `stop`'s own lock (setting it, or waiting on
    it), and setting `stop` there would wait on that lock forever. The signal's number is
    written to a socket instead (`signal.set_wakeup_fd`), and a thread that reads it sets
    `stop`."""
    heard, said = socket.socketpair()
    said.setblocking(False)  # as set_wakeup_fd requires: a full socket drops the number
    signal.set_wakeup_fd(said.fileno(), warn_on_full_buffer=False)
    for signum in _STOPPING:
        signal.signal(signum, _noted)

    def listen(heard: socket.socket, _said: socket.socket) -> None:  # holds both open
        while numbers := heard.recv(64):
            for signum in numbers:
                if signum in _STOPPING and not stop.is_set():
                    log.info(
                        "stopping after the attempts in flight (%s)", signal.Signals(signum).name
                    )
                    stop.set()

    threading.Thread(target=listen, args=(heard, said), name="signals", daemon=True).start()


def _noted(_signum: int, _frame: object) -> None:
    """A stopping signal's handler: its number has reached `_stop_on_signals`'s socket."""
