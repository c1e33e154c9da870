"""Cancellation errors of the subject's own: subclasses, and a declared ``cancel_error``.

A cancelled Deferred must fail with ``CancelledError``, or with the type the
target declares in ``cancel_error``; a subclass is that type too (an
``except CancelledError`` catches it). The pools here tell their callers
*where* the job was when it was cancelled, with one subclass each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

LIMIT = 2


class CancelledWhileQueued(defer.CancelledError):
    """Cancelled before the job started."""


class CancelledWhileRunning(defer.CancelledError):
    """Cancelled while the job ran; the job was cancelled too."""


class Aborted(Exception):
    """The pool's own cancellation error (not a ``CancelledError``), declared as the target's ``cancel_error``."""


class AbortedWhileQueued(Aborted):
    """Aborted before the job started."""


class AbortedWhileRunning(Aborted):
    """Aborted while the job ran; the job was cancelled too."""


class WherePool:
    """``DeferredSemaphore.run``, with the ``CancelledError`` of a cancelled caller replaced by
    ``queued`` or ``running`` depending on whether the job had started."""

    queued: type[BaseException] = CancelledWhileQueued
    running: type[BaseException] = CancelledWhileRunning

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        started: list[bool] = []

        def run() -> Any:
            started.append(True)
            return job()

        def where(failure: Failure) -> Failure:
            if failure.check(defer.CancelledError) and not failure.check(self.queued, self.running):
                return Failure(self.translate(bool(started)))
            return failure

        return self._sem.run(run).addErrback(where)

    def translate(self, started: bool) -> BaseException:
        return (self.running if started else self.queued)("job cancelled")


class AbortPool(WherePool):
    """A ``WherePool`` whose cancelled callers fail with subclasses of its own ``Aborted``."""

    queued = AbortedWhileQueued
    running = AbortedWhileRunning


class HalfAbortPool(AbortPool):
    """An ``AbortPool`` that translates only the cancellation of a queued job.

    BUG: ``translate`` was written for the queue ("a job cancelled before it
    ran is aborted") and returns the plain ``CancelledError`` for a running
    job, so callers that catch the declared ``Aborted`` miss half the
    cancellations. Caught by: ``cancellation.fires``.
    """

    def translate(self, started: bool) -> BaseException:
        return defer.CancelledError("job cancelled") if started else AbortedWhileQueued("job cancelled")  # BUG


where_pool = Target(
    build=WherePool,
    limit=LIMIT,
    description="DeferredSemaphore(2) failing cancelled callers with subclasses of CancelledError",
)

abort_pool = Target(
    build=AbortPool,
    limit=LIMIT,
    cancel_error=Aborted,
    description="DeferredSemaphore(2) failing cancelled callers with subclasses of its declared Aborted",
)

half_abort_pool = Target(
    build=HalfAbortPool,
    limit=LIMIT,
    cancel_error=Aborted,
    description="DeferredSemaphore(2) declaring Aborted but failing cancelled running jobs with CancelledError",
)

SCENARIOS = (
    Scenario(
        "scenarios.abort:where_pool",
        "pass",
        "cancelled callers fail with CancelledWhileQueued or CancelledWhileRunning, subclasses of CancelledError",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.abort:abort_pool",
        "pass",
        "declares cancel_error=Aborted and fails cancelled callers with subclasses of it",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.abort:half_abort_pool",
        "cancellation.fires",
        "declares cancel_error=Aborted but a cancelled running job reaches its caller as CancelledError",
        "DeferredSemaphore",
    ),
)
