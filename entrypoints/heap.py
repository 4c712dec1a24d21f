"""The cycle collector of a process that runs until it stops: a server's worker, the
notification worker."""

from __future__ import annotations

import gc
from typing import Final

# A serving process's first collection threshold: how many more container objects may be
# allocated than freed before the youngest generation is searched for cycles (Python's is 700).
GC_THRESHOLD: Final = 7_000


def settle_heap() -> None:
    """Tune the cycle collector for a process that will serve until it stops.

    Called once the app (or the notification worker) is built, in the process that runs it
    (never in a library user's).
    Everything alive then (modules, routes, schemas, the container: about 150,000 objects) is
    moved out of the collector's sight with `gc.freeze()`; it lives as long as the process, and
    every full collection used to walk it again: 70-90 ms each, every 1.5 s or so under load.
    A request frees what it made by reference counting (the mix makes no cyclic garbage), but
    50 requests in flight hold enough objects that the count of allocations passed 700 every
    17 requests or so, and each young collection walked them all again. Measured under
    `mix_demo.py` (50 users, one worker): collections took 3.2 s of 40 s of serving before,
    0.08 s after; server CPU per request fell 9% and 15% in two alternated pairs
    (docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)
