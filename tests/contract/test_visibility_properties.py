"""Visibility over generated organisations on every adapter (a smaller run than the memory
adapter's in tests/unit): the SQL reads see exactly what the brute-force oracle sees."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings

from expense_core.ports import UnitOfWork
from tests.visibility_oracle import Plan, build, check, plans


@settings(
    max_examples=15,
    deadline=None,
    # One store for every example: each builds a company of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=plans(most_people=6))
def test_each_person_sees_exactly_what_the_oracle_sees(
    new_uow: Callable[[], UnitOfWork], plan: Plan
) -> None:
    check(build(plan, new_uow), new_uow)
