"""The audit log on every adapter: each admin change appends exactly one entry in its own unit
of work, with the thing before and after; a refused or rolled back change appends none; pages
are newest first, by keyset, filtered by target and time, one company's only."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from expense_core.audit import (
    NEW_ENTRY,
    AuditEntry,
    AuditFilter,
    AuditId,
    TargetType,
    entry,
)
from expense_core.errors import (
    AdminOnly,
    DuplicateEmail,
    InvalidInput,
    PendingApprovalsStranded,
    PolicyOverlap,
    UnknownCompany,
)
from expense_core.model import CompanyId, Role, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import (
    AccessService,
    AuditService,
    ChangeUser,
    ClearDelegation,
    DelegationService,
    ExpenseService,
    IssueToken,
    LevelPlan,
    NewPolicy,
    NewUser,
    OrgFiles,
    OrgPlan,
    OrgService,
    PersonPlan,
    PolicyPlan,
    ReadAudit,
    Relay,
    RevokeToken,
    SetDelegation,
    StepPlan,
    SubmitExpense,
    TeamPlan,
    WebhookService,
)
from expense_core.webhooks import Outcome
from tests.clocks import START, TickingClock
from tests.contract.support import Org, add_policy, money, steps, tech_corp

ALICE, DAVID, EVE, FRANK, GRACE = 1, 4, 5, 6, 7
EVERYTHING = 1000
_imports = itertools.count(1)


class AnyDestination:
    def refusal(self, url: str) -> str | None:
        return None


@pytest.fixture
def org_service(new_uow: Callable[[], UnitOfWork], clock: TickingClock) -> OrgService:
    return OrgService(new_uow, clock)


@pytest.fixture
def admin(org: Org, org_service: OrgService) -> UserId:
    """Alice, made TechCorp's admin."""
    org_service.change_user(ChangeUser(user_id=org.person(ALICE), role=Role.ADMIN))
    return org.person(ALICE)


def _log(new_uow: Callable[[], UnitOfWork], company_id: CompanyId) -> list[AuditEntry]:
    with new_uow() as uow:
        return list(uow.audit.page(company_id, where=AuditFilter(), before=None, limit=EVERYTHING))


class Watch:
    """What a company's log gained since the watch began, oldest first."""

    def __init__(self, new_uow: Callable[[], UnitOfWork], company_id: CompanyId) -> None:
        self._new_uow, self._company = new_uow, company_id
        self._seen = {e.id for e in _log(new_uow, company_id)}

    def new(self) -> list[AuditEntry]:
        fresh = [e for e in _log(self._new_uow, self._company) if e.id not in self._seen]
        return fresh[::-1]

    def one(self) -> AuditEntry:
        [made] = self.new()
        return made


def _about(e: AuditEntry) -> tuple[str, TargetType, str]:
    return (e.action, e.target_type, e.target_id)


# --- one change, one entry -------------------------------------------------------------------


def test_organisation_changes_each_write_one_entry(
    new_uow: Callable[[], UnitOfWork],
    org: Org,
    org_service: OrgService,
    admin: UserId,
    clock: TickingClock,
) -> None:
    watch = Watch(new_uow, org.id)
    team = org_service.create_team(org.id, "Finance", actor_id=admin)
    made = watch.one()
    assert _about(made) == ("team.created", TargetType.TEAM, str(team.id))
    assert (made.company_id, made.actor_id, made.before) == (org.id, admin, None)
    assert made.after == {"id": team.id, "name": "Finance", "is_company_wide": False}
    assert START <= made.at <= clock.now()

    watch = Watch(new_uow, org.id)
    level = org_service.create_level(org.id, team.id, 3, "Controller", actor_id=admin)
    made = watch.one()
    assert _about(made) == ("level.created", TargetType.LEVEL, str(level.id))
    assert made.after == {
        "id": level.id,
        "team_id": team.id,
        "level_number": 3,
        "level_name": "Controller",
    }

    watch = Watch(new_uow, org.id)
    user = org_service.create_user(
        NewUser(
            company_id=org.id,
            team_id=team.id,
            email="ivy@techcorp.example",
            name="Ivy Park",
            hierarchy_level_id=level.id,
            actor_id=admin,
        )
    )
    made = watch.one()
    assert _about(made) == ("user.created", TargetType.USER, str(user.id))
    assert (made.before, made.actor_id) == (None, admin)
    assert made.after is not None
    assert (made.after["email"], made.after["role"], made.after["active"]) == (
        "ivy@techcorp.example",
        "employee",
        True,
    )

    watch = Watch(new_uow, org.id)
    org_service.set_fallback_approver(org.id, user.id, actor_id=admin)
    made = watch.one()
    assert _about(made) == ("company.updated", TargetType.COMPANY, str(org.id))
    assert made.before is not None
    assert made.after is not None
    assert (made.before["fallback_approver_id"], made.after["fallback_approver_id"]) == (
        None,
        user.id,
    )


