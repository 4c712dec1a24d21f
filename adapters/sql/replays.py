"""Decisions kept for idempotent retries, as JSON text (`idempotency_keys.decision`).

A decision is written as its attrs fields, nested, and read back by the types its classes
declare, so a field added to `Decision`, `Expense`, `Approval` or `ExpenseEvent` is kept
without a change here (and one stored before a field existed reads back with its default).
Only the kinds of values the core's entities hold are known: attrs classes, tuples, optional
values, enums, ids (`NewType`s of int), decimals, aware datetimes, str, int and bool; anything
else fails loudly rather than coming back different.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import attrs

from expense_core.workflow import Decision


def dump_decision(decision: Decision) -> str:
    """The decision as JSON text."""
    return json.dumps(_plain(decision), separators=(",", ":"))


def load_decision(text: str) -> Decision:
    """The decision `dump_decision` wrote."""
    decision: Decision = _typed(Decision, json.loads(text))
    return decision


def _plain(value: Any) -> Any:
    kind: Any = type(value)
    if attrs.has(kind):
        return {name: _plain(getattr(value, name)) for name, _, _ in _fields(kind)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError(f"a naive datetime cannot be kept exactly: {value!r}")
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _typed(inner, value)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_typed(item, v) for v in value)
    supertype = getattr(hint, "__supertype__", None)  # a NewType: an id
    if supertype is not None:
        return hint(_typed(supertype, value))
    if isinstance(hint, type):
        if attrs.has(hint):
            fields = _fields(hint)
            return hint(
                **{alias: _typed(t, value[name]) for name, alias, t in fields if name in value}
            )
        if issubclass(hint, Enum):
            return hint(value)
        if hint is datetime:
            return datetime.fromisoformat(value)
        if hint is Decimal:
            return Decimal(value)
        if hint in (bool, int, str) and isinstance(value, hint):
            return value
    raise TypeError(f"cannot read {value!r} as {hint!r}")


@functools.cache
def _fields(cls: Any) -> tuple[tuple[str, str, Any], ...]:
    """Each field's name, its `__init__` argument and its declared type, resolved."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, f.alias, hints[f.name]) for f in attrs.fields(cls))
