"""Synthetic organisations for load tests and demos: companies of teams on 7-level ladders.

Each company has product teams shaped like pyramids (one CTO, a few VPs... many SDE3s),
everyone below the top reporting to someone one rung up in their team, plus a company-wide
Finance team, and three policies: Small Equipment (the manager), Large Equipment (manager, SEM,
AD, then Finance) and Business Travel (manager, SEM, and an optional Finance look). Expenses are
submitted round the companies; about half are left pending, the rest approved through or
rejected on the way.

Two ways to store the same data. `seed` goes through `OrgService` and `ExpenseService`, one unit
of work at a time: any store, slow (minutes for tens of thousands of expenses). `seed_bulk`
(PostgreSQL) routes and decides each expense with the same pure functions the services call
(`resolve_approvers`, `workflow.submit`, `approve`, `reject`), numbers the rows itself and
writes them with COPY in one transaction: a million expenses in minutes. Both draw every choice
from one seeded random stream in the same order and read time from the same ticking clock, so
the same seed and starting time give the same rows either way (but for when the policies were
created, which the services take from the wall clock).
"""

from __future__ import annotations

import functools
import itertools
import json
import queue
import random
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs

from expense_core import workflow
from expense_core.approvers import ApproverPool, RoutedStep, resolve_approvers
from expense_core.model import (
    Approval,
    ApprovalStep,
    CompanyId,
    Expense,
    ExpenseEvent,
    HierarchyLevel,
    LevelId,
    Member,
    Money,
    Policy,
    PolicyId,
    Role,
    ScopeKind,
    TeamId,
    TeamScope,
    User,
    UserId,
)
from expense_core.policies import match_policy
from expense_core.ports import Clock, UnitOfWork
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    NewPolicy,
    OrgService,
    RejectExpense,
    SubmitExpense,
)

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import Engine

    from entrypoints.container import Database

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


def progress_steps(companies: int, users_per_company: int, expenses: int) -> int:
    """The total `seed` and `seed_bulk` advance by."""
    return companies * users_per_company + expenses


def random_amount(chooser: random.Random) -> tuple[str, Money]:
    """A category and an amount in exact cents, across both equipment policies and travel."""
    category, low, high = chooser.choice(AMOUNTS)
    return category, Money.cents(chooser.randint(low, high))


# --- what both ways store: the shape of a company, the fate of an expense, the clock ---------


@attrs.frozen(kw_only=True)
class _Person:
    team: int  # index into the company's teams, Finance first
    rung: int  # index into LADDER
    manager: int | None  # index into the company's people: someone one rung up
    name: str
    email: str
    role: Role


@attrs.frozen(kw_only=True)
class _CompanyShape:
    """A company before it is stored: teams (Finance first) and people (each team top rung
    first), what `seed` and `seed_bulk` both store in this order."""

    name: str
    teams: tuple[tuple[str, bool, int], ...]  # name, company-wide, size
    people: tuple[_Person, ...]

    def is_submitter(self, person: _Person) -> bool:
        return not self.teams[person.team][1] and LADDER[person.rung][1] in SUBMITTING_TITLES