def test_a_role_change_is_a_user_update_with_the_whole_user_before_and_after(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService, admin: UserId
) -> None:
    grace = org.people[GRACE]
    watch = Watch(new_uow, org.id)
    org_service.change_user(ChangeUser(user_id=grace.id, role=Role.ADMIN, actor_id=admin))
    made = watch.one()
    assert _about(made) == ("user.updated", TargetType.USER, str(grace.id))
    assert made.actor_id == admin
    assert made.before == {
        "id": grace.id,
        "team_id": grace.team_id,
        "email": grace.email,
        "name": grace.name,
        "hierarchy_level_id": grace.hierarchy_level_id,
        "manager_id": None,
        "role": "employee",
        "active": True,
    }
    assert made.after == {**made.before, "role": "admin"}


def test_deactivating_a_user_is_its_own_action_and_a_change_of_nothing_writes_nothing(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService, admin: UserId
) -> None:
    watch = Watch(new_uow, org.id)
    org_service.change_user(ChangeUser(user_id=org.person(GRACE), active=False, actor_id=admin))
    made = watch.one()
    assert made.action == "user.deactivated"
    assert made.before is not None
    assert made.after is not None
    assert (made.before["active"], made.after["active"]) == (True, False)
    watch = Watch(new_uow, org.id)
    org_service.change_user(ChangeUser(user_id=org.person(GRACE), active=False, actor_id=admin))
    assert watch.new() == []


def test_a_policy_that_replaces_another_writes_its_creation_and_the_deactivation(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService, admin: UserId
) -> None:
    watch = Watch(new_uow, org.id)
    policy = org_service.create_policy(
        NewPolicy(
            company_id=org.id,
            category="travel",
            name="Travel 2027",
            min_amount=money("0.00"),
            max_amount=money("5000.00"),
            steps=steps(6),
            replaces=org.travel.id,
            actor_id=admin,
        )
    )
    deactivated, created = watch.new()
    assert _about(deactivated) == ("policy.deactivated", TargetType.POLICY, str(org.travel.id))
    assert deactivated.before is not None
    assert deactivated.after == {**deactivated.before, "active": False}
    assert _about(created) == ("policy.created", TargetType.POLICY, str(policy.id))
    assert created.after is not None
    assert (created.after["max_amount"], created.after["steps"]) == (
        "5000.00",
        [
            {
                "step_order": 1,
                "required_level": 6,
                "team_scope": "submitter",
                "is_required": True,
                "description": None,
                "escalate_after_hours": None,
            }
        ],
    )
    watch = Watch(new_uow, org.id)
    org_service.deactivate_policy(policy.id, org.id, actor_id=admin)
    assert watch.one().action == "policy.deactivated"
    watch = Watch(new_uow, org.id)
    org_service.deactivate_policy(policy.id, org.id, actor_id=admin)
    assert watch.new() == []


