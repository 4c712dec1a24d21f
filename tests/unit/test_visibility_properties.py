"""Visibility over generated organisations, on the memory adapter: what each person sees
through the use cases is exactly what a brute-force oracle says."""

from __future__ import annotations

from hypothesis import given, settings

from adapters.memory import MemoryStore
from tests.visibility_oracle import Plan, build, check, plans


@settings(max_examples=150)
@given(plan=plans())
def test_each_person_sees_exactly_what_the_oracle_sees(plan: Plan) -> None:
    store = MemoryStore()
    check(build(plan, store.unit_of_work), store.unit_of_work)
