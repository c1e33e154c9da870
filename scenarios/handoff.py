"""Pools that hand a freed slot to the next waiter on the next tick: a hard-to-hit window.

A hand-rolled pool often passes the slot of a finished job to the first
waiter through ``callLater(0, ...)`` rather than starting it from inside the
finished job's callback, so that a long run of quick jobs does not recurse
through the callback chain. Between the handoff and the waiter's start the
slot belongs to a waiter that has not started: a cancel of that waiter must
give the slot on. The window is narrow: on a punctual reactor the
``callLater(0)`` runs in the same instant, before anything else can happen;
only a late timer (a loaded reactor, ``jitter_ms`` here) leaves room for a
cancel to land in it. Uniform random search finds it in tens to hundreds of
examples.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Menu, Target

from . import Scenario


class HandoffPool:
    """At most ``limit`` jobs at once, FIFO; a freed slot goes to the first waiter on the next tick.

    Cancelling a waiting job removes it; cancelling a running job cancels the
    job's own Deferred; cancelling a job that was handed a slot but has not
    started yet passes the slot on to the next waiter.
    """

    def __init__(self, clock: IReactorTime, limit: int = 2) -> None:
        self.clock = clock
        self.limit = limit
        self.active = 0  # slots taken: running jobs and jobs handed a slot
        self.waiting: deque[_Entry] = deque()
        self.handed: deque[_Entry] = deque()  # handed a slot, to start in this order

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        entry = _Entry(job)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        self.waiting.append(entry)
        self._pump()
        return entry.caller

    def _pump(self) -> None:
        """Start waiting jobs while a slot is free, but never ahead of a job already handed one (FIFO)."""
        while self.waiting and self.active < self.limit and not self.handed:
            self.active += 1
            self._run(self.waiting.popleft())

    def _run(self, entry: _Entry) -> None:
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
            self._run(entry)
        self._pump()

    def _cancel(self, entry: _Entry) -> None:
        if entry in self.waiting:
            self.waiting.remove(entry)  # the caller's Deferred then fails with CancelledError
        elif entry.running is not None:
            entry.running.cancel()
        elif entry in self.handed:
            entry.cancelled = True  # _resume passes the slot on


class LostHandoffPool(HandoffPool):
    """The same pool, but a job cancelled while handed a slot keeps the slot.

    BUG: ``_resume`` returns early for a cancelled waiter without passing the
    slot on, so the slot stays taken for ever. Each cancel landing between a
    handoff and the ``callLater(0)`` that starts the waiter loses a slot; the
    jobs queued behind wait for ever. The window opens only when that
    ``callLater(0)`` fires late. Caught by: ``cancellation.releases``.
    """

    def _resume(self) -> None:
        entry = self.handed.popleft()
        if not entry.cancelled:
            self._run(entry)
        self._pump()


class Stopped(Exception):
    """The pool was stopped before the job could start."""


class StoppableHandoffPool(HandoffPool):
    """The handoff pool with ``stop()``: every job not yet started fails with ``Stopped``.

    That includes a job handed a slot whose ``callLater(0)`` has not fired:
    the pending handoffs are cancelled with it. Running jobs finish.
    """

    def __init__(self, clock: IReactorTime, limit: int = 2) -> None:
        super().__init__(clock, limit)
        self.stopped = False
        self.ticks: list[Any] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self.stopped:
            return defer.fail(Stopped("the pool is stopped"))
        return super().submit(job)

    def _hand_on(self) -> None:
        if self.stopped:
            self.active -= 1
            return
        super()._hand_on()
        self.ticks = [tick for tick in self.ticks if tick.active()]

    def _pump(self) -> None:
        if not self.stopped:
            super()._pump()

    def stop(self) -> None:
        self.stopped = True
        for tick in self.clock.getDelayedCalls():
            if tick.func == self._resume and tick.active():
                tick.cancel()
        self._fail_unstarted(self.handed)
        self._fail_unstarted(self.waiting)

    def _fail_unstarted(self, entries: deque[_Entry]) -> None:
        while entries:
            entry = entries.popleft()
            if entries is self.handed:
                self.active -= 1
            if not entry.cancelled:
                entry.caller.errback(Stopped("the pool stopped before the job started"))


class ForgetfulStopHandoffPool(StoppableHandoffPool):
    """The stoppable handoff pool, but ``stop()`` forgets the jobs handed a slot.

    BUG: ``stop()`` fails the waiting jobs and cancels the pending handoffs,
    but a job already handed a slot (its ``callLater(0)`` pending) is neither
    started nor failed: its caller never hears back. Only a stop landing
    while a handoff timer fires late reaches it.
    Caught by: ``completion.deadline``.
    """

    def stop(self) -> None:
        self.stopped = True
        for tick in self.clock.getDelayedCalls():
            if tick.func == self._resume and tick.active():
                tick.cancel()
        self._fail_unstarted(self.waiting)


class _Entry:
    """One submission: the job, the caller's Deferred, the job's own Deferred once it runs."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] | None = None
        self.running: defer.Deferred[Any] | None = None
        self.cancelled = False


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

#: Stops, and no cancels or failing jobs: a cancel or a failure before the stop would make the same
#: lost job break cancellation.releases or errors.poison first.
STOPPING = Menu(stops=True, cancels=False, job_kinds=("succeed", "immediate", "value", "hang"))

stoppable_handoff_pool = Target(
    build=StoppableHandoffPool,
    limit=2,
    order="fifo",
    menu=STOPPING,
    description="callLater(0) slot handoff pool whose stop() fails every job not started, handed ones too",
)

forgetful_stop_handoff_pool = Target(
    build=ForgetfulStopHandoffPool,
    limit=2,
    order="fifo",
    menu=STOPPING,
    description="callLater(0) slot handoff pool whose stop() forgets the jobs handed a slot",
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
    Scenario(
        "scenarios.handoff:stoppable_handoff_pool",
        "pass",
        "the handoff pool with stop(): every job not started fails with Stopped, one handed a slot too",
        "callLater",
    ),
    Scenario(
        "scenarios.handoff:forgetful_stop_handoff_pool",
        "completion.deadline",
        "stop() forgets a job handed a slot whose callLater(0) has not fired: its caller never hears back",
        "callLater",
    ),
)
