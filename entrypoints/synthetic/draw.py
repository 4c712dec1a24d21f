"""What synthetic data is made of, drawn from one seeded random stream: companies of teams on
7-level ladders, their policies, the amounts submitted and the fate of each expense.

Each company has product teams shaped like pyramids (one CTO, a few VPs... many SDE3s),
everyone below the top reporting to someone one rung up in their team, plus a company-wide
Finance team, and three policies: Small Equipment (the manager), Large Equipment (manager, SEM,
AD, then Finance) and Business Travel (manager, SEM, and an optional Finance look). Expenses are
submitted round the companies; about half are left pending, the rest approved through or
rejected on the way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs

from expense_core.model import (
    Approval,
    ApprovalStep,
    CompanyId,
    Money,
    Role,
    ScopeKind,
    TeamId,
    TeamScope,
    UserId,
)

LADDER: Final = (
    (1, "CTO", 1),
    (2, "VP", 2),
    (3, "Director", 4),
    (4, "AD", 8),
    (5, "SEM", 15),
    (6, "Manager", 25),
    (7, "SDE3", 45),
)
TEAM_SIZE: Final = sum(share for _, _, share in LADDER)
MIN_TEAM: Final = len(LADDER)  # one person a rung
MIN_USERS: Final = 2 * MIN_TEAM  # a product team and Finance
FINANCE: Final = "Finance"
SUBMITTING_TITLES: Final = ("Manager", "SDE3")
TEAM_NAMES: Final = (
    "Platform", "Payments", "Mobile", "Data", "Growth", "Infrastructure", "Security", "Search",
    "Identity", "Billing", "Marketplace", "Analytics", "Support Tools", "Integrations",
)  # fmt: skip
FIRST_NAMES: Final = (
    "Aisha", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kavya",
    "Liam", "Maya", "Noah", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe",
)  # fmt: skip
LAST_NAMES: Final = (
    "Adams", "Bose", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Iyer",
    "Jensen", "Kim", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quist", "Rossi",
    "Silva", "Tanaka", "Usman", "Varga", "Walsh", "Xu", "Young", "Zhang",
)  # fmt: skip
UNBOUNDED: Final = Money(Decimal("999999999.99"))
# (category, low, high) of the amounts submitters ask for: both equipment policies and travel.
AMOUNTS: Final = (
    ("equipment", 20_00, 1999_99),
    ("equipment", 2000_00, 9000_00),
    ("travel", 150_00, 4800_00),
)
APPROVE_COMMENT: Final = "ok"
REJECT_REASON: Final = "not in this quarter's budget"
# Seeded history is spread over the past: one clock tick per submission or decision.
TICK: Final = timedelta(seconds=1)


@attrs.frozen(kw_only=True)
class SyntheticCompany:
    """What a load generator needs to act for one company."""

    company_id: CompanyId
    name: str
    users: int
    # The SDE3s and Managers of product teams: they submit, and their chains approve.
    submitters: tuple[UserId, ...]
    policies: dict[str, int]


@attrs.frozen(kw_only=True)
class SyntheticOrgs:
    companies: tuple[SyntheticCompany, ...]
    expenses: int

    def plan(self) -> dict[str, Any]:
        """The load plan: JSON-ready, read by `loadtest/locustfile.py`."""
        return {
            "companies": [
                {
                    "company_id": c.company_id,
                    "name": c.name,
                    "users": c.users,
                    "submitters": list(c.submitters),
                    "policies": c.policies,
                }
                for c in self.companies
            ]
        }

    def write_plan(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.plan()) + "\n")


Advance = Callable[[int], None]


def quiet(_: int) -> None:
    """No progress to show."""


def team_sizes(users: int) -> tuple[int, list[int]]:
    """How many people Finance and each product team get: Finance about a twentieth (a full
    ladder at least), product teams up to 100 each (a full ladder at least).

    Raises:
        ValueError: fewer people than two full ladders.
    """
    if users < MIN_USERS:
        raise ValueError(f"a company needs at least {MIN_USERS} people, got {users}")
    finance = max(MIN_TEAM, users // 20)
    rest = users - finance
    teams = max(1, min(-(-rest // TEAM_SIZE), rest // MIN_TEAM))
    base, extra = divmod(rest, teams)
    return finance, [base + (1 if i < extra else 0) for i in range(teams)]


def rungs(size: int) -> list[int]:
    """People per rung of a team of `size`: the pyramid's shares, one at least on each rung,
    and whatever rounding leaves over on the most junior rung."""
    seats = [max(1, size * share // TEAM_SIZE) for _, _, share in LADDER]
    while sum(seats) > size:  # small teams: trim the widest rung above the minimum
        widest = max(range(len(seats)), key=lambda i: seats[i])
        seats[widest] -= 1
    seats[-1] += size - sum(seats)
    return seats


def progress_steps(companies: int, users_per_company: int, expenses: int) -> int:
    """The total `seed` and `seed_bulk` advance by."""
    return companies * users_per_company + expenses


def random_amount(chooser: random.Random) -> tuple[str, Money]:
    """A category and an amount in exact cents, across both equipment policies and travel."""
    category, low, high = chooser.choice(AMOUNTS)
    return category, Money.cents(chooser.randint(low, high))


# --- what both ways store: the shape of a company, the fate of an expense, the clock ---------


@attrs.frozen(kw_only=True)
class Person:
    team: int  # index into the company's teams, Finance first
    rung: int  # index into LADDER
    manager: int | None  # index into the company's people: someone one rung up
    name: str
    email: str
    role: Role


@attrs.frozen(kw_only=True)
class CompanyShape:
    """A company before it is stored: teams (Finance first) and people (each team top rung
    first), what `seed` and `seed_bulk` both store in this order."""

    name: str
    teams: tuple[tuple[str, bool, int], ...]  # name, company-wide, size
    people: tuple[Person, ...]

    def is_submitter(self, person: Person) -> bool:
        return not self.teams[person.team][1] and LADDER[person.rung][1] in SUBMITTING_TITLES


def draw_company(users: int, chooser: random.Random) -> CompanyShape:
    finance_size, product_sizes = team_sizes(users)
    tag = f"{chooser.getrandbits(32):08x}"
    teams = [(FINANCE, True, finance_size)]
    for i, size in enumerate(product_sizes):
        name = TEAM_NAMES[i % len(TEAM_NAMES)]
        if i >= len(TEAM_NAMES):
            name = f"{name} {i // len(TEAM_NAMES) + 1}"
        teams.append((name, False, size))
    people: list[Person] = []
    for team, (_, _, size) in enumerate(teams):
        above: list[int] = []
        for rung, seats in enumerate(rungs(size)):
            here = []
            for seat in range(seats):
                first, last = chooser.choice(FIRST_NAMES), chooser.choice(LAST_NAMES)
                n = len(people) + 1
                here.append(len(people))
                people.append(
                    Person(
                        team=team,
                        rung=rung,
                        manager=above[seat % len(above)] if above else None,
                        name=f"{first} {last}",
                        email=f"{first.lower()}.{last.lower()}.{n}@synthetic-{tag}.example",
                        # Finance's head administers the company.
                        role=Role.ADMIN if team == 0 and rung == 0 else Role.EMPLOYEE,
                    )
                )
            above = here
    return CompanyShape(name=f"Synthetic {tag}", teams=tuple(teams), people=tuple(people))


def policy_specs(
    finance: TeamId,
) -> tuple[tuple[str, str, Money, Money, tuple[ApprovalStep, ...]], ...]:
    in_finance = TeamScope(ScopeKind.TEAM, finance)
    return (
        (
            "equipment",
            "Small Equipment",
            Money(Decimal("0.00")),
            Money(Decimal("1999.99")),
            (ApprovalStep(step_order=1, required_level=6, description="Manager approval"),),
        ),
        (
            "equipment",
            "Large Equipment",
            Money(Decimal("2000.00")),
            UNBOUNDED,
            (
                ApprovalStep(step_order=1, required_level=6, description="Manager approval"),
                ApprovalStep(step_order=2, required_level=5, description="SEM approval"),
                ApprovalStep(step_order=3, required_level=4, description="AD approval"),
                ApprovalStep(
                    step_order=4,
                    required_level=5,
                    team_scope=in_finance,
                    description="Finance review",
                ),
            ),
        ),
        (
            "travel",
            "Business Travel",
            Money(Decimal("0.00")),
            UNBOUNDED,
            (
                ApprovalStep(step_order=1, required_level=6, description="Manager approval"),
                ApprovalStep(step_order=2, required_level=5, description="SEM approval"),
                ApprovalStep(
                    step_order=3,
                    required_level=6,
                    team_scope=in_finance,
                    is_required=False,
                    description="Finance look (optional)",
                ),
            ),
        ),
    )


# Submission and every decision after it: the most clock readings one expense takes.
_MOST_TICKS: Final = 1 + max(
    sum(1 for s in steps if s.is_required) for *_, steps in policy_specs(TeamId(1))
)


@attrs.define
class Ticker:
    """A clock that moves one tick each time it is read, from far enough back that everything
    seeded lies in the past of the clock it started from."""

    origin: datetime
    ticks: int = 0

    @classmethod
    def before(cls, now: datetime, expenses: int) -> Ticker:
        return cls(now.astimezone(UTC) - TICK * (expenses * _MOST_TICKS))

    def now(self) -> datetime:
        at = self.origin + TICK * self.ticks
        self.ticks += 1
        return at


def fate(required: Sequence[Approval], chooser: random.Random) -> list[tuple[UserId, bool]]:
    """The decisions an expense gets, in order, as (approver, approves): about half none,
    most of the rest every required step approved, a few approved some way then rejected."""
    roll = chooser.random()
    if roll < 0.5 or not required:
        return []
    if roll < 0.9:
        return [(a.approver_id, True) for a in required]
    todo = required[: chooser.randint(1, len(required))]
    return [(a.approver_id, i < len(todo) - 1) for i, a in enumerate(todo)]


def check_counts(companies: int, users_per_company: int, expenses: int) -> None:
    if companies < 1 or expenses < 0:
        raise ValueError("--companies must be at least 1 and --expenses at least 0")
    team_sizes(users_per_company)  # fails early on a company too small
