"""The fault suite's setup: its own PostgreSQL cluster (stopped and started by the tests), a
fresh migrated database per test with the demo organisation, and server processes on it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from adapters.sql import upgrade
from tests import pg
from tests.conftest import _in_ci
from tests.faults.support import Server, prepare, start_server

# Fewer than the session's server allows: an overloaded server that leaked connections would hit
# this ceiling (and fail with "too many clients") instead of hiding the leak.
MAX_CONNECTIONS = 60


@pytest.fixture(scope="package")
def cluster() -> Iterator[pg.Cluster]:
    """A server of the suite's own: the session's must stay up for every other test, while an
    outage needs a server nobody else uses."""
    try:
        made = pg.Cluster.create(max_connections=MAX_CONNECTIONS)
    except pg.PostgresUnavailable as exc:
        if _in_ci():
            pytest.fail(f"CI runs the fault suite, but no PostgreSQL cluster can be had: {exc}")
        pytest.skip(f"!!! NO POSTGRESQL for the fault suite: {exc} !!!")
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture(scope="package")
def template(cluster: pg.Cluster) -> str:
    name = cluster.create_database()
    upgrade(cluster.url(name))
    return name


@attrs.frozen
class Deployment:
    """A fresh database with the demo organisation, and what serves it."""

    cluster: pg.Cluster
    database: str
    env: dict[str, str]
    log: Path
    servers: list[Server]

    def serve(self, **settings: str) -> Server:
        server = start_server(self.env, self.log, **settings)
        self.servers.append(server)
        return server


@pytest.fixture
def deployment(cluster: pg.Cluster, template: str, tmp_path: Path) -> Iterator[Deployment]:
    database = cluster.create_database(template=template)
    made = Deployment(
        cluster, database, prepare(cluster.url(database)), tmp_path / "server.log", []
    )
    yield made
    for server in made.servers:
        server.stop()
    # Shown by pytest only when the test failed: what the server said meanwhile.
    sys.stdout.write(f"--- server log\n{made.log.read_text(errors='replace')[-20000:]}")
    if not cluster.is_running:
        cluster.start_up()  # a test that shut it down failed before starting it up again
    cluster.drop_database(database)
