"""`expense-tracker delegation set|show|clear`: who acts for someone while they are away."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from rich.console import Console

from entrypoints.cli.common import OK, Commands, Usage, add_group, opened, where
from entrypoints.settings import MEMORY_URL, Settings
from expense_core.model import UserId
from expense_core.services import ClearDelegation, DelegationState, SetDelegation


def add_commands(commands: Commands) -> None:
    """Add `delegation` and its `set`, `show` and `clear` to the command's parser."""
    delegation_commands = add_group(
        commands, "delegation", "name who acts for someone while they are away"
    )
    set_parser = delegation_commands.add_parser(
        "set",
        help="name a user's delegate for a period, replacing any before",
        description=(
            "From --from (included) until --until (excluded) the delegate may approve or reject "
            "the user's steps where they would be allowed to themselves apart from team scope "
            "(see docs/delegation.md). Times are ISO-8601 with a zone, e.g. 2026-12-01T00:00Z."
        ),
    )
    set_parser.add_argument("--user-id", type=int, required=True, help="who is away")
    set_parser.add_argument("--delegate-id", type=int, required=True, help="who acts for them")
    set_parser.add_argument(
        "--from", dest="starts_at", type=_instant, required=True, metavar="TIME", help="from"
    )
    set_parser.add_argument(
        "--until", dest="ends_at", type=_instant, required=True, metavar="TIME", help="until"
    )
    set_parser.add_argument("--note", help="why, e.g. 'holiday'")
    set_parser.set_defaults(command=delegation_set)
    show_parser = delegation_commands.add_parser("show", help="print a user's delegation")
    show_parser.add_argument("--user-id", type=int, required=True, help="the absent user")
    show_parser.set_defaults(command=delegation_show)
    clear_parser = delegation_commands.add_parser("clear", help="end a user's delegation")
    clear_parser.add_argument("--user-id", type=int, required=True, help="the absent user")
    clear_parser.set_defaults(command=delegation_clear)


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None


def delegation_set(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to set")
    with opened(settings) as container:
        state = container.delegations().set(
            SetDelegation(
                user_id=UserId(args.user_id),
                delegate_id=UserId(args.delegate_id),
                starts_at=args.starts_at,
                ends_at=args.ends_at,
                note=args.note,
            )
        )
    _print_delegation(state)
    return OK


def delegation_show(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with opened(settings) as container:
        state = container.delegations().get(UserId(args.user_id))
    _print_delegation(state)
    return OK


def delegation_clear(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with opened(settings) as container:
        container.delegations().clear(ClearDelegation(user_id=UserId(args.user_id)))
    console.print(f"user {args.user_id}'s delegation has ended ({where(settings)})")
    return OK


def _print_delegation(state: DelegationState) -> None:
    d = state.delegation
    note = "" if d.note is None else f" ({d.note})"
    sys.stdout.write(
        f"user {d.user_id}: user {d.delegate_id} acts for them from {d.starts_at.isoformat()} "
        f"until {d.ends_at.isoformat()}{note}, {'active' if state.active else 'not active'} now\n"
    )
    sys.stdout.flush()
