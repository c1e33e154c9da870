"""Targets that leave the process in a state the harness must survive: threads left running, patched clocks.

Importable as ``stray_targets:NAME`` (the tests directory is on ``sys.path``), also from a
subprocess run with this directory on ``PYTHONPATH``. Each is the correct semaphore pool
with one stray act at the third submission of a run (``hostile_targets._Hostile``).
"""

from __future__ import annotations

import threading
import time

from harness import Target
from hostile_targets import _Hostile

_stop = threading.Event()


class _LeavesThread(_Hostile):
    """Starts a non-daemon thread that never ends on its own (only the tests' ``_stop`` ends it)."""

    def act(self) -> None:
        threading.Thread(target=_stop.wait, name="left-by-target").start()


class _FreezesMonotonic(_Hostile):
    """Replaces the process's clocks with ones that stand still (or run backwards)."""

    def act(self) -> None:
        time.monotonic = lambda: 0.0
        time.perf_counter = lambda: 0.0
        time.time = lambda: 0.0


leaves_thread = Target(build=lambda clock: _LeavesThread(clock, limit=2), limit=2)
freezes_clocks = Target(build=lambda clock: _FreezesMonotonic(clock, limit=2), limit=2)
