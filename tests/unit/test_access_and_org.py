"""AccessService (bearer tokens) and OrgService (every change checked before it is stored)."""

from __future__ import annotations

import re

import pytest

from adapters.memory import MemoryStore
from expense_core.demo import install_demo
from expense_core.errors import (
    DuplicateEmail,
    DuplicateName,
    InactiveUser,
    InvalidOrgChange,
    InvalidPolicy,
    LevelOutsideTeam,
    PolicyOverlap,
    StoreNotEmpty,
    Unauthenticated,
    UnknownCompany,
    UnknownLevel,
    UnknownTeam,
    UnknownUser,
)
from expense_core.model import (
    ApprovalStep,
    CompanyId,
    LevelId,
    Role,
    ScopeKind,
    TeamId,
    TeamScope,
    UserId,
)
from expense_core.services import (
    AccessService,
    ExpenseService,
    NewPolicy,
    NewUser,
    OrgService,
    SubmitExpense,
)
from expense_core.tokens import TokenId
from tests.unit.support import (
    ALICE,
    FRANK,
    GRACE,
    NAMES,
    TECHCORP,
    deactivate,
    money,
)

TECHNOLOGY = TeamId(1)
MANAGER_LEVEL = LevelId(6)

# --- access ----------------------------------------------------------------------------------


def test_an_issued_token_authenticates_its_holder(access: AccessService) -> None:
    token = access.issue_token(GRACE)
    prefix, token_id, secret = token.split("_", 2)
    assert (prefix, len(token_id)) == ("et", 16)
    assert len(secret) >= 32
    holder = access.authenticate(token)
    assert (holder.id, holder.user.name, holder.level.level_name) == (GRACE, NAMES[GRACE], "SDE3")


def test_every_token_is_new_and_each_one_works(access: AccessService) -> None:
    first, second = access.issue_token(FRANK), access.issue_token(FRANK)
    assert first != second
    assert access.authenticate(first).id == access.authenticate(second).id == FRANK


def test_the_secret_is_never_stored(store: MemoryStore, access: AccessService) -> None:
    token = access.issue_token(FRANK)
    _, token_id, secret = token.split("_", 2)
    with store.unit_of_work() as uow:
        found = uow.tokens.holder(TokenId(token_id))
    assert found is not None
    assert found.member.id == FRANK
    assert secret not in found.secret_hash
    assert secret not in repr(found.token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "et",
        "et_",
        "et__secret",
        "xx_0123456789abcdef_secret",
        "et_0123456789abcde_secret",  # a 15-character id
        "et_0123456789abcdef0_secret",  # a 17-character id
        "et_0123456789abcdef_",
        "Bearer et_0123456789abcdef_secret",
    ],
)
def test_a_malformed_token_is_refused(access: AccessService, token: str) -> None:
    with pytest.raises(Unauthenticated, match="malformed"):
        access.authenticate(token)


def test_an_unknown_token_is_refused(access: AccessService) -> None:
    with pytest.raises(Unauthenticated, match=r"^the bearer token is unknown$"):
        access.authenticate("et_0123456789abcdef_" + "s" * 43)


def test_a_known_id_with_the_wrong_secret_is_refused(access: AccessService) -> None:
    token = access.issue_token(GRACE)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(Unauthenticated, match=r"^the bearer token is unknown$"):
        access.authenticate(forged)
    with pytest.raises(Unauthenticated):
        access.authenticate(token + "x")


def test_the_token_of_someone_now_inactive_is_refused(
    store: MemoryStore, access: AccessService
) -> None:
    token = access.issue_token(GRACE)
    deactivate(store, GRACE)
    with pytest.raises(Unauthenticated, match=f"user {GRACE} is inactive"):
        access.authenticate(token)


def test_tokens_are_only_issued_to_active_people(store: MemoryStore, access: AccessService) -> None:
    with pytest.raises(UnknownUser):
        access.issue_token(UserId(99))
    deactivate(store, GRACE)
    with pytest.raises(InactiveUser):
        access.issue_token(GRACE)


