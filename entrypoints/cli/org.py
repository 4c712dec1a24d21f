"""`expense-tracker org import|export`: a whole organisation from or to a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from entrypoints import orgfile
from entrypoints.cli.common import OK, Commands, Usage, add_group, opened, where
from entrypoints.settings import MEMORY_URL, Settings
from expense_core.model import CompanyId
from expense_core.services import OrgFiles


def add_commands(commands: Commands) -> None:
    """Add `org` and its `import` and `export` to the command's parser."""
    org_commands = add_group(commands, "org", "import or export a whole organisation")
    import_parser = org_commands.add_parser(
        "import",
        help="create a company, its teams, levels, users and policies from a file",
        description=(
            "Read an organisation file (YAML, or JSON if it ends in .json; see "
            "examples/org.yaml), check all of it, then write it in one transaction. What "
            "already exists (the company by name, teams, levels, users by email, identical "
            "policies) is kept, so a second run changes nothing."
        ),
    )
    import_parser.add_argument("file", type=Path, help="the organisation file")
    import_parser.set_defaults(command=org_import)
    export_parser = org_commands.add_parser(
        "export",
        help="print a company as an organisation file",
        description="Print a company in the format `org import` reads (YAML, or JSON).",
    )
    export_parser.add_argument("--company-id", type=int, required=True, help="the company")
    export_parser.add_argument("--json", action="store_true", help="write JSON, not YAML")
    export_parser.set_defaults(command=org_export)


def org_import(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to import")
    plan = orgfile.load(args.file)
    with opened(settings) as container:
        report = OrgFiles(container.new_uow(), container.clock()).import_org(plan)
    verb = "created" if report.company_created else "found"
    console.print(
        f"company {report.company.id} ({report.company.name}) {verb}; created "
        f"{report.teams} team(s), {report.levels} level(s), {report.users} user(s), "
        f"{report.policies} polic{'y' if report.policies == 1 else 'ies'} ({where(settings)})"
    )
    return OK


def org_export(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if args.company_id < 1:
        raise Usage("--company-id must be a positive integer")
    with opened(settings) as container:
        plan = OrgFiles(container.new_uow()).export_org(CompanyId(args.company_id))
    sys.stdout.write(orgfile.dump(plan, as_json=args.json))
    sys.stdout.flush()
    return OK
