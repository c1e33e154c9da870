"""Workers draining a ``DeferredQueue``.

``N`` workers each wait on ``queue.get()``, run the job they get, deliver its
result and wait again. ``DeferredQueue`` cannot take an item back out, so a
job cancelled while it waits stays queued as a tombstone: its caller fails
with ``CancelledError`` at once, and the worker that later gets it skips it
without running it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Menu, Target

from . import Scenario
from ._pool import Entry, deliver


class PoolStopped(Exception):
    """The workers were stopped before the job could run."""


class QueueWorkers:
    """``workers`` jobs at most at once, FIFO, fed through a ``DeferredQueue``.

    ``size`` bounds the backlog: a submit to a full queue fails at once with
    ``QueueOverflow`` (declared as a rejection). ``stop()`` stops the idle
    workers and fails what is still queued; running jobs deliver their result.
    (Its queue is Twisted's, not the pool skeleton's: it shares only the
    submission record and delivery of ``scenarios._pool``.)
    """

    #: Set by the subclass that forgets to skip cancelled entries (see below).
    skip_cancelled = True

    def __init__(self, clock: IReactorTime, workers: int, size: int | None = None) -> None:
        self.clock = clock
        self._queue: defer.DeferredQueue[Entry] = defer.DeferredQueue(size=size)
        self._gets: dict[int, defer.Deferred[Entry]] = {}
        self._stopped = False
        for worker in range(workers):
            self._next(worker)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self._stopped:
            return defer.fail(PoolStopped("submitted after stop()"))
        entry = Entry(job)
        entry.caller = defer.Deferred(lambda d: self._cancel(entry))
        try:
            self._queue.put(entry)
        except defer.QueueOverflow as exc:
            return defer.fail(exc)
        return entry.caller

    def stop(self) -> None:
        self._stopped = True
        gets, self._gets = list(self._gets.values()), {}
        for get in gets:
            get.cancel()  # idle workers stop waiting
        while self._queue.pending:
            entry = self._queue.pending.pop(0)
            if not entry.caller.called:
                entry.caller.errback(PoolStopped("workers stopped before the job ran"))

    def _cancel(self, entry: Entry) -> None:
        if entry.running is not None:
            entry.running.cancel()  # its CancelledError reaches the caller through _deliver
        else:
            entry.cancelled = True  # a tombstone: the worker that gets it skips it

    def _next(self, worker: int) -> None:
        if self._stopped:
            return
        get = self._queue.get()
        self._gets[worker] = get
        get.addCallback(self._run, worker)
        get.addErrback(lambda f: f.trap(defer.CancelledError))  # stop() cancelled the wait

    def _run(self, entry: Entry, worker: int) -> None:
        self._gets.pop(worker, None)
        if entry.cancelled and self.skip_cancelled:
            self._next(worker)
            return
        entry.running = defer.maybeDeferred(entry.job)
        entry.running.addBoth(self._deliver, entry, worker)

    def _deliver(self, result: Any, entry: Entry, worker: int) -> None:
        deliver(result, entry)
        self._next(worker)


class NoSkipQueueWorkers(QueueWorkers):
    """Queue workers that run a job even though its caller cancelled it while it waited.

    BUG: the canceller marks the queued entry as cancelled (``DeferredQueue``
    cannot remove it) and the caller duly fails with ``CancelledError``, but
    the worker that later gets the entry never looks at the mark and runs the
    job anyway: work nobody wants any more, done with a slot someone else
    waits for. Caught by: ``cancellation.no_start``.
    """

    skip_cancelled = False


queue_workers = Target(
    build=lambda clock: QueueWorkers(clock, workers=3),
    limit=3,
    order="fifo",
    description="three workers draining a DeferredQueue; cancelled waiting jobs are skipped tombstones",
)

bounded_queue_workers = Target(
    build=lambda clock: QueueWorkers(clock, workers=2, size=3),
    limit=2,
    order="fifo",
    rejects=(defer.QueueOverflow,),
    description="two workers on a DeferredQueue(size=3) that rejects submits when full",
)

no_skip_queue_workers = Target(
    build=lambda clock: NoSkipQueueWorkers(clock, workers=1),
    limit=1,
    order="fifo",
    # Jobs that take time, submitted close together: the bug needs a job cancelled while it waits.
    menu=Menu(job_kinds=("succeed", "fail"), max_ops=8, max_gap_ms=100),
    description="DeferredQueue workers that run a cancelled job when they get to it",
)

SCENARIOS = (
    Scenario(
        "scenarios.queue_workers:queue_workers",
        "pass",
        "three workers draining a DeferredQueue: FIFO, at most three at once, cancelled jobs skipped, stop()",
        "DeferredQueue",
    ),
    Scenario(
        "scenarios.queue_workers:bounded_queue_workers",
        "pass",
        "two workers on a DeferredQueue(size=3): a full queue rejects the submit with QueueOverflow",
        "DeferredQueue",
    ),
    Scenario(
        "scenarios.queue_workers:no_skip_queue_workers",
        "cancellation.no_start",
        "DeferredQueue workers that never check the cancelled mark and run a cancelled job anyway",
        "DeferredQueue",
    ),
)
