"""`expense-tracker token issue|list|revoke` on SQLite and PostgreSQL, and a revocation made
by the command line refused by a running server's workers from the next request on."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import StartServer, environment, run_cli

pytestmark = pytest.mark.e2e

TOKEN = re.compile(r"^et_([0-9a-f]{16})_[A-Za-z0-9_-]+$")
EXPIRES = re.compile(r"bearer token ([0-9a-f]{16}) for user (\d+), expires (\S+ \S+) UTC")
# Enough requests, each on a connection of its own, for both workers to take some.
REQUESTS = 12


def _issued(stdout: str, stderr: str) -> tuple[str, str, datetime]:
    """The token, its id, and the expiry the command printed."""
    token = stdout.splitlines()[-1]
    found, said = TOKEN.fullmatch(token), EXPIRES.search(stderr)
    assert found is not None, stdout
    assert said is not None, stderr
    assert said.group(1) == found.group(1)
    return (
        token,
        found.group(1),
        datetime.strptime(said.group(3), "%Y-%m-%d %H:%M").replace(tzinfo=UTC),
    )


def _rows(stdout: str) -> list[list[str]]:
    """The table's rows under its header, split on the runs of spaces between columns."""
    header, *rows = stdout.splitlines()
    assert re.split(r"\s{2,}", header) == [
        "id",
        "user",
        "name",
        "created",
        "expires",
        "last used",
        "revoked",
    ]
    return [re.split(r"\s{2,}", row) for row in rows]


def test_tokens_are_issued_listed_and_revoked(database_url: str) -> None:
    env = environment(DATABASE_URL=database_url)
    assert run_cli("seed", "demo", env=env).returncode == 0

    laptop = run_cli(
        "token", "issue", "--user-id", "7", "--ttl", "30d", "--name", "laptop", env=env
    )
    short = run_cli("token", "issue", "--user-id", "6", "--ttl", "12h", env=env)
    default = run_cli("token", "issue", "--user-id", "7", env=env)

    for done in (laptop, short, default):
        assert done.returncode == 0, done.stderr
    token, laptop_id, laptop_expiry = _issued(laptop.stdout, laptop.stderr)
    _, short_id, short_expiry = _issued(short.stdout, short.stderr)
    _, default_id, default_expiry = _issued(default.stdout, default.stderr)
    # 30 days, 12 hours, 90 days from (about) now: the order says so, the spans say how far.
    assert short_expiry < laptop_expiry < default_expiry
    assert abs((default_expiry - laptop_expiry) - timedelta(days=60)) <= timedelta(minutes=1)

    grace = run_cli("token", "list", "--user-id", "7", env=env)
    company = run_cli("token", "list", "--company-id", "1", env=env)
    assert grace.returncode == company.returncode == 0, grace.stderr + company.stderr
    assert [(r[0], r[1], r[2], r[5], r[6]) for r in _rows(grace.stdout)] == [
        (default_id, "7", "-", "-", "-"),
        (laptop_id, "7", "laptop", "-", "-"),
    ]
    assert {r[0] for r in _rows(company.stdout)} == {default_id, laptop_id, short_id}
    secret = token.split("_", 2)[2]
    assert secret not in grace.stdout + grace.stderr + company.stdout + company.stderr

    revoked = run_cli("token", "revoke", laptop_id, env=env)
    assert revoked.returncode == 0, revoked.stderr
    assert f"token {laptop_id} of user 7 is revoked since " in revoked.stderr
    [_, laptop_row] = _rows(run_cli("token", "list", "--user-id", "7", env=env).stdout)
    assert laptop_row[0] == laptop_id
    assert laptop_row[6] != "-"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--ttl", "3y"), "give hours or days"),
        (("--ttl", "30m"), "give hours or days"),
        (("--ttl", "0h"), "a token lives from 1h to 730d"),
        (("--ttl", "731d"), "a token lives from 1h to 730d"),
        (("--name", ""), "a name has 1 to 100 characters"),
    ],
)
def test_a_bad_lifetime_or_name_is_bad_usage(args: tuple[str, ...], says: str) -> None:
    done = run_cli("token", "issue", "--user-id", "7", *args, env=environment())

    assert done.returncode == 2
    assert says in done.stderr
    assert done.stdout == ""


def test_lists_and_revocations_of_what_does_not_exist_fail_clearly(sqlite_url: str) -> None:
    env = environment(DATABASE_URL=sqlite_url)

    unknown = run_cli("token", "revoke", "0123456789abcdef", env=env)
    nobody = run_cli("token", "list", "--company-id", "99", env=env)
    neither = run_cli("token", "list", env=env)

    assert (unknown.returncode, "unknown_token" in unknown.stderr) == (1, True)
    assert (nobody.returncode, "unknown_company" in nobody.stderr) == (1, True)
    assert (neither.returncode, "--user-id --company-id" in neither.stderr) == (2, True)
    assert "Traceback" not in unknown.stderr + nobody.stderr + neither.stderr


def test_a_token_revoked_by_the_command_line_is_refused_by_every_worker(
    start_server: StartServer,
) -> None:
    server = start_server("--workers", "2", AUTH_MODE="token")
    issued = run_cli("token", "issue", "--user-id", "7", "--name", "e2e", env=server.env)
    assert issued.returncode == 0, issued.stderr
    token, token_id, _ = _issued(issued.stdout, issued.stderr)
    grace = {"Authorization": f"Bearer {token}"}

    def answers() -> list[httpx.Response]:
        # A client per request: a connection of its own, for whichever worker accepts it.
        found = []
        for _ in range(REQUESTS):
            with server.client() as client:
                found.append(client.get("/api/tokens", headers=grace))
        return found

    before = answers()
    assert {r.status_code for r in before} == {200}
    listed = before[-1].json()["items"]
    assert [(t["id"], t["name"]) for t in listed] == [(token_id, "e2e")]
    assert listed[0]["last_used_at"] is not None

    revoked = run_cli("token", "revoke", token_id, env=server.env)
    assert revoked.returncode == 0, revoked.stderr

    after = answers()
    assert {(r.status_code, r.json()["code"]) for r in after} == {(401, "token_revoked")}
    assert server.process is not None
    assert server.process.poll() is None  # the server kept running throughout