def _shape(users: int, chooser: random.Random) -> _CompanyShape:
    finance_size, product_sizes = team_sizes(users)
    tag = f"{chooser.getrandbits(32):08x}"
    teams = [(FINANCE, True, finance_size)]
    for i, size in enumerate(product_sizes):
        name = TEAM_NAMES[i % len(TEAM_NAMES)]
        if i >= len(TEAM_NAMES):
            name = f"{name} {i // len(TEAM_NAMES) + 1}"
        teams.append((name, False, size))
    people: list[_Person] = []
    for team, (_, _, size) in enumerate(teams):
        above: list[int] = []
        for rung, seats in enumerate(rungs(size)):
            here = []
            for seat in range(seats):
                first, last = chooser.choice(FIRST_NAMES), chooser.choice(LAST_NAMES)
                n = len(people) + 1
                here.append(len(people))
                people.append(
                    _Person(
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
    return _CompanyShape(name=f"Synthetic {tag}", teams=tuple(teams), people=tuple(people))


def _policy_specs(
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
    sum(1 for s in steps if s.is_required) for *_, steps in _policy_specs(TeamId(1))
)


@attrs.define
class _Ticker:
    """A clock that moves one tick each time it is read, from far enough back that everything
    seeded lies in the past of the clock it started from."""

    origin: datetime
    ticks: int = 0

    @classmethod
    def before(cls, now: datetime, expenses: int) -> _Ticker:
        return cls(now.astimezone(UTC) - TICK * (expenses * _MOST_TICKS))

    def now(self) -> datetime:
        at = self.origin + TICK * self.ticks
        self.ticks += 1
        return at


def _fate(required: Sequence[Approval], chooser: random.Random) -> list[tuple[UserId, bool]]:
    """The decisions an expense gets, in order, as (approver, approves): about half none,
    most of the rest every required step approved, a few approved some way then rejected."""
    roll = chooser.random()
    if roll < 0.5 or not required:
        return []
    if roll < 0.9:
        return [(a.approver_id, True) for a in required]
    todo = required[: chooser.randint(1, len(required))]
    return [(a.approver_id, i < len(todo) - 1) for i, a in enumerate(todo)]


def _check_counts(companies: int, users_per_company: int, expenses: int) -> None:
    if companies < 1 or expenses < 0:
        raise ValueError("--companies must be at least 1 and --expenses at least 0")
    team_sizes(users_per_company)  # fails early on a company too small


# --- through the services: any store ---------------------------------------------------------


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
    `expenses` expenses across them (some approved, a few rejected, the rest pending), one
    unit of work at a time through the services.

    Submissions and decisions are dated a tick apart, ending before `clock.now()`.
    `advance(n)` is called as people and expenses are stored (for a progress bar): the total is
    `progress_steps(companies, users_per_company, expenses)`.

    Raises:
        ValueError: fewer people a company than two full ladders, or a negative count.
    """
    _check_counts(companies, users_per_company, expenses)
    chooser = random.Random(random_seed)  # noqa: S311 -- made-up data, not secrets
    ticker = _Ticker.before(clock.now(), expenses)
    org = OrgService(new_uow)
    made = [
        _store_company(org, new_uow, _shape(users_per_company, chooser), advance)
        for _ in range(companies)
    ]
    service = ExpenseService(new_uow, ticker)
    for company in itertools.islice(itertools.cycle(made), expenses):
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
        expense = submitted.expense
        required = [a for a in expense.approvals if a.required]
        for approver, approves in _fate(required, chooser):
            if approves:
                service.approve(
                    ApproveStep(
                        expense_id=expense.id,
                        user_id=approver,
                        comments=APPROVE_COMMENT,
                        company_id=company.company_id,
                    )
                )
            else:
                service.reject(
                    RejectExpense(
                        expense_id=expense.id,
                        user_id=approver,
                        reason=REJECT_REASON,
                        company_id=company.company_id,
                    )
                )
        advance(1)
    return SyntheticOrgs(companies=tuple(made), expenses=expenses)


def _store_company(
    org: OrgService, new_uow: Callable[[], UnitOfWork], shape: _CompanyShape, advance: Advance
) -> SyntheticCompany:
    company = org.create_company(shape.name)
    teams = [
        org.create_team(company.id, name, is_company_wide=wide).id for name, wide, _ in shape.teams
    ]
    levels = {
        team_id: [
            org.create_level(company.id, team_id, number, title).id for number, title, _ in LADDER
        ]
        for team_id in teams
    }
    policies: dict[str, int] = {}
    for category, name, low, high, steps in _policy_specs(teams[0]):
        policy = org.create_policy(
            NewPolicy(
                company_id=company.id,
                category=category,
                name=name,
                description=f"{name}, synthetic",
                min_amount=low,
                max_amount=high,
                steps=steps,
            )
        )
        policies[name] = policy.id
    ids: list[UserId] = []
    # The people are valid by construction and there are thousands: one unit of work.
    with new_uow() as uow:
        for person in shape.people:
            team_id = teams[person.team]
            user = uow.org.add_user(
                User(
                    id=UserId(0),
                    company_id=company.id,
                    team_id=team_id,
                    email=person.email,
                    name=person.name,
                    hierarchy_level_id=levels[team_id][person.rung],
                    manager_id=None if person.manager is None else ids[person.manager],
                    role=person.role,
                )
            )
            ids.append(user.id)
        uow.commit()
    advance(len(ids))
    return SyntheticCompany(
        company_id=company.id,
        name=company.name,
        users=len(ids),
        submitters=tuple(
            i for i, p in zip(ids, shape.people, strict=True) if shape.is_submitter(p)
        ),
        policies=policies,
    )


# --- straight into PostgreSQL: rows numbered here, written with COPY --------------------------

# Tables in the order they are written (each refers only to those before it), with the columns
# each COPY gives, in the order `_rows` formats them.
_COLUMNS: Final = {
    "companies": ("id", "name"),
    "teams": ("id", "company_id", "name", "is_company_wide"),
    "hierarchy_levels": ("id", "company_id", "team_id", "level_number", "level_name"),
    "users": (
        "id", "company_id", "team_id", "email", "name", "hierarchy_level_id", "active",
        "manager_id", "role",
    ),
    "policies": (
        "id", "company_id", "category", "name", "description", "min_amount", "max_amount",
        "created_at", "active",
    ),
    "approval_steps": (
        "id", "policy_id", "step_order", "required_level", "team_scope", "is_required",
        "description", "company_id",
    ),
    "expenses": (
        "id", "company_id", "user_id", "policy_id", "amount", "description", "status",
        "submitted_at", "completed_at",
    ),
    "approvals": (
        "id", "expense_id", "step_number", "approver_id", "approver_level_id", "required",
        "status", "approved_at", "comments", "company_id",
    ),
    "expense_events": (
        "id", "company_id", "expense_id", "kind", "at", "actor_id", "step_number", "comment",
        "approver_id", "previous_approver_id",
    ),
}  # fmt: skip
BATCH: Final = 20_000  # expenses a COPY round writes
NULL: Final = "\\N"
_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

Rows = dict[str, list[str]]


def _text(value: str | None) -> str:
    """A value as COPY's text format reads it."""
    return NULL if value is None else value.translate(_ESCAPES)


def _id(value: int | None) -> str:
    return NULL if value is None else str(value)


def _flag(value: bool) -> str:
    return "t" if value else "f"


def _stamp(at: datetime | None) -> str:
    # The ticker's times are UTC, which the seed's naive TIMESTAMP columns hold; PostgreSQL
    # ignores the "+00:00" in a TIMESTAMP WITHOUT TIME ZONE.
    return NULL if at is None else str(at)


class _Stamps(dict[datetime | None, str]):
    """Timestamps as COPY reads them, each formatted once: an expense's rows repeat the
    moments of its submission and decisions."""

    def __missing__(self, at: datetime | None) -> str:
        self[at] = stamp = _stamp(at)
        return stamp


class _Texts(dict[str | None, str]):
    """Texts as COPY reads them, each escaped once: expenses repeat a handful of
    descriptions and comments."""

    def __missing__(self, value: str | None) -> str:
        self[value] = text = _text(value)
        return text


@attrs.frozen
class _Cells:
    stamps: _Stamps = attrs.Factory(_Stamps)
    texts: _Texts = attrs.Factory(_Texts)


def _line(*fields: str) -> str:
    return "\t".join(fields) + "\n"


@attrs.define
class _Numbering:
    """Where this seed's ids start in each table, and the next one to give."""

    first: dict[str, int]
    next: dict[str, int]

    def take(self, table: str) -> int:
        taken = self.next[table]
        self.next[table] = taken + 1
        return taken


@attrs.define
class _Company:
    """A company numbered and ready to route: its people as the engine sees them."""

    seen: SyntheticCompany
    members: dict[UserId, Member]
    policies: dict[str, tuple[Policy, ...]]
    _routes: dict[tuple[UserId, PolicyId], tuple[RoutedStep, ...]] = attrs.Factory(dict)

    def route(self, submitter: Member, policy: Policy) -> tuple[RoutedStep, ...]:
        """What `resolve_approvers` makes of the submitter and policy, asked once per pair."""
        key = (submitter.id, policy.id)
        found = self._routes.get(key)
        if found is None:
            chain = []
            manager_id = submitter.user.manager_id
            while manager_id is not None:
                manager = self.members[manager_id]
                chain.append(manager)
                manager_id = manager.user.manager_id
            # Everyone in the company is a candidate: more than a store gathers, which
            # resolution allows ("more is harmless"), and the same choices come out.
            pool = ApproverPool(tuple(chain), tuple(self.members.values()))
            found = self._routes[key] = resolve_approvers(submitter, policy.steps, pool)
        return found


def _number_company(
    shape: _CompanyShape, numbering: _Numbering, created: datetime, rows: Rows
) -> _Company:
    """Give a company, its teams, levels, people and policies their ids, as `seed` would
    store them one by one, and add their rows to `rows`."""
    company_id = CompanyId(numbering.take("companies"))
    rows["companies"].append(_line(str(company_id), _text(shape.name)))
    teams: list[TeamId] = []
    levels: list[list[HierarchyLevel]] = []
    for name, wide, _ in shape.teams:
        team_id = TeamId(numbering.take("teams"))
        teams.append(team_id)
        rows["teams"].append(_line(str(team_id), str(company_id), _text(name), _flag(wide)))
        ladder = []
        for number, title, _ in LADDER:
            level = HierarchyLevel(
                LevelId(numbering.take("hierarchy_levels")), company_id, team_id, number, title
            )
            ladder.append(level)
            rows["hierarchy_levels"].append(
                _line(str(level.id), str(company_id), str(team_id), str(number), _text(title))
            )
        levels.append(ladder)
    by_category: dict[str, list[Policy]] = {}
    policy_ids: dict[str, int] = {}
    for category, name, low, high, specs in _policy_specs(teams[0]):
        policy_id = PolicyId(numbering.take("policies"))
        steps = tuple(attrs.evolve(s, id=numbering.take("approval_steps")) for s in specs)
        policy = Policy(
            id=policy_id,
            company_id=company_id,
            category=category,
            name=name,
            description=f"{name}, synthetic",
            min_amount=low,
            max_amount=high,
            steps=steps,
            created_at=created,
        )
        by_category.setdefault(category, []).append(policy)
        policy_ids[name] = policy_id
        rows["policies"].append(
            _line(
                str(policy_id),
                str(company_id),
                _text(category),
                _text(name),
                _text(policy.description),
                str(low),
                str(high),
                _stamp(created),
                _flag(policy.active),
            )
        )
        rows["approval_steps"].extend(
            _line(
                str(s.id),
                str(policy_id),
                str(s.step_order),
                str(s.required_level),
                _text(str(s.team_scope)),
                _flag(s.is_required),
                _text(s.description),
                str(company_id),
            )
            for s in steps
        )
    members: dict[UserId, Member] = {}
    ids: list[UserId] = []
    for person in shape.people:
        level = levels[person.team][person.rung]
        user = User(
            id=UserId(numbering.take("users")),
            company_id=company_id,
            team_id=teams[person.team],
            email=person.email,
            name=person.name,
            hierarchy_level_id=level.id,
            manager_id=None if person.manager is None else ids[person.manager],
            role=person.role,
        )
        ids.append(user.id)
        members[user.id] = Member(user, level)
        rows["users"].append(
            _line(
                str(user.id),
                str(company_id),
                str(user.team_id),
                _text(user.email),
                _text(user.name),
                str(level.id),
                _flag(user.active),
                _id(user.manager_id),
                _text(str(user.role)),
            )
        )
    seen = SyntheticCompany(
        company_id=company_id,
        name=shape.name,
        users=len(ids),
        submitters=tuple(
            i for i, p in zip(ids, shape.people, strict=True) if shape.is_submitter(p)
        ),
        policies=policy_ids,
    )
    return _Company(
        seen, members, {category: tuple(found) for category, found in by_category.items()}
    )


def _expense_rows(
    company: _Company,
    chooser: random.Random,
    ticker: _Ticker,
    numbering: _Numbering,
    rows: Rows,
    cells: _Cells,
) -> None:
    """Submit one expense and decide on it as `seed` does, and add the rows it leaves."""
    category, amount = random_amount(chooser)
    submitter = company.members[chooser.choice(company.seen.submitters)]
    policy = match_policy(company.policies[category], category, amount)
    decision = workflow.submit(
        submitter=submitter,
        policy=policy,
        amount=amount,
        description=f"{category} for the quarter",
        routing=company.route(submitter, policy),
        at=ticker.now(),
    )
    expense = decision.expense
    events: list[ExpenseEvent] = list(decision.events)
    for approver, approves in _fate([a for a in expense.approvals if a.required], chooser):
        if approves:
            decision = workflow.approve(expense, approver, APPROVE_COMMENT, ticker.now())
        else:
            decision = workflow.reject(expense, approver, REJECT_REASON, ticker.now())
        expense = decision.expense
        events.extend(decision.events)
    _add_expense(expense, events, numbering, rows, cells)


def _add_expense(
    expense: Expense,
    events: Sequence[ExpenseEvent],
    numbering: _Numbering,
    rows: Rows,
    cells: _Cells,
) -> None:
    # Formatted inline, field by field as `_COLUMNS` lists them: this runs for every one of
    # millions of rows.
    ids = numbering.next
    expense_id = ids["expenses"]
    ids["expenses"] = expense_id + 1
    company = expense.company_id
    stamps, texts = cells.stamps, cells.texts
    rows["expenses"].append(
        f"{expense_id}\t{company}\t{expense.user_id}\t{expense.policy_id}\t"
        f"{expense.amount.value}\t{texts[expense.description]}\t{expense.status}\t"
        f"{stamps[expense.submitted_at]}\t{stamps[expense.completed_at]}\n"
    )
    lines = rows["approvals"]
    first = ids["approvals"]
    for approval_id, a in enumerate(expense.approvals, first):
        lines.append(
            f"{approval_id}\t{expense_id}\t{a.step_number}\t{a.approver_id}\t"
            f"{a.approver_level_id}\t{'t' if a.required else 'f'}\t{a.status}\t"
            f"{stamps[a.approved_at]}\t{texts[a.comments]}\t{company}\n"
        )
    ids["approvals"] = first + len(expense.approvals)
    lines = rows["expense_events"]
    first = ids["expense_events"]
    for event_id, e in enumerate(events, first):
        lines.append(
            f"{event_id}\t{company}\t{expense_id}\t{e.kind}\t{stamps[e.at]}\t"
            f"{_id(e.actor_id)}\t{_id(e.step_number)}\t{texts[e.comment]}\t"
            f"{_id(e.approver_id)}\t{_id(e.previous_approver_id)}\n"
        )
    ids["expense_events"] = first + len(events)


def _empty_rows() -> Rows:
    return {table: [] for table in _COLUMNS}


def _copy(conn: psycopg.Connection[Any], rows: Rows) -> None:
    """Write the rows, table by table in `_COLUMNS`' order."""
    with conn.cursor() as cursor:
        for table, columns in _COLUMNS.items():
            lines = rows[table]
            if not lines:
                continue
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for start in range(0, len(lines), 4096):
                    copy.write("".join(lines[start : start + 4096]))


def _reserve(conn: psycopg.Connection[Any]) -> _Numbering:
    """Keep other writers out of the tables until this seed commits, and find where its ids
    start: past the sequences and past every stored id."""
    with conn.cursor() as cursor:
        # A seed of millions of rows outlasts any request-sized statement timeout.
        cursor.execute("SET LOCAL statement_timeout = 0")
        # Readers go on; writers (whose ids could collide with ours) wait for the commit.
        cursor.execute(f"LOCK TABLE {', '.join(_COLUMNS)} IN SHARE ROW EXCLUSIVE MODE")
        first: dict[str, int] = {}
        for table in _COLUMNS:
            # Read, not drawn (nextval): a table this seed writes nothing to keeps its sequence.
            cursor.execute(
                "SELECT greatest(coalesce(s.last_value + 1, s.start_value), "  # noqa: S608 -- our own table names
                f"coalesce((SELECT max(id) FROM {table}), 0) + 1) "
                "FROM pg_sequences AS s "
                "WHERE format('%%I.%%I', s.schemaname, s.sequencename)::regclass "
                "= pg_get_serial_sequence(%s, 'id')::regclass",
                (table,),
            )
            found = cursor.fetchone()
            assert found is not None  # noqa: S101 -- every table's id has its sequence
            first[table] = int(found[0])
    return _Numbering(first, dict(first))


def _defer_reference_checks(conn: psycopg.Connection[Any]) -> bool:
    """Turn off the row-by-row foreign key checks for this transaction, if this role may.

    They cost most of what PostgreSQL spends on a COPY (four index probes through a trigger for
    every approval row); `_check_references` checks the same keys afterwards, a table at a time.
    Only superusers (or roles granted it) may set session_replication_role: others keep the
    row-by-row checks, and a slower seed.
    """
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def _check_references(conn: psycopg.Connection[Any], numbering: _Numbering) -> None:
    """Check every foreign key of the rows this seed wrote, as the constraints would have: one
    pass over each table's new rows, joined to what each key refers to.

    Raises:
        RuntimeError: some new row refers to nothing (the caller rolls back).
    """
    from psycopg import sql

    keys = conn.execute(
        "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text, "
        "array_agg(a.attname ORDER BY k.i), array_agg(r.attname ORDER BY k.i) "
        "FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(col, ref, i) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col "
        "JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = k.ref "
        "WHERE c.contype = 'f' AND c.conrelid = ANY(%s::regclass[]) "
        "GROUP BY c.oid, c.conname, c.conrelid, c.confrelid ORDER BY c.conname",
        (list(_COLUMNS),),
    ).fetchall()
    by_table: dict[str, list[tuple[str, str, list[str], list[str]]]] = {}
    for name, table, refers_to, columns, referred in keys:
        by_table.setdefault(table, []).append((name, refers_to, columns, referred))
    for table, constraints in by_table.items():
        if numbering.next[table] == numbering.first[table]:
            continue
        row = sql.Identifier("new")
        joins, broken = [], []
        for i, (_, refers_to, columns, referred) in enumerate(constraints):
            target = sql.Identifier(f"ref{i}")
            on = sql.SQL(" AND ").join(
                sql.SQL("{}.{} = {}.{}").format(target, sql.Identifier(r), row, sql.Identifier(c))
                for c, r in zip(columns, referred, strict=True)
            )
            joins.append(
                sql.SQL("LEFT JOIN {} AS {} ON {}").format(sql.Identifier(refers_to), target, on)
            )
            # MATCH SIMPLE: a key with a NULL in it refers to nothing and needs nothing.
            given = sql.SQL(" AND ").join(
                sql.SQL("{}.{} IS NOT NULL").format(row, sql.Identifier(c)) for c in columns
            )
            broken.append(
                sql.SQL("count(*) FILTER (WHERE {} AND {}.{} IS NULL)").format(
                    given, target, sql.Identifier(referred[0])
                )
            )
        query = sql.SQL("SELECT {} FROM {} AS {} {} WHERE {}.id >= %s").format(
            sql.SQL(", ").join(broken),
            sql.Identifier(table),
            row,
            sql.SQL(" ").join(joins),
            row,
        )
        counts = conn.execute(query, (numbering.first[table],)).fetchone()
        assert counts is not None  # noqa: S101 -- an aggregate returns one row
        for (name, *_), count in zip(constraints, counts, strict=True):
            if count:
                raise RuntimeError(f"{count} new rows of {table} break {name}")


def _finish(conn: psycopg.Connection[Any], numbering: _Numbering) -> None:
    """Move every sequence past the ids this seed used, give the planner statistics of the new
    rows (until autovacuum gets round to it, every company looks a few rows big and plans go
    wrong), and commit."""
    with conn.cursor() as cursor:
        for table, next_id in numbering.next.items():
            if next_id > numbering.first[table]:
                # As if the ids had been drawn one by one: the last one used is the last value.
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, next_id - 1)
                )
        cursor.execute(f"ANALYZE {', '.join(_COLUMNS)}")
    conn.commit()


