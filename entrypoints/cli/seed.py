"""`expense-tracker seed demo|synthetic`: the seed's demo organisation, or synthetic companies
for load tests."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from entrypoints import synthetic
from entrypoints.cli.common import OK, Commands, Usage, add_group, opened, where
from entrypoints.settings import MEMORY_URL, Settings
from expense_core import demo


def add_commands(commands: Commands) -> None:
    """Add `seed` and its `demo` and `synthetic` to the command's parser."""
    seed_commands = add_group(commands, "seed", "load data")
    demo_parser = seed_commands.add_parser(
        "demo",
        help="install the seed's demo organisation (idempotent)",
        description=(
            "Install TechCorp Solutions: 7 people on a 7-level ladder (Alice Chen, CTO, ... "
            "Grace Taylor, SDE3) and the Small Equipment, Large Equipment and Business Travel "
            "policies. On an empty database the ids are the seed's (users 1-7, policies 1-3); "
            "running it again changes nothing."
        ),
    )
    demo_parser.set_defaults(command=seed_demo)
    synthetic_parser = seed_commands.add_parser(
        "synthetic",
        help="add synthetic companies for load tests (each run adds new ones)",
        description=(
            "Add companies of product teams on 7-level ladders (CTO ... SDE3, everyone reporting "
            "one rung up) plus a company-wide Finance team, with Small Equipment, Large "
            "Equipment (manager, SEM, AD, Finance) and Business Travel policies; then submit "
            "expenses across them, about half left pending. --plan writes what a load "
            "generator needs (companies, submitters, policies) as JSON. On PostgreSQL the rows "
            "are written in bulk in one transaction (other writers wait for it)."
        ),
    )
    synthetic_parser.add_argument(
        "--companies", type=int, default=10, help="companies to add (default 10)"
    )
    synthetic_parser.add_argument(
        "--users-per-company",
        type=int,
        default=500,
        help=f"people in each company (default 500, at least {synthetic.MIN_USERS})",
    )
    synthetic_parser.add_argument(
        "--expenses", type=int, default=1000, help="expenses to submit in all (default 1000)"
    )
    synthetic_parser.add_argument(
        "--seed", type=int, default=1, help="random seed: same seed, same organisations"
    )
    synthetic_parser.add_argument("--plan", type=Path, help="write the load plan (JSON) here")
    synthetic_parser.set_defaults(command=seed_synthetic)


def seed_demo(__: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to seed")
    with opened(settings) as container:
        new_uow = container.new_uow()
        company = demo.install_demo(new_uow)
        with new_uow() as uow:
            people = [uow.org.user_by_email(company.id, p[3]) for p in demo.PEOPLE]
            policies = [
                p
                for category in dict.fromkeys(p[0] for p in demo.POLICIES)
                for p in uow.org.policies(company.id, category)
            ]
    table = Table(title=f"{company.name} (company {company.id})")
    table.add_column("user id", justify="right")
    table.add_column("name")
    table.add_column("level")
    for user, person in zip(people, demo.PEOPLE, strict=True):
        if user is not None:
            table.add_row(str(user.id), user.name, person[1])
    console.print(table)
    for policy in sorted(policies, key=lambda p: p.id):
        console.print(
            f"policy {policy.id}: {policy.name} ({policy.category}, "
            f"{policy.min_amount}-{policy.max_amount}, {len(policy.steps)} step(s))"
        )
    console.print(f"demo organisation is installed ({where(settings)})")
    return OK


def seed_synthetic(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    if settings.is_memory:
        raise Usage(f"DATABASE_URL={MEMORY_URL} forgets everything on exit: nothing to seed")
    if args.companies < 1 or args.expenses < 0 or args.users_per_company < synthetic.MIN_USERS:
        raise Usage(
            f"--companies must be at least 1, --users-per-company at least "
            f"{synthetic.MIN_USERS} and --expenses at least 0"
        )
    total = synthetic.progress_steps(args.companies, args.users_per_company, args.expenses)
    with opened(settings) as container, Progress(console=console, transient=True) as progress:
        task = progress.add_task("seeding people, then expenses", total=total)
        made = synthetic.seed_bulk(
            container.bulk_loader(),
            container.clock(),
            companies=args.companies,
            users_per_company=args.users_per_company,
            expenses=args.expenses,
            random_seed=args.seed,
            advance=lambda n: progress.advance(task, n),
        )
    for company in made.companies:
        console.print(
            f"company {company.company_id}: {company.name}, {company.users} people, "
            f"{len(company.submitters)} submitters, policies {sorted(company.policies.values())}"
        )
    if args.plan is not None:
        made.write_plan(args.plan)
        console.print(f"load plan written to {args.plan}")
    console.print(
        f"{len(made.companies)} synthetic companies and {made.expenses} expenses added "
        f"({where(settings)})"
    )
    return OK
