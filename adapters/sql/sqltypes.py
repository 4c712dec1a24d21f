"""Column types that keep the core's values exact across dialects: money and UTC timestamps.

Money is NUMERIC(12,2) on PostgreSQL and integer cents on SQLite, which has no exact decimal
type; timestamps are the seed's naive TIMESTAMP holding UTC, aware UTC datetimes in Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Integer, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from expense_core.model import CENT, Money


def is_sqlite(dialect: Dialect) -> bool:
    return dialect.name == "sqlite"


class MoneyType(TypeDecorator[Money]):
    """`Money` as DECIMAL(12,2), or as whole cents where decimals would turn into floats."""

    impl = Numeric(12, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if is_sqlite(dialect):
            return dialect.type_descriptor(Integer())
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))

    def process_bind_param(self, value: Money | None, dialect: Dialect) -> Decimal | int | None:
        if value is None:
            return None
        if is_sqlite(dialect):
            return int(value.value.scaleb(2))
        return value.value

    def process_result_value(self, value: object, dialect: Dialect) -> Money | None:
        if value is None:
            return None
        if isinstance(value, int):
            return Money.cents(value)
        if isinstance(value, Decimal):
            return Money(value.quantize(CENT))
        raise TypeError(f"a money column held {type(value).__name__} {value!r}")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime stored in a TIMESTAMP WITHOUT TIME ZONE column."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def naive_utc(value: datetime) -> datetime:
    """The naive UTC wall time of an aware datetime, as the seed's TIMESTAMP columns hold it.

    Raises:
        ValueError: a naive datetime, whose zone nobody knows.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC).replace(tzinfo=None)
