"""The worker's SIGTERM and Ctrl-C, however many and whenever they come: a signal arriving
while the main thread holds the stop event's lock (setting it, or waiting on it, as the loop
does all the time) neither deadlocks nor breaks the loop, and the stop is still heard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Final

SIGNALLED_S: Final = 3.0
EXITED_WITHIN_S: Final = 60.0  # it takes 3-4 s

# Signals the process itself, as fast as it can, while its main thread sets, clears and waits
# on the stop event without pause; then once more with the event clear, which must set it.
PROGRAM: Final = textwrap.dedent(f"""
    import logging, os, signal, sys, threading, time
    from entrypoints.cli.worker import _stop_on_signals

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    stop = threading.Event()
    _stop_on_signals(stop)
    storming = threading.Event()
    storming.set()

    def storm():
        while storming.is_set():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.0001)

    threading.Thread(target=storm, daemon=True).start()
    rounds, until = 0, time.monotonic() + {SIGNALLED_S}
    while time.monotonic() < until:
        stop.set()
        stop.clear()
        stop.wait(0)
        rounds += 1
    storming.clear()
    time.sleep(0.5)  # the last of the storm heard
    stop.clear()
    print("--- then SIGINT", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    print("rounds", rounds, "stopped" if stop.wait(10) else "not stopped")
""")


def test_a_storm_of_stopping_signals_neither_deadlocks_the_loop_nor_goes_unheard() -> None:
    done = subprocess.run(  # noqa: S603 -- our own interpreter and program
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        timeout=EXITED_WITHIN_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rounds, heard = done.stdout.split()[1:3]
    assert int(rounds) > 0, done.stdout
    assert heard == "stopped", done.stdout + done.stderr[-3000:]
    after = done.stderr.split("--- then SIGINT")[1]
    assert "stopping after the attempts in flight (SIGINT)" in after, done.stderr[-3000:]
