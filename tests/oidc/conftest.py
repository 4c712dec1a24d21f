"""AUTH_MODE=oidc end to end in one process: a real local issuer (`issuer.py`) over HTTP, and
the whole API on a fresh migrated database (SQLite, then PostgreSQL) through Litestar's test
client, seeded with the demo's TechCorp (company 1) and a second company."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import httpx
import pytest
from litestar.testing import TestClient

from entrypoints.container import Container, container_for
from entrypoints.http import create_app
from entrypoints.settings import AuthMode, Settings
from expense_core.demo import install_demo
from tests.http.conftest import Client, OtherCompany, add_other_company
from tests.oidc.issuer import AUDIENCE, LocalIssuer


@attrs.frozen
class OidcApi:
    client: Client
    issuer: LocalIssuer
    container: Container
    other: OtherCompany

    def get(self, token: str, path: str = "/api/expenses?limit=5") -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {token}"})

    def submit(self, token: str) -> httpx.Response:
        return self.client.post(
            "/api/expenses",
            json={"policy_id": 1, "amount": 800, "description": "monitor"},
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


StartApi = Callable[..., OidcApi]


@pytest.fixture
def start_api(database_url: str, issuer: LocalIssuer) -> Iterator[StartApi]:
    """Serve the API trusting `issuer` for company 1, with settings changed as told (by
    default no cooldown between fetches of the keys, so that every refetch shows)."""
    clients: list[Client] = []

    def start(**settings: Any) -> OidcApi:
        given: dict[str, Any] = {
            "oidc_issuers": ((issuer.url, 1),),
            "oidc_audience": AUDIENCE,
            "oidc_jwks_cooldown_s": 0,
            **settings,
        }
        container = container_for(
            Settings.build(database_url=database_url, auth_mode=AuthMode.OIDC, **given)
        )
        install_demo(container.new_uow())
        other = add_other_company(container.org())
        client = TestClient(create_app(container))
        client.__enter__()
        clients.append(client)
        return OidcApi(client, issuer, container, other)

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(start_api: StartApi) -> OidcApi:
    return start_api()
