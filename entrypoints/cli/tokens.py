"""`expense-tracker token issue`: a bearer token for a user (AUTH_MODE=token)."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from entrypoints.cli.common import OK, Commands, Usage, add_group, opened
from entrypoints.settings import MEMORY_URL, Settings
from expense_core.model import UserId


def add_commands(commands: Commands) -> None:
    """Add `token` and its `issue` to the command's parser."""
    token_commands = add_group(commands, "token", "manage API tokens (AUTH_MODE=token)")
    issue_parser = token_commands.add_parser(
        "issue",
        help="issue a bearer token for a user",
        description=(
            "Issue a bearer token for an active user. The token is printed once, alone on the "
            "last line of the output; only its hash is stored."
        ),
    )
    issue_parser.add_argument("--user-id", type=int, required=True, help="the token's user")
    issue_parser.set_defaults(command=token_issue)


def token_issue(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: no token would work")
    if args.user_id < 1:
        raise Usage("--user-id must be a positive integer")
    with opened(settings) as container:
        token = container.access().issue_token(UserId(args.user_id))
    console.print(f"bearer token for user {args.user_id} (shown once; store it now):")
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    return OK
