"""What the SQL adapter's tests share: a database opened for a while, and disposed of after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from adapters.sql import SqlDatabase


@contextlib.contextmanager
def opened(url: str, *, pool_size: int = 1) -> Iterator[SqlDatabase]:
    """The database at `url`, its pool's connections closed on the way out."""
    db = SqlDatabase.connect(url, pool_size=pool_size)
    try:
        yield db
    finally:
        db.dispose()