def test_delegations_set_and_cleared_are_written(
    new_uow: Callable[[], UnitOfWork], org: Org, admin: UserId, clock: TickingClock
) -> None:
    delegations = DelegationService(new_uow, clock)
    eve = org.person(EVE)
    starts = datetime(2026, 7, 1, tzinfo=UTC)
    watch = Watch(new_uow, org.id)
    delegations.set(
        SetDelegation(
            user_id=eve,
            delegate_id=org.person(DAVID),
            starts_at=starts,
            ends_at=starts + timedelta(days=7),
            note="holiday",
            actor_id=admin,
        )
    )
    made = watch.one()
    assert _about(made) == ("delegation.set", TargetType.DELEGATION, str(eve))
    assert (made.actor_id, made.before) == (admin, None)
    assert made.after == {
        "user_id": eve,
        "delegate_id": org.person(DAVID),
        "starts_at": "2026-07-01T00:00:00+00:00",
        "ends_at": "2026-07-08T00:00:00+00:00",
        "note": "holiday",
    }
    watch = Watch(new_uow, org.id)
    delegations.clear(ClearDelegation(user_id=eve, actor_id=admin))
    cleared = watch.one()
    assert _about(cleared) == ("delegation.cleared", TargetType.DELEGATION, str(eve))
    assert (cleared.before, cleared.after) == (made.after, None)


def test_tokens_issued_and_revoked_are_written_without_their_secret(
    new_uow: Callable[[], UnitOfWork], org: Org, admin: UserId, clock: TickingClock
) -> None:
    access = AccessService(new_uow, clock)
    watch = Watch(new_uow, org.id)
    issued = access.issue(IssueToken(user_id=org.person(GRACE), name="laptop", actor_id=admin))
    made = watch.one()
    assert _about(made) == ("token.issued", TargetType.TOKEN, issued.record.id)
    assert made.after is not None
    assert set(made.after) == {"id", "user_id", "name", "created_at", "expires_at", "revoked_at"}
    secret = issued.token.split("_", 2)[2]
    assert secret not in repr(made)
    watch = Watch(new_uow, org.id)
    access.revoke(RevokeToken(token_id=issued.record.id, actor_id=admin))
    revoked = watch.one()
    assert _about(revoked) == ("token.revoked", TargetType.TOKEN, issued.record.id)
    assert revoked.before == made.after
    assert revoked.after is not None
    assert revoked.after["revoked_at"] == revoked.at.isoformat()
    # Revoking again changes nothing, and writes nothing.
    watch = Watch(new_uow, org.id)
    access.revoke(RevokeToken(token_id=issued.record.id, actor_id=admin))
    assert watch.new() == []


def test_webhooks_created_removed_and_a_delivery_retried_are_written(
    new_uow: Callable[[], UnitOfWork], org: Org, admin: UserId, clock: TickingClock
) -> None:
    hooks = WebhookService(new_uow, clock, AnyDestination())
    watch = Watch(new_uow, org.id)
    webhook = hooks.subscribe(
        org.id, "https://example.com/hook", ["expense.submitted"], actor_id=admin
    )
    made = watch.one()
    assert _about(made) == ("webhook.created", TargetType.WEBHOOK, str(webhook.id))
    assert made.after is not None
    assert made.after["events"] == ["expense.submitted"]
    assert webhook.secret not in repr(made)

    ExpenseService(new_uow, clock).submit(
        SubmitExpense(
            user_id=org.person(GRACE),
            policy_id=org.small.id,
            amount=money("100.00"),
            description="cable",
        )
    )
    relay = Relay(new_uow, clock)
    while relay.dispatch():
        pass
    claims = [c for c in relay.claim(EVERYTHING) if c.delivery.webhook_id == webhook.id]
    relay.settle([(c, Outcome(422)) for c in claims])
    watch = Watch(new_uow, org.id)
    again = hooks.retry(org.id, webhook.id, claims[0].delivery.id, actor_id=admin)
    retried = watch.one()
    assert _about(retried) == ("delivery.retried", TargetType.DELIVERY, str(again.id))
    assert retried.before is not None
    assert retried.after is not None
    assert (retried.before["status"], retried.after["status"]) == ("failed", "pending")

    watch = Watch(new_uow, org.id)
    hooks.remove(org.id, webhook.id, actor_id=admin)
    removed = watch.one()
    assert _about(removed) == ("webhook.deleted", TargetType.WEBHOOK, str(webhook.id))
    assert (removed.before, removed.after) == (made.after, None)


