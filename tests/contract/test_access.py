"""IdempotencyRecords and ApiTokens, on their own and through the services."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from expense_core.errors import (
    IdempotencyKeyRace,
    IdempotencyKeyReused,
    TokenExpired,
    TokenRevoked,
    Unauthenticated,
)
from expense_core.model import ExpenseId, Member
from expense_core.ports import UnitOfWork
from expense_core.services import (
    AccessService,
    ExpenseService,
    RevokeToken,
    SubmitExpense,
    token_id_of,
)
from expense_core.tokens import TokenHolder, TokenId, new_token
from expense_core.visibility import Viewer
from tests.clocks import SettableClock
from tests.contract.support import Org, money


def _an_expense(expenses: ExpenseService, org: Org) -> ExpenseId:
    return expenses.submit(
        SubmitExpense(user_id=org.person(7), policy_id=org.small.id, amount=money("12.00"))
    ).expense.id


def test_an_idempotency_key_remembers_its_request(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _an_expense(expenses, org)
    grace, frank = org.person(7), org.person(6)
    with new_uow() as uow:
        assert uow.idempotency.recall(grace, "key-1") is None
        uow.idempotency.remember(grace, "key-1", "a" * 64, expense_id)
        uow.idempotency.remember(frank, "key-1", "b" * 64, expense_id)  # keys are per user
        uow.commit()
    with new_uow() as uow:
        assert uow.idempotency.recall(grace, "key-1") == ("a" * 64, expense_id)
        assert uow.idempotency.recall(frank, "key-1") == ("b" * 64, expense_id)
        assert uow.idempotency.recall(grace, "key-2") is None


def test_a_key_is_remembered_once(
    new_uow: Callable[[], UnitOfWork], expenses: ExpenseService, org: Org
) -> None:
    expense_id = _an_expense(expenses, org)
    with new_uow() as uow:
        uow.idempotency.remember(org.person(7), "once", "a" * 64, expense_id)
        uow.commit()
    with new_uow() as uow, pytest.raises(IdempotencyKeyRace):
        uow.idempotency.remember(org.person(7), "once", "c" * 64, expense_id)
    with new_uow() as uow:
        assert uow.idempotency.recall(org.person(7), "once") == ("a" * 64, expense_id)


def test_a_replayed_submission_stores_nothing_new(expenses: ExpenseService, org: Org) -> None:
    command = SubmitExpense(
        user_id=org.person(7),
        policy_id=org.large.id,
        amount=money("2500.00"),
        description="dock",
        idempotency_key="abc-123",
    )
    first = expenses.submit(command)
    again = expenses.submit(command)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.expense == first.expense
    assert again.approvers == first.approvers
    assert [s.id for s in expenses.list_expenses(Viewer.whole_company(org.id)).items] == [
        first.expense.id
    ]
    with pytest.raises(IdempotencyKeyReused):
        expenses.submit(
            SubmitExpense(
                user_id=org.person(7),
                policy_id=org.large.id,
                amount=money("2500.01"),
                description="dock",
                idempotency_key="abc-123",
            )
        )


def test_a_token_names_its_holder(new_uow: Callable[[], UnitOfWork], org: Org) -> None:
    token = new_token(
        TokenId(secrets.token_hex(8)),
        Member(org.people[6], org.levels[6]),
        datetime.now(UTC),
        timedelta(days=1),
        "ci",
    )
    with new_uow() as uow:
        uow.tokens.add(token, "d" * 64)
        uow.commit()
    with new_uow() as uow:
        found = uow.tokens.holder(token.id)
        assert found == TokenHolder(token, "d" * 64, Member(org.people[6], org.levels[6]))
        assert uow.tokens.holder(TokenId("fedcba9876543210")) is None


def test_issued_tokens_authenticate(access: AccessService, org: Org) -> None:
    token = access.issue_token(org.person(5))
    assert access.authenticate(token).id == org.person(5)
    with pytest.raises(Unauthenticated):
        access.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))


def test_a_page_session_holds_while_its_token_does(
    new_uow: Callable[[], UnitOfWork], org: Org
) -> None:
    clock = SettableClock()
    access = AccessService(new_uow, clock)
    token = access.issue_token(org.person(5), ttl=timedelta(hours=1))
    token_id = token_id_of(token)
    assert access.signed_in_with(token_id).id == org.person(5)

    clock.advance(timedelta(hours=1))
    with pytest.raises(TokenExpired):
        access.signed_in_with(token_id)
    revoked = token_id_of(access.issue_token(org.person(5)))
    access.revoke(RevokeToken(token_id=revoked))
    with pytest.raises(TokenRevoked):
        access.signed_in_with(revoked)
    with pytest.raises(Unauthenticated):
        access.signed_in_with(TokenId("fedcba9876543210"))
    with pytest.raises(Unauthenticated):
        token_id_of("et_short_secret")
