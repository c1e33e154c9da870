"""Pools that hand work over "on the next reactor turn" with ``callLater(0, ...)``.

Deferring work to the next turn is a common way to keep user code out of
``submit()`` and to avoid deep recursion. It has classic costs: calls due at
the same instant have no promised order (a real reactor keeps a heap),
whatever a scheduled call raises goes to the reactor, not to any caller, and
between "now" and "the next turn" the caller may already have cancelled.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Menu, Target

from . import Scenario
from ._pool import Entry, Pool


class NextTickAdmitPool(Pool):
    """A FIFO pool that admits each submission to its queue on the next reactor turn.

    ``submit`` schedules ``callLater(0, self._admit, entry)`` per job so that
    no job starts inside ``submit``. BUG: each job gets its own delayed call,
    and the order of the queue is whatever order those calls run in.
    ``task.Clock`` runs calls due together in insertion order; a real reactor
    promises nothing (its heap is not stable). Jobs submitted together are
    admitted, and started, out of order. Caught by: ``concurrency.fifo``
    (a lifo or shuffled tie-break, and a reactor that wakes after both
    submits). Otherwise the shared pool skeleton (``scenarios._pool.Pool``):
    the bug is in ``_enqueue``.
    """

    def _enqueue(self, entry: Entry) -> None:
        entry.call = self.clock.callLater(0, self._admit, entry)  # BUG: one delayed call per job

    def _admit(self, entry: Entry) -> None:
        entry.call = None
        super()._enqueue(entry)

    def _cancel(self, entry: Entry) -> None:
        if entry.call is not None and entry.call.active():
            entry.call.cancel()
        else:
            super()._cancel(entry)


class NextTickStartPool(Pool):
    """A pool that starts queued jobs from a ``callLater(0, self._pump)``.

    A job that raises at call is handled: its slot is released, its caller
    fails with the error, and the rest of the queue is pumped on the next
    turn. BUG: ``_pump`` then re-raises "so that the error shows in the
    reactor's log". The exception escapes a scheduled call into the reactor:
    under a real reactor it is logged as unhandled noise, under
    ``task.Clock.advance`` it blows up the caller's test. Caught by:
    ``errors.escaped``. Otherwise the shared pool skeleton
    (``scenarios._pool.Pool``), with ``_pump`` run on the next turn
    (``_enqueue`` and ``_done`` schedule it).
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        super().__init__(clock, limit)
        self._pump_call: IDelayedCall | None = None

    def _enqueue(self, entry: Entry) -> None:
        self.waiting.append(entry)
        self._schedule_pump()

    def _done(self, result: Any, entry: Entry) -> None:
        self.active -= 1
        self._deliver(result, entry)
        self._schedule_pump()

    def _schedule_pump(self) -> None:
        if self._pump_call is None:
            self._pump_call = self.clock.callLater(0, self._pump)

    def _pump(self) -> None:
        self._pump_call = None
        while self.waiting and self.active < self.limit:
            entry = self.waiting.popleft()
            self.active += 1
            try:
                result = entry.job()
            except Exception:
                self.active -= 1
                entry.caller.errback(Failure())
                self._schedule_pump()  # the rest of the queue on the next turn
                raise  # BUG: escapes into the reactor
            entry.running = result if isinstance(result, defer.Deferred) else defer.succeed(result)
            entry.running.addBoth(self._done, entry)


class NextTickDeliveryPool(Pool):
    """A pool that delivers each result on the next reactor turn.

    "Never run the caller's callbacks on the job's stack": when a job ends,
    the pool frees the slot at once and fires the caller from a
    ``callLater(0, ...)``. BUG: the caller may cancel in between. Cancelling a
    running job cancels the job's own Deferred, which only *schedules* the
    delivery, so Twisted fails the caller with ``CancelledError`` right away;
    the same happens when a cancel lands between a job's completion and the
    delivery. Either way the delivery then fires the caller a second time,
    and ``AlreadyCalledError`` goes off in the reactor. Caught by:
    ``completion.once``. Otherwise the shared pool skeleton
    (``scenarios._pool.Pool``): the bug is in ``_deliver``.
    """

    def _cancel(self, entry: Entry) -> None:
        if entry.running is None:
            self.waiting.remove(entry)
        elif not entry.running.called:
            entry.running.cancel()

    def _done(self, result: Any, entry: Entry) -> None:
        self.active -= 1
        self.clock.callLater(0, self._deliver, result, entry)
        self._pump()

    def _deliver(self, result: Any, entry: Entry) -> None:
        # BUG: no ``if entry.caller.called`` check; a cancelled caller has already fired.
        if isinstance(result, Failure):
            entry.caller.errback(result)
        else:
            entry.caller.callback(result)


next_tick_fifo = Target(
    build=lambda clock: NextTickAdmitPool(clock, limit=2),
    limit=2,
    order="fifo",
    # Bursts: short gaps, so that jobs are often submitted at the same instant.
    menu=Menu(max_gap_ms=50),
    description="FIFO pool that admits each job with its own callLater(0): order rests on tie-breaking",
)

next_tick_raises = Target(
    build=lambda clock: NextTickStartPool(clock, limit=2),
    limit=2,
    description="pool that starts jobs from callLater(0) and re-raises a job's exception into the reactor",
)

next_tick_delivery_pool = Target(
    build=lambda clock: NextTickDeliveryPool(clock, limit=2),
    limit=2,
    order="fifo",
    description="pool delivering results from callLater(0): a cancel in between makes it fire twice",
)

SCENARIOS = (
    Scenario(
        "scenarios.next_tick:next_tick_fifo",
        "concurrency.fifo",
        "FIFO pool admitting each job with its own callLater(0): jobs due together start in the reactor's order",
        "callLater",
    ),
    Scenario(
        "scenarios.next_tick:next_tick_raises",
        "errors.escaped",
        "pool starting jobs from callLater(0) that fails the caller, then re-raises the job's exception into the reactor",
        "callLater",
    ),
    Scenario(
        "scenarios.next_tick:next_tick_delivery_pool",
        "completion.once",
        "pool delivering results from callLater(0): a cancel before the delivery fires the caller first, then again",
        "callLater",
    ),
)
