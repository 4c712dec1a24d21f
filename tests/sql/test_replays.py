"""A decision kept for idempotent retries comes back from its JSON exactly, every field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from adapters.sql.replays import dump_decision, load_decision
from expense_core.demo import install_demo
from expense_core.errors import DomainError
from expense_core.model import Approval, Expense, ExpenseEvent, PolicyId, UserId
from expense_core.services import (
    ApproveStep,
    ExpenseService,
    RejectExpense,
    SubmitExpense,
    WithdrawExpense,
)
from expense_core.workflow import Decision
from tests.clocks import TickingClock
from tests.contract.support import money

# Decisions on Grace's workstation (Frank, Eve, David), by anyone of the ladder's lower half.
MOVES = st.lists(
    st.tuples(
        st.sampled_from(["approve", "reject", "withdraw"]),
        st.sampled_from([4, 5, 6, 7]),
        st.sampled_from([None, "", "ok", 'quotes " and \\ and ünïcode', "x" * 2000]),
    ),
    min_size=1,
    max_size=6,
)


def _decisions(moves: list[tuple[str, int, str | None]]) -> list[Decision]:
    store = MemoryStore()
    install_demo(store.unit_of_work)
    expenses = ExpenseService(store.unit_of_work, TickingClock(step=timedelta(microseconds=7)))
    submitted = expenses.submit(
        SubmitExpense(
            user_id=UserId(7),
            policy_id=PolicyId(2),
            amount=money("4000.10"),
            description="workstation",
        )
    )
    made = []
    for kind, who, text in moves:
        expense_id, actor = submitted.expense.id, UserId(who)
        try:
            if kind == "approve":
                command = ApproveStep(expense_id=expense_id, user_id=actor, comments=text)
                made.append(expenses.approve(command))
            elif kind == "reject":
                rejection = RejectExpense(expense_id=expense_id, user_id=actor, reason=text)
                made.append(expenses.reject(rejection))
            else:
                made.append(
                    expenses.withdraw(WithdrawExpense(expense_id=expense_id, user_id=actor))
                )
        except DomainError:
            continue
    return made


@given(moves=MOVES)
def test_every_decision_comes_back_exactly(moves: list[tuple[str, int, str | None]]) -> None:
    for decision in _decisions(moves):
        for kept in (decision, attrs.evolve(decision, replayed=True)):
            assert load_decision(dump_decision(kept)) == kept


def test_every_field_is_written() -> None:
    (decision,) = _decisions([("reject", 6, "no")])
    written = json.loads(dump_decision(decision))

    assert set(written) == {f.name for f in attrs.fields(Decision)}
    assert set(written["expense"]) == {f.name for f in attrs.fields(Expense)}
    assert {f.name for f in attrs.fields(Approval)} == set(written["expense"]["approvals"][0])
    assert {f.name for f in attrs.fields(ExpenseEvent)} == set(written["events"][0])
    assert written["expense"]["amount"] == {"value": "4000.10"}


def test_a_field_missing_from_an_older_record_takes_its_default() -> None:
    (decision,) = _decisions([("approve", 6, "ok")])
    older = json.loads(dump_decision(decision))
    del older["replayed"]

    assert load_decision(json.dumps(older)) == decision


def test_what_cannot_come_back_exactly_is_refused() -> None:
    (decision,) = _decisions([("approve", 6, "ok")])
    naive = attrs.evolve(
        decision,
        expense=attrs.evolve(decision.expense, submitted_at=datetime(2025, 1, 1)),  # noqa: DTZ001 -- naive on purpose
    )
    with pytest.raises(TypeError, match="naive"):
        dump_decision(naive)
    written = json.loads(dump_decision(decision))
    written["expense"]["id"] = "1"
    with pytest.raises(TypeError, match="cannot read"):
        load_decision(json.dumps(written))
