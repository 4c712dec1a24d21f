"""The whole API on the in-memory adapter, through Litestar's test client.

`client` serves the seed's demo organisation in demo mode; `token_api` serves it in token mode
next to a second company, with a token per person.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TypeAlias

import attrs
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from entrypoints.container import Container, container_for
from entrypoints.http import create_app
from entrypoints.settings import AuthMode, Settings
from expense_core.demo import install_demo
from expense_core.model import ApprovalStep, CompanyId, Money, UserId
from expense_core.services import NewPolicy, NewUser, OrgService

Client: TypeAlias = TestClient[Litestar]


def memory_container(auth_mode: AuthMode = AuthMode.DEMO) -> Container:
    container = container_for(Settings(database_url="memory://", auth_mode=auth_mode))
    install_demo(container.new_uow())
    return container


@pytest.fixture
def container() -> Container:
    return memory_container()


@pytest.fixture
def client(container: Container) -> Iterator[Client]:
    with TestClient(create_app(container)) as test_client:
        yield test_client


@attrs.frozen
class OtherCompany:
    """A second tenant: a manager (`boss`) and an engineer, and one equipment policy."""

    company_id: CompanyId
    boss: UserId
    engineer: UserId
    policy_id: int


def add_other_company(org: OrgService) -> OtherCompany:
    company = org.create_company("Globex")
    team = org.create_team(company.id, "Engineering")
    lead = org.create_level(company.id, team.id, 2, "Lead")
    engineer_level = org.create_level(company.id, team.id, 5, "Engineer")
    boss = org.create_user(
        NewUser(
            company_id=company.id,
            team_id=team.id,
            email="hank@globex.example",
            name="Hank Scorpio",
            hierarchy_level_id=lead.id,
        )
    )
    engineer = org.create_user(
        NewUser(
            company_id=company.id,
            team_id=team.id,
            email="homer@globex.example",
            name="Homer Simpson",
            hierarchy_level_id=engineer_level.id,
            manager_id=boss.id,
        )
    )
    policy = org.create_policy(
        NewPolicy(
            company_id=company.id,
            category="equipment",
            name="Globex Equipment",
            min_amount=Money(Decimal("0.00")),
            max_amount=Money(Decimal("5000.00")),
            steps=(ApprovalStep(step_order=1, required_level=2),),
        )
    )
    return OtherCompany(company.id, boss.id, engineer.id, policy.id)


@attrs.frozen
class TokenApi:
    client: Client
    other: OtherCompany
    tokens: dict[int, str]

    def as_user(self, user_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user_id]}"}


@pytest.fixture
def token_api() -> Iterator[TokenApi]:
    container = memory_container(AuthMode.TOKEN)
    other = add_other_company(container.org())
    access = container.access()
    people = [*range(1, 8), other.boss, other.engineer]
    tokens = {int(user): access.issue_token(UserId(user)) for user in people}
    with TestClient(create_app(container)) as test_client:
        yield TokenApi(test_client, other, tokens)
