"""What authenticating a bearer token costs the database: one read per request, outside any
transaction, and one UPDATE more at most once a minute per token, never a second read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from adapters.sql import SqlDatabase
from expense_core.services import AccessService
from expense_core.tokens import NOTE_USE_EVERY
from tests.clocks import SettableClock
from tests.contract.support import tech_corp
from tests.sql.support import opened
from tests.sql.test_round_trips import Recorder


@pytest.fixture
def db(database_url: str) -> Iterator[SqlDatabase]:
    with opened(database_url) as database:
        yield database


def test_a_request_reads_the_token_once_and_notes_its_use_once_a_minute(db: SqlDatabase) -> None:
    org = tech_corp(db.unit_of_work)
    clock = SettableClock()
    access = AccessService(db.unit_of_work, clock)
    token = access.issue_token(org.person(7))
    recorder = Recorder(db)

    def authenticate() -> tuple[list[str], list[bool]]:
        statements = recorder.run(lambda: access.authenticate(token))
        # SQLite's BEGIN IMMEDIATE opens the write's transaction; PostgreSQL's BEGIN is the
        # driver's own and is not seen here.
        kept = [
            (s, inside)
            for s, inside in zip(statements, recorder.in_transaction, strict=True)
            if s != "BEGIN IMMEDIATE"
        ]
        return [s.split()[0] for s, _ in kept], [inside for _, inside in kept]

    assert authenticate() == (["SELECT", "UPDATE"], [False, True])  # the first use
    for _ in range(3):
        clock.advance(NOTE_USE_EVERY / 4)
        assert authenticate() == (["SELECT"], [False])
    clock.advance(NOTE_USE_EVERY / 4)  # a minute after the use last noted
    assert authenticate() == (["SELECT", "UPDATE"], [False, True])
    clock.advance(timedelta(seconds=1))
    assert authenticate() == (["SELECT"], [False])