# --- companies, teams and levels -------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", "n" * 101])
def test_a_company_needs_a_name_of_1_to_100_characters(org: OrgService, name: str) -> None:
    with pytest.raises(InvalidOrgChange, match="company name"):
        org.create_company(name)


def test_companies_teams_and_levels_get_new_ids(org: OrgService) -> None:
    company = org.create_company("n" * 100)
    assert company.id == 2
    team = org.create_team(company.id, "Finance", is_company_wide=True)
    assert (team.company_id, team.name, team.is_company_wide) == (company.id, "Finance", True)
    level = org.create_level(company.id, team.id, 10, "Intern")
    assert (level.team_id, level.level_number, level.level_name) == (team.id, 10, "Intern")
    assert org.create_level(company.id, team.id, 1, "CFO").id != level.id


def test_a_team_needs_a_known_company_and_a_name_unique_within_it(org: OrgService) -> None:
    with pytest.raises(UnknownCompany, match="company 99"):
        org.create_team(CompanyId(99), "Finance")
    with pytest.raises(DuplicateName, match="'Technology'"):
        org.create_team(TECHCORP, "Technology")
    with pytest.raises(InvalidOrgChange, match="team name"):
        org.create_team(TECHCORP, " ")
    other = org.create_company("Globex")
    assert org.create_team(other.id, "Technology").company_id == other.id


@pytest.mark.parametrize("number", [0, 11, -1])
def test_a_level_number_lies_between_1_and_10(org: OrgService, number: int) -> None:
    with pytest.raises(InvalidOrgChange, match="level_number must be between 1 and 10"):
        org.create_level(TECHCORP, TECHNOLOGY, number, "Nowhere")


def test_a_level_needs_a_team_of_its_company_and_a_free_number(org: OrgService) -> None:
    with pytest.raises(UnknownTeam):
        org.create_level(TECHCORP, TeamId(99), 8, "Intern")
    other = org.create_company("Globex")
    with pytest.raises(UnknownTeam):
        org.create_level(other.id, TECHNOLOGY, 8, "Intern")
    with pytest.raises(DuplicateName):
        org.create_level(TECHCORP, TECHNOLOGY, 6, "Second Manager")
    with pytest.raises(InvalidOrgChange, match="level name"):
        org.create_level(TECHCORP, TECHNOLOGY, 8, "")
    finance = org.create_team(TECHCORP, "Finance")
    assert org.create_level(TECHCORP, finance.id, 6, "Finance Manager").level_number == 6


# --- users -----------------------------------------------------------------------------------


def new_user(**changes: object) -> NewUser:
    fields: dict[str, object] = {
        "company_id": TECHCORP,
        "team_id": TECHNOLOGY,
        "email": "henry@techcorp.com",
        "name": "Henry Ford",
        "hierarchy_level_id": MANAGER_LEVEL,
    }
    fields.update(changes)
    return NewUser(**fields)  # type: ignore[arg-type]  # the fields above are of the right types


def test_a_user_is_stored_with_level_manager_role_and_trimmed_email(org: OrgService) -> None:
    user = org.create_user(
        new_user(email="  henry@techcorp.com ", manager_id=ALICE, role=Role.ADMIN, active=False)
    )
    assert user.id == 8
    assert (user.email, user.manager_id, user.role, user.active) == (
        "henry@techcorp.com",
        ALICE,
        Role.ADMIN,
        False,
    )
    assert user.hierarchy_level_id == MANAGER_LEVEL


@pytest.mark.parametrize("email", ["", "ab", "@ab", "ab@", "no-at-sign", "a@" + "b" * 99, "   "])
def test_a_user_needs_a_plausible_email(org: OrgService, email: str) -> None:
    with pytest.raises(InvalidOrgChange, match="not a valid email"):
        org.create_user(new_user(email=email))


