"""The seed's demo organisation: TechCorp Solutions, its 7-level ladder and 3 policies.

Built through `OrgService`, so it obeys every rule a real organisation does. On an empty store
the ids are the seed's (company 1, users 1-7, policies 1-3); installing twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from expense_core.errors import StoreNotEmpty, UnknownCompany
from expense_core.model import (
    ApprovalStep,
    Company,
    CompanyId,
    Money,
    Role,
)
from expense_core.ports import UnitOfWork
from expense_core.services import NewPolicy, NewUser, OrgService

COMPANY = "TechCorp Solutions"
TEAM = "Technology"
PEOPLE = (
    # level number, level name, user name, email
    (1, "CTO", "Alice Chen", "alice.chen@techcorp.com"),
    (2, "VP", "Bob Smith", "bob.smith@techcorp.com"),
    (3, "Director", "Carol Johnson", "carol.johnson@techcorp.com"),
    (4, "AD", "David Wilson", "david.wilson@techcorp.com"),
    (5, "SEM", "Eve Davis", "eve.davis@techcorp.com"),
    (6, "Manager", "Frank Miller", "frank.miller@techcorp.com"),
    (7, "SDE3", "Grace Taylor", "grace.taylor@techcorp.com"),
)
UNBOUNDED = Money(Decimal("999999999.99"))
POLICIES = (
    # category, name, description, min, max, (required level, step description) per step
    (
        "equipment",
        "Small Equipment",
        "Equipment under $2000",
        Money(Decimal("0.00")),
        Money(Decimal("1999.99")),
        ((6, "Manager approval"),),
    ),
    (
        "equipment",
        "Large Equipment",
        "Equipment of $2000 and over",
        Money(Decimal("2000.00")),
        UNBOUNDED,
        ((6, "Manager approval"), (5, "SEM approval"), (4, "AD approval")),
    ),
    (
        "travel",
        "Business Travel",
        "Business travel of any amount",
        Money(Decimal("0.00")),
        UNBOUNDED,
        ((6, "Manager approval"), (5, "SEM approval")),
    ),
)


def install_demo(new_uow: Callable[[], UnitOfWork]) -> Company:
    """Create the seed's demo organisation unless it is already there.

    Raises:
        StoreNotEmpty: company 1 is some other company, so the seed's ids cannot hold.
    """
    with new_uow() as uow:
        try:
            existing = uow.org.company(CompanyId(1))
        except UnknownCompany:
            existing = None
    if existing is not None:
        if existing.name == COMPANY:
            return existing
        # The seed's ids (users 1-7, policies 1-3) only hold in a store that starts empty.
        raise StoreNotEmpty(existing.name)
    org = OrgService(new_uow)
    company = org.create_company(COMPANY)
    team = org.create_team(company.id, TEAM)
    for number, level_name, name, email in PEOPLE:
        level = org.create_level(company.id, team.id, number, level_name)
        org.create_user(
            NewUser(
                company_id=company.id,
                team_id=team.id,
                email=email,
                name=name,
                hierarchy_level_id=level.id,
                role=Role.ADMIN if number == 1 else Role.EMPLOYEE,
            )
        )
    for category, name, description, low, high, steps in POLICIES:
        org.create_policy(
            NewPolicy(
                company_id=company.id,
                category=category,
                name=name,
                description=description,
                min_amount=low,
                max_amount=high,
                steps=tuple(
                    ApprovalStep(step_order=i, required_level=level, description=text)
                    for i, (level, text) in enumerate(steps, start=1)
                ),
            )
        )
    return company
