"""What PostgreSQL's awaited store keeps of the submissions it read (`adapters.sql.awaited`):
recalled, a basis is what a fresh read would say, and the people and policies kept bases name
are kept once for all of them, not once per basis."""

from __future__ import annotations

import attrs
import pytest

from adapters.sql.awaited import AwaitedPool, PgAwaitedExpenses
from expense_core.model import Member, UserId
from expense_core.ports import CategoryBasis, SubmissionBasis
from tests.contract.support import tech_corp
from tests.sql.support import opened, while_open

pytestmark = pytest.mark.postgres

DAVID, EVE, FRANK, GRACE = 4, 5, 6, 7  # each reports to the one before

Read = tuple[list[SubmissionBasis], list[CategoryBasis]]


def _named(basis: SubmissionBasis, person: int) -> Member:
    assert basis.pool is not None
    return next(m for m in (*basis.pool.chain, *basis.pool.candidates) if m.id == person)


def test_kept_bases_share_whom_and_what_they_name_and_say_what_a_fresh_read_says(
    postgres_url: str,
) -> None:
    with opened(postgres_url) as db:
        org = tech_corp(db.unit_of_work, managers=True)
        people = [UserId(org.person(GRACE)), UserId(org.person(FRANK))]
        kept = PgAwaitedExpenses(AwaitedPool(db, size=1, timeout_s=10))
        fresh = PgAwaitedExpenses(AwaitedPool(db, size=1, timeout_s=10))

        async def read(store: PgAwaitedExpenses, times: int) -> Read:
            named, chosen = [], []
            for _ in range(times):  # the second time, recalled
                for person in people:
                    named.append(await store.submission_basis(person, org.large.id))
                    chosen.append(await store.category_basis(person, "equipment"))
            return named, chosen

        named, chosen = while_open(kept, lambda: read(kept, 2))
        now_named, now_chosen = while_open(fresh, lambda: read(fresh, 1))

    assert [basis.recalled for basis in named] == [False, False, True, True]
    assert [basis.recalled for basis in chosen] == [False, False, True, True]
    grace, frank = named[2:]
    grace_chose, frank_chose = chosen[2:]
    # Recalled, a basis says what a fresh read says.
    assert grace == attrs.evolve(now_named[0], recalled=True)
    assert grace_chose == attrs.evolve(now_chosen[0], recalled=True)
    # Eve and David are in both chains (Grace's through Frank): one object for both bases; the
    # policy likewise, and the category's policies.
    for person in (EVE, DAVID):
        assert _named(grace, org.person(person)) is _named(frank, org.person(person))
    assert grace.policy is frank.policy
    assert len(grace_chose.policies) > 1
    assert all(a is b for a, b in zip(grace_chose.policies, frank_chose.policies, strict=True))
