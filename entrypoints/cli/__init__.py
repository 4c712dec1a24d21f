"""The `expense-tracker` command: serve the API, migrate the database, seed it, issue tokens,
escalate overdue steps, name delegates, deliver notifications.

Configuration comes from the environment (see `Settings.from_env`). Exit codes: 0 done,
1 refused or failed (an unknown user, an unreachable database...), 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from rich.console import Console

from entrypoints.cli import db, delegation, escalate, org, seed, serve, tokens, worker
from entrypoints.cli.common import (
    ENVIRONMENT_HELP,
    FAILED,
    INTERRUPTED,
    USAGE,
    Command,
    Usage,
)
from entrypoints.settings import InvalidSetting, Settings, configure_logging
from expense_core.errors import DomainError

log = logging.getLogger("expense_tracker.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        settings = Settings.from_env()
    except InvalidSetting as exc:
        console.print(f"[red]error:[/] {exc}")
        return USAGE
    configure_logging(settings)
    command: Command = args.command
    try:
        return command(args, settings, console)
    except Usage as exc:
        console.print(f"[red]error:[/] {exc}")
        return USAGE
    except InvalidSetting as exc:
        console.print(f"[red]error:[/] {exc}")
        return USAGE
    except DomainError as exc:
        console.print(f"[red]error:[/] {exc.message} [dim]({exc.code})[/]")
        return FAILED
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:
        # Operators get the cause in one line; the traceback only with LOG_LEVEL=DEBUG.
        log.debug("command failed", exc_info=exc)
        console.print(f"[red]error:[/] {_one_line(exc)}")
        return FAILED


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="expense-tracker",
        description="Expense tracker: multi-step approval workflows behind a REST API.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for group in (serve, db, seed, tokens, org, escalate, delegation, worker):
        group.add_commands(commands)
    return parser
