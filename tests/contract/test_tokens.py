"""The tokens' lifecycle on every adapter: issued for a time, listed without secrets, revoked,
refused once expired or revoked, and their last use noted at most once a minute."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from expense_core.errors import (
    AdminOnly,
    InactiveUser,
    InvalidInput,
    InvalidText,
    InvalidTokenTtl,
    TokenExpired,
    TokenRevoked,
    Unauthenticated,
    UnknownCompany,
    UnknownToken,
    UnknownUser,
)
from expense_core.model import Role, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import (
    AccessService,
    ChangeUser,
    IssueToken,
    ListTokens,
    OrgService,
    RevokeToken,
)
from expense_core.tokens import DEFAULT_TTL, NOTE_USE_EVERY, ApiToken, TokenId
from tests.clocks import SettableClock
from tests.contract.support import Org, tech_corp

ALICE, FRANK, GRACE = 1, 6, 7


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def admin_org(new_uow: Callable[[], UnitOfWork], org: Org) -> Org:
    """TechCorp with Alice (level 1) as its admin."""
    OrgService(new_uow).change_user(ChangeUser(user_id=org.person(ALICE), role=Role.ADMIN))
    return org


def _id_of(token: str) -> TokenId:
    return TokenId(token.split("_", 2)[1])


def _listed(access: AccessService, user_id: UserId) -> tuple[ApiToken, ...]:
    return access.tokens(ListTokens(user_id=user_id))


def test_an_issued_token_answers_its_record_once_with_its_secret(
    access: AccessService, clock: SettableClock, org: Org
) -> None:
    issued = access.issue(
        IssueToken(user_id=org.person(GRACE), ttl=timedelta(days=30), name="laptop")
    )

    record = issued.record
    assert issued.token.startswith(f"et_{record.id}_")
    assert (record.user_id, record.company_id, record.name) == (org.person(GRACE), org.id, "laptop")
    assert (record.created_at, record.expires_at) == (clock.at, clock.at + timedelta(days=30))
    assert (record.last_used_at, record.revoked_at) == (None, None)
    assert _listed(access, org.person(GRACE)) == (record,)
    assert access.authenticate(issued.token).id == org.person(GRACE)


def test_a_token_lives_90_days_unless_asked(access: AccessService, org: Org) -> None:
    record = access.issue(IssueToken(user_id=org.person(GRACE))).record

    assert record.expires_at - record.created_at == DEFAULT_TTL == timedelta(days=90)
    assert record.name is None


@pytest.mark.parametrize(
    "ttl", [timedelta(0), timedelta(minutes=59), timedelta(days=730, seconds=1), -DEFAULT_TTL]
)
def test_a_lifetime_outside_an_hour_to_two_years_is_refused(
    access: AccessService, org: Org, ttl: timedelta
) -> None:
    with pytest.raises(InvalidTokenTtl, match="a token lives from 1 hour to 730 days"):
        access.issue(IssueToken(user_id=org.person(GRACE), ttl=ttl))
    assert _listed(access, org.person(GRACE)) == ()


@pytest.mark.parametrize("ttl", [timedelta(hours=1), timedelta(days=730)])
def test_the_bounds_themselves_are_allowed(access: AccessService, org: Org, ttl: timedelta) -> None:
    record = access.issue(IssueToken(user_id=org.person(GRACE), ttl=ttl)).record
    assert record.expires_at - record.created_at == ttl


@pytest.mark.parametrize("name", ["", "   ", "n" * 101])
def test_a_name_is_1_to_100_characters(access: AccessService, org: Org, name: str) -> None:
    with pytest.raises(InvalidText):
        access.issue(IssueToken(user_id=org.person(GRACE), name=name))


def test_a_token_works_until_it_expires(
    access: AccessService, clock: SettableClock, org: Org
) -> None:
    token = access.issue_token(org.person(GRACE), ttl=timedelta(hours=1))

    clock.advance(timedelta(minutes=59, seconds=59))
    assert access.authenticate(token).id == org.person(GRACE)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(TokenExpired, match="the bearer token has expired"):
        access.authenticate(token)


def test_a_revoked_token_is_refused_at_once(access: AccessService, org: Org) -> None:
    token = access.issue_token(org.person(GRACE))
    assert access.authenticate(token).id == org.person(GRACE)

    access.revoke(RevokeToken(token_id=_id_of(token)))

    with pytest.raises(TokenRevoked, match="the bearer token was revoked"):
        access.authenticate(token)


def test_revoking_twice_keeps_the_first_time(
    access: AccessService, clock: SettableClock, org: Org
) -> None:
    token_id = _id_of(access.issue_token(org.person(GRACE)))
    first = access.revoke(RevokeToken(token_id=token_id))
    clock.advance(timedelta(hours=1))

    again = access.revoke(RevokeToken(token_id=token_id))

    assert first.revoked_at == again.revoked_at == clock.at - timedelta(hours=1)
    assert _listed(access, org.person(GRACE)) == (first,)


def test_a_revoked_token_that_also_expired_says_it_was_revoked(
    access: AccessService, clock: SettableClock, org: Org
) -> None:
    token = access.issue_token(org.person(GRACE), ttl=timedelta(hours=1))
    access.revoke(RevokeToken(token_id=_id_of(token)))
    clock.advance(timedelta(days=1))

    with pytest.raises(TokenRevoked):
        access.authenticate(token)


def test_an_unknown_token_or_a_wrong_secret_is_unknown(access: AccessService, org: Org) -> None:
    token = access.issue_token(org.person(GRACE))
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")

    for attempt in (forged, "et_0123456789abcdef_" + "s" * 43):
        with pytest.raises(Unauthenticated, match=r"^the bearer token is unknown$"):
            access.authenticate(attempt)


def test_the_last_use_is_noted_at_most_once_a_minute(
    access: AccessService, clock: SettableClock, org: Org
) -> None:
    token = access.issue_token(org.person(GRACE))
    issued_at = clock.at

    def last_used() -> object:
        [record] = _listed(access, org.person(GRACE))
        return record.last_used_at

    assert last_used() is None
    access.authenticate(token)
    assert last_used() == issued_at
    clock.advance(NOTE_USE_EVERY - timedelta(microseconds=1))
    access.authenticate(token)
    assert last_used() == issued_at
    clock.advance(timedelta(microseconds=1))
    access.authenticate(token)
    assert last_used() == issued_at + NOTE_USE_EVERY


def test_a_use_noted_meanwhile_by_a_twin_is_not_overwritten(
    new_uow: Callable[[], UnitOfWork], access: AccessService, clock: SettableClock, org: Org
) -> None:
    # Two requests both found the last use a minute old: the second's write finds the first's.
    token_id = _id_of(access.issue_token(org.person(GRACE)))
    first, second = clock.at + timedelta(seconds=2), clock.at + timedelta(seconds=1)
    with new_uow() as uow:
        uow.tokens.note_use(token_id, first, first - NOTE_USE_EVERY)
        uow.commit()
    with new_uow() as uow:
        uow.tokens.note_use(token_id, second, second - NOTE_USE_EVERY)
        uow.commit()
    with new_uow() as uow:
        assert uow.tokens.get(org.id, token_id).last_used_at == first


def test_tokens_are_listed_newest_first_without_secrets(
    access: AccessService, clock: SettableClock, org: Org
) -> None:
    issued = []
    for name in ("first", "second", "third"):
        issued.append(access.issue(IssueToken(user_id=org.person(GRACE), name=name)))
        clock.advance(timedelta(seconds=1))
    access.issue_token(org.person(FRANK))

    listed = _listed(access, org.person(GRACE))

    assert [t.name for t in listed] == ["third", "second", "first"]
    assert listed == tuple(i.record for i in reversed(issued))
    secrets = {i.token.split("_", 2)[2] for i in issued}
    assert not any(secret in repr(listed) for secret in secrets)


def test_an_admin_lists_the_company_and_anyone_else_their_own(
    access: AccessService, admin_org: Org, clock: SettableClock
) -> None:
    org = admin_org
    grace = access.issue(IssueToken(user_id=org.person(GRACE))).record
    clock.advance(timedelta(seconds=1))
    frank = access.issue(IssueToken(user_id=org.person(FRANK))).record
    other = tech_corp(access.new_uow)
    access.issue_token(other.person(GRACE))

    def listed(actor: int, user: int | None = None) -> tuple[ApiToken, ...]:
        return access.tokens(
            ListTokens(
                user_id=None if user is None else org.person(user),
                company_id=org.id,
                actor_id=org.person(actor),
            )
        )

    assert listed(ALICE) == (frank, grace)
    assert listed(ALICE, GRACE) == (grace,)
    assert listed(GRACE) == (grace,)
    assert listed(GRACE, GRACE) == (grace,)
    with pytest.raises(AdminOnly):
        listed(GRACE, FRANK)
    with pytest.raises(UnknownUser):
        access.tokens(
            ListTokens(user_id=other.person(GRACE), company_id=org.id, actor_id=org.person(ALICE))
        )
    assert access.tokens(ListTokens(company_id=org.id)) == (frank, grace)


def test_a_list_names_a_user_or_a_company(access: AccessService, org: Org) -> None:
    with pytest.raises(InvalidInput):
        access.tokens(ListTokens())
    with pytest.raises(UnknownCompany):
        access.tokens(ListTokens(company_id=org.id + 100_000))
    with pytest.raises(UnknownUser):
        access.tokens(ListTokens(user_id=UserId(2_000_000_000)))


def test_an_admin_issues_tokens_to_anyone_of_the_company_and_nobody_else_to_others(
    access: AccessService, admin_org: Org
) -> None:
    org = admin_org

    def issue(actor: int, user: UserId) -> ApiToken:
        return access.issue(
            IssueToken(user_id=user, actor_id=org.person(actor), company_id=org.id)
        ).record

    assert issue(ALICE, org.person(GRACE)).user_id == org.person(GRACE)
    assert issue(GRACE, org.person(GRACE)).user_id == org.person(GRACE)
    with pytest.raises(AdminOnly):
        issue(GRACE, org.person(FRANK))
    other = tech_corp(access.new_uow)
    with pytest.raises(UnknownUser):
        issue(ALICE, other.person(GRACE))
    OrgService(access.new_uow).change_user(ChangeUser(user_id=org.person(FRANK), active=False))
    with pytest.raises(InactiveUser):
        issue(ALICE, org.person(FRANK))


def test_the_owner_or_an_admin_revokes_and_nobody_else(
    access: AccessService, admin_org: Org
) -> None:
    org = admin_org
    tokens = [_id_of(access.issue_token(org.person(GRACE))) for _ in range(3)]

    def revoke(actor: int, token_id: str) -> ApiToken:
        return access.revoke(
            RevokeToken(token_id=token_id, actor_id=org.person(actor), company_id=org.id)
        )

    with pytest.raises(AdminOnly):
        revoke(FRANK, tokens[0])
    assert revoke(GRACE, tokens[0]).revoked_at is not None
    assert revoke(ALICE, tokens[1]).revoked_at is not None
    assert [t.revoked_at is None for t in _listed(access, org.person(GRACE))].count(True) == 1

    other = tech_corp(access.new_uow)
    elsewhere = _id_of(access.issue_token(other.person(GRACE)))
    for token_id in (elsewhere, "0123456789abcdef", "not-a-token-id", "ABCDEF0123456789"):
        with pytest.raises(UnknownToken):
            revoke(ALICE, token_id)
    # Without a company, an actor of another company meets the token as unknown too.
    with pytest.raises(UnknownToken):
        access.revoke(RevokeToken(token_id=elsewhere, actor_id=org.person(ALICE)))
    assert all(t.revoked_at is None for t in _listed(access, other.person(GRACE)))
