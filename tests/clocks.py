"""The tests' clock: it moves a fixed step each time it is read, from a fixed instant."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

# Microseconds on purpose: every store must keep them.
START = datetime(2025, 8, 25, 10, 30, 0, 123456, tzinfo=UTC)


class TickingClock:
    """Each reading is `step` after the one before, the first `start`: with the default step,
    every instant is distinct. Safe to share between threads, where each reading takes its own
    tick (`itertools.count` hands them out atomically); `step=timedelta(0)` stops it."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self._start = start
        self._step = step
        self._ticks = itertools.count()

    def now(self) -> datetime:
        return self._start + next(self._ticks) * self._step


class MeddlingClock(TickingClock):
    """A ticking clock that runs `meddle` once, the `at`-th time it is read: a use case that
    reads the clock between its read and its write lets a test write in between."""

    def __init__(self, at: int, meddle: Callable[[], object]) -> None:
        super().__init__()
        self._reads = 0
        self._at = at
        self._meddle = meddle

    def now(self) -> datetime:
        self._reads += 1
        if self._reads == self._at:
            self._meddle()
        return super().now()


class SettableClock:
    """A clock that stands still at `at` until a test moves it (`advance`), for rules that turn
    on how much time has passed: a token's expiry, the minute between noted uses."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by
