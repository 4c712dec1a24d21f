"""What the SQL adapter takes from SQLAlchemy beyond its everyday API (adapters/sql/internals.py)
still holds: each test names one assumption and fails with it when an upgrade changes it."""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, column, create_engine, event, select, table
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from adapters.sql import access, expenses, internals, org
from adapters.sql.internals import CompiledQuery
from adapters.sql.link import Query

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"
QUERIES = {
    f"{module.__name__}.{name}": value
    for module in (access, expenses, org)
    for name, value in vars(module).items()
    if isinstance(value, Query)
}


def _assumption(holds: bool, what: str) -> None:
    if not holds:
        version = importlib.metadata.version("sqlalchemy")
        pytest.fail(
            f"SQLAlchemy {version} changed what adapters/sql/internals.py relies on "
            f"(checked with {internals.CHECKED_WITH}): {what}"
        )


def _postgresql() -> Dialect:
    """psycopg's PostgreSQL dialect (building an engine connects to nothing)."""
    return create_engine("postgresql+psycopg://").dialect


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = create_engine(f"sqlite:///{tmp_path / 'pool.db'}", poolclass=QueuePool, pool_size=2)
    yield made
    made.dispose()


def test_the_installed_sqlalchemy_is_the_minor_version_checked_and_pinned() -> None:
    version = importlib.metadata.version("sqlalchemy")
    pins = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(p for p in pins if p.lower().startswith("sqlalchemy"))
    checked = internals.CHECKED_WITH
    assert version.startswith(f"{checked}."), (
        f"SQLAlchemy {version} is installed; adapters/sql/internals.py was checked with "
        f"{checked}.x: run tests/sql/test_internals.py, then update CHECKED_WITH and the pin"
    )
    assert f">={checked}" in pin, f"pyproject.toml pins {pin!r}, internals.py says {checked}"


def test_a_compiled_statement_gives_its_text_and_named_binds() -> None:
    things = table("things", column("id"), column("name"))
    statement = select(things.c.id).where(
        things.c.name == bindparam("name"), things.c.id > bindparam("low", 0)
    )
    compiled = CompiledQuery(statement, _postgresql())
    _assumption(
        "%(name)s" in compiled.sql and "%(low)s" in compiled.sql,
        f"the compiled text names its binds differently: {compiled.sql}",
    )
    _assumption(compiled.defaults == {"low": 0}, f"bind defaults read {compiled.defaults}")
    _assumption(compiled.params({"name": "x"}) == {"low": 0, "name": "x"}, "binds are not named")


def test_the_numbered_text_takes_each_named_bind_once_in_its_order() -> None:
    things = table("things", column("id"), column("name"))
    statement = select(things.c.id).where(
        things.c.name == bindparam("name"),
        things.c.id > bindparam("low", 0),
        things.c.name.like(bindparam("name")),
    )
    compiled = CompiledQuery(statement, _postgresql())
    _assumption(
        compiled.order == ("name", "low"),
        f"the numbered text orders its binds as {compiled.order}",
    )
    _assumption(
        compiled.raw_sql.count(b"$1") == 2 and b"$3" not in compiled.raw_sql,
        f"a bind used twice is not numbered once: {compiled.raw_sql!r}",
    )
    _assumption(
        compiled.ordered(compiled.params({"name": "x"})) == ("x", 0),
        "the values do not follow the placeholders",
    )


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_numbers_the_binds_it_names(name: str) -> None:
    compiled = CompiledQuery(QUERIES[name].statement, _postgresql())
    named = set(compiled.params(dict.fromkeys(compiled.order)))
    _assumption(
        set(compiled.order) == named,
        f"{name}: numbered {sorted(compiled.order)}, named {sorted(named)}",
    )


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_querys_rows_are_named_as_sqlalchemys_own_results(name: str) -> None:
    dialect = _postgresql()
    statement: Any = QUERIES[name].statement
    compiled = CompiledQuery(statement, dialect)
    # The compiler's own result map: what SQLAlchemy's rows are named after and typed by.
    result_map = statement.compile(dialect=dialect)._result_columns
    ours = list(compiled.row._fields) if compiled.row is not None else []
    _assumption(
        [c.keyname for c in result_map] == list(statement.exported_columns.keys()),
        f"{name}: exported_columns no longer names a result's columns as the result does",
    )
    _assumption(len(ours) == len(result_map), f"{name}: rows have {ours}")
    _assumption(
        [type(c.type) for c in result_map] == [type(c.type) for c in statement.exported_columns],
        f"{name}: exported_columns no longer types a result's columns as the result does",
    )


def test_the_before_cursor_execute_event_is_fired_by_hand(engine: Engine) -> None:
    seen: list[str] = []

    def record(_: Connection, __: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    with engine.connect() as conn:
        _assumption(not conn.dispatch.before_cursor_execute, "listeners are there unasked")
        event.listen(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        _assumption(bool(conn.dispatch.before_cursor_execute), "a listener is not seen")
        internals.before_cursor_execute(conn, None, "SELECT 1", {})
    _assumption(seen == ["SELECT 1"], f"the listener heard {seen}")


def test_invalidating_the_pool_replaces_every_connection_older_than_the_failure(
    engine: Engine,
) -> None:
    with engine.connect() as one, engine.connect() as two:
        # Held, so that a new connection cannot take an old one's id.
        before = [one.connection.driver_connection, two.connection.driver_connection]
    with engine.connect() as failed:
        internals.invalidate_pool(engine, failed, Exception("the server went away"))
        _assumption(failed.invalidated, "the failed connection is not invalidated")
    with engine.connect() as one, engine.connect() as two:
        after = [one.connection.driver_connection, two.connection.driver_connection]
        _assumption(one.exec_driver_sql("SELECT 1").scalar() == 1, "a new connection fails")
    _assumption(
        not {id(c) for c in before} & {id(c) for c in after},
        "connections older than the failure were checked out again",
    )


def test_a_driver_error_is_translated_as_sqlalchemy_translates_it(engine: Engine) -> None:
    dbapi = engine.dialect.loaded_dbapi
    error = internals.driver_error(
        dbapi.OperationalError("gone"), "SELECT 1", {}, engine.dialect, connection_invalidated=True
    )
    _assumption(isinstance(error, OperationalError), f"it became {type(error).__name__}")
    _assumption(
        isinstance(error, OperationalError) and error.connection_invalidated,
        "the disconnect is not marked",
    )