def test_an_import_writes_one_entry_per_thing_it_creates_and_a_second_run_none(
    new_uow: Callable[[], UnitOfWork], clock: TickingClock
) -> None:
    plan = OrgPlan(
        company=f"Imported {next(_imports)} {clock.now().isoformat()}",
        teams=(
            TeamPlan(
                name="Ops",
                levels=(LevelPlan(number=2, name="Head"), LevelPlan(number=5, name="Staff")),
            ),
        ),
        users=(
            PersonPlan(
                email="ann@ops.example", name="Ann", team="Ops", level=5, manager="bo@ops.example"
            ),
            PersonPlan(email="bo@ops.example", name="Bo", team="Ops", level=2),
        ),
        policies=(
            PolicyPlan(
                name="Ops kit",
                category="equipment",
                min_amount=money("0.00"),
                max_amount=money("100.00"),
                steps=(StepPlan(required_level=2),),
            ),
        ),
        fallback_approver="bo@ops.example",
    )
    files = OrgFiles(new_uow, clock)
    report = files.import_org(plan)
    made = _log(new_uow, report.company.id)[::-1]
    assert [e.action for e in made] == [
        "company.created",
        "team.created",
        "level.created",
        "level.created",
        "user.created",
        "user.created",
        "policy.created",
    ]
    assert {e.actor_id for e in made} == {None}
    assert all(e.before is None for e in made)
    company, ann, bo = made[0].after, made[4].after, made[5].after
    assert company is not None
    assert ann is not None
    assert bo is not None
    # Each as it stands at the end: Ann's manager and the fallback approver were set last.
    assert (ann["email"], ann["manager_id"]) == ("ann@ops.example", bo["id"])
    assert company["fallback_approver_id"] == bo["id"]
    files.import_org(plan)
    assert len(_log(new_uow, report.company.id)) == len(made)


# --- refused and rolled back changes ---------------------------------------------------------


def test_a_refused_change_writes_nothing(
    new_uow: Callable[[], UnitOfWork], org: Org, org_service: OrgService, clock: TickingClock
) -> None:
    watch = Watch(new_uow, org.id)
    with pytest.raises(DuplicateEmail):
        org_service.create_user(
            NewUser(
                company_id=org.id,
                team_id=org.team.id,
                email=org.people[GRACE].email,
                name="Grace Again",
                hierarchy_level_id=org.levels[GRACE].id,
            )
        )
    with pytest.raises(PolicyOverlap):
        org_service.create_policy(
            NewPolicy(
                company_id=org.id,
                category="travel",
                name="Overlapping",
                min_amount=money("10.00"),
                max_amount=money("20.00"),
                steps=steps(6),
            )
        )
    # Only the CTO approves gifts: her leaving would strand Grace's expense. The change, its
    # re-routing and its audit entry go back together.
    gifts = add_policy(new_uow, org.id, "gifts", steps(1), name="Gifts")
    ExpenseService(new_uow, clock).submit(
        SubmitExpense(
            user_id=org.person(GRACE),
            policy_id=gifts.id,
            amount=money("50.00"),
            description="flowers",
        )
    )
    watch = Watch(new_uow, org.id)
    with pytest.raises(PendingApprovalsStranded):
        org_service.change_user(ChangeUser(user_id=org.person(ALICE), active=False))
    assert watch.new() == []


