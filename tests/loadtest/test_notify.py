"""`bench --notify`: when the outbox's backlog counts as flat."""

from __future__ import annotations

from typing import Any

from loadtest.notify import FLAT_AGE_S, growth, is_flat


def samples(backlogs: list[int], every_s: float = 2.0) -> list[dict[str, Any]]:
    return [
        {"t": i * every_s, "undispatched": b // 4, "undelivered": b - b // 4, "oldest_age_s": 0.5}
        for i, b in enumerate(backlogs)
    ]


def test_a_backlog_that_grows_has_its_growth_per_second() -> None:
    slope = growth(samples([100, 300, 500, 700]))
    assert slope is not None
    assert abs(slope - 100.0) < 1e-9


def test_a_worker_that_falls_behind_is_not_flat() -> None:
    assert not is_flat(growth(samples([100, 300, 500, 700])), 1.0, notices_per_s=400.0)


def test_a_backlog_that_comes_and_goes_is_flat() -> None:
    assert is_flat(growth(samples([0, 230, 10, 240, 5])), 0.4, notices_per_s=400.0)


def test_a_notice_left_waiting_long_is_not_flat() -> None:
    assert not is_flat(growth(samples([5, 5, 5])), FLAT_AGE_S + 1, notices_per_s=400.0)


def test_too_few_samples_leave_it_to_the_oldest_age() -> None:
    assert growth(samples([100])) is None
    assert is_flat(None, None, notices_per_s=0.0)
