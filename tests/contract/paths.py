"""The two paths to the expense use cases: `ExpenseService` called as a library does, and the
HTTP API's awaited one (`AwaitedExpenseService` on an `AwaitedExpenses` store), held to the same
contract tests; the same for a bearer token's check (`AwaitedAccess`).

`Awaited` looks like an `ExpenseService` whose submit, approve and status go through the
awaited path, on an event loop of its own in a thread of its own: callers on any thread wait
for the answer, as the API's requests do; what the awaited path hands back to
`ExpenseService` runs on the
loop's executor, as in the server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from litestar.concurrency import sync_to_thread

from entrypoints.ports import AwaitedStore
from expense_core.model import ExpenseId, Member
from expense_core.services import (
    AccessService,
    ApproveStep,
    AwaitedAccessService,
    AwaitedExpenseService,
    ExpenseService,
    SubmitExpense,
    Submitted,
)
from expense_core.views import ExpenseView
from expense_core.visibility import Viewer
from expense_core.workflow import Decision

T = TypeVar("T")


class _OwnLoop:
    """An event loop of its own in a thread of its own, with `store` opened on it: callers on
    any thread wait for what runs there, as the API's requests do."""

    def __init__(self, store: AwaitedStore | None) -> None:
        self._store = store
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        if store is not None:
            self._wait(store.open())

    def close(self) -> None:
        if self._store is not None:
            self._wait(self._store.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()


class Awaited(_OwnLoop):
    """An `ExpenseService` whose submit, approve and status are awaited on `store` (None: handed to
    the library, as on SQLite)."""

    def __init__(self, expenses: ExpenseService, store: AwaitedStore | None) -> None:
        self._expenses = expenses
        self._awaited = AwaitedExpenseService(expenses, store, sync_to_thread)
        super().__init__(store)

    def submit(self, cmd: SubmitExpense) -> Submitted:
        return self._wait(self._awaited.submit(cmd))

    def approve(self, cmd: ApproveStep) -> Decision:
        return self._wait(self._awaited.approve(cmd))

    def status(self, expense_id: ExpenseId, viewer: Viewer | None = None) -> ExpenseView:
        return self._wait(self._awaited.status(expense_id, viewer))

    def __getattr__(self, name: str) -> Any:
        # Every other use case, as the library has it.
        return getattr(self._expenses, name)


class AwaitedAccess(_OwnLoop):
    """An `AccessService` whose authenticate is awaited on `store` (None: handed to the library,
    as on SQLite)."""

    def __init__(self, access: AccessService, store: AwaitedStore | None) -> None:
        self._access = access
        self._awaited = AwaitedAccessService(access, store, sync_to_thread)
        super().__init__(store)

    def authenticate(self, token: str) -> Member:
        return self._wait(self._awaited.authenticate(token))

    def __getattr__(self, name: str) -> Any:
        # Every other use case, as the library has it.
        return getattr(self._access, name)
