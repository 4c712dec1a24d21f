"""The seed's load test, realistic: 50% submissions, 30% approvals, 20% status reads.

Approvals take real pending steps: each simulated person approves the next required step of an
expense they submitted, as the approver the create response named, so no two of them race for
one step and zero failures are expected. With nothing of their own pending (only at the start)
they read an approver's inbox (`GET /api/approvals`) instead. Submitters are the seed's demo
(`seed demo`: Grace Taylor, SDE3, user 7) plus the synthetic companies of a load plan
(`seed synthetic --plan`), named by `--plan` or LOAD_PLAN.

Scenarios are the seed's (light, medium, heavy, spike: users and the delay between a user's
requests), ramped up over RAMP_SECONDS. Run one against a server:

    locust -f loadtest/locustfile.py --scenario medium --host http://127.0.0.1:4000

or let `make load SCENARIO=medium` start everything and save the HTML report.
"""

from __future__ import annotations

import collections
import os
import random
from typing import Any

from locust import FastHttpUser, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment

from loadtest.mix import (
    DEFAULT_SCENARIO,
    DEMO_APPROVER,
    DEMO_COMPANY,
    DEMO_SUBMITTERS,
    KEEP_FOR_STATUS,
    PLAN_ENV,
    SCENARIOS,
    STATUS_NAME,
    Company,
    Scenario,
    load_plan,
    required_steps,
    submission,
)


@events.init_command_line_parser.add_listener
def _arguments(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default=DEFAULT_SCENARIO,
        help="the seed's scenario: its delay between a user's requests (default medium)",
    )
    parser.add_argument(
        "--plan",
        default=os.environ.get(PLAN_ENV, ""),
        help=f"load plan of synthetic companies (seed synthetic --plan; default ${PLAN_ENV})",
    )


class ExpenseUser(FastHttpUser):
    """One person of the mix: submits, approves what their submissions wait for, reads status."""

    # Set by `configure` (the runner) or from the command line at start.
    companies: tuple[Company, ...] = (Company(DEMO_COMPANY, DEMO_SUBMITTERS),)
    delay: float = SCENARIOS[DEFAULT_SCENARIO].delay

    def wait_time(self) -> float:
        return self.delay

    def on_start(self) -> None:
        self.chooser = random.Random()
        # (expense id, its required steps left, in order): oldest first.
        self.pending: collections.deque[tuple[int, list[tuple[int, int]]]] = collections.deque()
        self.known: collections.deque[int] = collections.deque(maxlen=KEEP_FOR_STATUS)
        self.last_approver = DEMO_APPROVER

    @task(50)
    def create(self) -> None:
        body = submission(self.chooser, self.companies)
        with self.client.post(
            "/api/expenses", json=body, name="/api/expenses", catch_response=True
        ) as response:
            if response.status_code != 201:
                response.failure(f"create answered {response.status_code}: {response.text}")
                return
            created = response.json()
            expense_id = int(created["expense_id"])
            steps = required_steps(created)
            self.known.append(expense_id)
            if steps:
                self.pending.append((expense_id, steps))
                self.last_approver = steps[0][1]

    @task(30)
    def approve(self) -> None:
        if not self.pending:
            self.inbox()
            return
        expense_id, steps = self.pending.popleft()
        step, approver = steps.pop(0)
        body = {"expense_id": expense_id, "approver_id": approver, "comments": "approved"}
        with self.client.post(
            "/api/expenses/approve", json=body, name="/api/expenses/approve", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"approve answered {response.status_code}: {response.text}")
                return
            answer = response.json()
            if answer["step_approved"] != step:
                response.failure(f"approved step {answer['step_approved']}, not {step}")
        if steps:
            self.pending.append((expense_id, steps))

    @task(20)
    def status(self) -> None:
        if not self.known:
            self.create()
            return
        expense_id = self.chooser.choice(self.known)
        with self.client.get(
            f"/api/expenses/{expense_id}/status", name=STATUS_NAME, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status answered {response.status_code}: {response.text}")
            elif response.json()["id"] != expense_id:
                response.failure("status of another expense")

    def inbox(self) -> None:
        with self.client.get(
            f"/api/approvals?approver_id={self.last_approver}",
            name="/api/approvals",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"inbox answered {response.status_code}: {response.text}")


__all__ = ["SCENARIOS", "STATUS_NAME", "ExpenseUser", "Scenario", "configure"]


def configure(scenario: str, plan: str | os.PathLike[str] | None) -> None:
    """Point the users at a scenario and a load plan (the runner calls this; so does init)."""
    ExpenseUser.delay = SCENARIOS[scenario].delay
    ExpenseUser.companies = load_plan(plan)


@events.init.add_listener
def _configure(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None and hasattr(options, "scenario"):
        configure(options.scenario, options.plan)
