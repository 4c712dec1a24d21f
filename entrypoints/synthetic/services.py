"""Synthetic data stored through the services, one unit of work at a time: any store, slow
(minutes for tens of thousands of expenses), and the reference `seed_bulk` is held to."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from entrypoints.synthetic.draw import (
    APPROVE_COMMENT,
    LADDER,
    REJECT_REASON,
    Advance,
    CompanyShape,
    SyntheticCompany,
    SyntheticOrgs,
    Ticker,
    check_counts,
    draw_company,
    fate,
    policy_specs,
    quiet,
    random_amount,
)
from expense_core.model import User, UserId
from expense_core.ports import Clock, UnitOfWork
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    NewPolicy,
    OrgService,
    RejectExpense,
    SubmitExpense,
)


def seed(
    new_uow: Callable[[], UnitOfWork],
    clock: Clock,
    *,
    companies: int,
    users_per_company: int,
    expenses: int,
    random_seed: int = 1,
    advance: Advance = quiet,
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
    check_counts(companies, users_per_company, expenses)
    chooser = random.Random(random_seed)  # noqa: S311 -- made-up data, not secrets
    ticker = Ticker.before(clock.now(), expenses)
    org = OrgService(new_uow)
    made = [
        _store_company(org, new_uow, draw_company(users_per_company, chooser), advance)
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
        for approver, approves in fate(required, chooser):
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
    org: OrgService, new_uow: Callable[[], UnitOfWork], shape: CompanyShape, advance: Advance
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
    for category, name, low, high, steps in policy_specs(teams[0]):
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
