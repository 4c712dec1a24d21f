"""A throwaway PostgreSQL server for one test session, and fresh databases on it.

`TEST_DATABASE_URL` names an existing server (its role needs CREATEDB); otherwise a server is
started from the installed PostgreSQL binaries on a free 127.0.0.1 port, in a temporary
directory, as the `postgres` user when run as root, and removed when the session ends.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ENV_URL = "TEST_DATABASE_URL"
BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin", "/usr/pgsql-15/bin")
SERVER_SETTINGS = (
    # A disposable cluster: durability buys nothing here.
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
    "unix_socket_directories=''",
    "listen_addresses=127.0.0.1",
)


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be had: no binaries, or it would not start."""


class PgServer:
    """A reachable server on which tests create (and drop) their own databases."""

    def __init__(self, url: str, stop: Callable[[], None] = lambda: None) -> None:
        self._url = make_url(url).set(drivername="postgresql+psycopg")
        self._stop = stop
        self._names = itertools.count(1)
        with self._admin() as conn:
            version = conn.info.server_version
        # FILE_COPY clones a small template much faster than 15's default WAL_LOG strategy.
        self._strategy = sql.SQL(" STRATEGY FILE_COPY") if version >= 150000 else sql.SQL("")

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for one database of this server."""
        return self._url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, template: str | None = None) -> str:
        """Create a database with a name unique to this session, copied from `template`."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template)) + self._strategy
        with self._admin() as conn:
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def stop(self) -> None:
        self._stop()

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


def server() -> PgServer:
    """The server named by TEST_DATABASE_URL, or a new throwaway one.

    Raises:
        PostgresUnavailable: saying why none can be had.
    """
    url = os.environ.get(ENV_URL)
    if url:
        try:
            return PgServer(url)
        except psycopg.Error as exc:
            raise PostgresUnavailable(f"{ENV_URL} is set but unreachable: {exc}") from exc
    return _start_throwaway()


def _binaries() -> Path:
    for directory in (os.environ.get("PG_BIN"), *BIN_DIRS):
        if directory and (Path(directory) / "initdb").exists():
            return Path(directory)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) were found")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start_throwaway() -> PgServer:
    binaries = _binaries()
    root = Path(tempfile.mkdtemp(prefix="expense-tracker-pg-"))
    data, log = root / "data", root / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root.
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable("running as root, but there is no 'postgres' user") from None
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)  # noqa: S603 -- fixed binaries

    def stop() -> None:
        if not root.exists():
            return
        try:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # never started, or already gone
        finally:
            shutil.rmtree(root, ignore_errors=True)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {_why(exc)}") from exc
    last_error = ""
    for _ in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        options = " ".join(f"-c {setting}" for setting in (f"port={port}", *SERVER_SETTINGS))
        try:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                "-w", "-t", "60", "start")  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            last_error = f"{_why(exc)} {log.read_text() if log.exists() else ''}"
            continue
        atexit.register(stop)  # also when the session dies before its teardown
        return PgServer(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", stop)
    stop()
    raise PostgresUnavailable(f"the throwaway server would not start: {last_error}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return (exc.stderr or b"").decode(errors="replace").strip() or str(exc)
    return str(exc)
