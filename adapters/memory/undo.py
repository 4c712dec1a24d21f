"""How a memory unit of work undoes its writes: each write notes what it replaced."""

from __future__ import annotations

from typing import Any

# What an undo entry restores: a key that was missing, an item appended to a list (the one
# under the key, or the entry's table itself when the key is None), an item added to or
# removed from a set.
MISSING: Any = object()
APPENDED: Any = object()
ADDED: Any = object()
REMOVED: Any = object()

Undo = list[tuple[Any, Any, Any]]


def put(undo: Undo, table: dict[Any, Any], key: Any, value: Any) -> None:
    undo.append((table, key, table.get(key, MISSING)))
    table[key] = value


def drop(undo: Undo, table: dict[Any, Any], key: Any) -> None:
    """Delete a key that is there, to be put back on rollback."""
    undo.append((table, key, table[key]))
    del table[key]
