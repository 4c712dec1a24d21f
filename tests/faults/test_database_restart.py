"""PostgreSQL stops for five seconds under load and comes back: fast 503s meanwhile, then
business as usual, and not one expense the worse for it."""

from __future__ import annotations

import time
from typing import Final

import pytest

from tests.faults.conftest import Deployment
from tests.faults.support import (
    Load,
    broken_invariants,
    recovered_after,
    success_rate,
    summary,
)

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

OUTAGE_S: Final = 5.0
# The server's bound on a request while the database is away: connecting is refused at once
# on a stopped server; a pooled connection's failure is noticed on its first statement.
DB_POOL_TIMEOUT_MS: Final = 2000
OUTAGE_ANSWER_BOUND_S: Final = 3.0
RECOVERY_S: Final = 5.0
LOG_LINES_BOUND: Final = 10


def test_a_database_restart_answers_503_then_recovers(deployment: Deployment) -> None:
    server = deployment.serve(WORKERS="2", DB_POOL_SIZE="4",
                              DB_POOL_TIMEOUT_MS=str(DB_POOL_TIMEOUT_MS))  # fmt: skip
    with Load(server.base_url, clients=6) as load:
        time.sleep(3.0)  # the mix runs before the fault
        stopping = time.monotonic()
        deployment.cluster.shut_down("fast")
        down = time.monotonic()
        time.sleep(OUTAGE_S)
        # pg_ctl notices the server is up a little after it is: the outage is measured from
        # the end of the shutdown to the start of the startup.
        starting = time.monotonic()
        deployment.cluster.start_up()
        up = time.monotonic()
        time.sleep(RECOVERY_S + 4.0)
        load.stop()
    outcomes = load.outcomes
    before = load.between(0.0, stopping)
    during = load.between(down, starting)
    after = load.between(up + RECOVERY_S, float("inf"))
    recovery = recovered_after(outcomes, up)
    logged = server.log_text().count("database unavailable")
    print(  # noqa: T201 -- the figures of the run, shown with -s
        f"\ndatabase restart: {len(outcomes)} requests; before {summary(before)}; "
        f"outage ({starting - down:.1f} s) {summary(during)}, slowest "
        f"{max((o.seconds for o in during), default=0):.3f} s; recovered {recovery:.2f} s "
        f"after the restart; from {RECOVERY_S:.0f} s on {summary(after)}; {logged} log lines"
    )

    assert success_rate(before) == 1.0, summary(before)
    # Nothing is a bug, nothing goes unanswered: only successes and 503s, whenever it ran.
    assert {o.status for o in outcomes} <= {200, 201, 503}, summary(outcomes)
    assert during, "no request ran during the outage"
    assert all(o.status == 503 and o.retry_after for o in during), summary(during)
    assert max(o.seconds for o in during) <= OUTAGE_ANSWER_BOUND_S
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert recovery <= RECOVERY_S
    assert len(after) >= 50
    assert success_rate(after) > 0.99, summary(after)
    assert broken_invariants(deployment.cluster, deployment.database) == {}
    # The cause is logged, but not once per failed request: a few lines per worker.
    assert logged <= LOG_LINES_BOUND, f"{logged} lines on the outage"
