"""The `expense-tracker` command: serve the API, migrate the database, seed it, issue tokens,
escalate overdue steps.

Configuration comes from the environment (see `Settings.from_env`). Exit codes: 0 done,
1 refused or failed (an unknown user, an unreachable database...), 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from entrypoints import orgfile, synthetic
from entrypoints.container import Container, container_for
from entrypoints.settings import (
    DEFAULT_DATABASE_URL,
    MEMORY_URL,
    InvalidSetting,
    Settings,
    configure_logging,
)
from expense_core import demo
from expense_core.errors import DomainError
from expense_core.escalation import Escalation
from expense_core.model import CompanyId, UserId
from expense_core.services import OrgFiles
from expense_core.workflow import overdue_by

log = logging.getLogger("expense_tracker.cli")

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
INTERRUPTED: Final = 130
APP_FACTORY: Final = "entrypoints.http.app:app_from_env"

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

exit codes: 0 done, 1 refused or failed, 2 bad usage or settings
"""

Command = Callable[[argparse.Namespace, Settings, Console], int]


class Usage(Exception):
    """A command was asked for something it cannot do with these settings."""


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

    serve_parser = commands.add_parser(
        "serve",
        help="serve the HTTP API",
        description="Serve the HTTP API with uvicorn (Swagger UI at /docs, ReDoc at /redoc).",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_parser.add_argument("--host", help="interface to listen on (default: HOST or 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port to listen on (default: PORT or 4000)")
    serve_parser.add_argument(
        "--workers", type=int, help="worker processes (default: WORKERS or 1)"
    )
    serve_parser.add_argument(
        "--seed-demo",
        action="store_true",
        help="install the seed's demo organisation first (handy with DATABASE_URL=memory://)",
    )
    serve_parser.set_defaults(command=serve)

    db_parser = commands.add_parser("db", help="manage the database schema")
    db_commands = db_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    upgrade_parser = db_commands.add_parser(
        "upgrade",
        help="create or migrate the schema to the newest version",
        description="Create the tables, or migrate them to the newest version (idempotent).",
    )
    upgrade_parser.set_defaults(command=db_upgrade)

    seed_parser = commands.add_parser("seed", help="load data")
    seed_commands = seed_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    demo_parser = seed_commands.add_parser(
        "demo",
        help="install the seed's demo organisation (idempotent)",
        description=(
            "Install TechCorp Solutions: 7 people on a 7-level ladder (Alice Chen, CTO, ... "
            "Grace Taylor, SDE3) and the Small Equipment, Large Equipment and Business Travel "
            "policies. On an empty database the ids are the seed's (users 1-7, policies 1-3); "
            "running it again changes nothing."
        ),
    )
    demo_parser.set_defaults(command=seed_demo)
    synthetic_parser = seed_commands.add_parser(
        "synthetic",
        help="add synthetic companies for load tests (each run adds new ones)",
        description=(
            "Add companies of product teams on 7-level ladders (CTO ... SDE3, everyone reporting "
            "one rung up) plus a company-wide Finance team, with Small Equipment, Large "
            "Equipment (manager, SEM, AD, Finance) and Business Travel policies; then submit "
            "expenses across them, about half left pending. --plan writes what a load "
            "generator needs (companies, submitters, policies) as JSON. On PostgreSQL the rows "
            "are written in bulk in one transaction (other writers wait for it)."
        ),
    )
    synthetic_parser.add_argument(
        "--companies", type=int, default=10, help="companies to add (default 10)"
    )
    synthetic_parser.add_argument(
        "--users-per-company",
        type=int,
        default=500,
        help=f"people in each company (default 500, at least {synthetic.MIN_USERS})",
    )
    synthetic_parser.add_argument(
        "--expenses", type=int, default=1000, help="expenses to submit in all (default 1000)"
    )
    synthetic_parser.add_argument(
        "--seed", type=int, default=1, help="random seed: same seed, same organisations"
    )
    synthetic_parser.add_argument("--plan", type=Path, help="write the load plan (JSON) here")
    synthetic_parser.set_defaults(command=seed_synthetic)

    token_parser = commands.add_parser("token", help="manage API tokens (AUTH_MODE=token)")
    token_commands = token_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
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

    org_parser = commands.add_parser("org", help="import or export a whole organisation")
    org_commands = org_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
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
    return parser


# --- commands --------------------------------------------------------------------------------


def serve(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    import uvicorn

    from entrypoints.http import create_app
    from entrypoints.http.protocol import BoundedHttpToolsProtocol
    from entrypoints.supervisor import supervise

    changes = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = settings.replace(**{k: v for k, v in changes.items() if v is not None})
    if settings.is_memory and settings.workers > 1:
        raise Usage(f"DATABASE_URL={MEMORY_URL} keeps data in one process: use 1 worker")
    container = container_for(settings)
    database = container.database()
    database.ping()
    if args.seed_demo:
        demo.install_demo(container.new_uow())
    console.print(
        f"serving on http://{settings.host}:{settings.port} "
        f"([bold]{settings.auth_mode}[/] auth, {settings.workers} worker(s), "
        f"docs at /docs)"
    )
    options: dict[str, Any] = {
        "log_level": settings.log_level.lower(),
        "log_config": None,
        "server_header": False,
        # After SIGTERM, requests in flight get this long; then the process exits regardless.
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        # uvicorn's httptools protocol, with a bound on the size of a request's headers.
        "http": BoundedHttpToolsProtocol,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(container), host=settings.host, port=settings.port, **options)
        return OK
    # Each worker process builds its own app (and connection pool) from the environment.
    container.shutdown_resources()
    started = supervise(APP_FACTORY, settings.workers, settings.host, settings.port, options)
    return OK if started else FAILED


def db_upgrade(_: argparse.Namespace, settings: Settings, console: Console) -> int:
    with _opened(settings) as container:
        container.database().upgrade()
    console.print(f"database schema is up to date ({_where(settings)})")
    return OK


def seed_demo(__: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to seed")
    with _opened(settings) as container:
        new_uow = container.new_uow()
        company = demo.install_demo(new_uow)
        with new_uow() as uow:
            people = [uow.org.user_by_email(company.id, p[3]) for p in demo.PEOPLE]
            policies = [
                p
                for category in dict.fromkeys(p[0] for p in demo.POLICIES)
                for p in uow.org.policies(company.id, category)
            ]
    table = Table(title=f"{company.name} (company {company.id})")
    table.add_column("user id", justify="right")
    table.add_column("name")
    table.add_column("level")
    for user, person in zip(people, demo.PEOPLE, strict=True):
        if user is not None:
            table.add_row(str(user.id), user.name, person[1])
    console.print(table)
    for policy in sorted(policies, key=lambda p: p.id):
        console.print(
            f"policy {policy.id}: {policy.name} ({policy.category}, "
            f"{policy.min_amount}-{policy.max_amount}, {len(policy.steps)} step(s))"
        )
    console.print(f"demo organisation is installed ({_where(settings)})")
    return OK


def seed_synthetic(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to seed")
    if args.companies < 1 or args.expenses < 0 or args.users_per_company < synthetic.MIN_USERS:
        raise Usage(
            f"--companies must be at least 1, --users-per-company at least "
            f"{synthetic.MIN_USERS} and --expenses at least 0"
        )
    total = synthetic.progress_steps(args.companies, args.users_per_company, args.expenses)
    with _opened(settings) as container, Progress(console=console, transient=True) as progress:
        task = progress.add_task("seeding people, then expenses", total=total)
        made = synthetic.seed_bulk(
            container.bulk_loader(),
            container.clock(),
            companies=args.companies,
            users_per_company=args.users_per_company,
            expenses=args.expenses,
            random_seed=args.seed,
            advance=lambda n: progress.advance(task, n),
        )
    for company in made.companies:
        console.print(
            f"company {company.company_id}: {company.name}, {company.users} people, "
            f"{len(company.submitters)} submitters, policies {sorted(company.policies.values())}"
        )
    if args.plan is not None:
        made.write_plan(args.plan)
        console.print(f"load plan written to {args.plan}")
    console.print(
        f"{len(made.companies)} synthetic companies and {made.expenses} expenses added "
        f"({_where(settings)})"
    )
    return OK


def token_issue(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: no token would work")
    if args.user_id < 1:
        raise Usage("--user-id must be a positive integer")
    with _opened(settings) as container:
        token = container.access().issue_token(UserId(args.user_id))
    console.print(f"bearer token for user {args.user_id} (shown once; store it now):")
    sys.stdout.write(token + "\n")
    sys.stdout.flush()
    return OK


def org_import(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to import")
    plan = orgfile.load(args.file)
    with _opened(settings) as container:
        report = OrgFiles(container.new_uow()).import_org(plan)
    verb = "created" if report.company_created else "found"
    console.print(
        f"company {report.company.id} ({report.company.name}) {verb}; created "
        f"{report.teams} team(s), {report.levels} level(s), {report.users} user(s), "
        f"{report.policies} polic{'y' if report.policies == 1 else 'ies'} ({_where(settings)})"
    )
    return OK


def org_export(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if args.company_id < 1:
        raise Usage("--company-id must be a positive integer")
    with _opened(settings) as container:
        plan = OrgFiles(container.new_uow()).export_org(CompanyId(args.company_id))
    sys.stdout.write(orgfile.dump(plan, as_json=args.json))
    sys.stdout.flush()
    return OK


def escalate(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    as_of = None if args.as_of is None else _instant(args.as_of)
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} is empty in a new process: nothing to escalate")
    with _opened(settings) as container:
        done = container.escalation().sweep(as_of, dry_run=args.dry_run)
    prefix = "would escalate " if args.dry_run else ""
    for outcome in done:
        sys.stdout.write(f"{prefix}{_escalation_line(outcome)}\n")
    sys.stdout.flush()
    moved = sum(1 for e in done if e.escalated)
    verb = "would be" if args.dry_run else "were"
    console.print(
        f"{moved} step(s) {verb} escalated, {len(done) - moved} could not be"
        f"{' (dry run: nothing changed)' if args.dry_run else ''} ({_where(settings)})"
    )
    return OK


def _instant(raw: str) -> datetime:
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


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[Container]:
    """A container whose database is disposed of when the command is done."""
    container = container_for(settings)
    try:
        yield container
    finally:
        container.shutdown_resources()


def _where(settings: Settings) -> str:
    url = settings.database_url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # Never print a password: keep the scheme and what follows the credentials.
    return f"{scheme}://{rest.rpartition('@')[2]}" if "@" in rest else url


if __name__ == "__main__":
    sys.exit(main())
