"""`expense-tracker serve`: the HTTP API under uvicorn, one process or supervised workers, with
the directory where the workers share their metrics."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Final

from rich.console import Console

from entrypoints.cli.common import ENVIRONMENT_HELP, FAILED, OK, Commands, Usage
from entrypoints.container import container_for
from entrypoints.settings import MEMORY_URL, METRICS_DIR_VARIABLE, Settings
from expense_core import demo

APP_FACTORY: Final = "entrypoints.http.app:app_from_env"


def add_commands(commands: Commands) -> None:
    """Add `serve` to the command's parser."""
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

    from entrypoints import worker
    from entrypoints.heap import settle_heap
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
        # In memory, the notifications can be delivered only from this process.
        beside = worker.beside(container, settings) if settings.is_memory else nullcontext()
        with beside:
            app = create_app(container)
            settle_heap()
            uvicorn.run(app, host=settings.host, port=settings.port, **options)
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
