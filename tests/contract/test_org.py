"""OrgRepository: companies, teams, levels, users, policies and the approver pool."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs
import pytest

from expense_core.approvers import ineligibility, resolve_approvers
from expense_core.errors import (
    DuplicateEmail,
    DuplicateName,
    UnknownCompany,
    UnknownLevel,
    UnknownPolicy,
    UnknownTeam,
    UnknownUser,
)
from expense_core.model import (
    COMPANY_SCOPE,
    ApprovalStep,
    CompanyId,
    HierarchyLevel,
    LevelId,
    Member,
    Money,
    Policy,
    PolicyId,
    Role,
    Team,
    TeamId,
    TeamScope,
    User,
    UserId,
)
from expense_core.ports import UnitOfWork
from expense_core.services import NewUser, OrgService
from tests.contract.support import Org, add_policy, money, steps, tech_corp

NOBODY = 2_000_000_000  # an id no test ever creates


def _user(org: Org, team: TeamId, level: LevelId, email: str) -> User:
    return User(
        id=UserId(0),
        company_id=org.id,
        team_id=team,
        email=email,
        name=email.split("@")[0].title(),
        hierarchy_level_id=level,
    )


def test_a_company_reads_back(new_uow: Callable[[], UnitOfWork]) -> None:
    with new_uow() as uow:
        company = uow.org.add_company("Initech")
        uow.commit()
    with new_uow() as uow:
        assert uow.org.company(company.id) == company
        with pytest.raises(UnknownCompany):
            uow.org.company(CompanyId(NOBODY))


def test_teams_and_levels_belong_to_their_company(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    with new_uow() as uow:
        finance = uow.org.add_team(Team(TeamId(0), org.id, "Finance", is_company_wide=True))
        level = uow.org.add_level(HierarchyLevel(LevelId(0), org.id, finance.id, 3, "Controller"))
        uow.commit()
    assert finance.id > 0
    assert level.id > 0
    with new_uow() as uow:
        assert uow.org.team(org.id, finance.id) == finance
        assert uow.org.level(org.id, level.id) == level
        assert uow.org.team(org.id, org.team.id) == org.team
        with pytest.raises(UnknownTeam):
            uow.org.team(other.id, finance.id)
        with pytest.raises(UnknownLevel):
            uow.org.level(other.id, level.id)
        with pytest.raises(UnknownTeam):
            uow.org.team(org.id, TeamId(NOBODY))


def test_duplicate_names_are_refused_and_the_unit_of_work_goes_on(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    with new_uow() as uow:
        with pytest.raises(DuplicateName):
            uow.org.add_team(Team(TeamId(0), org.id, "Technology"))
        with pytest.raises(DuplicateName):
            uow.org.add_level(HierarchyLevel(LevelId(0), org.id, org.team.id, 7, "Intern"))
        sales = uow.org.add_team(Team(TeamId(0), org.id, "Sales"))
        uow.commit()
    other = tech_corp(new_uow)  # the same names in another company are fine
    with new_uow() as uow:
        assert uow.org.team(org.id, sales.id).name == "Sales"
        assert uow.org.team(other.id, other.team.id).name == "Technology"


def test_a_member_is_a_user_with_their_level(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    grace = org.people[7]
    with new_uow() as uow:
        member = uow.org.member(grace.id)
        assert member == Member(grace, org.levels[7])
        assert member.level_number == 7
        with pytest.raises(UnknownUser):
            uow.org.member(UserId(NOBODY))


def test_a_user_reads_back_with_every_field(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    with new_uow() as uow:
        zoe = _user(org, org.team.id, org.levels[7].id, "zoe@techcorp.example")
        added = uow.org.add_user(
            attrs.evolve(zoe, active=False, manager_id=org.person(6), role=Role.ADMIN)
        )
        uow.commit()
    assert added.id > 0
    assert (added.active, added.manager_id, added.role) == (False, org.person(6), Role.ADMIN)
    with new_uow() as uow:
        assert uow.org.member(added.id).user == added
        assert uow.org.user_by_email(org.id, "zoe@techcorp.example") == added
        assert uow.org.user_by_email(org.id, "nobody@techcorp.example") is None


def test_names_are_read_for_the_companys_people_alone_inactive_ones_too(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    with new_uow() as uow:
        gone = uow.org.add_user(
            attrs.evolve(
                _user(org, org.team.id, org.levels[7].id, "gone@techcorp.example"), active=False
            )
        )
        uow.commit()
    asked = [org.person(7), org.person(6), gone.id, other.person(7), UserId(NOBODY)]
    with new_uow() as uow:
        assert uow.org.names(org.id, asked) == {
            org.person(7): org.people[7].name,
            org.person(6): org.people[6].name,
            gone.id: gone.name,
        }
        assert uow.org.names(org.id, []) == {}


def test_emails_are_unique_within_a_company_only(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    email = org.people[7].email
    with new_uow() as uow, pytest.raises(DuplicateEmail):
        uow.org.add_user(_user(org, org.team.id, org.levels[7].id, email))
    with new_uow() as uow:
        assert uow.org.user_by_email(other.id, email) == other.people[7]
        assert uow.org.user_by_email(org.id, email) == org.people[7]


def test_a_policy_reads_back_with_its_steps(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    finance = OrgService(new_uow).create_team(org.id, "Finance", is_company_wide=True)
    policy_steps = (
        ApprovalStep(step_order=1, required_level=6, description="Manager approval"),
        ApprovalStep(step_order=2, required_level=4, team_scope=COMPANY_SCOPE, is_required=False),
        ApprovalStep(
            step_order=3, required_level=3, team_scope=TeamScope.parse(f"team:{finance.id}")
        ),
    )
    stored = add_policy(
        new_uow, org.id, "software", policy_steps, low="0.01", high=Money.parse("9999999999.99")
    )
    assert stored.id > 0
    assert [s.id for s in stored.steps] == sorted({s.id for s in stored.steps})
    assert all(s.id > 0 for s in stored.steps)
    assert isinstance(stored.created_at, datetime)
    assert stored.created_at.utcoffset() is not None
    with new_uow() as uow:
        read = uow.org.policy(org.id, stored.id)
    assert read == stored
    assert read.steps[2].team_scope == TeamScope.parse(f"team:{finance.id}")
    assert (read.min_amount, read.max_amount) == (money("0.01"), money("9999999999.99"))


def test_a_policy_of_another_company_is_unknown(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    with new_uow() as uow:
        with pytest.raises(UnknownPolicy):
            uow.org.policy(other.id, org.small.id)
        with pytest.raises(UnknownPolicy):
            uow.org.policy(org.id, PolicyId(NOBODY))
        assert uow.org.policies(other.id, "equipment") == (other.small, other.large)


def _retire_an_equipment_policy(new_uow: Callable[[], UnitOfWork], org: Org) -> Policy:
    """Store an inactive equipment policy beside the active ones; the stored policy."""
    retired = Policy(
        id=PolicyId(0),
        company_id=org.id,
        category="equipment",
        name="Old Equipment",
        min_amount=money("5.00"),
        max_amount=money("10.00"),
        steps=steps(6),
        active=False,
    )
    with new_uow() as uow:
        stored = uow.org.add_policy(retired)
        uow.commit()
    return stored


def test_policies_lists_the_active_ones_of_a_category(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    stored = _retire_an_equipment_policy(new_uow, org)
    with new_uow() as uow:
        assert uow.org.policies(org.id, "equipment") == (org.small, org.large)
        assert uow.org.policies(org.id, "travel") == (org.travel,)
        assert uow.org.policies(org.id, "catering") == ()
        assert uow.org.policy(org.id, stored.id).active is False


def test_member_with_policies_reads_a_member_and_the_active_policies_of_a_category(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    _retire_an_equipment_policy(new_uow, org)
    with new_uow() as uow:
        for person in (org.person(1), org.person(7), other.person(7)):
            company = uow.org.member(person).user.company_id
            for category in ("equipment", "travel", "catering"):
                assert uow.org.member_with_policies(person, category) == (
                    uow.org.member(person),
                    uow.org.policies(company, category),
                )
        assert uow.org.member_with_policies(org.person(7), "equipment")[1] == (
            org.small,
            org.large,
        )
        assert uow.org.member_with_policies(other.person(7), "travel")[1] == (other.travel,)
        assert uow.org.member_with_policies(org.person(7), "catering")[1] == ()
        with pytest.raises(UnknownUser):
            uow.org.member_with_policies(UserId(NOBODY), "equipment")


def test_member_with_policy_and_pool_reads_a_member_and_a_policy_of_their_company(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    retired = _retire_an_equipment_policy(new_uow, org)
    with new_uow() as uow:
        for person in (org.person(1), org.person(7), other.person(7)):
            company = uow.org.member(person).user.company_id
            for policy in (org.small, org.large, org.travel, retired, other.travel):
                named = uow.org.policy(company, policy.id) if policy.company_id == company else None
                member, found, pool = uow.org.member_with_policy_and_pool(person, policy.id)
                assert (member, found) == (uow.org.member(person), named)
                # The pool comes with the policy only (test_pool_properties.py: which pool).
                assert (pool is None) == (named is None)
        assert uow.org.member_with_policy_and_pool(org.person(7), retired.id)[1] == retired
        assert uow.org.member_with_policy_and_pool(org.person(7), other.small.id)[1:] == (
            None,
            None,
        )
        assert uow.org.member_with_policy_and_pool(org.person(7), PolicyId(NOBODY))[1] is None
        with pytest.raises(UnknownUser):
            uow.org.member_with_policy_and_pool(UserId(NOBODY), org.small.id)


# --- the approver pool -----------------------------------------------------------------------


def test_the_pool_holds_the_reporting_chain_nearest_manager_first(
    new_uow: Callable[[], UnitOfWork],
) -> None:
    org = tech_corp(new_uow, managers=True)
    with new_uow() as uow:
        grace = uow.org.member(org.person(7))
        pool = uow.org.approver_pool(grace, org.large.steps)
    assert [m.id for m in pool.chain] == [org.person(n) for n in (6, 5, 4, 3, 2, 1)]
    assert all(m.level.level_name for m in pool.chain)


def test_a_pool_without_managers_has_no_chain(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    with new_uow() as uow:
        pool = uow.org.approver_pool(uow.org.member(org.person(7)), org.large.steps)
    assert pool.chain == ()
    # The nearest eligible members: Frank (6), Eve (5), David (4) at least.
    assert {org.person(n) for n in (6, 5, 4)} <= {m.id for m in pool.candidates}


def _crowded(new_uow: Callable[[], UnitOfWork]) -> tuple[Org, Team, dict[int, list[UserId]]]:
    """TechCorp plus three people at each of levels 4-6 in the main team, some inactive, and a
    Finance team with its own ladder."""
    org = tech_corp(new_uow)
    service = OrgService(new_uow)
    crowd: dict[int, list[UserId]] = {4: [], 5: [], 6: []}
    for level in (4, 5, 6):
        for i in range(3):
            crowd[level].append(
                service.create_user(
                    NewUser(
                        company_id=org.id,
                        team_id=org.team.id,
                        email=f"crowd-{level}-{i}@techcorp.example",
                        name=f"Crowd {level}.{i}",
                        hierarchy_level_id=org.levels[level].id,
                        active=i != 1,
                    )
                ).id
            )
    finance = service.create_team(org.id, "Finance", is_company_wide=True)
    for number in (2, 4, 6):
        rung = service.create_level(org.id, finance.id, number, f"Finance {number}")
        service.create_user(
            NewUser(
                company_id=org.id,
                team_id=finance.id,
                email=f"finance-{number}@techcorp.example",
                name=f"Finance {number}",
                hierarchy_level_id=rung.id,
            )
        )
    return org, finance, crowd


def _members(uow: UnitOfWork, ids: list[UserId]) -> list[Member]:
    return [uow.org.member(i) for i in ids]


@pytest.mark.parametrize("scope", ["submitter", "company_wide", "finance"])
def test_the_pool_offers_each_step_its_nearest_eligible_members(
    new_uow: Callable[[], UnitOfWork], scope: str
) -> None:
    org, finance, crowd = _crowded(new_uow)
    team_scope = TeamScope.parse(f"team:{finance.id}" if scope == "finance" else scope)
    policy_steps = steps(6, 6, 5, scope=team_scope)
    with new_uow() as uow:
        submitter = uow.org.member(org.person(7))
        pool = uow.org.approver_pool(submitter, policy_steps)
        # Everyone of the company, to find out who the nearest eligible are.
        people_ids = [p.id for p in org.people.values()] + [
            i for ids in crowd.values() for i in ids
        ]
        finance_people = [
            uow.org.user_by_email(org.id, f"finance-{n}@techcorp.example") for n in (2, 4, 6)
        ]
        people = _members(uow, people_ids + [u.id for u in finance_people if u])
    offered = {m.id for m in pool.everyone()}
    for step in policy_steps:
        eligible = sorted(
            (m for m in people if ineligibility(step, submitter, m, {}) is None),
            key=lambda m: (-m.level_number, m.id),
        )
        assert {m.id for m in eligible[: len(policy_steps)]} <= offered
    assert all(m.user.active for m in pool.candidates)
    assert submitter.id not in offered
    # Four eyes: three steps, three different people, as the memory adapter would choose.
    chosen = [r.approver.id for r in resolve_approvers(submitter, policy_steps, pool)]
    assert len(set(chosen)) == 3


def test_the_pool_never_offers_another_companys_people(new_uow: Callable[[], UnitOfWork]) -> None:
    lonely = tech_corp(new_uow)
    tech_corp(new_uow)  # a busy neighbour with the same ladder
    with new_uow() as uow:
        frank = uow.org.member(lonely.person(6))
        pool = uow.org.approver_pool(frank, steps(6, 5, 4))
    assert {m.user.company_id for m in pool.everyone()} == {lonely.id}