def seed_bulk(
    engine: Engine,
    clock: Clock,
    *,
    companies: int,
    users_per_company: int,
    expenses: int,
    random_seed: int = 1,
    advance: Advance = _quiet,
) -> SyntheticOrgs:
    """What `seed` stores, straight into a PostgreSQL database: the same rows for the same
    seed and clock, in one transaction, written with COPY a batch at a time while the next
    batch is worked out; then the tables are analyzed.

    Other writers to these tables wait until the seed commits; readers go on.

    Raises:
        ValueError: as `seed`, or an engine that is not PostgreSQL.
    """
    _check_counts(companies, users_per_company, expenses)
    if engine.dialect.name != "postgresql":
        raise ValueError(f"seed_bulk writes to PostgreSQL, not {engine.dialect.name}")
    chooser = random.Random(random_seed)  # noqa: S311 -- made-up data, not secrets
    ticker = _Ticker.before(clock.now(), expenses)
    import psycopg

    pooled = engine.raw_connection()
    conn = pooled.driver_connection
    if not isinstance(conn, psycopg.Connection):
        pooled.close()
        raise ValueError("seed_bulk needs the psycopg driver (postgresql+psycopg://)")
    try:
        numbering = _reserve(conn)
        checked_later = _defer_reference_checks(conn)
        with _Pipeline(conn) as pipeline:
            rows = _empty_rows()
            made = []
            for _ in range(companies):
                shape = _shape(users_per_company, chooser)
                made.append(_number_company(shape, numbering, ticker.origin, rows))
            pipeline.send(rows, functools.partial(advance, companies * users_per_company))
            for start in range(0, expenses, BATCH):
                rows, cells = _empty_rows(), _Cells()
                count = min(BATCH, expenses - start)
                for i in range(start, start + count):
                    _expense_rows(made[i % companies], chooser, ticker, numbering, rows, cells)
                pipeline.send(rows, functools.partial(advance, count))
        if checked_later:
            _check_references(conn, numbering)
        _finish(conn, numbering)
    except BaseException:
        conn.rollback()
        raise
    finally:
        pooled.close()
    return SyntheticOrgs(companies=tuple(c.seen for c in made), expenses=expenses)


