"""Helpers for the unit tests: the demo's names and hand-built members."""

from __future__ import annotations

from decimal import Decimal

import attrs

from adapters.memory import MemoryStore
from expense_core.model import (
    CompanyId,
    HierarchyLevel,
    LevelId,
    Member,
    Money,
    PolicyId,
    TeamId,
    User,
    UserId,
)

# The seed's TechCorp, as `install_demo` creates it on an empty store.
TECHCORP = CompanyId(1)
ALICE, BOB, CAROL, DAVID, EVE, FRANK, GRACE = (UserId(i) for i in range(1, 8))
SMALL_EQUIPMENT, LARGE_EQUIPMENT, BUSINESS_TRAVEL = PolicyId(1), PolicyId(2), PolicyId(3)
NAMES = {
    ALICE: "Alice Chen",
    BOB: "Bob Smith",
    CAROL: "Carol Johnson",
    DAVID: "David Wilson",
    EVE: "Eve Davis",
    FRANK: "Frank Miller",
    GRACE: "Grace Taylor",
}


def money(text: str) -> Money:
    return Money(Decimal(text))


def member(
    user_id: int,
    level: int,
    *,
    team: int = 1,
    company: int = 1,
    active: bool = True,
    manager: int | None = None,
    name: str | None = None,
) -> Member:
    """A user with their level; the level's id is derived from team and number, as one ladder."""
    return Member(
        User(
            id=UserId(user_id),
            company_id=CompanyId(company),
            team_id=TeamId(team),
            email=f"user{user_id}@example.com",
            name=name or f"User {user_id}",
            hierarchy_level_id=LevelId(team * 100 + level),
            active=active,
            manager_id=None if manager is None else UserId(manager),
        ),
        HierarchyLevel(
            LevelId(team * 100 + level), CompanyId(company), TeamId(team), level, f"L{level}"
        ),
    )


def deactivate(store: MemoryStore, user_id: UserId) -> None:
    """Mark a stored user inactive, as an administrator would when someone leaves."""
    with store.unit_of_work():
        users = store.tables.users
        users[user_id] = attrs.evolve(users[user_id], active=False)
        store.forget_ladders()
