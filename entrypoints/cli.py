"""The `expense-tracker` command: serve the API, migrate the database, seed it, issue tokens,
escalate overdue steps, name delegates.

Configuration comes from the environment (see `Settings.from_env`). Exit codes: 0 done,
1 refused or failed (an unknown user, an unreachable database...), 2 bad usage or settings.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
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
    METRICS_DIR_VARIABLE,
    InvalidSetting,
    Settings,
    configure_logging,
)
from expense_core import demo
from expense_core.errors import DomainError
from expense_core.escalation import Escalation
from expense_core.model import CompanyId, UserId
from expense_core.services import (
    ClearDelegation,
    DelegationState,
    OrgFiles,
    SetDelegation,
)
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
  LOG_FORMAT      json (default off a terminal) or console
  ACCESS_LOG      one line per request: true (default) or false
  METRICS         Prometheus metrics at /metrics: true (default) or false
  METRICS_BY_COMPANY       label the expense counters by company (default false)
  PROMETHEUS_MULTIPROC_DIR where `serve` workers share metrics (default: a temporary one)
  OTEL_EXPORTER_OTLP_ENDPOINT  send OpenTelemetry traces there (default: no tracing)

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
    delegation_parser = commands.add_parser(
        "delegation", help="name who acts for someone while they are away"
    )
    delegation_commands = delegation_parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True
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
    return parser


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None


# --- commands --------------------------------------------------------------------------------


def serve(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    changes = {"host": args.host, "port": args.port, "workers": args.workers}
    settings = settings.replace(**{k: v for k, v in changes.items() if v is not None})
    if settings.is_memory and settings.workers > 1:
        raise Usage(f"DATABASE_URL={MEMORY_URL} keeps data in one process: use 1 worker")
    if settings.session_secret is None:
        # Every worker signs the pages' sessions alike; they read it from the environment.
        os.environ["SESSION_SECRET"] = secrets.token_urlsafe(32)
        settings = settings.replace(session_secret=os.environ["SESSION_SECRET"])
    with _metrics_directory(settings):
        return _serve(args, settings, console)


def _serve(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    import uvicorn

    from entrypoints.http import create_app
    from entrypoints.http.protocol import BoundedHttpToolsProtocol
    from entrypoints.supervisor import supervise

    # With workers, this process only checks and seeds the database: it keeps no metrics (its
    # pool would be counted as a worker's).
    serving_here = settings.workers == 1
    container = container_for(settings if serving_here else settings.replace(metrics=False))
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
        # The app writes its own access line (entrypoints/http/observe.py), with the route.
        "access_log": False,
    }
    if serving_here:
        uvicorn.run(create_app(container), host=settings.host, port=settings.port, **options)
        return OK
    # Each worker process builds its own app (and connection pool) from the environment.
    container.shutdown_resources()
    on_exit = None
    if settings.metrics:
        from entrypoints.metrics import worker_exited

        on_exit = worker_exited
    started = supervise(
        APP_FACTORY, settings.workers, settings.host, settings.port, options, on_exit
    )
    return OK if started else FAILED


# The files prometheus-client writes in multiprocess mode, one per kind of metric and process.
METRICS_FILES: Final = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")
# A temporary metrics directory is named for the server's pid: `expense-tracker-metrics-<pid>-*`.
METRICS_DIR_PREFIX: Final = "expense-tracker-metrics-"


@contextlib.contextmanager
def _metrics_directory(settings: Settings) -> Iterator[None]:
    """A directory where every worker writes its metrics, for any of them to read all.

    PROMETHEUS_MULTIPROC_DIR if set (created if missing, emptied of an earlier run's files:
    counters must start again with the server); else a temporary one, removed when the server
    stops, and by the next server to start if this one could not (it was killed). Set before
    anything loads prometheus-client, which reads it once.
    """
    if not settings.metrics:
        yield
        return
    given = os.environ.get(METRICS_DIR_VARIABLE, "").strip()
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for pattern in METRICS_FILES:
            for old in path.glob(pattern):
                old.unlink()
        yield
        return
    _remove_orphans(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))
    os.environ[METRICS_DIR_VARIABLE] = str(path)
    # uvicorn ends a single-worker server's SIGTERM by raising the signal again, to the handler
    # it found: this one lets the directory go first, then dies by the signal as uvicorn meant.
    previous = signal.signal(signal.SIGTERM, functools.partial(_die_by_signal, path))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.environ.pop(METRICS_DIR_VARIABLE, None)
        shutil.rmtree(path, ignore_errors=True)


def _die_by_signal(directory: Path, signum: int, _: object) -> None:
    # Not `sys.exit`: a normal exit waits for every request thread, and one blocked past the
    # grace period (on a row lock, say) would hold the process up for as long again.
    shutil.rmtree(directory, ignore_errors=True)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _remove_orphans(folder: Path) -> None:
    """Remove the temporary metrics directories of servers that are no longer running."""
    for orphan in folder.glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = orphan.name.removeprefix(METRICS_DIR_PREFIX).partition("-")[0]
        if pid.isdigit() and not _running(int(pid)) and orphan.is_dir():
            shutil.rmtree(orphan, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


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
    as_of = None if args.as_of is None else _as_of(args.as_of)
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


def delegation_set(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to set")
    with _opened(settings) as container:
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
    with _opened(settings) as container:
        state = container.delegations().get(UserId(args.user_id))
    _print_delegation(state)
    return OK


def delegation_clear(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    with _opened(settings) as container:
        container.delegations().clear(ClearDelegation(user_id=UserId(args.user_id)))
    console.print(f"user {args.user_id}'s delegation has ended ({_where(settings)})")
    return OK


def _print_delegation(state: DelegationState) -> None:
    d = state.delegation
    note = "" if d.note is None else f" ({d.note})"
    sys.stdout.write(
        f"user {d.user_id}: user {d.delegate_id} acts for them from {d.starts_at.isoformat()} "
        f"until {d.ends_at.isoformat()}{note}, {'active' if state.active else 'not active'} now\n"
    )
    sys.stdout.flush()


@contextlib.contextmanager
def _opened(settings: Settings) -> Iterator[Container]:
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


def _where(settings: Settings) -> str:
    url = settings.database_url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # Never print a password: keep the scheme and what follows the credentials.
    return f"{scheme}://{rest.rpartition('@')[2]}" if "@" in rest else url


if __name__ == "__main__":
    sys.exit(main())