@pytest.mark.parametrize("name", ["", "  ", "n" * 256])
def test_a_user_needs_a_name_of_1_to_255_characters(org: OrgService, name: str) -> None:
    with pytest.raises(InvalidOrgChange, match="user name"):
        org.create_user(new_user(name=name))


def test_a_user_name_of_255_characters_and_a_three_character_email_are_accepted(
    org: OrgService,
) -> None:
    assert org.create_user(new_user(name="n" * 255, email="a@b")).email == "a@b"


def test_an_email_is_unique_within_a_company_only(org: OrgService) -> None:
    with pytest.raises(DuplicateEmail, match=re.escape("frank.miller@techcorp.com")):
        org.create_user(new_user(email="frank.miller@techcorp.com"))
    other = org.create_company("Globex")
    team = org.create_team(other.id, "Ops")
    level = org.create_level(other.id, team.id, 3, "Staff")
    twin = org.create_user(
        new_user(
            company_id=other.id,
            team_id=team.id,
            hierarchy_level_id=level.id,
            email="frank.miller@techcorp.com",
        )
    )
    assert twin.company_id == other.id


def test_a_user_needs_a_team_and_a_level_of_that_team(org: OrgService) -> None:
    with pytest.raises(UnknownTeam):
        org.create_user(new_user(team_id=TeamId(99)))
    with pytest.raises(UnknownLevel):
        org.create_user(new_user(hierarchy_level_id=LevelId(99)))
    finance = org.create_team(TECHCORP, "Finance")
    with pytest.raises(LevelOutsideTeam):
        org.create_user(new_user(team_id=finance.id))  # the Manager level is Technology's


def test_a_manager_must_exist_in_the_same_company(org: OrgService) -> None:
    with pytest.raises(UnknownUser, match="user 99"):
        org.create_user(new_user(manager_id=UserId(99)))
    other = org.create_company("Globex")
    team = org.create_team(other.id, "Ops")
    level = org.create_level(other.id, team.id, 1, "CEO")
    boss = org.create_user(
        new_user(company_id=other.id, team_id=team.id, hierarchy_level_id=level.id)
    )
    with pytest.raises(UnknownUser, match=f"user {boss.id}"):
        org.create_user(new_user(manager_id=boss.id))


def test_a_new_user_joins_approver_resolution(org: OrgService, expenses: ExpenseService) -> None:
    second_manager = org.create_user(new_user(manager_id=None))
    grace_report = org.create_user(
        new_user(
            email="ida@techcorp.com",
            name="Ida",
            hierarchy_level_id=LevelId(7),
            manager_id=second_manager.id,
        )
    )
    submitted = expenses.submit(
        SubmitExpense(user_id=grace_report.id, category="travel", amount=money("90.00"))
    )
    assert [m.id for m in submitted.approvers] == [second_manager.id, UserId(5)]


def test_someone_joining_after_routing_began_is_routed_to_from_then_on(
    org: OrgService, expenses: ExpenseService
) -> None:
    finance = org.create_team(TECHCORP, "Finance")
    controller_level = org.create_level(TECHCORP, finance.id, 4, "Controller")
    analyst_level = org.create_level(TECHCORP, finance.id, 7, "Analyst")
    controller = org.create_user(
        new_user(team_id=finance.id, hierarchy_level_id=controller_level.id, email="c@t.com")
    )
    analyst = org.create_user(
        new_user(team_id=finance.id, hierarchy_level_id=analyst_level.id, email="a@t.com")
    )

    def first_approver() -> UserId:
        command = SubmitExpense(user_id=analyst.id, category="equipment", amount=money("90.00"))
        return expenses.submit(command).approvers[0].id

    assert first_approver() == controller.id  # nobody at the Manager rung yet
    manager_level = org.create_level(TECHCORP, finance.id, 6, "Finance Manager")
    manager = org.create_user(
        new_user(team_id=finance.id, hierarchy_level_id=manager_level.id, email="m@t.com")
    )
    assert first_approver() == manager.id


