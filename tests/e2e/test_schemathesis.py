"""Stateful API testing from the OpenAPI document: schemathesis follows its links (submit ->
approve, reject, withdraw -> status, history) against the real server process, and checks that
no answer is a 5xx and every answer matches the documented statuses, content types and schemas.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any, Final

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import environment
from tests.faults.support import Server, start_server, submission

pytestmark = pytest.mark.e2e

CHECKS: Final = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SCENARIOS: Final = 30
STEPS: Final = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("schemathesis") / "server.log"
    env = environment(DATABASE_URL="memory://", HOST="127.0.0.1", AUTH_MODE="demo")
    running = start_server(env, log, "--seed-demo")
    yield running
    running.stop()


def test_the_document_links_a_submission_to_its_decisions(server: Server) -> None:
    with server.client() as client:
        document = client.get("/openapi.json").json()
    links = document["paths"]["/api/expenses"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} >= {
        "ApiExpensesApproveApprove",
        "ApiExpensesRejectReject",
        "ApiExpensesExpenseIdWithdrawWithdraw",
        "ApiExpensesExpenseIdStatusStatus",
    }


def test_stateful_sequences_never_fail_or_break_the_schema(server: Server) -> None:
    # The expense workflow: the admin API would change the organisation under the scenarios.
    # Valid requests only: the links must lead somewhere (422s are tests/http's business).
    config = SchemathesisConfig.from_dict({"generation": {"mode": "positive"}})
    document = f"{server.base_url}/openapi.json"
    schema = schemathesis.openapi.from_url(document, config=config).include(tag="expenses")
    answered: Counter[tuple[str, str, int]] = Counter()

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            # Two submissions in three are the demo's real ones (Grace, a policy that fits),
            # so that the links lead to pending expenses; the rest stay as generated. Which,
            # and what, follows from the generated body alone, as Hypothesis needs.
            if case.method == "POST" and case.path == "/api/expenses":
                generated = json.dumps(case.body, sort_keys=True, default=str)
                chooser = random.Random(generated)  # noqa: S311 -- test data, not a secret
                if chooser.random() < 2 / 3:
                    case.body = submission(chooser)

        def after_call(self, response: Any, case: Any) -> None:
            answered[case.method, case.path, response.status_code] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Workflow.run(
        settings=settings(
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            derandomize=True,  # the same scenarios every run
            suppress_health_check=list(HealthCheck),
        )
    )
    print(f"\nschemathesis: {sum(answered.values())} calls, {dict(answered)}")  # noqa: T201
    # The links were followed: decisions were taken on the expenses the scenarios submitted.
    decisions = ("/api/expenses/approve", "/api/expenses/reject")
    assert sum(answered["POST", path, 200] for path in decisions) > 0, answered
    assert answered["POST", "/api/expenses/{expense_id}/withdraw", 200] > 0, answered
    assert answered["GET", "/api/expenses/{expense_id}/status", 200] > 0, answered
