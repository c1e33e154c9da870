"""Load shedding next to a job timeout: a timeout error must mean the job really ran out of time.

Every subject here runs at most ``LIMIT`` jobs at once and cancels a job
still running ``TIMEOUT_MS`` after it started, failing its caller with
``twisted.internet.defer.TimeoutError``. A caller reading that error learns
"the job ran 300 ms": a job that never started, or waited only a little, must
fail with something else. The correct ``QueueDeadlinePool`` sheds jobs that
waited ``QUEUE_MS`` for a slot with its own ``QueueTimeout``, declared in
``rejects``; the two buggy ones mask failures as timeouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

LIMIT = 2
TIMEOUT_MS = 300
#: How long a job may wait for a slot before it is shed.
QUEUE_MS = 30


class QueueTimeout(Exception):
    """The job waited too long for a slot and was shed without running."""


class QueueDeadlinePool:
    """``DeferredSemaphore`` with a queue-wait limit and a per-job timeout, both on ``Deferred.addTimeout``.

    The acquire gets ``addTimeout(QUEUE_MS)``; when it fires, the waiter is
    cancelled (``DeferredSemaphore`` takes it out of its queue) and the caller
    fails with ``QueueTimeout``. A job that gets a slot runs under
    ``addTimeout(TIMEOUT_MS)``. Cancelling the caller cancels the waiter or
    the running job.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        waiting = self._sem.acquire()
        if not waiting.called:
            waiting.addTimeout(QUEUE_MS / 1000, self.clock, onTimeoutCancel=self._shed)
        return waiting.addCallback(self._run, job)

    @staticmethod
    def _shed(result: Any, timeout: float) -> Any:
        if isinstance(result, Failure) and result.check(defer.CancelledError):
            return Failure(QueueTimeout(f"no slot within {timeout}s"))
        return result

    def _run(self, _: Any, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running = defer.maybeDeferred(job).addTimeout(TIMEOUT_MS / 1000, self.clock)
        return running.addBoth(self._release)

    def _release(self, result: Any) -> Any:
        self._sem.release()
        return result


class TimeoutSheddingPool(QueueDeadlinePool):
    """The same pool with the queue-wait limit written as a plain ``addTimeout``.

    BUG: ``waiting.addTimeout(QUEUE_MS, clock)`` without ``onTimeoutCancel``
    fails a shed job with ``TimeoutError``, the very error that promises the
    job ran 300 ms: a caller cannot tell a job that never started, shed after
    30 ms in the queue, from one that ran out of time, and retries or alerts
    accordingly. Caught by: ``time.timeout``.
    """

    _shed = None  # BUG: addTimeout's default turns the shedding into TimeoutError


class ColdStartShedder(QueueDeadlinePool):
    """Sheds at submission a job that would not finish within the timeout anyway.

    It predicts when the job would finish (its place in the queue plus its
    own run, at the average run time of the jobs that finished) and fails it
    at once with ``TimeoutError`` if that is past ``TIMEOUT_MS``.
    BUG: a prediction is not a timeout, and with no history the average is
    "unknown, assume the worst", infinity: no job ever runs, so none ever
    teaches the average anything, and every job fails at once with
    ``TimeoutError``. Caught by: ``time.timeout``.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
        super().__init__(clock, limit)
        self.average_ms = math.inf
        self.queued = 0

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if (self.queued + 1) * self.average_ms > TIMEOUT_MS:
            return defer.fail(defer.TimeoutError("would not finish within the timeout"))  # BUG
        return super().submit(job)  # never reached: the average is learnt from jobs that ran


queue_deadline_pool = Target(
    build=QueueDeadlinePool,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    rejects=(QueueTimeout,),
    description="DeferredSemaphore(2): jobs shed with QueueTimeout after 30ms in the queue, timed out after 300ms",
)

timeout_shedding_pool = Target(
    build=TimeoutSheddingPool,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    description="DeferredSemaphore(2) shedding jobs that waited 30ms with the job timeout's TimeoutError",
)

cold_start_shedder = Target(
    build=ColdStartShedder,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    description="load shedder predicting run times from an average that starts at infinity",
)

SCENARIOS = (
    Scenario(
        "scenarios.shedding:queue_deadline_pool",
        "pass",
        "jobs waiting 30ms for a slot fail with QueueTimeout (declared in rejects); running jobs time out at 300ms",
        "Deferred.addTimeout",
    ),
    Scenario(
        "scenarios.shedding:timeout_shedding_pool",
        "time.timeout",
        "jobs shed after 30ms in the queue fail with TimeoutError, which promises they ran 300ms",
        "Deferred.addTimeout",
    ),
    Scenario(
        "scenarios.shedding:cold_start_shedder",
        "time.timeout",
        "predicts run times from an average that starts at infinity: every job fails at once with TimeoutError",
        "Deferred",
    ),
)
