"""The real thing: `expense-tracker` commands and the server process, over real HTTP.

Each server gets a fresh migrated database (the session's throwaway PostgreSQL server, or a
SQLite file), is migrated and seeded through the CLI, listens on a free port, and is stopped
when its test ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Final

import attrs
import httpx
import pytest

pytestmark = pytest.mark.e2e

READY_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
COMMAND_TIMEOUT_S: Final = 120.0


def cli_command() -> list[str]:
    """How to run `expense-tracker`: the installed console script, or the module behind it."""
    script = Path(sys.executable).with_name("expense-tracker")
    if script.exists():
        return [str(script)]
    found = shutil.which("expense-tracker")
    return [found] if found else [sys.executable, "-m", "entrypoints.cli"]


def environment(**values: str) -> dict[str, str]:
    """This process's environment without any of our settings, plus `values`."""
    ours = ("DATABASE_URL", "HOST", "PORT", "WORKERS", "AUTH_MODE", "LOG_LEVEL", "DB_POOL_SIZE",
            "DB_POOL_TIMEOUT_MS", "DB_STATEMENT_TIMEOUT_MS", "DB_CONNECT_TIMEOUT_S",
            "MAX_IN_FLIGHT", "MAX_BODY_BYTES", "BODY_TIMEOUT_S", "MAX_HEADER_BYTES",
            "SHUTDOWN_GRACE_S", "LOG_FORMAT", "ACCESS_LOG", "METRICS", "METRICS_BY_COMPANY",
            "PROMETHEUS_MULTIPROC_DIR", "OTEL_EXPORTER_OTLP_ENDPOINT", "WEBHOOK_ALLOW_PRIVATE",
            "SMTP_URL", "MAIL_FROM", "PUBLIC_URL", "ESCALATION_INTERVAL_S", "WORKER_CONCURRENCY",
            "WORKER_IDLE_MS", "OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_COMPANY_ID", "OIDC_LEEWAY_S",
            "OIDC_JWKS_COOLDOWN_S", "OIDC_JWKS_MAX_AGE_S", "OIDC_CLIENT_ID",
            "OIDC_CLIENT_SECRET")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ours}
    return {**env, "LOG_LEVEL": "WARNING", **values}


def run_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- our own command, arguments from the tests
        [*cli_command(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@attrs.frozen
class Server:
    base_url: str
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = attrs.field(default=None, eq=False, repr=False)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0)

    def stop(self) -> str:
        """Stop the server (SIGINT, as Ctrl-C) and read all it logged."""
        if self.process is not None:
            _stop(self.process)
        return self.log.read_text(errors="replace")


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            ready = httpx.get(f"{base_url}/health/ready", timeout=1.0).status_code == 200
        except httpx.TransportError:
            ready = False
        # Alive after answering: the answer came from this server, not another on the port.
        if ready and process.poll() is None:
            return
        time.sleep(0.1)  # polling for readiness, bounded by the deadline
    pytest.fail(f"the server was not ready within {READY_TIMEOUT_S}s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(database_url: str, tmp_path: Path) -> Iterator[StartServer]:
    """Start `expense-tracker serve` (after `db upgrade` and `seed demo`) on a free port."""
    processes: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(*serve_args: str, seed: bool = True, **settings: str) -> Server:
        port = free_port()
        env = environment(DATABASE_URL=database_url, HOST="127.0.0.1", PORT=str(port), **settings)
        for command in (("db", "upgrade"), ("seed", "demo") if seed else ()):
            if command:
                done = run_cli(*command, env=env)
                assert done.returncode == 0, done.stderr
        log = tmp_path / f"server-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(  # noqa: S603 -- our own command
                [*cli_command(), "serve", *serve_args],
                # The server logs every request: its log is shown when a test fails.
                env={**env, "LOG_LEVEL": settings.get("LOG_LEVEL", "INFO")},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        processes.append((process, log))
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_ready(process, base_url, log)
        return Server(base_url, env, log, process)

    yield start
    for process, log in processes:
        _stop(process)
        # Shown by pytest only when the test failed: what the server said meanwhile.
        sys.stdout.write(f"--- {log.name}\n{log.read_text(errors='replace')}")
