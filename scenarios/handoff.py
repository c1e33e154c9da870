"""Pools that hand a freed slot to the next waiter on the next tick: a hard-to-hit window.

A hand-rolled pool often passes the slot of a finished job to the first
waiter through ``callLater(0, ...)`` rather than starting it from inside the
finished job's callback, so that a long run of quick jobs does not recurse
through the callback chain. Between the handoff and the waiter's start the
slot belongs to a waiter that has not started: a cancel of that waiter must
give the slot on. The window is narrow: on a punctual reactor the
``callLater(0)`` runs in the same instant, before anything else can happen;
only a reactor that wakes late for it (a loaded or stalled reactor:
``jitter_ms`` or ``step_ms`` here), or a cancel that comes as I/O between
two passes of the reactor (an operation's ``after_rounds``), leaves room
for a cancel to land in it.
Uniform random search finds it in tens to hundreds of examples.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario
from ._pool import Entry, Pool


class HandoffPool(Pool):
    """At most ``limit`` jobs at once, FIFO; a freed slot goes to the first waiter on the next tick.

    Cancelling a waiting job removes it; cancelling a running job cancels the
    job's own Deferred; cancelling a job that was handed a slot but has not
    started yet passes the slot on to the next waiter. The queue and submit
    are the shared pool skeleton's (``scenarios._pool.Pool``); a freed slot
    is handed on in ``_finished`` instead of ``_done``.
    """

    def __init__(self, clock: IReactorTime, limit: int = 2) -> None:
        super().__init__(clock, limit)  # ``active``: slots taken, by running jobs and jobs handed a slot
        self.handed: deque[Entry] = deque()  # handed a slot, to start in this order

    def _pump(self) -> None:
        """Start waiting jobs while a slot is free, but never ahead of a job already handed one (FIFO)."""
        while self.waiting and self.active < self.limit and not self.handed:
            self.active += 1
            self._start(self.waiting.popleft())

    def _start(self, entry: Entry) -> None:
        entry.running = defer.maybeDeferred(entry.job)
        entry.running.addBoth(self._finished)
        entry.running.chainDeferred(entry.caller)

    def _finished(self, result: Any) -> Any:
        self._hand_on()
        return result

    def _hand_on(self) -> None:
        """Give the slot just freed to the first waiter, on the next tick; or free it.

        Each tick starts the first job handed a slot, whichever tick fires
        first, so jobs start in the order they were handed slots even when
        the ticks fire late and out of order.
        """
        if self.waiting:
            entry = self.waiting.popleft()
            self.handed.append(entry)
            self.clock.callLater(0, self._resume)
        else:
            self.active -= 1

    def _resume(self) -> None:
        entry = self.handed.popleft()
        if entry.cancelled:
            self._hand_on()  # cancelled while handed the slot: pass it on
        else:
            self._start(entry)
        self._pump()

    def _cancel(self, entry: Entry) -> None:
        if entry in self.handed:
            entry.cancelled = True  # _resume passes the slot on
        else:
            super()._cancel(entry)


class LostHandoffPool(HandoffPool):
    """The same pool, but a job cancelled while handed a slot keeps the slot.

    BUG: ``_resume`` returns early for a cancelled waiter without passing the
    slot on, so the slot stays taken for ever. Each cancel landing between a
    handoff and the ``callLater(0)`` that starts the waiter loses a slot; the
    jobs queued behind wait for ever. The window opens only when the reactor
    wakes late for that ``callLater(0)``. Caught by: ``cancellation.releases``.
    """

    def _resume(self) -> None:
        entry = self.handed.popleft()
        if not entry.cancelled:
            self._start(entry)
        self._pump()


handoff_pool = Target(
    build=HandoffPool,
    limit=2,
    order="fifo",
    description="hand-rolled pool handing a freed slot to the next waiter through callLater(0)",
)

lost_handoff_pool = Target(
    build=LostHandoffPool,
    limit=2,
    order="fifo",
    description="callLater(0) slot handoff that keeps the slot of a waiter cancelled before it started",
)

SCENARIOS = (
    Scenario(
        "scenarios.handoff:handoff_pool",
        "pass",
        "two at a time, FIFO; a freed slot goes to the next waiter by callLater(0); a cancel in between passes it on",
        "callLater",
    ),
    Scenario(
        "scenarios.handoff:lost_handoff_pool",
        "cancellation.releases",
        "a waiter cancelled between the callLater(0) handoff and its start keeps the slot: reached only by a late timer",
        "callLater",
    ),
)
