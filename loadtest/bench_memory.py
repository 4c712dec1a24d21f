"""Benchmark the engine alone: submit-and-approve cycles per second on the in-memory adapter.

Builds an organisation through `OrgService` (companies of teams with a 7-rung ladder shaped like
a pyramid, everyone below the top reporting to someone one rung up), gives each company a 3-step
policy (Manager, SEM, AD, as the seed's Large Equipment), then times N cycles of one submission
and its three approvals through `ExpenseService`. Prints one JSON line.

    python -m loadtest.bench_memory [--users 10000] [--expenses 20000]

A benchmark, not a test: it asserts nothing about time, and its figure is only as good as the
machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from decimal import Decimal

import attrs

from adapters.clock import SystemClock
from adapters.memory import MemoryStore
from entrypoints.synthetic import LADDER, TEAM_SIZE
from expense_core import (
    ApprovalStep,
    ApproveStep,
    CompanyId,
    ExpenseService,
    Money,
    NewPolicy,
    NewUser,
    OrgService,
    PolicyId,
    SubmitExpense,
    UserId,
)

TEAMS_PER_COMPANY = 5
STEPS = (
    ApprovalStep(step_order=1, required_level=6, description="Manager approval"),
    ApprovalStep(step_order=2, required_level=5, description="SEM approval"),
    ApprovalStep(step_order=3, required_level=4, description="AD approval"),
)
AMOUNT = Money(Decimal("4000.00"))


@attrs.frozen
class Org:
    companies: int
    users: int
    # (company, submitter, policy) for everyone at the SEM, Manager or SDE3 rung.
    submitters: tuple[tuple[CompanyId, UserId, PolicyId], ...]


def build(store: MemoryStore, users: int) -> Org:
    """Create companies of five 100-person teams until `users` people exist."""
    org = OrgService(store.unit_of_work)
    submitters: list[tuple[CompanyId, UserId, PolicyId]] = []
    created = companies = 0
    while created < users:
        company = org.create_company(f"Company {companies + 1}")
        companies += 1
        policy = org.create_policy(
            NewPolicy(
                company_id=company.id,
                category="equipment",
                name="Large Equipment",
                min_amount=Money(Decimal("0.00")),
                max_amount=Money(Decimal("999999999.99")),
                steps=STEPS,
            )
        )
        for t in range(TEAMS_PER_COMPANY):
            if created >= users:
                break
            team = org.create_team(company.id, f"Team {t + 1}")
            above: list[UserId] = []
            for number, title, seats in LADDER:
                level = org.create_level(company.id, team.id, number, title)
                here: list[UserId] = []
                for seat in range(seats):
                    if created >= users:
                        break
                    user = org.create_user(
                        NewUser(
                            company_id=company.id,
                            team_id=team.id,
                            email=f"t{team.id}.l{number}.s{seat}@example.com",
                            name=f"{title} {seat + 1} of team {team.id}",
                            hierarchy_level_id=level.id,
                            # Reporting chains: spread evenly over the rung above.
                            manager_id=above[seat % len(above)] if above else None,
                        )
                    )
                    created += 1
                    here.append(user.id)
                    if number >= 5:
                        submitters.append((company.id, user.id, policy.id))
                above = here or above
    return Org(companies, created, tuple(submitters))


def run(service: ExpenseService, plan: Sequence[tuple[CompanyId, UserId, PolicyId]]) -> None:
    """Submit each planned expense and approve its three steps in order."""
    for company, user, policy in plan:
        submitted = service.submit(
            SubmitExpense(
                user_id=user,
                company_id=company,
                policy_id=policy,
                amount=AMOUNT,
                description="benchmark workstation",
            )
        )
        expense_id = submitted.expense.id
        for approver in submitted.approvers:
            service.approve(
                ApproveStep(
                    expense_id=expense_id, user_id=approver.id, company_id=company, comments="ok"
                )
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest.bench_memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=10_000, help="people in the organisation")
    parser.add_argument("--expenses", type=int, default=20_000, help="cycles to time")
    parser.add_argument("--seed", type=int, default=1, help="seed for picking submitters")
    args = parser.parse_args(argv)
    if args.users < TEAM_SIZE or args.expenses < 1:
        parser.error(f"--users must be at least {TEAM_SIZE} and --expenses at least 1")

    store = MemoryStore()
    started = time.perf_counter()
    org = build(store, args.users)
    built = time.perf_counter() - started

    chooser = random.Random(args.seed)
    plan = [chooser.choice(org.submitters) for _ in range(args.expenses)]
    service = ExpenseService(store.unit_of_work, SystemClock())
    started, cpu_started = time.perf_counter(), time.process_time()
    run(service, plan)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    print(
        json.dumps(
            {
                "benchmark": "memory submit + 3 approvals",
                "companies": org.companies,
                "users": org.users,
                "expenses": args.expenses,
                "approvals": 3 * args.expenses,
                "build_seconds": round(built, 3),
                "seconds": round(elapsed, 3),
                # CPU time says what the engine costs even on a machine shared with others.
                "cpu_seconds": round(cpu, 3),
                "expenses_per_second": round(args.expenses / elapsed, 1),
                "expenses_per_cpu_second": round(args.expenses / cpu, 1),
                "python": sys.version.split()[0],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
