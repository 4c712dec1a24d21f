"""A PostgreSQL cluster of the fault suite's own, which it may stop and start at will.

The session's shared server (tests/pg.py) must stay up for every other test; a database
outage needs a server nobody else uses. Started from the same binaries and settings, on a free
127.0.0.1 port, as the `postgres` user when run as root; removed when the suite ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

import psycopg
from psycopg import sql

from tests import pg

PG_CTL_TIMEOUT_S: Final = 60
# Fewer than the shared server allows: an overloaded server that leaked connections would hit
# this ceiling (and fail with "too many clients") instead of hiding the leak.
MAX_CONNECTIONS: Final = 60


class Cluster:
    """One data directory and one port; `stop()` and `start()` it as often as a test needs."""

    def __init__(self, root: Path, binaries: Path, as_user: list[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self._binaries = binaries
        self._as_user = as_user
        self.port = pg._free_port()
        self._names = itertools.count(1)

    @classmethod
    def create(cls) -> Cluster:
        """initdb a new cluster and start it.

        Raises:
            pg.PostgresUnavailable: no binaries, no `postgres` user when root, or no start.
        """
        binaries = pg._binaries()
        root = Path(tempfile.mkdtemp(prefix="expense-tracker-faults-pg-"))
        as_user: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise pg.PostgresUnavailable("running as root, but no 'postgres' user") from None
            os.chown(root, owner.pw_uid, owner.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        cluster = cls(root, binaries, as_user)
        try:
            cluster._run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")  # fmt: skip
            cluster.start()
        except (OSError, subprocess.SubprocessError) as exc:
            cluster.remove()
            raise pg.PostgresUnavailable(
                f"the fault suite's cluster would not start: {exc}"
            ) from exc
        return cluster

    def start(self) -> None:
        settings = (f"port={self.port}", *pg.SERVER_SETTINGS, f"max_connections={MAX_CONNECTIONS}")
        options = " ".join(f"-c {setting}" for setting in settings)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", str(PG_CTL_TIMEOUT_S), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every session (rolling back), as an operator would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_CTL_TIMEOUT_S),
                  "stop")  # fmt: skip

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):  # already gone
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        conninfo = f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)

    def create_database(self, template: str | None = None) -> str:
        name = f"faults_{os.getpid()}_{next(self._names)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template))
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
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        return int(row[0]) if row else 0

    def _run(self, binary: str, *args: str) -> None:
        subprocess.run(  # noqa: S603 -- fixed binaries, our own arguments
            [*self._as_user, str(self._binaries / binary), *args],
            check=True,
            capture_output=True,
            timeout=PG_CTL_TIMEOUT_S + 30,
        )