def test_an_entry_appended_in_a_unit_of_work_that_is_not_committed_is_gone(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    watch = Watch(new_uow, org.id)
    with new_uow() as uow:
        uow.audit.append(_entry(org.id, START, "test.rolled_back"))
    assert watch.new() == []


# --- pages and filters -----------------------------------------------------------------------


def _entry(
    company_id: CompanyId,
    at: datetime,
    action: str,
    target: str = "1",
    kind: TargetType = TargetType.USER,
) -> AuditEntry:
    return entry(
        company_id=company_id,
        actor_id=None,
        at=at,
        action=action,
        target_type=kind,
        target_id=target,
        after={"n": action},
    )


def test_pages_are_newest_first_by_keyset_and_filtered(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    with new_uow() as uow:
        uow.audit.extend(
            [
                _entry(org.id, base + timedelta(hours=i), f"test.{i}", str(i % 3), kind)
                for i, kind in enumerate([TargetType.USER, TargetType.TEAM] * 5)
            ]
        )
        uow.audit.append(_entry(other.id, base, "test.other"))
        uow.commit()
    reader = AuditService(new_uow)
    # Only the entries this test made: they are the company's newest, after `since`.
    mine = ReadAudit(company_id=org.id, since=base, limit=4)
    seen: list[AuditEntry] = []
    page = reader.page(mine)
    while True:
        seen.extend(page.items)
        if page.next_cursor is None:
            break
        assert len(page.items) == 4
        page = reader.page(
            ReadAudit(company_id=org.id, since=base, limit=4, cursor=page.next_cursor)
        )
    assert [e.action for e in seen] == [f"test.{i}" for i in reversed(range(10))]
    assert [e.id for e in seen] == sorted((e.id for e in seen), reverse=True)
    assert all(e.id != NEW_ENTRY for e in seen)
    assert seen[0].after == {"n": "test.9"}

    teams = reader.page(ReadAudit(company_id=org.id, since=base, target_type="team"))
    assert [e.action for e in teams.items] == ["test.9", "test.7", "test.5", "test.3", "test.1"]
    one = reader.page(ReadAudit(company_id=org.id, since=base, target_type="team", target_id="1"))
    assert [e.action for e in one.items] == ["test.7", "test.1"]
    window = reader.page(
        ReadAudit(
            company_id=org.id,
            since=base + timedelta(hours=2),
            until=base + timedelta(hours=5),
        )
    )
    assert [e.action for e in window.items] == ["test.4", "test.3", "test.2"]
    assert [e.action for e in reader.export(mine)] == [e.action for e in seen]
    assert [e.action for e in reader.page(ReadAudit(company_id=other.id, since=base)).items] == [
        "test.other"
    ]


def test_every_page_of_an_export_is_read(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    base = datetime(2031, 1, 1, tzinfo=UTC)
    with new_uow() as uow:
        uow.audit.extend(
            [_entry(org.id, base + timedelta(seconds=i), f"test.{i}") for i in range(250)]
        )
        uow.commit()
    exported = list(AuditService(new_uow).export(ReadAudit(company_id=org.id, since=base)))
    assert [e.action for e in exported] == [f"test.{i}" for i in reversed(range(250))]


def test_only_an_admin_reads_the_log_and_a_bad_filter_is_refused(
    new_uow: Callable[[], UnitOfWork], org: Org, admin: UserId
) -> None:
    reader = AuditService(new_uow)
    assert reader.page(ReadAudit(company_id=org.id, actor_id=admin)).items
    with pytest.raises(AdminOnly):
        reader.page(ReadAudit(company_id=org.id, actor_id=org.person(GRACE)))
    with pytest.raises(AdminOnly):
        reader.export(ReadAudit(company_id=org.id, actor_id=org.person(GRACE)))
    with pytest.raises(UnknownCompany):
        reader.page(ReadAudit(company_id=CompanyId(2_000_000_000)))
    for bad in (
        ReadAudit(company_id=org.id, target_type="expense"),
        ReadAudit(company_id=org.id, target_id="1"),
        ReadAudit(company_id=org.id, since=datetime(2030, 1, 1)),  # noqa: DTZ001 -- naive on purpose
        ReadAudit(company_id=org.id, since=START, until=START),
        ReadAudit(company_id=org.id, limit=0),
        ReadAudit(company_id=org.id, cursor=0),
    ):
        with pytest.raises(InvalidInput):
            reader.page(bad)


def test_the_entries_ids_grow(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    with new_uow() as uow:
        uow.audit.append(_entry(org.id, START, "test.first"))
        uow.audit.append(_entry(org.id, START, "test.second"))
        uow.commit()
    first, second = (
        next(e for e in _log(new_uow, org.id) if e.action == name)
        for name in ("test.first", "test.second")
    )
    assert AuditId(first.id) < second.id
