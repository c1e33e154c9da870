"""Hand-rolled semaphores, each with one classic slot-accounting bug.

``DeferredSemaphore`` gets these right; code that rolls its own counter and
waiter list often does not. Both pools below run jobs ``limit`` at a time and
are otherwise careful (cancelling a running job cancels the job's own
Deferred, results and errors reach the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Menu, Target

from . import Scenario
from ._pool import Entry, Pool


class NoCancelSemaphore:
    """A counting semaphore whose ``acquire`` Deferred has no canceller.

    ``release`` hands the token to the first waiter by firing its Deferred.
    BUG: a waiter that was cancelled stays in the list (there is no canceller
    to take it out), and Twisted silently swallows the ``callback`` on a
    Deferred that was cancelled without a canceller: the token handed to it
    is lost. After enough cancelled waiters the pool runs nothing any more.
    (``DeferredSemaphore`` gives its acquire Deferreds a canceller that takes
    the waiter out of the list.) Caught by: ``cancellation.releases``.
    """

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.waiting: list[defer.Deferred[None]] = []

    def acquire(self) -> defer.Deferred[None]:
        if self.tokens > 0:
            self.tokens -= 1
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self.waiting.append(d)
        return d

    def release(self) -> None:
        if self.waiting:
            self.waiting.pop(0).callback(None)  # the token passes to the waiter... unless it was cancelled
        else:
            self.tokens += 1


class NoCancelSemaphorePool:
    """Runs jobs through ``NoCancelSemaphore`` the way ``DeferredSemaphore.run`` does."""

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self._sem = NoCancelSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def execute(_: None) -> defer.Deferred[Any]:
            return defer.maybeDeferred(job).addBoth(self._release)

        return self._sem.acquire().addCallback(execute)

    def _release(self, result: Any) -> Any:
        self._sem.release()
        return result


class FailureLeakPool(Pool):
    """A hand-rolled pool whose failure path forgets to give the slot back.

    The shared pool skeleton (``scenarios._pool.Pool``), except that a
    cancelled running job gives its slot back in the canceller (``_cancel``).
    BUG: ``_done`` passes a job's error to the caller but neither releases
    the slot nor starts the next job, so after ``limit`` failed jobs the pool
    is wedged and nothing submitted later runs. Caught by: ``errors.poison``.
    """

    def _cancel(self, entry: Entry) -> None:
        if entry.running is None:
            self.waiting.remove(entry)
            return
        if not entry.running.called:
            self.active -= 1  # a cancelled job frees its slot here; _done only reports the error
            entry.running.cancel()
            self._pump()

    def _done(self, result: Any, entry: Entry) -> None:
        if isinstance(result, Failure):
            self._deliver(result, entry)
            return  # BUG: no ``self.active -= 1`` and no ``self._pump()`` here.
        super()._done(result, entry)


cancel_leak_pool = Target(
    build=lambda clock: NoCancelSemaphorePool(clock, limit=1),
    limit=1,
    # Jobs that take time, submitted close together: the bug needs a job cancelled while it waits.
    menu=Menu(job_kinds=("succeed", "fail"), max_ops=8, max_gap_ms=100),
    description="hand-rolled semaphore without a canceller: a cancelled waiter swallows the token",
)

failure_leak_pool = Target(
    build=lambda clock: FailureLeakPool(clock, limit=2),
    limit=2,
    # No cancels: a job stranded in a run that also had a cancel is (plausibly, from the trace
    # alone) blamed on the cancel, as cancellation.releases.
    menu=Menu(cancels=False),
    description="hand-rolled pool whose failure path forgets to release the slot",
)

SCENARIOS = (
    Scenario(
        "scenarios.semaphore:cancel_leak_pool",
        "cancellation.releases",
        "hand-rolled semaphore whose acquire() has no canceller: the token handed to a cancelled waiter is lost",
        "Deferred",
    ),
    Scenario(
        "scenarios.semaphore:failure_leak_pool",
        "errors.poison",
        "hand-rolled pool whose failure path forgets to release the slot: after two failures nothing runs",
        "Deferred",
    ),
)
