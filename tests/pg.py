"""PostgreSQL for the tests: databases on a server (`PgServer`), and servers of their own
(`Cluster`).

The session's server is the one `TEST_DATABASE_URL` names (its role needs CREATEDB), or else a
`Cluster`: started from the installed PostgreSQL binaries on a free 127.0.0.1 port, in a
temporary directory, as the `postgres` user when run as root, and removed when the session ends.
The fault suite makes a `Cluster` of its own, which it shuts down and starts up at will.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ENV_URL: Final = "TEST_DATABASE_URL"
BIN_DIRS: Final = ("/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin", "/usr/pgsql-15/bin")
SERVER_SETTINGS: Final = (
    # A disposable cluster: durability buys nothing here.
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "unix_socket_directories=''",
    "listen_addresses=127.0.0.1",
)
INITDB_OPTIONS: Final = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync",
                         "--no-instructions")  # fmt: skip
MAX_CONNECTIONS: Final = 200
PG_CTL_TIMEOUT_S: Final = 60


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be had: no binaries, or it would not start."""


class PgServer:
    """A reachable server on which tests create (and drop) their own databases."""

    def __init__(self, url: str) -> None:
        self._url = make_url(url).set(drivername="postgresql+psycopg")
        self._names = itertools.count(1)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for one database of this server."""
        return self._url.set(database=database).render_as_string(hide_password=False)

    def connect(self, database: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to `database`, by default the one the server's URL names."""
        url = self._url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        conninfo = url.render_as_string(hide_password=False)
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)

    def create_database(self, template: str | None = None) -> str:
        """Create a database with a name unique to this session, copied from `template`."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template)) + self._strategy
        with self.connect() as conn:
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def connections(self, database: str) -> int:
        """Client sessions open on `database` now (this query's own excluded)."""
        with self.connect() as conn:
            row = conn.execute(
                # Autovacuum workers are listed with the database they work on: not clients.
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(str(row[0])) if row else 0

    def stop(self) -> None:
        """Done with the server: one that someone else runs stays up."""

    @functools.cached_property
    def _strategy(self) -> sql.Composable:
        with self.connect() as conn:
            version = conn.info.server_version
        # FILE_COPY clones a small template much faster than 15's default WAL_LOG strategy.
        return sql.SQL(" STRATEGY FILE_COPY") if version >= 150000 else sql.SQL("")


class Cluster(PgServer):
    """A server of the tests' own: one data directory and one port, which `shut_down()` and
    `start_up()` take down and bring back as often as a test needs; `stop()` removes it."""

    def __init__(
        self, root: Path, binaries: Path, as_user: list[str], port: int, max_connections: int
    ) -> None:
        super().__init__(f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self._binaries = binaries
        self._as_user = as_user
        self._settings = (f"port={port}", *SERVER_SETTINGS, f"max_connections={max_connections}")

    @classmethod
    def create(cls, *, max_connections: int = MAX_CONNECTIONS) -> Cluster:
        """initdb a cluster in a new temporary directory and start it on a free port.

        Raises:
            PostgresUnavailable: no binaries, no `postgres` user when run as root, or no start.
        """
        binaries = _binaries()
        root = Path(tempfile.mkdtemp(prefix="expense-tracker-pg-"))
        try:
            as_user = _as_postgres(root)
            _run([*as_user, str(binaries / "initdb"), "-D", str(root / "data"), *INITDB_OPTIONS])
        except (OSError, subprocess.SubprocessError) as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"initdb failed: {_why(exc)}") from exc
        except PostgresUnavailable:
            shutil.rmtree(root, ignore_errors=True)
            raise
        last_error = ""
        for _ in range(3):  # the free port may be taken between probing and binding
            cluster = cls(root, binaries, as_user, _free_port(), max_connections)
            try:
                cluster.start_up()
            except (OSError, subprocess.SubprocessError) as exc:
                log = cluster.log.read_text() if cluster.log.exists() else ""
                last_error = f"{_why(exc)} {log}"
                continue
            atexit.register(cluster.stop)  # also when the session dies before its teardown
            return cluster
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"the throwaway server would not start: {last_error}")

    @property
    def is_running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def start_up(self) -> None:
        options = " ".join(f"-c {setting}" for setting in self._settings)
        self._pg_ctl("-l", str(self.log), "-o", options, "-t", str(PG_CTL_TIMEOUT_S), "start")

    def shut_down(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data: `fast` ends every session (rolling back), as an
        operator would; `immediate` as a crash would."""
        self._pg_ctl("-m", mode, "-t", str(PG_CTL_TIMEOUT_S), "stop")

    def stop(self) -> None:
        """Stop the server at once and remove its data directory."""
        if self.is_running:
            with contextlib.suppress(OSError, subprocess.SubprocessError):  # already gone
                self.shut_down("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        _run([*self._as_user, str(self._binaries / "pg_ctl"), "-D", str(self.data), "-w", *args])


def server() -> PgServer:
    """The server named by TEST_DATABASE_URL, or a new throwaway one.

    Raises:
        PostgresUnavailable: saying why none can be had.
    """
    url = os.environ.get(ENV_URL)
    if not url:
        return Cluster.create()
    named = PgServer(url)
    try:
        named.connect().close()
    except psycopg.Error as exc:
        raise PostgresUnavailable(f"{ENV_URL} is set but unreachable: {exc}") from exc
    return named


def _binaries() -> Path:
    for directory in (os.environ.get("PG_BIN"), *BIN_DIRS):
        if directory and (Path(directory) / "initdb").exists():
            return Path(directory)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl) were found")


def _as_postgres(root: Path) -> list[str]:
    """The command prefix that runs the binaries as `postgres` when we are root (PostgreSQL
    refuses to run as root), which then owns `root`; none otherwise."""
    if os.geteuid() != 0:
        return []
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable("running as root, but there is no 'postgres' user") from None
    os.chown(root, owner.pw_uid, owner.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str]) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=2 * PG_CTL_TIMEOUT_S)  # noqa: S603 -- fixed binaries, our own arguments


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _why(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return (exc.stderr or b"").decode(errors="replace").strip() or str(exc)
    return str(exc)
