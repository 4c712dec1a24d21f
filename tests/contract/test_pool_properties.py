"""A submission's first read gathers the approver pool with the member and the policy
(`OrgRepository.member_with_policy_and_pool`; on PostgreSQL in one statement, each step's team
and level worked out in SQL): over generated organisations and policies, on every store, it
holds what the member, the policy and the pool read one by one hold."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expense_core.approvers import ApproverPool
from expense_core.model import (
    COMPANY_SCOPE,
    SUBMITTER_SCOPE,
    ApprovalStep,
    PolicyId,
    Role,
    ScopeKind,
    TeamScope,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import ChangeUser, NewUser, OrgService
from tests.contract.support import add_policy, tech_corp

_emails = itertools.count(1)
NO_POLICY = PolicyId(2**31 - 1)
# A step's scope: the submitter's team, the company, or TechCorp's team ("own") or the other.
SCOPES = ("submitter", "company", "own", "other")
# Scope, level (8: a level nobody holds) and whether required; the first step always is.
steps_of_a_policy = st.lists(
    st.tuples(st.sampled_from(SCOPES), st.integers(1, 8), st.booleans()),
    min_size=1,
    max_size=3,
)


@settings(
    max_examples=12,
    deadline=None,
    # One store for every example: each builds a company of its own.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    policies=st.lists(steps_of_a_policy, min_size=1, max_size=3),
    others=st.lists(st.tuples(st.integers(1, 7), st.sampled_from(tuple(Role))), max_size=4),
    inactive=st.sets(st.integers(1, 7), max_size=2),
    fallback=st.one_of(st.none(), st.integers(1, 7)),
    managers=st.booleans(),
)
def test_the_first_read_of_a_submission_holds_what_the_reads_one_by_one_hold(
    new_uow: Callable[[], UnitOfWork],
    policies: list[list[tuple[str, int, bool]]],
    others: list[tuple[int, Role]],
    inactive: set[int],
    fallback: int | None,
    managers: bool,
) -> None:
    org = tech_corp(new_uow, managers=managers)
    service = OrgService(new_uow)
    other_team = service.create_team(org.id, "Operations")
    levels = {n: service.create_level(org.id, other_team.id, n, f"Ops {n}") for n in range(1, 8)}
    people = [org.person(n) for n in range(1, 8)]
    for level, role in others:
        people.append(
            service.create_user(
                NewUser(
                    company_id=org.id,
                    team_id=other_team.id,
                    email=f"ops{next(_emails)}@techcorp.example",
                    name=f"Ops person {level}",
                    hierarchy_level_id=levels[level].id,
                    role=role,
                )
            ).id
        )
    if fallback is not None:
        service.set_fallback_approver(org.id, org.person(fallback))
    for number in inactive - {fallback}:
        service.change_user(ChangeUser(user_id=org.person(number), active=False))
    scopes = {
        "submitter": SUBMITTER_SCOPE,
        "company": COMPANY_SCOPE,
        "own": TeamScope(ScopeKind.TEAM, org.team.id),
        "other": TeamScope(ScopeKind.TEAM, other_team.id),
    }
    made = [
        add_policy(
            new_uow,
            org.id,
            f"generated {n}",
            tuple(
                ApprovalStep(
                    step_order=order,
                    required_level=level,
                    team_scope=scopes[scope],
                    is_required=required or order == 1,
                )
                for order, (scope, level, required) in enumerate(steps, 1)
            ),
        )
        for n, steps in enumerate(policies)
    ]

    with new_uow() as uow:
        for person in people:
            member = uow.org.member(person)
            for policy in (*made, org.small, org.large):
                read, named, pool = uow.org.member_with_policy_and_pool(person, policy.id)
                assert (read, named) == (member, uow.org.policy(org.id, policy.id))
                assert pool is not None
                assert _same(pool, uow.org.approver_pool(member, policy.steps)), (person, policy)
        # No such policy: no pool either.
        assert uow.org.member_with_policy_and_pool(UserId(people[0]), NO_POLICY) == (
            uow.org.member(people[0]),
            None,
            None,
        )


def _same(one: ApproverPool, other: ApproverPool) -> bool:
    """Pools alike: the same chain in order, fallback, and candidates in any order."""
    ids = sorted(m.id for m in one.candidates), sorted(m.id for m in other.candidates)
    return (one.chain, one.fallback, ids[0]) == (other.chain, other.fallback, ids[1])
