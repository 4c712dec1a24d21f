"""The load mix: plans, request bodies and steps, and a locustfile locust can load."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from loadtest import mix

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_plan_only_the_demo_submits() -> None:
    assert mix.load_plan(None) == (mix.Company(mix.DEMO_COMPANY, mix.DEMO_SUBMITTERS),)


def test_a_plan_adds_its_companies_with_submitters(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "companies": [
                    {"company_id": 2, "submitters": [10, 11]},
                    {"company_id": 3, "submitters": []},
                ]
            }
        )
    )
    assert mix.load_plan(plan)[1:] == (mix.Company(2, (10, 11)),)


def test_submissions_carry_exact_amounts_in_a_policy_category() -> None:
    chooser = random.Random(3)  # noqa: S311 -- test data
    companies = (mix.Company(1, (7,)), mix.Company(2, (20, 21)))
    for _ in range(200):
        body = mix.submission(chooser, companies)
        amount = Decimal(body["amount"])
        assert amount == amount.quantize(Decimal("0.01"))
        assert Decimal("0.20") <= amount <= Decimal("9000.00")
        assert body["category"] in ("equipment", "travel")
        assert body["user_id"] in (7, 20, 21)


def test_only_required_steps_are_approved_in_step_order() -> None:
    created = {
        "approvals_required": [
            {"step": 3, "approver_id": 30, "required": False},
            {"step": 2, "approver_id": 20, "required": True},
            {"step": 1, "approver_id": 10, "required": True},
        ]
    }
    assert mix.required_steps(created) == [(1, 10), (2, 20)]


def test_locust_loads_the_locustfile_and_its_user_class() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "ExpenseUser" in listed.stdout
