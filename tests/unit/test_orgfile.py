"""Organisation files: every rule checked before anything is written, idempotent imports, and
exports that read back as the same plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory import MemoryStore
from entrypoints import orgfile
from expense_core.errors import InvalidOrgFile, OrgFileDisagrees, UnknownCompany
from expense_core.model import CompanyId, Money, ScopeKind
from expense_core.services import (
    ExpenseService,
    OrgFiles,
    OrgPlan,
    OrgService,
    SubmitExpense,
    check_plan,
)
from tests.clocks import TickingClock

EXAMPLE = Path(__file__).parents[2] / "examples" / "org.yaml"


@pytest.fixture
def plan() -> OrgPlan:
    return orgfile.load(EXAMPLE)


def test_the_example_is_a_realistic_company(plan: OrgPlan) -> None:
    assert len(plan.users) == 41
    assert [t.name for t in plan.teams] == ["Engineering", "Sales", "Operations", "Finance"]
    assert [t.company_wide for t in plan.teams] == [False, False, False, True]
    large = next(p for p in plan.policies if p.name == "Large Equipment")
    assert "team:Finance" in [s.team_scope for s in large.steps]
    check_plan(plan)


def test_the_example_imports_once_and_exports_as_it_was_read(plan: OrgPlan) -> None:
    store = MemoryStore()
    files = OrgFiles(store.unit_of_work)
    first = files.import_org(plan)
    assert (first.teams, first.levels, first.users, first.policies) == (4, 18, 41, 5)
    second = files.import_org(plan)
    assert second.company == first.company
    assert (second.company_created, second.teams, second.users, second.policies) == (
        False,
        0,
        0,
        0,
    )
    exported = files.export_org(first.company.id)
    assert exported == plan
    assert orgfile.plan_from(orgfile.data_from(exported)) == plan


def test_an_imported_company_routes_expenses_to_finance(plan: OrgPlan) -> None:
    store = MemoryStore()
    company = OrgFiles(store.unit_of_work).import_org(plan).company
    with store.unit_of_work() as uow:
        iris = uow.org.user_by_email(company.id, "iris.walsh@northwind.example")
        finance = next(t for t in uow.org.teams(company.id) if t.name == "Finance")
        policy = next(
            p for p in uow.org.company_policies(company.id) if p.name == "Large Equipment"
        )
    assert iris is not None
    assert policy.steps[2].team_scope.kind is ScopeKind.TEAM
    assert policy.steps[2].team_scope.team_id == finance.id
    submitted = ExpenseService(store.unit_of_work, TickingClock()).submit(
        SubmitExpense(user_id=iris.id, category="equipment", amount=Money.parse("2500"))
    )
    with store.unit_of_work() as uow:
        finance_step = uow.org.member(submitted.expense.approvals[2].approver_id)
    assert finance_step.user.team_id == finance.id


def _data() -> dict[str, Any]:
    return orgfile.data_from(orgfile.load(EXAMPLE))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["users"][3].update(team="Marketing"), "no team 'Marketing'"),
        (lambda d: d["users"][3].update(level=9), "has no level 9"),
        (lambda d: d["users"][3].update(manager="ghost@x.example"), "is not in the file"),
        (lambda d: d["users"][0].update(manager=d["users"][3]["email"]), "loops"),
        (lambda d: d["users"].append(dict(d["users"][0])), "appears twice"),
        (lambda d: d["users"][3].update(email="nope"), "not a valid email"),
        (lambda d: d["users"][3].update(role="boss"), "role must be"),
        (lambda d: d["teams"].append(dict(d["teams"][0])), "appears twice"),
        (lambda d: d["teams"][0]["levels"].append({"number": 1, "name": "X"}), "twice"),
        (lambda d: d["teams"][0]["levels"].append({"number": 11, "name": "X"}), "between 1 and"),
        (lambda d: d["policies"][0].update(max_amount="2500.00"), "overlaps"),
        (lambda d: d["policies"][0].update(max_amount=19.5), "quoted decimal string"),
        (lambda d: d["policies"][0].update(max_amount="1.001"), "2 decimal places"),
        (lambda d: d["policies"][0].update(steps=[]), "at least one approval step"),
        (lambda d: d["policies"][0]["steps"][0].update(required_level=0), "required_level"),
        (lambda d: d["policies"][0]["steps"][0].update(is_required=False), "required step"),
        (lambda d: d["policies"][1]["steps"][2].update(team_scope="team:HR"), "names no team"),
        (lambda d: d["policies"][1]["steps"][2].update(team_scope="team:4"), "names no team"),
        (lambda d: d["policies"][1]["steps"][2].update(team_scope="board"), "invalid team_scope"),
        (lambda d: d.update(colour="blue"), "unknown field"),
        (lambda d: d.update(company=""), "company name"),
        (lambda d: d.update(users="everyone"), "must be a list"),
    ],
)
def test_a_broken_file_is_refused_before_anything_is_written(change: Any, message: str) -> None:
    data = _data()
    change(data)
    store = MemoryStore()
    with pytest.raises(InvalidOrgFile, match=message):
        OrgFiles(store.unit_of_work).import_org(orgfile.plan_from(data))
    with store.unit_of_work() as uow:
        assert uow.org.company_named("Northwind Traders") is None


def test_a_file_that_disagrees_with_the_database_is_refused_whole(plan: OrgPlan) -> None:
    store = MemoryStore()
    files = OrgFiles(store.unit_of_work)
    company = files.import_org(plan).company
    renamed = attrs.evolve(plan.users[5], name="Someone Else")
    users = (*plan.users[:5], renamed, *plan.users[6:])
    with pytest.raises(OrgFileDisagrees, match="name"):
        files.import_org(attrs.evolve(plan, users=users))
    moved = attrs.evolve(plan.users[5], manager=None)
    with pytest.raises(OrgFileDisagrees, match="manager"):
        files.import_org(attrs.evolve(plan, users=(*plan.users[:5], moved, *plan.users[6:])))
    assert files.export_org(company.id) == plan


def test_an_import_failing_at_the_database_writes_nothing(plan: OrgPlan) -> None:
    store = MemoryStore()
    org = OrgService(store.unit_of_work)
    company = org.create_company("Northwind Traders")
    team = org.create_team(company.id, "Engineering")
    level = org.create_level(company.id, team.id, 7, "Intern")
    with pytest.raises(OrgFileDisagrees):
        # The database's Engineering ladder names level 7 otherwise: nothing else is added.
        OrgFiles(store.unit_of_work).import_org(plan)
    assert org.teams(company.id) == (team,)
    assert org.levels(company.id, team.id) == (level,)


def test_json_files_read_amounts_exactly(tmp_path: Path) -> None:
    path = tmp_path / "org.json"
    path.write_text(orgfile.dump(orgfile.load(EXAMPLE), as_json=True))
    assert orgfile.load(path) == orgfile.load(EXAMPLE)
    # JSON numbers are decoded as decimals, so they are as exact as strings.
    path.write_text(
        '{"company": "X", "policies": [{"name": "P", "category": "c", "min_amount": 0.1, '
        '"max_amount": 1.001, "steps": []}]}'
    )
    with pytest.raises(InvalidOrgFile, match="2 decimal places"):
        orgfile.load(path)


@pytest.mark.parametrize("text", ["company: [unclosed", "- just\n- a list\n"])
def test_a_file_that_is_not_an_organisation_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "org.yaml"
    path.write_text(text)
    with pytest.raises(InvalidOrgFile):
        orgfile.load(path)
    with pytest.raises(InvalidOrgFile, match="cannot read"):
        orgfile.load(tmp_path / "missing.yaml")


def test_an_unknown_company_cannot_be_exported() -> None:
    with pytest.raises(UnknownCompany):
        OrgFiles(MemoryStore().unit_of_work).export_org(CompanyId(1))