class _Pipeline:
    """COPY one batch on a thread of its own while the caller works out the next: the
    database and Python each keep a core busy. One batch is in flight at a time."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._batches: queue.Queue[tuple[Rows, Callable[[], None]] | None] = queue.Queue(1)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seed-copy", daemon=True)

    def __enter__(self) -> _Pipeline:
        self._thread.start()
        return self

    def send(self, rows: Rows, done: Callable[[], None]) -> None:
        """Queue rows for writing; `done` is called once they are written.

        Raises:
            whatever writing an earlier batch raised.
        """
        self._raise_failure()
        self._batches.put((rows, done))

    def __exit__(self, kind: object, *_: object) -> None:
        self._batches.put(None)
        self._thread.join()
        if kind is None:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            if self._failure is not None:
                continue  # drain, so the sender never blocks on a dead writer
            rows, done = batch
            try:
                _copy(self._conn, rows)
                done()
            except BaseException as exc:  # handed to the sending thread
                self._failure = exc


def seed_database(
    database: Database,
    clock: Clock,
    *,
    companies: int,
    users_per_company: int,
    expenses: int,
    random_seed: int = 1,
    advance: Advance = _quiet,
) -> SyntheticOrgs:
    """`seed_bulk` on PostgreSQL, `seed` through the services on any other store.

    Raises:
        ValueError: as `seed`.
    """
    from adapters.sql.database import SqlDatabase

    if isinstance(database, SqlDatabase) and database.engine.dialect.name == "postgresql":
        how = functools.partial(seed_bulk, database.engine)
    else:
        how = functools.partial(seed, database.unit_of_work)
    return how(
        clock,
        companies=companies,
        users_per_company=users_per_company,
        expenses=expenses,
        random_seed=random_seed,
        advance=advance,
    )
