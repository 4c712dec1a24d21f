"""`expense-tracker escalate`: one escalation sweep of the overdue steps (for cron)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from rich.console import Console

from entrypoints.cli.common import OK, Commands, Usage, opened, where
from entrypoints.settings import MEMORY_URL, Settings
from expense_core.escalation import Escalation
from expense_core.workflow import overdue_by


def add_commands(commands: Commands) -> None:
    """Add `escalate` to the command's parser."""
    escalate_parser = commands.add_parser(
        "escalate",
        help="escalate overdue steps once (for cron)",
        description=(
            "Run one escalation sweep: every required step that has been the current one "
            "longer than its policy step's escalate_after_hours goes to the nearest eligible "
            "person more senior than its approver, else to the company's fallback approver; "
            "if nobody may take it, it stays and one escalation_failed event says so. Prints "
            "one line per step. Two sweeps at once escalate a step once."
        ),
    )
    escalate_parser.add_argument(
        "--as-of",
        metavar="ISO-8601",
        help=(
            "evaluate deadlines at this instant instead of now, with a timezone "
            "(2026-12-01T09:00:00Z): for a missed cron run, or with --dry-run a preview"
        ),
    )
    escalate_parser.add_argument(
        "--dry-run", action="store_true", help="say what would be escalated; change nothing"
    )
    escalate_parser.set_defaults(command=escalate)


def escalate(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    as_of = None if args.as_of is None else _as_of(args.as_of)
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} is empty in a new process: nothing to escalate")
    with opened(settings) as container:
        done = container.escalation().sweep(as_of, dry_run=args.dry_run)
    prefix = "would escalate " if args.dry_run else ""
    for outcome in done:
        sys.stdout.write(f"{prefix}{_escalation_line(outcome)}\n")
    sys.stdout.flush()
    moved = sum(1 for e in done if e.escalated)
    verb = "would be" if args.dry_run else "were"
    console.print(
        f"{moved} step(s) {verb} escalated, {len(done) - moved} could not be"
        f"{' (dry run: nothing changed)' if args.dry_run else ''} ({where(settings)})"
    )
    return OK


def _as_of(raw: str) -> datetime:
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise Usage(
            f"--as-of '{raw}' is not an ISO-8601 instant; e.g. 2026-12-01T09:00:00Z"
        ) from None
    if instant.utcoffset() is None:
        raise Usage(f"--as-of '{raw}' has no timezone; add Z for UTC or an offset like +01:00")
    return instant


def _escalation_line(outcome: Escalation) -> str:
    previous = outcome.previous.user.name
    where = f"expense {outcome.expense_id} step {outcome.step_number}"
    late = overdue_by(outcome.overdue)
    if outcome.approver is None:
        return f"{where}: stays with {previous}, {late}: {outcome.rule}"
    return f"{where}: {previous} -> {outcome.approver.user.name}, {late} ({outcome.rule})"
