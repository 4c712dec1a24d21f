"""What the entrypoints ask of a store beyond the core's ports: loading generated data in bulk.

`seed synthetic` fills a store with millions of rows for load tests. Through the units of work
that takes minutes for tens of thousands of expenses, so each adapter has a bulk path of its
own (COPY on PostgreSQL, batched INSERTs on SQLite, the dicts themselves in memory) behind
`BulkLoader`, and the container hands out the one for the configured database
(`Database.bulk_loader`): the seeder never asks which store it has.

The port lives here rather than in `expense_core/ports.py` because no use case loads in bulk:
it serves an operator's command, and the core keeps only what its services need. It speaks
core values, as the core's ports do, so adapters implement it without importing entrypoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from expense_core.identity import Identity
from expense_core.model import (
    ApprovalStep,
    Company,
    Expense,
    ExpenseEvent,
    HierarchyLevel,
    Policy,
    Team,
    User,
)
from expense_core.ports import AwaitedExpenses, AwaitedTokens

# The values a caller numbers itself: those it must refer to before they are stored.
Numbered = (
    type[Company]
    | type[Team]
    | type[HierarchyLevel]
    | type[User]
    | type[Policy]
    | type[ApprovalStep]
)
Done = Callable[[], None]


class BulkLoad(Protocol):
    """One load in progress: a single transaction that other writers wait for.

    A batch may be written later, on another thread: `done` is called once it is, and a failure
    to write it is raised by a later call or when the load ends.
    """

    def first_id(self, kind: Numbered) -> int:
        """The first id of `kind` this load may give: past every stored one. The caller numbers
        companies, teams, levels, users, policies and steps from there on, each id once."""
        ...

    def add_org(
        self,
        *,
        companies: Sequence[Company],
        teams: Sequence[Team],
        levels: Sequence[HierarchyLevel],
        users: Sequence[User],
        policies: Sequence[Policy],
        done: Done,
    ) -> None:
        """Store organisations as they are, ids included (policies with their steps); users
        after their managers.

        Raises:
            whatever writing an earlier batch raised.
        """
        ...

    def add_expenses(
        self, expenses: Iterable[tuple[Expense, Sequence[ExpenseEvent]]], *, done: Done
    ) -> None:
        """Store submitted expenses with their histories, numbered in order past every stored
        expense, as `ExpenseRepository.add` numbers one (the ids they carry are ignored).

        `expenses` is read once, in order, before the call returns: a generator lets each
        expense be written out as it is worked out, and forgotten.

        Raises:
            whatever writing an earlier batch raised.
        """
        ...


class BulkLoader(Protocol):
    """Loads generated data into one store, all of it or nothing."""

    def begin(self) -> AbstractContextManager[BulkLoad]:
        """Start a load. It commits when the block ends and keeps nothing if the block raises.

        Raises:
            on leaving the block, whatever writing or checking the data raised (a key that
            refers to nothing, an id or email taken); nothing is kept then either.
        """
        ...


class IdentityVerifier(Protocol):
    """Whom an identity provider's bearer token names (AUTH_MODE=oidc: `adapters.oidc`).

    Here rather than in the core's ports for the same reason as `BulkLoader`: no use case checks
    a token; the HTTP entrypoint does, and hands the identity to `SignOnService`.
    """

    def verify(self, token: str) -> Identity:
        """Raises: Unauthenticated (a token not to be trusted, with a code saying why) or
        Unavailable (the provider's keys cannot be had now)."""
        ...

    def close(self) -> None:
        """Let go of kept-open connections."""
        ...


@runtime_checkable  # Litestar checks what a dependency provides against its annotation
class SignInFlow(Protocol):
    """The pages' sign-in at OpenID Connect issuers: the authorization-code flow with PKCE
    (AUTH_MODE=oidc: `adapters.oidc.CodeFlow`). The browser's state, nonce and code verifier
    are the caller's to keep; this only speaks to the issuers."""

    @property
    def issuers(self) -> tuple[str, ...]:
        """The trusted issuers, as configured."""
        ...

    def authorization_url(self, issuer: str, *, state: str, nonce: str, code_verifier: str) -> str:
        """Where to send the browser to sign in at `issuer`.

        Raises: Unauthenticated (an issuer not trusted) or Unavailable (its discovery
        document cannot be had now)."""
        ...

    def identity(self, issuer: str, *, code: str, code_verifier: str, nonce: str) -> Identity:
        """Whom `issuer` vouches for in exchange for the code its sign-in brought back.

        Raises: Unauthenticated (a code refused, an ID token not to be trusted, with a code
        saying why) or Unavailable (the issuer cannot be reached)."""
        ...

    def close(self) -> None:
        """Let go of kept-open connections."""
        ...


class AwaitedStore(AwaitedExpenses, AwaitedTokens, Protocol):
    """`AwaitedExpenses` and `AwaitedTokens` whose connections are opened and closed on the
    serving event loop."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...
