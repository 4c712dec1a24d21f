"""What the `expense-tracker` commands share: exit codes, the environment's help, the usage
error, and a container opened for the length of a command."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Final, TypeAlias

from rich.console import Console

from entrypoints.container import Container, container_for
from entrypoints.settings import DEFAULT_DATABASE_URL, MEMORY_URL, METRICS_DIR_VARIABLE, Settings

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
INTERRUPTED: Final = 130

ENVIRONMENT_HELP: Final = f"""\
environment:
  DATABASE_URL    where the data lives (default {DEFAULT_DATABASE_URL});
                  postgresql+psycopg://user:pass@host/db, or {MEMORY_URL} (this process only)
  HOST, PORT      where `serve` listens (default 127.0.0.1, 4000)
  WORKERS         uvicorn worker processes (default 1)
  AUTH_MODE       demo (actor named in the request, as the seed) or token (bearer tokens)
  LOG_LEVEL       DEBUG, INFO (default), WARNING, ERROR
  DB_POOL_SIZE    connections per process (default 10)
  MAX_BODY_BYTES  largest request body accepted (default 65536)
  MAX_IN_FLIGHT   requests a worker serves at once; more are answered 503 (default 64)
  DB_POOL_TIMEOUT_MS       wait for a pooled connection before a 503 (default 5000)
  DB_STATEMENT_TIMEOUT_MS  PostgreSQL statement timeout, 0 for none (default 15000)
  DB_CONNECT_TIMEOUT_S     time to open a database connection (default 5)
  SHUTDOWN_GRACE_S         after SIGTERM, time for requests in flight (default 20)
  BODY_TIMEOUT_S           time for a request body to arrive whole, else 408 (default 10)
  MAX_HEADER_BYTES         largest request line and headers, else 431 (default 16384)
  LOG_FORMAT      json (default off a terminal) or console
  ACCESS_LOG      one line per request: true (default) or false
  METRICS         Prometheus metrics at /metrics: true (default) or false
  METRICS_BY_COMPANY       label the expense counters by company (default false)
  PROMETHEUS_MULTIPROC_DIR where `serve` workers share metrics (default: a temporary one)
  OTEL_EXPORTER_OTLP_ENDPOINT  send OpenTelemetry traces there (default: no tracing)
  WEBHOOK_ALLOW_PRIVATE    let webhooks call loopback and private addresses (default false)
  SMTP_URL        smtp://[user[:password]@]host[:port]: `worker` e-mails approvers (default: none)
  MAIL_FROM, PUBLIC_URL    the e-mails' sender, and where their links point
  ESCALATION_INTERVAL_S    how often `worker` sweeps for overdue steps, 0 never (default 60)
  WORKER_CONCURRENCY, WORKER_IDLE_MS  attempts at once (8), rest when idle (200)

exit codes: 0 done, 1 refused or failed, 2 bad usage or settings
"""

Command = Callable[[argparse.Namespace, Settings, Console], int]
# The parser's subcommands, to which each command group's module adds its own.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_group(commands: Commands, name: str, summary: str) -> Commands:
    """Add a command group (`db`, `seed`...): a command of commands, one of which must be named."""
    group = commands.add_parser(name, help=summary)
    return group.add_subparsers(title="commands", metavar="COMMAND", required=True)


class Usage(Exception):
    """A command was asked for something it cannot do with these settings."""


@contextlib.contextmanager
def opened(settings: Settings) -> Iterator[Container]:
    """A container whose database is disposed of when the command is done.

    Run with a server's PROMETHEUS_MULTIPROC_DIR, a command's counts (the escalations of
    `escalate`) join the server's metrics; its gauges of work in progress leave with it.
    """
    container = container_for(settings)
    try:
        yield container
    finally:
        container.shutdown_resources()
        if settings.metrics and os.environ.get(METRICS_DIR_VARIABLE):
            from entrypoints.metrics import worker_exited

            worker_exited(os.getpid())


def where(settings: Settings) -> str:
    """The database's URL, fit to print."""
    url = settings.database_url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # Never print a password: keep the scheme and what follows the credentials.
    return f"{scheme}://{rest.rpartition('@')[2]}" if "@" in rest else url
