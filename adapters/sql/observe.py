"""What the SQL adapter tells whoever watches it: its pool's connections, the waits for one, and
the statements that failed, by kind (the metrics, `entrypoints/metrics.py`).

The adapter knows nothing of how it is watched: an observer is anything with these methods,
handed to `SqlDatabase.observe`. Without one nothing is measured.
"""

from __future__ import annotations

from typing import Final, Protocol

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout


class SqlObserver(Protocol):
    """Hears what happens to a database's pool and statements."""

    def pool_sized(self, size: int) -> None:
        """The pool holds at most `size` connections (said once)."""
        ...

    def checked_out(self) -> None:
        """A unit of work took a connection from the pool."""
        ...

    def checked_in(self) -> None:
        """A connection went back to the pool."""
        ...

    def waited(self, seconds: float) -> None:
        """A unit of work found every connection in use and waited this long for one (until
        it got one, or gave up: then `failed("pool_timeout")` follows)."""
        ...

    def failed(self, kind: str) -> None:
        """A statement (or the checkout before it) failed; `kind` is one of `ERROR_KINDS`."""
        ...


ERROR_KINDS: Final = (
    "pool_timeout",  # no connection free within DB_POOL_TIMEOUT_MS
    "connection",  # the connection was lost or refused
    "statement_timeout",  # cancelled after DB_STATEMENT_TIMEOUT_MS, lock waits included
    "conflict",  # deadlock or serialization failure
    "locked",  # SQLite: the database stayed locked past its busy timeout
    "integrity",  # a constraint refused the write (most become domain errors)
    "other",
)
# PostgreSQL's SQLSTATE codes (and classes, by their first two characters) of each kind.
_BY_SQLSTATE: Final = {
    "57014": "statement_timeout",
    "55P03": "statement_timeout",  # lock_not_available (lock_timeout)
    "40P01": "conflict",
    "40001": "conflict",
}
_BY_CLASS: Final = {"08": "connection", "57": "connection", "23": "integrity"}


def error_kind(exc: SQLAlchemyError) -> str:
    """Which of `ERROR_KINDS` an error from SQLAlchemy or the driver is."""
    if isinstance(exc, PoolTimeout):
        return "pool_timeout"
    if isinstance(exc, IntegrityError):
        return "integrity"
    if isinstance(exc, DBAPIError):
        state = getattr(exc.orig, "sqlstate", None)
        if isinstance(state, str):
            kind = _BY_SQLSTATE.get(state) or _BY_CLASS.get(state[:2])
            if kind is not None:
                return kind
        if exc.connection_invalidated:
            return "connection"
        if "database is locked" in str(exc.orig):
            return "locked"
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        return "connection"
    return "other"
