"""The seed README's curl flows against the real server process, over real HTTP."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import StartServer, run_cli
from tests.http import contract
from tests.http.contract import JSON, TIMESTAMP, matches

pytestmark = pytest.mark.e2e


def test_case_1_then_case_2_answer_the_documented_bodies(start_server: StartServer) -> None:
    server = start_server()
    with server.client() as http:
        assert http.get("/").json()["status"] == "healthy"

        created = http.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON)
        approved = http.post("/api/expenses/approve", content=contract.CASE_1_APPROVE, headers=JSON)
        status = http.get("/api/expenses/1/status")

        assert created.status_code == 201
        assert matches(created.json(), {**contract.CREATED_1200, "amount": 800.0}) == []
        assert approved.status_code == 200
        assert matches(approved.json(), contract.APPROVED_1) == []
        assert status.status_code == 200
        assert (
            matches(
                status.json(),
                {
                    **contract.STATUS_1200,
                    "amount": 800.0,
                    "description": "Development laptop",
                    "approvals": [
                        {
                            **contract.STATUS_1200["approvals"][0],
                            "comments": "Standard equipment upgrade",
                        }
                    ],
                },
            )
            == []
        )

        created = http.post("/api/expenses", content=contract.CASE_2_CREATE, headers=JSON)
        assert created.status_code == 201
        assert created.json()["expense_id"] == 2
        assert [(a["approver"], a["level"]) for a in created.json()["approvals_required"]] == [
            ("Frank Miller", "Manager"),
            ("Eve Davis", "SEM"),
            ("David Wilson", "AD"),
        ]
        answers = [
            http.post("/api/expenses/approve", content=body, headers=JSON).json()
            for body in contract.CASE_2_APPROVALS
        ]
        assert [
            (a["step_approved"], a["expense_status"], a["pending_approvals"]) for a in answers
        ] == [
            (1, "pending", 2),
            (2, "pending", 1),
            (3, "approved", 0),
        ]
        final = http.get("/api/expenses/2/status").json()
        assert final["status"] == "approved"
        assert TIMESTAMP.fullmatch(final["completed_at"])
        assert [(a["approver_name"], a["status"], a["comments"]) for a in final["approvals"]] == [
            ("Frank Miller", "approved", "Justified for ML work"),
            ("Eve Davis", "approved", "Supports team goals"),
            ("David Wilson", "approved", "Final approval granted"),
        ]


def test_api_endpoint_examples_answer_the_documented_bodies(start_server: StartServer) -> None:
    server = start_server()
    with server.client() as http:
        created = http.post("/api/expenses", content=contract.CREATE_EXAMPLE, headers=JSON)
        approved = http.post(
            "/api/expenses/approve", content=contract.APPROVE_EXAMPLE, headers=JSON
        )
        status = http.get("/api/expenses/1/status")
        docs, redoc = http.get("/docs"), http.get("/redoc")

    assert (created.status_code, approved.status_code, status.status_code) == (201, 200, 200)
    assert matches(created.json(), contract.CREATED_1200) == []
    assert matches(approved.json(), contract.APPROVED_1) == []
    assert matches(status.json(), contract.STATUS_1200) == []
    assert (docs.status_code, redoc.status_code) == (200, 200)


def test_errors_over_the_wire(start_server: StartServer) -> None:
    server = start_server()
    with server.client() as http:
        too_precise = http.post(
            "/api/expenses", json={"user_id": 7, "policy_id": 1, "amount": "1200.005"}
        )
        unknown = http.get("/api/expenses/999/status")
        too_big = http.post("/api/expenses", content=b"[" + b"1," * 40000 + b"1]", headers=JSON)

    assert too_precise.status_code == 400
    assert too_precise.json()["code"] == "invalid_amount"
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "expense 999 does not exist", "code": "unknown_expense"}
    assert too_big.status_code == 413


def test_several_workers_serve_one_database(start_server: StartServer) -> None:
    server = start_server("--workers", "2")
    with server.client() as http:
        ids = [
            http.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON).json()[
                "expense_id"
            ]
            for _ in range(6)
        ]
        listed = http.get("/api/expenses", params={"user_id": 7}).json()

    assert sorted(ids) == list(range(1, 7))
    assert [item["id"] for item in listed["items"]] == sorted(ids, reverse=True)


def test_token_mode_over_the_wire(start_server: StartServer) -> None:
    server = start_server(AUTH_MODE="token")
    issued = run_cli("token", "issue", "--user-id", "7", env=server.env)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    grace = {"Authorization": f"Bearer {token}"}

    with server.client() as http:
        anonymous = http.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON)
        as_grace = http.post(
            "/api/expenses", content=contract.CASE_1_CREATE, headers={**JSON, **grace}
        )
        posing = http.post(
            "/api/expenses/approve", content=contract.CASE_1_APPROVE, headers={**JSON, **grace}
        )

    assert anonymous.status_code == 401
    assert as_grace.status_code == 201
    assert posing.status_code == 403
    assert posing.json()["code"] == "actor_mismatch"
