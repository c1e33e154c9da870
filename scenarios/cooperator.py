"""Bounded parallelism with ``task.Cooperator``: N cooperative workers draining one queue.

The idiom: a ``Cooperator`` whose steps are scheduled on the injected clock,
and up to ``limit`` tasks coiterating over generators that each pop the next
job and yield its Deferred. A task pauses while the Deferred it yielded is
pending, so at most ``limit`` jobs run at once, and since every worker takes
the head of the same queue, jobs start in submission order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Menu, Target

from . import Scenario
from ._pool import Entry, Pool


class PoolStopped(Exception):
    """The pool was stopped before the job could run."""


def _one_step() -> bool:
    """Termination predicate: end each tick after one work unit (deterministic, unlike the default timer)."""
    return True


class CooperatorPool(Pool):
    """At most ``limit`` jobs at once, FIFO, driven by a ``task.Cooperator`` on the injected clock.

    Cancelling a waiting job takes it out of the queue; cancelling a running
    one cancels the job's own Deferred. ``stop()`` stops the cooperator and
    fails the jobs still queued; running jobs deliver their result. The
    queue, submit, cancel and delivery are the shared pool skeleton's
    (``scenarios._pool.Pool``); the cooperator's workers replace its pump.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        super().__init__(clock, limit)
        self._coop = task.Cooperator(
            terminationPredicateFactory=lambda: _one_step,
            scheduler=lambda tick: clock.callLater(0, tick),
        )
        self._workers = 0
        self._stopped = False

    def _refusal(self) -> Exception | None:
        return PoolStopped("submitted after stop()") if self._stopped else None

    def _enqueue(self, entry: Entry) -> None:
        self.waiting.append(entry)
        if self._workers < self.limit:
            self._workers += 1
            self._start_worker()

    def _start_worker(self) -> None:
        self._coop.coiterate(self._work()).addBoth(self._worker_exit)

    def stop(self) -> None:
        self._stopped = True
        self._coop.stop()
        while self.waiting:
            self.waiting.popleft().caller.errback(PoolStopped("pool stopped before the job ran"))

    def _work(self) -> Iterator[defer.Deferred[None]]:
        while self.waiting:
            entry = self.waiting.popleft()
            entry.running = defer.maybeDeferred(entry.job)
            # What a worker yields must not fail: a failing Deferred would end the task (the worker).
            yield entry.running.addBoth(self._deliver, entry)

    def _worker_exit(self, result: Any) -> None:
        self._workers -= 1
        return None


class DeadWorkerPool(CooperatorPool):
    """The same pool with the worker yielding the job's outcome as it is.

    ``task.Cooperator`` ends a task whose yielded Deferred fails. BUG: the
    worker yields (through ``_deliver``) a Deferred that still carries the job's failure (only a
    cancellation is turned into ``None``), so every failing job kills the
    worker that ran it; the pool notes the crash but still counts the dead
    worker, and once ``limit`` jobs have failed no worker is left to run
    anything. Caught by: ``errors.poison``.
    """

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        super().__init__(clock, limit)
        self.crashes: list[Failure] = []

    def _start_worker(self) -> None:
        self._coop.coiterate(self._work()).addCallbacks(self._worker_exit, self.crashes.append)

    def _deliver(self, result: Any, entry: Entry) -> Any:
        super()._deliver(result, entry)
        if isinstance(result, Failure) and result.check(defer.CancelledError):
            return None
        return result  # BUG: a failure here ends the worker's task


cooperator_pool = Target(
    build=lambda clock: CooperatorPool(clock, limit=2),
    limit=2,
    order="fifo",
    description="two cooperative workers (task.Cooperator on the clock) draining a FIFO queue",
)

dead_worker_pool = Target(
    build=lambda clock: DeadWorkerPool(clock, limit=2),
    limit=2,
    order="fifo",
    # No cancels: a job stranded in a run that also had a cancel is (plausibly, from the trace
    # alone) blamed on the cancel, as cancellation.releases.
    menu=Menu(cancels=False, stops=True),
    description="Cooperator workers that yield a failing Deferred and die; the pool does not replace them",
)

SCENARIOS = (
    Scenario(
        "scenarios.cooperator:cooperator_pool",
        "pass",
        "task.Cooperator with two coiterating workers over one queue: at most two jobs at once, FIFO, stop()",
        "Cooperator",
    ),
    Scenario(
        "scenarios.cooperator:dead_worker_pool",
        "errors.poison",
        "Cooperator workers yield the job's failing Deferred, which ends their task; dead workers are never replaced",
        "Cooperator",
    ),
)
