"""Organisation files carry the fallback approver (by email) and steps' escalate_after_hours:
checked before anything is written, imported once, exported back as they were read."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from adapters.memory import MemoryStore
from entrypoints import orgfile
from expense_core.errors import InvalidOrgFile, OrgFileDisagrees
from expense_core.services import OrgFiles, OrgPlan, OrgService, check_plan

EXAMPLE = Path(__file__).parents[2] / "examples" / "org.yaml"


@pytest.fixture
def plan() -> OrgPlan:
    """The example with a fallback approver and a first step that escalates after a day."""
    example = orgfile.load(EXAMPLE)
    first = example.policies[0]
    escalating = attrs.evolve(
        first,
        steps=(attrs.evolve(first.steps[0], escalate_after_hours=24), *first.steps[1:]),
    )
    top = next(u for u in example.users if u.active and u.level == 1)
    return attrs.evolve(
        example,
        fallback_approver=top.email,
        policies=(escalating, *example.policies[1:]),
    )


def test_both_read_and_write_and_older_files_stay_as_they_were(plan: OrgPlan) -> None:
    data = orgfile.data_from(plan)
    assert data["fallback_approver"] == plan.fallback_approver
    assert data["policies"][0]["steps"][0]["escalate_after_hours"] == 24
    assert orgfile.plan_from(data) == plan
    older = orgfile.data_from(orgfile.load(EXAMPLE))
    assert "fallback_approver" not in older
    assert all("escalate_after_hours" not in s for p in older["policies"] for s in p["steps"])


def test_an_import_names_the_fallback_and_an_export_reads_back(plan: OrgPlan) -> None:
    store = MemoryStore()
    files = OrgFiles(store.unit_of_work)
    report = files.import_org(plan)
    with store.unit_of_work() as uow:
        fallback = uow.org.user_by_email(report.company.id, str(plan.fallback_approver))
        assert fallback is not None
        assert uow.org.company(report.company.id).fallback_approver_id == fallback.id
    again = files.import_org(plan)
    assert (again.company_created, again.users, again.policies) == (False, 0, 0)
    assert files.export_org(report.company.id) == plan


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fallback_approver": "nobody@northwind.example"}, "is not a user of the file"),
        ({"fallback_approver": "gone"}, "is inactive"),
        ({"hours": 0}, "escalate_after_hours"),
        ({"hours": 8761}, "escalate_after_hours"),
    ],
)
def test_a_bad_fallback_or_bad_hours_are_refused(
    plan: OrgPlan, change: dict[str, object], message: str
) -> None:
    if change.get("fallback_approver") == "gone":
        gone = next(u for u in plan.users if not u.active)
        broken = attrs.evolve(plan, fallback_approver=gone.email)
    elif "fallback_approver" in change:
        broken = attrs.evolve(plan, fallback_approver=str(change["fallback_approver"]))
    else:
        first = plan.policies[0]
        step = attrs.evolve(first.steps[0], escalate_after_hours=change["hours"])
        policy = attrs.evolve(first, steps=(step, *first.steps[1:]))
        broken = attrs.evolve(plan, policies=(policy, *plan.policies[1:]))
    with pytest.raises(InvalidOrgFile, match=message):
        check_plan(broken)


def test_a_company_with_another_fallback_approver_disagrees(plan: OrgPlan) -> None:
    store = MemoryStore()
    company = OrgFiles(store.unit_of_work).import_org(plan).company
    with store.unit_of_work() as uow:
        other = next(
            u
            for u in uow.org.users(company.id, after=None, limit=100)
            if u.active and u.email != plan.fallback_approver
        )
    OrgService(store.unit_of_work).set_fallback_approver(company.id, other.id)
    with pytest.raises(OrgFileDisagrees, match="fallback_approver"):
        OrgFiles(store.unit_of_work).import_org(plan)
