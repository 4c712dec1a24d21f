"""Synthetic organisations for load tests and demos: companies of teams on 7-level ladders.

Each company has product teams shaped like pyramids (one CTO, a few VPs... many SDE3s),
everyone below the top reporting to someone one rung up in their team, plus a company-wide
Finance team, and three policies: Small Equipment (the manager), Large Equipment (manager, SEM,
AD, then Finance) and Business Travel (manager, SEM, and an optional Finance look). Companies,
teams, levels and policies go through `OrgService`; the people of a company are written in one
unit of work, top rung first, since they are valid by construction and there are thousands.
Expenses go through `ExpenseService`, so they are routed exactly as the API would route them.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs

from expense_core.model import (
    ApprovalStatus,
    ApprovalStep,
    CompanyId,
    ExpenseId,
    LevelId,
    Money,
    Role,
    ScopeKind,
    TeamId,
    TeamScope,
    User,
    UserId,
)
from expense_core.ports import Clock, UnitOfWork
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    NewPolicy,
    OrgService,
    RejectExpense,
    SubmitExpense,
    Submitted,
)

# (level number, title, share of a team): a pyramid, 100 people a team at full size.
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


def _quiet(_: int) -> None:
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


def seed(
    new_uow: Callable[[], UnitOfWork],
    clock: Clock,
    *,
    companies: int,
    users_per_company: int,
    expenses: int,
    random_seed: int = 1,
    advance: Advance = _quiet,
) -> SyntheticOrgs:
    """Create `companies` synthetic companies of `users_per_company` people each, and submit
    `expenses` expenses across them (some approved, a few rejected, the rest pending).

    `advance(n)` is called as people and expenses are stored (for a progress bar): the total is
    `companies * users_per_company + expenses`.

    Raises:
        ValueError: fewer people a company than two full ladders, or a negative count.
    """
    if companies < 1 or expenses < 0:
        raise ValueError("--companies must be at least 1 and --expenses at least 0")
    team_sizes(users_per_company)  # fails early on a company too small
    chooser = random.Random(random_seed)  # noqa: S311 -- made-up data, not secrets
    org = OrgService(new_uow)
    made = [_company(org, new_uow, users_per_company, chooser, advance) for _ in range(companies)]
    submitted = _expenses(ExpenseService(new_uow, clock), made, expenses, chooser, advance)
    return SyntheticOrgs(companies=tuple(made), expenses=submitted)


def _company(
    org: OrgService,
    new_uow: Callable[[], UnitOfWork],
    users: int,
    chooser: random.Random,
    advance: Advance,
) -> SyntheticCompany:
    finance_size, product_sizes = team_sizes(users)
    tag = f"{chooser.getrandbits(32):08x}"
    company = org.create_company(f"Synthetic {tag}")
    finance = org.create_team(company.id, FINANCE, is_company_wide=True)
    teams = [(finance.id, finance_size)]
    for i, size in enumerate(product_sizes):
        name = TEAM_NAMES[i % len(TEAM_NAMES)]
        if i >= len(TEAM_NAMES):
            name = f"{name} {i // len(TEAM_NAMES) + 1}"
        teams.append((org.create_team(company.id, name).id, size))
    levels = {
        team_id: [
            org.create_level(company.id, team_id, number, title).id for number, title, _ in LADDER
        ]
        for team_id, _ in teams
    }
    policies = _policies(org, company.id, finance.id)
    submitters: list[UserId] = []
    serial = itertools.count(1)
    with new_uow() as uow:
        for team_id, size in teams:
            above: list[UserId] = []
            for (number, title, _), level_id, seats in zip(
                LADDER, levels[team_id], rungs(size), strict=True
            ):
                here = [
                    _add_person(
                        uow,
                        company.id,
                        team_id,
                        level_id,
                        manager=above[seat % len(above)] if above else None,
                        n=next(serial),
                        tag=tag,
                        chooser=chooser,
                        top=number == 1 and team_id == finance.id,
                    )
                    for seat in range(seats)
                ]
                if team_id != finance.id and title in ("Manager", "SDE3"):
                    submitters.extend(here)
                advance(len(here))
                above = here
        uow.commit()
    return SyntheticCompany(
        company_id=company.id,
        name=company.name,
        users=users,
        submitters=tuple(submitters),
        policies=policies,
    )


def _add_person(
    uow: UnitOfWork,
    company_id: CompanyId,
    team_id: TeamId,
    level_id: LevelId,
    *,
    manager: UserId | None,
    n: int,
    tag: str,
    chooser: random.Random,
    top: bool,
) -> UserId:
    first, last = chooser.choice(FIRST_NAMES), chooser.choice(LAST_NAMES)
    user = uow.org.add_user(
        User(
            id=UserId(0),
            company_id=company_id,
            team_id=team_id,
            email=f"{first.lower()}.{last.lower()}.{n}@synthetic-{tag}.example",
            name=f"{first} {last}",
            hierarchy_level_id=level_id,
            manager_id=manager,
            role=Role.ADMIN if top else Role.EMPLOYEE,
        )
    )
    return user.id


def _policies(org: OrgService, company_id: CompanyId, finance: TeamId) -> dict[str, int]:
    in_finance = TeamScope(ScopeKind.TEAM, finance)
    specs = (
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
    stored: dict[str, int] = {}
    for category, name, low, high, steps in specs:
        policy = org.create_policy(
            NewPolicy(
                company_id=company_id,
                category=category,
                name=name,
                description=f"{name}, synthetic",
                min_amount=low,
                max_amount=high,
                steps=steps,
            )
        )
        stored[name] = policy.id
    return stored


def random_amount(chooser: random.Random) -> tuple[str, Money]:
    """A category and an amount in exact cents, across both equipment policies and travel."""
    category, low, high = chooser.choice(AMOUNTS)
    return category, Money.cents(chooser.randint(low, high))


def _expenses(
    service: ExpenseService,
    companies: Sequence[SyntheticCompany],
    count: int,
    chooser: random.Random,
    advance: Advance,
) -> int:
    """Submit `count` expenses round the companies; decide on some of their steps."""
    for company in itertools.islice(itertools.cycle(companies), count):
        category, amount = random_amount(chooser)
        submitted = service.submit(
            SubmitExpense(
                user_id=chooser.choice(company.submitters),
                company_id=company.company_id,
                category=category,
                amount=amount,
                description=f"{category} for the quarter",
            )
        )
        _decide_some(service, submitted.expense.id, company.company_id, submitted, chooser)
        advance(1)
    return count


def _decide_some(
    service: ExpenseService,
    expense_id: ExpenseId,
    company_id: CompanyId,
    submitted: Submitted,
    chooser: random.Random,
) -> None:
    """Leave about half pending, approve most of the rest through, reject a few on the way."""
    required = [a for a in submitted.expense.approvals if a.required]
    roll = chooser.random()
    if roll < 0.5 or not required:
        return
    todo = required if roll < 0.9 else required[: chooser.randint(1, len(required))]
    for i, approval in enumerate(todo):
        if approval.status is not ApprovalStatus.PENDING:
            continue
        if roll >= 0.9 and i == len(todo) - 1:
            service.reject(
                RejectExpense(
                    expense_id=expense_id,
                    user_id=approval.approver_id,
                    reason="not in this quarter's budget",
                    company_id=company_id,
                )
            )
            return
        service.approve(
            ApproveStep(
                expense_id=expense_id,
                user_id=approval.approver_id,
                comments="ok",
                company_id=company_id,
            )
        )


def progress_steps(companies: int, users_per_company: int, expenses: int) -> int:
    """The total `seed` advances by."""
    return companies * users_per_company + expenses