# --- policies --------------------------------------------------------------------------------


def new_policy(
    low: str = "0.00",
    high: str = "500.00",
    *steps: ApprovalStep,
    company: CompanyId = TECHCORP,
    category: str = "meals",
) -> NewPolicy:
    return NewPolicy(
        company_id=company,
        category=category,
        name=f"Meals {low}-{high}",
        min_amount=money(low),
        max_amount=money(high),
        steps=steps or (ApprovalStep(step_order=1, required_level=6),),
    )


def test_a_policy_is_stored_with_ids_for_it_and_its_steps(org: OrgService) -> None:
    policy = org.create_policy(
        new_policy(
            "0.00",
            "500.00",
            ApprovalStep(step_order=1, required_level=6),
            ApprovalStep(step_order=2, required_level=5, is_required=False),
        )
    )
    assert policy.id == 4
    assert policy.active
    assert policy.created_at is not None
    assert [s.id for s in policy.steps] == [7, 8]  # the demo's three policies hold six steps
    assert [s.is_required for s in policy.steps] == [True, False]


def test_a_policy_needs_a_known_company(org: OrgService) -> None:
    with pytest.raises(UnknownCompany):
        org.create_policy(new_policy(company=CompanyId(99)))


def test_a_team_scope_must_name_a_team_of_the_policys_company(org: OrgService) -> None:
    other = org.create_company("Globex")
    their_team = org.create_team(other.id, "Finance")
    for team in (TeamId(99), their_team.id):
        step = ApprovalStep(
            step_order=1, required_level=5, team_scope=TeamScope(ScopeKind.TEAM, team)
        )
        with pytest.raises(UnknownTeam):
            org.create_policy(new_policy("0.00", "1.00", step))
    finance = org.create_team(TECHCORP, "Finance", is_company_wide=True)
    step = ApprovalStep(
        step_order=1, required_level=5, team_scope=TeamScope(ScopeKind.TEAM, finance.id)
    )
    assert org.create_policy(new_policy("0.00", "1.00", step)).steps[0].team_scope.team_id == (
        finance.id
    )


def test_an_overlapping_policy_is_refused_and_an_adjacent_one_accepted(org: OrgService) -> None:
    org.create_policy(new_policy("0.00", "500.00"))
    with pytest.raises(PolicyOverlap, match=re.escape("'Meals 0.00-500.00'")):
        org.create_policy(new_policy("500.00", "900.00"))
    assert org.create_policy(new_policy("500.01", "900.00")).min_amount == money("500.01")
    with pytest.raises(PolicyOverlap):
        org.create_policy(new_policy("100.00", "100.00", category="equipment"))
    other = org.create_company("Globex")
    assert org.create_policy(new_policy("0.00", "500.00", company=other.id)).company_id == other.id


def test_a_malformed_policy_is_refused(org: OrgService) -> None:
    with pytest.raises(InvalidPolicy, match="above max_amount"):
        org.create_policy(new_policy("9.00", "1.00"))
    with pytest.raises(InvalidPolicy, match="required_level"):
        org.create_policy(new_policy("0.00", "1.00", ApprovalStep(step_order=1, required_level=0)))


def test_installing_the_demo_twice_changes_nothing(store: MemoryStore) -> None:
    before = (dict(store.tables.users), dict(store.tables.policies))
    company = install_demo(store.unit_of_work)
    assert company.id == TECHCORP
    assert (dict(store.tables.users), dict(store.tables.policies)) == before


def test_the_demo_refuses_a_store_that_already_holds_another_company() -> None:
    store = MemoryStore()
    OrgService(store.unit_of_work).create_company("Initech")
    with pytest.raises(StoreNotEmpty, match="Initech"):
        install_demo(store.unit_of_work)
    assert [c.name for c in store.tables.companies.values()] == ["Initech"]
