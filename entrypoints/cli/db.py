"""`expense-tracker db upgrade`: create or migrate the schema."""

from __future__ import annotations

import argparse

from rich.console import Console

from entrypoints.cli.common import OK, Commands, add_group, opened, where
from entrypoints.settings import Settings


def add_commands(commands: Commands) -> None:
    """Add `db` and its `upgrade` to the command's parser."""
    db_commands = add_group(commands, "db", "manage the database schema")
    upgrade_parser = db_commands.add_parser(
        "upgrade",
        help="create or migrate the schema to the newest version",
        description="Create the tables, or migrate them to the newest version (idempotent).",
    )
    upgrade_parser.set_defaults(command=db_upgrade)


def db_upgrade(_: argparse.Namespace, settings: Settings, console: Console) -> int:
    with opened(settings) as container:
        container.database().upgrade()
    console.print(f"database schema is up to date ({where(settings)})")
    return OK
