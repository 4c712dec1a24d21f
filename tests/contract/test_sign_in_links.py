"""One-time sign-in links on every adapter: a link signs its user in once, within 15 minutes,
and is never a bearer token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from expense_core.errors import InactiveUser, Unauthenticated, UnknownUser
from expense_core.model import UserId
from expense_core.ports import UnitOfWork
from expense_core.services import (
    LINK_TTL,
    AccessService,
    AuditService,
    ChangeUser,
    OrgService,
    ReadAudit,
    RevokeToken,
    SignInLinks,
)
from tests.clocks import SettableClock
from tests.contract.support import Org

GRACE = 7


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def links(new_uow: Callable[[], UnitOfWork], clock: SettableClock) -> SignInLinks:
    return SignInLinks(new_uow, clock)


def test_a_link_signs_its_user_in_once(links: SignInLinks, org: Org) -> None:
    issued = links.issue(org.person(GRACE))

    assert links.holder(issued.code).id == org.person(GRACE)  # looking does not spend it
    assert links.redeem(issued.code).id == org.person(GRACE)
    with pytest.raises(Unauthenticated, match="used already"):
        links.redeem(issued.code)
    with pytest.raises(Unauthenticated, match="used already"):
        links.holder(issued.code)


def test_issuing_a_link_is_in_the_audit_log_without_its_secret(
    new_uow: Callable[[], UnitOfWork], links: SignInLinks, org: Org
) -> None:
    issued = links.issue(org.person(GRACE))
    token_id = issued.record.id
    log = AuditService(new_uow).page(
        ReadAudit(company_id=org.id, target_type="token", target_id=token_id)
    )
    assert [(e.action, e.actor_id, e.target_id) for e in log.items] == [
        ("token.issued", None, token_id)
    ]
    after = log.items[0].after
    assert after is not None
    assert after["name"] == "sign-in link"
    assert after["user_id"] == org.person(GRACE)
    assert issued.code.partition(".")[2] not in repr(log.items[0])


def test_a_link_lasts_15_minutes(links: SignInLinks, org: Org, clock: SettableClock) -> None:
    late, in_time = links.issue(org.person(GRACE)), links.issue(org.person(GRACE))

    assert (
        in_time.record.expires_at - in_time.record.created_at == LINK_TTL == timedelta(minutes=15)
    )
    clock.advance(LINK_TTL - timedelta(seconds=1))
    assert links.redeem(in_time.code).id == org.person(GRACE)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(Unauthenticated, match="expired"):
        links.redeem(late.code)


@pytest.mark.parametrize(
    "forged",
    ["", "nonsense", "0123456789abcdef.", "0123456789abcdef.secret", "et_0123456789abcdef_x"],
)
def test_a_malformed_or_unknown_code_signs_nobody_in(links: SignInLinks, forged: str) -> None:
    with pytest.raises(Unauthenticated):
        links.redeem(forged)


def test_a_link_is_not_a_bearer_token_and_a_wrong_secret_is_refused(
    links: SignInLinks, access: AccessService, org: Org
) -> None:
    issued = links.issue(org.person(GRACE))
    token_id, _, secret = issued.code.partition(".")

    with pytest.raises(Unauthenticated, match="unknown"):
        access.authenticate(f"et_{token_id}_{secret}")
    with pytest.raises(Unauthenticated, match="unknown"):
        links.redeem(f"{token_id}.{secret}x")
    assert links.redeem(issued.code).id == org.person(GRACE)


def test_a_revoked_link_or_an_inactive_user_signs_nobody_in(
    links: SignInLinks, access: AccessService, org: Org, org_service: OrgService
) -> None:
    revoked, left = links.issue(org.person(GRACE)), links.issue(org.person(GRACE))
    access.revoke(RevokeToken(token_id=revoked.record.id))
    org_service.change_user(ChangeUser(user_id=org.person(GRACE), active=False))

    with pytest.raises(Unauthenticated, match="used already"):
        links.redeem(revoked.code)
    with pytest.raises(Unauthenticated, match="inactive"):
        links.redeem(left.code)
    with pytest.raises(InactiveUser):
        links.issue(org.person(GRACE))
    with pytest.raises(UnknownUser):
        links.issue(UserId(2_000_000_000))


def test_spending_a_token_succeeds_once(
    new_uow: Callable[[], UnitOfWork], links: SignInLinks, org: Org, clock: SettableClock
) -> None:
    issued = links.issue(org.person(GRACE))
    with new_uow() as uow:
        first = uow.tokens.spend(issued.record.id, clock.now())
        again = uow.tokens.spend(issued.record.id, clock.now())
        uow.commit()
    with new_uow() as uow:
        later = uow.tokens.spend(issued.record.id, clock.now())

    assert (first, again, later) == (True, False, False)
