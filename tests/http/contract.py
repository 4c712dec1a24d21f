"""The seed README's requests, byte for byte, and the checks its documented responses imply."""

from __future__ import annotations

import re
from typing import Any, Final

JSON: Final = {"Content-Type": "application/json"}
TIMESTAMP: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# API Endpoints, 1 and 2
CREATE_EXAMPLE: Final = b"""{
    "user_id": 7,
    "policy_id": 1,
    "amount": 1200.00,
    "description": "New MacBook Pro for development"
  }"""
APPROVE_EXAMPLE: Final = b"""{
    "expense_id": 1,
    "approver_id": 6,
    "comments": "Approved for team productivity"
  }"""

# Test Case 1: Single Approval (Small Equipment)
CASE_1_CREATE: Final = b"""{
    "user_id": 7,
    "policy_id": 1,
    "amount": 800.00,
    "description": "Development laptop"
  }"""
CASE_1_APPROVE: Final = b"""{
    "expense_id": 1,
    "approver_id": 6,
    "comments": "Standard equipment upgrade"
  }"""

# Test Case 2: Multi-Step Approval (Large Equipment)
CASE_2_CREATE: Final = b"""{
    "user_id": 7,
    "policy_id": 2,
    "amount": 4000.00,
    "description": "High-end workstation for ML projects"
  }"""
CASE_2_APPROVALS: Final = (
    b"""{
    "expense_id": 2,
    "approver_id": 6,
    "comments": "Justified for ML work"
  }""",
    b"""{
    "expense_id": 2,
    "approver_id": 5,
    "comments": "Supports team goals"
  }""",
    b"""{
    "expense_id": 2,
    "approver_id": 4,
    "comments": "Final approval granted"
  }""",
)

# API Response Formats: the documented bodies (timestamps are checked for their format).
CREATED_1200: Final[dict[str, Any]] = {
    "message": "Expense created successfully",
    "expense_id": 1,
    "status": "pending",
    "amount": 1200.0,
    "approvals_required": [{"step": 1, "approver": "Frank Miller", "level": "Manager"}],
}
APPROVED_1: Final[dict[str, Any]] = {
    "message": "Approval submitted successfully",
    "expense_id": 1,
    "step_approved": 1,
    "expense_status": "approved",
    "pending_approvals": 0,
}
STATUS_1200: Final[dict[str, Any]] = {
    "id": 1,
    "amount": 1200.0,
    "description": "New MacBook Pro for development",
    "status": "approved",
    "submitted_at": TIMESTAMP,
    "completed_at": TIMESTAMP,
    "user_name": "Grace Taylor",
    "policy_name": "Small Equipment",
    "approvals": [
        {
            "step_number": 1,
            "approver_name": "Frank Miller",
            "approver_level": "Manager",
            "status": "approved",
            "approved_at": TIMESTAMP,
            "comments": "Approved for team productivity",
            "required": True,
        }
    ],
}


def matches(actual: Any, documented: Any, path: str = "$") -> list[str]:
    """Where `actual` breaks the documented body: a missing field, another value or type.

    Extra fields are allowed; a documented list must have exactly the documented items; a
    compiled pattern stands for a string of that form.
    """
    if isinstance(documented, re.Pattern):
        ok = isinstance(actual, str) and documented.fullmatch(actual) is not None
        return [] if ok else [f"{path}: {actual!r} does not match {documented.pattern}"]
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {actual!r}"]
        problems = []
        for key, value in documented.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += matches(actual[key], value, f"{path}.{key}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list) or len(actual) != len(documented):
            return [f"{path}: expected {len(documented)} items, got {actual!r}"]
        return [
            p
            for i, (a, d) in enumerate(zip(actual, documented, strict=True))
            for p in matches(a, d, f"{path}[{i}]")
        ]
    # JSON numbers: 1200.0 and 1200.00 are the same number; a number is not a string or bool.
    same_kind = isinstance(actual, bool) == isinstance(documented, bool) and (
        isinstance(actual, int | float) == isinstance(documented, int | float)
    )
    if not same_kind or actual != documented:
        return [f"{path}: expected {documented!r}, got {actual!r}"]
    return []
