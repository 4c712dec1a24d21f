"""`expense-tracker token issue|list|revoke|link`: bearer tokens for users (AUTH_MODE=token),
and one-time sign-in links to the pages.

Run by whoever holds the database, so for anyone: issue a token (how long it lives, a name),
list a user's or a company's tokens without their secrets, revoke one by its id.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from rich.console import Console

from entrypoints.cli.common import OK, Commands, Usage, add_group, opened, where
from entrypoints.mail import sign_in_link_url as link_url
from entrypoints.settings import MEMORY_URL, Settings
from expense_core.model import CompanyId, UserId
from expense_core.services import IssueToken, ListTokens, RevokeToken, SignInLinks
from expense_core.tokens import DEFAULT_TTL, MAX_TTL, MIN_TTL, NAME_LIMIT, ApiToken

_TTL = re.compile(r"(\d{1,6})([hd])")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1)}
_COLUMNS = ("id", "user", "name", "created", "expires", "last used", "revoked")


def add_commands(commands: Commands) -> None:
    """Add `token` and its `issue`, `list` and `revoke` to the command's parser."""
    token_commands = add_group(commands, "token", "manage API tokens (AUTH_MODE=token)")
    issue_parser = token_commands.add_parser(
        "issue",
        help="issue a bearer token for a user",
        description=(
            "Issue a bearer token for an active user. The token is printed once, alone on the "
            "last line of the output; only its hash is stored. It stops working when it "
            "expires (--ttl) or is revoked (`token revoke`)."
        ),
    )
    issue_parser.add_argument("--user-id", type=int, required=True, help="the token's user")
    issue_parser.add_argument(
        "--ttl",
        type=_ttl,
        default=DEFAULT_TTL,
        metavar="SPAN",
        help=f"how long it lives, in hours or days: 12h, 30d... (1h to {MAX_TTL.days}d; "
        f"default {DEFAULT_TTL.days}d)",
    )
    issue_parser.add_argument(
        "--name", type=_name, help="a label that tells the user's tokens apart, e.g. laptop"
    )
    issue_parser.set_defaults(command=token_issue)

    list_parser = token_commands.add_parser(
        "list",
        help="list a user's or a company's tokens (never their secrets)",
        description="Tokens newest first, revoked and expired ones too; times in UTC.",
    )
    whose = list_parser.add_mutually_exclusive_group(required=True)
    whose.add_argument("--user-id", type=int, help="the user whose tokens to list")
    whose.add_argument("--company-id", type=int, help="the company whose tokens to list")
    list_parser.set_defaults(command=token_list)

    revoke_parser = token_commands.add_parser(
        "revoke",
        help="revoke a token: from the next request on it answers 401",
        description=(
            "Revoke a token by its id (the 16 hex digits after `et_`, as `token list` shows). "
            "Every server process refuses it from its next request on."
        ),
    )
    revoke_parser.add_argument("token_id", metavar="TOKEN_ID", help="the token's id")
    revoke_parser.set_defaults(command=token_revoke)

    link_parser = token_commands.add_parser(
        "link",
        help="print a one-time sign-in link to the pages for a user",
        description=(
            "Print a link under PUBLIC_URL that signs an active user in to the pages once, "
            "within 15 minutes; `token list` shows it as a 'sign-in link' and `token revoke` "
            "ends it. The link is printed alone on the last line."
        ),
    )
    link_parser.add_argument("--user-id", type=int, required=True, help="whom it signs in")
    link_parser.set_defaults(command=token_link)


def _ttl(text: str) -> timedelta:
    found = _TTL.fullmatch(text.strip())
    if found is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give hours or days, e.g. 12h, 30d or 90d")
    ttl = int(found.group(1)) * _UNITS[found.group(2)]
    if not MIN_TTL <= ttl <= MAX_TTL:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a token lives from 1h to {MAX_TTL.days}d ({MAX_TTL.days // 365} years)"
        )
    return ttl


def _name(text: str) -> str:
    if not text.strip() or len(text) > NAME_LIMIT:
        raise argparse.ArgumentTypeError(f"a name has 1 to {NAME_LIMIT} characters")
    return text


def _positive(value: int, option: str) -> None:
    if value < 1:
        raise Usage(f"{option} must be a positive integer")


def token_issue(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: no token would work")
    _positive(args.user_id, "--user-id")
    with opened(settings) as container:
        issued = container.access().issue(
            IssueToken(user_id=UserId(args.user_id), ttl=args.ttl, name=args.name)
        )
    record = issued.record
    console.print(
        f"bearer token {record.id} for user {record.user_id}, expires {_when(record.expires_at)} "
        "UTC (shown once; store it now):"
    )
    sys.stdout.write(issued.token + "\n")
    sys.stdout.flush()
    return OK


def token_link(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: no link would work")
    _positive(args.user_id, "--user-id")
    with opened(settings) as container:
        issued = SignInLinks(container.new_uow(), container.clock()).issue(UserId(args.user_id))
    record = issued.record
    console.print(
        f"sign-in link {record.id} for user {record.user_id}, works once until "
        f"{_when(record.expires_at)} UTC:"
    )
    sys.stdout.write(link_url(settings.public_url, issued.code) + "\n")
    sys.stdout.flush()
    return OK


def token_list(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if args.user_id is not None:
        _positive(args.user_id, "--user-id")
        query = ListTokens(user_id=UserId(args.user_id))
    else:
        _positive(args.company_id, "--company-id")
        query = ListTokens(company_id=CompanyId(args.company_id))
    with opened(settings) as container:
        tokens = container.access().tokens(query)
    if not tokens:
        console.print("no tokens")
        return OK
    sys.stdout.write(_table(tokens))
    sys.stdout.flush()
    return OK


def token_revoke(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with opened(settings) as container:
        token = container.access().revoke(RevokeToken(token_id=args.token_id.strip()))
    console.print(
        f"token {token.id} of user {token.user_id} is revoked since "
        f"{_when(token.revoked_at)} UTC ({where(settings)})"
    )
    return OK


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _shown(name: str | None) -> str:
    # Names come from the API too: no control character (an escape sequence, a line break)
    # reaches the terminal.
    return "-" if name is None else "".join(c if c.isprintable() else "?" for c in name)


def _table(tokens: Sequence[ApiToken]) -> str:
    """The tokens as aligned columns under a header, one line each; times in UTC."""
    rows = [_COLUMNS] + [
        (
            t.id,
            str(t.user_id),
            _shown(t.name),
            _when(t.created_at),
            _when(t.expires_at),
            _when(t.last_used_at),
            _when(t.revoked_at),
        )
        for t in tokens
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )
