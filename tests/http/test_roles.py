"""Roles over the admin API: set with `PATCH /api/users/{id}`, shown by `GET`, refused when
not one of the five."""

from __future__ import annotations

import pytest

from expense_core.model import Role
from tests.http.conftest import Client, TokenApi


@pytest.mark.parametrize("role", [str(r) for r in Role])
def test_an_admin_sets_every_role_and_the_user_shows_it(client: Client, role: str) -> None:
    changed = client.patch("/api/users/7", json={"role": role})
    assert changed.status_code == 200, changed.text
    assert client.get("/api/users/7").json()["role"] == role


def test_a_role_that_is_not_one_of_the_five_is_refused_naming_the_field(client: Client) -> None:
    refused = client.patch("/api/users/7", json={"role": "owner"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_request"
    assert "role" in refused.json()["detail"]
    assert client.get("/api/users/7").json()["role"] == "employee"


@pytest.mark.parametrize("role", ["finance", "auditor", "manager"])
def test_only_an_admin_changes_roles(token_api: TokenApi, role: str) -> None:
    api = token_api
    assert (
        api.client.patch("/api/users/6", json={"role": role}, headers=api.as_user(1)).status_code
        == 200
    )
    refused = api.client.patch("/api/users/7", json={"role": "admin"}, headers=api.as_user(6))
    assert refused.status_code == 403
    assert refused.json()["code"] == "admin_only"
