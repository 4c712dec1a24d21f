"""`expense-tracker serve` with AUTH_MODE=oidc, configured from the environment, trusting a real
local issuer: its tokens act as their users over real HTTP, on every worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import StartServer, environment, run_cli
from tests.oidc.issuer import AUDIENCE, LocalIssuer, ec_key

pytestmark = pytest.mark.e2e


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as running:
        yield running


def test_the_server_takes_its_callers_from_the_issuers_tokens(
    start_server: StartServer, issuer: LocalIssuer
) -> None:
    server = start_server(
        "--workers",
        "2",
        AUTH_MODE="oidc",
        OIDC_ISSUER=f"{issuer.url}=1",
        OIDC_AUDIENCE=AUDIENCE,
        OIDC_JWKS_COOLDOWN_S="0",  # the key rotated below is fetched at once
    )
    grace = {"Authorization": f"Bearer {issuer.token()}"}

    with server.client() as client:
        created = client.post("/api/expenses", json={"policy_id": 1, "amount": 800}, headers=grace)
        assert created.status_code == 201, created.text
        expense = created.json()["expense_id"]
        # Several requests, so that both workers (each with keys of its own) answer some.
        for _ in range(6):
            status = client.get(f"/api/expenses/{expense}/status", headers=grace)
            assert status.json()["user_name"] == "Grace Taylor"
        rotated = ec_key()
        issuer.publish(issuer.keys[0], rotated)
        signed_anew = {"Authorization": f"Bearer {issuer.token(rotated)}"}
        for _ in range(6):
            assert client.get("/api/expenses", headers=signed_anew).status_code == 200
            assert client.get("/api/expenses", headers=grace).status_code == 200
        wrong = client.get(
            "/api/expenses", headers={"Authorization": f"Bearer {issuer.token(aud='other')}"}
        )

    assert wrong.status_code == 401
    assert wrong.json()["code"] == "wrong_audience"


def test_oidc_mode_without_an_issuer_does_not_start() -> None:
    done = run_cli("serve", env=environment(AUTH_MODE="oidc", OIDC_AUDIENCE=AUDIENCE))

    assert done.returncode == 2
    assert "OIDC_ISSUER" in done.stderr
