"""Users found by e-mail address apart from the case of ASCII letters (`members_by_email`), and
the sign-on use case on it, alike in every adapter."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from expense_core.errors import AmbiguousEmail, InactiveIdentity, NoUserWithEmail
from expense_core.identity import Identity, email_key
from expense_core.model import User, UserId
from expense_core.ports import UnitOfWork
from expense_core.services import SignOnService
from tests.contract.support import Org, tech_corp


def _add(new_uow: Callable[[], UnitOfWork], org: Org, email: str, *, active: bool = True) -> User:
    with new_uow() as uow:
        user = uow.org.add_user(
            User(
                id=UserId(0),
                company_id=org.id,
                team_id=org.team.id,
                email=email,
                name="Someone",
                hierarchy_level_id=org.levels[7].id,
                active=active,
            )
        )
        uow.commit()
    return user


def _by_email(new_uow: Callable[[], UnitOfWork], org: Org, email: str) -> list[UserId]:
    with new_uow() as uow:
        return [m.id for m in uow.org.members_by_email(org.id, email)]


def test_an_address_finds_its_user_whatever_the_case_of_its_ascii_letters(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    grace = org.people[7]  # grace@techcorp.example
    for asked in ("grace@techcorp.example", "Grace@TechCorp.Example", "GRACE@TECHCORP.EXAMPLE"):
        with new_uow() as uow:
            [found] = uow.org.members_by_email(org.id, asked)
        assert found.user == grace
        assert found.level == org.levels[7]


def test_only_the_same_address_in_the_same_company_is_found(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    other = tech_corp(new_uow)  # has a grace@techcorp.example of its own
    assert _by_email(new_uow, org, "grace@techcorp.example") == [org.person(7)]
    assert _by_email(new_uow, other, "grace@techcorp.example") == [other.person(7)]
    for near in ("grace@techcorp.exampl", "grace", "race@techcorp.example", "%@techcorp.example"):
        assert _by_email(new_uow, org, near) == []


def test_letters_beyond_ascii_are_compared_exactly(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    emile = _add(new_uow, org, "Émile@TechCorp.example")
    assert _by_email(new_uow, org, "Émile@techcorp.example") == [emile.id]
    assert _by_email(new_uow, org, "émile@techcorp.example") == []
    assert email_key("Émile@TechCorp.example") == "Émile@techcorp.example"


def test_addresses_differing_in_case_only_are_all_found_inactive_ones_too(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    first = _add(new_uow, org, "Sam@techcorp.example")
    second = _add(new_uow, org, "sam@techcorp.example", active=False)
    assert _by_email(new_uow, org, "SAM@techcorp.example") == [first.id, second.id]


def test_sign_on_names_the_active_user_with_the_address(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    sign_on = SignOnService(new_uow)
    identity = Identity(org.id, "Frank@techcorp.example", "https://idp.example")

    assert sign_on.member(identity).id == org.person(6)


def test_sign_on_refuses_an_unknown_an_ambiguous_or_an_inactive_user(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    sign_on = SignOnService(new_uow)
    identity = Identity(org.id, "nobody@techcorp.example", "https://idp.example")
    with pytest.raises(NoUserWithEmail):
        sign_on.member(identity)
    _add(new_uow, org, "Pat@techcorp.example")
    _add(new_uow, org, "pat@techcorp.example")
    with pytest.raises(AmbiguousEmail):
        sign_on.member(attrs.evolve(identity, email="pat@techcorp.example"))
    gone = _add(new_uow, org, "gone@techcorp.example", active=False)
    with pytest.raises(InactiveIdentity, match=f"user {gone.id}"):
        sign_on.member(attrs.evolve(identity, email="gone@techcorp.example"))
