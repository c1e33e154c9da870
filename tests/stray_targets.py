"""Targets that leave the process in a state the harness must survive: threads left running, patched clocks.

Importable as ``stray_targets:NAME`` (the tests directory is on ``sys.path``), also from a
subprocess run with this directory on ``PYTHONPATH``. Each is the correct semaphore pool
with one stray act at the third submission of a run.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from twisted.internet import defer

from harness import Target
from scenarios.pools import SemaphorePool

_stop = threading.Event()


class _Stray(SemaphorePool):
    AT = 3

    def __init__(self, clock: Any, limit: int = 2) -> None:
        super().__init__(clock, limit)
        self.submitted = 0

    def submit(self, job: Any) -> defer.Deferred[Any]:
        self.submitted += 1
        if self.submitted == self.AT:
            self.act()
        return super().submit(job)

    def act(self) -> None:
        raise NotImplementedError


class _LeavesThread(_Stray):
    """Starts a non-daemon thread that never ends on its own (only the tests' ``_stop`` ends it)."""

    def act(self) -> None:
        threading.Thread(target=_stop.wait, name="left-by-target").start()


class _FreezesMonotonic(_Stray):
    """Replaces the process's clocks with ones that stand still (or run backwards)."""

    def act(self) -> None:
        time.monotonic = lambda: 0.0
        time.perf_counter = lambda: 0.0
        time.time = lambda: 0.0


leaves_thread = Target(build=lambda clock: _LeavesThread(clock, limit=2), limit=2)
freezes_clocks = Target(build=lambda clock: _FreezesMonotonic(clock, limit=2), limit=2)
