"""The load mix without locust: scenarios, the load plan, request bodies (importable anywhere,
since importing locust patches the standard library for gevent)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Final

import attrs


@attrs.frozen
class Scenario:
    users: int
    delay: float  # seconds between one user's requests
    run_time: int  # seconds, the seed's duration

    @property
    def spawn_rate(self) -> float:
        return self.users / RAMP_SECONDS


RAMP_SECONDS: Final = 5
SCENARIOS: Final = {
    "light": Scenario(users=5, delay=0.2, run_time=30),
    "medium": Scenario(users=10, delay=0.1, run_time=60),
    "heavy": Scenario(users=25, delay=0.05, run_time=120),
    "spike": Scenario(users=50, delay=0.02, run_time=30),
}
DEFAULT_SCENARIO: Final = "medium"
PLAN_ENV: Final = "LOAD_PLAN"
DEMO_COMPANY: Final = 1
DEMO_SUBMITTERS: Final = (7,)  # Grace Taylor, SDE3: her chain approves every demo policy
DEMO_APPROVER: Final = 6  # Frank Miller, Manager
# (category, low, high) in cents: small and large equipment and travel, for every company.
AMOUNTS: Final = (
    ("equipment", 20_00, 1999_99),
    ("equipment", 2000_00, 9000_00),
    ("travel", 150_00, 4800_00),
)
KEEP_FOR_STATUS: Final = 200
STATUS_NAME: Final = "/api/expenses/[id]/status"


@attrs.frozen
class Company:
    company_id: int
    submitters: tuple[int, ...]


def load_plan(path: str | os.PathLike[str] | None) -> tuple[Company, ...]:
    """The demo company, plus the synthetic companies a load plan file lists (if given)."""
    companies = [Company(DEMO_COMPANY, DEMO_SUBMITTERS)]
    if path:
        plan = json.loads(Path(path).read_text())
        companies += [
            Company(int(c["company_id"]), tuple(int(u) for u in c["submitters"]))
            for c in plan["companies"]
            if c["submitters"]
        ]
    return tuple(companies)


def submission(chooser: random.Random, companies: tuple[Company, ...]) -> dict[str, Any]:
    """A body for `POST /api/expenses`: a submitter of some company, a category and an amount."""
    company = chooser.choice(companies)
    category, low, high = chooser.choice(AMOUNTS)
    cents = chooser.randint(low, high)
    return {
        "user_id": chooser.choice(company.submitters),
        "category": category,
        "amount": f"{cents // 100}.{cents % 100:02d}",
        "description": f"{category} for the team",
    }


def required_steps(created: dict[str, Any]) -> list[tuple[int, int]]:
    """(step, approver id) of each required step of a create response, in step order."""
    steps = [
        (int(a["step"]), int(a["approver_id"]))
        for a in created["approvals_required"]
        if a["required"]
    ]
    return sorted(steps)
