"""Every request of the seed README works as written and answers with its documented body."""

from __future__ import annotations

from tests.http import contract
from tests.http.conftest import Client
from tests.http.contract import JSON, TIMESTAMP, matches


def test_health_check_says_healthy(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_create_example_answers_the_documented_body(client: Client) -> None:
    response = client.post("/api/expenses", content=contract.CREATE_EXAMPLE, headers=JSON)

    assert response.status_code == 201
    assert matches(response.json(), contract.CREATED_1200) == []


def test_approve_example_answers_the_documented_body(client: Client) -> None:
    client.post("/api/expenses", content=contract.CREATE_EXAMPLE, headers=JSON)

    response = client.post("/api/expenses/approve", content=contract.APPROVE_EXAMPLE, headers=JSON)

    assert response.status_code == 200
    assert matches(response.json(), contract.APPROVED_1) == []


def test_status_example_answers_the_documented_body(client: Client) -> None:
    client.post("/api/expenses", content=contract.CREATE_EXAMPLE, headers=JSON)
    client.post("/api/expenses/approve", content=contract.APPROVE_EXAMPLE, headers=JSON)

    response = client.get("/api/expenses/1/status")

    assert response.status_code == 200
    assert matches(response.json(), contract.STATUS_1200) == []


def test_case_1_single_approval_small_equipment(client: Client) -> None:
    created = client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON)
    assert created.status_code == 201
    expected_created = {**contract.CREATED_1200, "amount": 800.0}
    assert matches(created.json(), expected_created) == []

    approved = client.post("/api/expenses/approve", content=contract.CASE_1_APPROVE, headers=JSON)
    assert approved.status_code == 200
    assert matches(approved.json(), contract.APPROVED_1) == []

    status = client.get("/api/expenses/1/status")
    assert status.status_code == 200
    expected_status = {
        **contract.STATUS_1200,
        "amount": 800.0,
        "description": "Development laptop",
        "approvals": [
            {**contract.STATUS_1200["approvals"][0], "comments": "Standard equipment upgrade"}
        ],
    }
    assert matches(status.json(), expected_status) == []


def test_case_2_multi_step_approval_large_equipment(client: Client) -> None:
    client.post("/api/expenses", content=contract.CASE_1_CREATE, headers=JSON)
    client.post("/api/expenses/approve", content=contract.CASE_1_APPROVE, headers=JSON)

    created = client.post("/api/expenses", content=contract.CASE_2_CREATE, headers=JSON)
    assert created.status_code == 201
    assert (
        matches(
            created.json(),
            {
                "message": "Expense created successfully",
                "expense_id": 2,
                "status": "pending",
                "amount": 4000.0,
                "approvals_required": [
                    {"step": 1, "approver": "Frank Miller", "level": "Manager"},
                    {"step": 2, "approver": "Eve Davis", "level": "SEM"},
                    {"step": 3, "approver": "David Wilson", "level": "AD"},
                ],
            },
        )
        == []
    )

    answers = [
        client.post("/api/expenses/approve", content=body, headers=JSON)
        for body in contract.CASE_2_APPROVALS
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [
        (a.json()["step_approved"], a.json()["expense_status"], a.json()["pending_approvals"])
        for a in answers
    ] == [(1, "pending", 2), (2, "pending", 1), (3, "approved", 0)]
    assert all(a.json()["message"] == "Approval submitted successfully" for a in answers)

    status = client.get("/api/expenses/2/status")
    assert status.status_code == 200
    approval = {"status": "approved", "approved_at": TIMESTAMP, "required": True}
    assert (
        matches(
            status.json(),
            {
                "id": 2,
                "amount": 4000.0,
                "description": "High-end workstation for ML projects",
                "status": "approved",
                "submitted_at": TIMESTAMP,
                "completed_at": TIMESTAMP,
                "user_name": "Grace Taylor",
                "policy_name": "Large Equipment",
                "approvals": [
                    {
                        **approval,
                        "step_number": 1,
                        "approver_name": "Frank Miller",
                        "approver_level": "Manager",
                        "comments": "Justified for ML work",
                    },
                    {
                        **approval,
                        "step_number": 2,
                        "approver_name": "Eve Davis",
                        "approver_level": "SEM",
                        "comments": "Supports team goals",
                    },
                    {
                        **approval,
                        "step_number": 3,
                        "approver_name": "David Wilson",
                        "approver_level": "AD",
                        "comments": "Final approval granted",
                    },
                ],
            },
        )
        == []
    )


def test_pending_expense_has_no_completion_time(client: Client) -> None:
    client.post("/api/expenses", content=contract.CASE_2_CREATE, headers=JSON)

    status = client.get("/api/expenses/1/status").json()

    assert status["status"] == "pending"
    assert status["completed_at"] is None
    assert [a["approved_at"] for a in status["approvals"]] == [None, None, None]
    assert [a["status"] for a in status["approvals"]] == ["pending"] * 3


def test_documentation_pages_are_served(client: Client) -> None:
    swagger = client.get("/docs")
    redoc = client.get("/redoc")

    assert swagger.status_code == 200
    assert "swagger-ui" in swagger.text
    assert redoc.status_code == 200
    assert "redoc" in redoc.text.lower()
