"""`expense-tracker escalate` as an operator meets it: help, usage errors, and one sweep over a
database with nothing overdue, then with a step overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from expense_core.model import ApprovalStep, CompanyId, PolicyId, UserId
from expense_core.services import ExpenseService, NewPolicy, OrgService, SubmitExpense
from tests.clocks import TickingClock
from tests.contract.support import money
from tests.e2e.conftest import environment, run_cli
from tests.sql.support import opened

pytestmark = pytest.mark.e2e


def test_help_says_what_a_sweep_does() -> None:
    done = run_cli("escalate", "--help", env=environment())
    assert done.returncode == 0
    assert "--as-of" in done.stdout
    assert "--dry-run" in done.stdout


@pytest.mark.parametrize(
    "as_of", ["yesterday", "2026-13-01T00:00:00Z", "2026-12-01T09:00:00", "2026-12-01", ""]
)
def test_a_bad_instant_is_a_usage_error(sqlite_url: str, as_of: str) -> None:
    done = run_cli("escalate", "--as-of", as_of, env=environment(DATABASE_URL=sqlite_url))
    assert done.returncode == 2
    assert "--as-of" in done.stderr
    assert "Traceback" not in done.stderr


def test_memory_has_nothing_to_escalate() -> None:
    done = run_cli("escalate", env=environment(DATABASE_URL="memory://"))
    assert done.returncode == 2
    assert "memory://" in done.stderr


def test_one_sweep_prints_each_step_it_escalated(sqlite_url: str) -> None:
    env = environment(DATABASE_URL=sqlite_url)
    assert run_cli("seed", "demo", env=env).returncode == 0
    nothing = run_cli("escalate", env=env)
    assert (nothing.returncode, nothing.stdout) == (0, "")
    assert "0 step(s) were escalated" in nothing.stderr

    with opened(sqlite_url) as db:
        policy = OrgService(db.unit_of_work).create_policy(
            NewPolicy(
                company_id=CompanyId(1),
                category="training",
                name="Training",
                min_amount=money("0.00"),
                max_amount=money("100.00"),
                steps=(ApprovalStep(step_order=1, required_level=6, escalate_after_hours=2),),
            )
        )
        clock = TickingClock(start=datetime.now(UTC) - timedelta(hours=3))
        ExpenseService(db.unit_of_work, clock).submit(
            SubmitExpense(user_id=UserId(7), policy_id=PolicyId(policy.id), amount=money("9.00"))
        )

    preview = run_cli("escalate", "--dry-run", env=env)
    assert preview.returncode == 0, preview.stderr
    assert preview.stdout.startswith("would escalate expense 1 step 1: Frank Miller -> Eve Davis")
    assert "dry run" in preview.stderr
    done = run_cli("escalate", env=env)
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.startswith("expense 1 step 1: Frank Miller -> Eve Davis, overdue by 1 h ")
    assert "1 step(s) were escalated" in done.stderr
    again = run_cli("escalate", env=env)
    assert (again.returncode, again.stdout) == (0, "")
