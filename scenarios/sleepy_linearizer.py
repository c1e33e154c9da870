"""A Linearizer that starts a granted waiter after ``sleep(0)``: a cancel can land between the grant and the start.

Modelled on Synapse's ``Linearizer``: at most ``LIMIT`` jobs at once, FIFO.
When a job ends, its slot is granted to the first waiter at once, but the
waiter's job starts only after a ``sleep(0)`` (``callLater(0)``), so that a
long run of quick jobs does not recurse through the callback chain. A
caller is then in one of three states: queued, granted a slot but asleep,
running; cancelling it must undo each. Synapse guards the sleep
(``except CancelledError: self._release_lock(key, entry)``): a cancel during
it gives the granted slot back.

The asleep state lasts no time on a punctual reactor, and nothing a caller
does can land in it there; a stalled reactor (``step_ms``) does not open it
either, since the ``sleep(0)`` runs in the same wake as the release. Only a
busy reactor that wakes a little late for the ``sleep(0)`` (``jitter_ms``)
lets a cancel, made in the instant of the release or just after, land in
between. Uniform random search needs tens to hundreds of examples.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario

LIMIT = 2


class _Caller:
    """One submission: the job, the caller's Deferred, the job's Deferred once started."""

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] | None = None
        self.running: defer.Deferred[Any] | None = None


class SleepyLinearizer:
    """At most ``LIMIT`` jobs, FIFO; a granted waiter starts after ``sleep(0)``.

    Granted waiters start in the order they were granted, whichever tick
    fires first. Cancelling a queued caller takes it out of the queue; one
    granted and asleep gives its slot to the next waiter; a running one
    cancels its job.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
        self.clock = clock
        self.limit = limit
        self.held = 0  # slots held: running jobs and granted waiters still asleep
        self.waiting: deque[_Caller] = deque()
        self.granted: deque[_Caller] = deque()  # granted a slot, asleep, to start in this order

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        call = _Caller(job)
        call.caller = defer.Deferred(lambda d: self._cancel(call))
        if self.held < self.limit and not self.granted and not self.waiting:
            self.held += 1
            self._start(call)
        else:
            self.waiting.append(call)
        return call.caller

    def _start(self, call: _Caller) -> None:
        assert call.caller is not None
        call.running = defer.maybeDeferred(call.job)
        call.running.addBoth(self._finished)
        call.running.chainDeferred(call.caller)

    def _finished(self, outcome: Any) -> Any:
        self._release()
        return outcome

    def _release(self) -> None:
        """Grant the freed slot to the first waiter, to start after a ``sleep(0)``; or free it."""
        if self.waiting:
            self.granted.append(self.waiting.popleft())
            self.clock.callLater(0, self._wake)
        else:
            self.held -= 1

    def _wake(self) -> None:
        if self.granted:
            self._start(self.granted.popleft())
        self._pump()

    def _pump(self) -> None:
        """Start queued callers while a slot is free and nobody granted one is still asleep (FIFO)."""
        while self.waiting and self.held < self.limit and not self.granted:
            self.held += 1
            self._start(self.waiting.popleft())

    def _cancel(self, call: _Caller) -> None:
        if call.running is not None:
            call.running.cancel()
        elif call in self.waiting:
            self.waiting.remove(call)  # the caller's Deferred then fails with CancelledError
        elif call in self.granted:
            self.granted.remove(call)
            self._cancelled_asleep()

    def _cancelled_asleep(self) -> None:
        self._release()  # the slot goes to the next waiter; this caller's wake tick starts that one, or none
        self._pump()


class UnguardedSleepLinearizer(SleepyLinearizer):
    """The same Linearizer without the guard around ``sleep(0)``.

    BUG: a cancel landing while a granted waiter sleeps takes it out and
    fails its caller, but the slot granted to it is never given back: one
    slot fewer for good, and the jobs queued behind wait for ever. The
    window opens only when the reactor wakes late for the ``sleep(0)``.
    Caught by: ``cancellation.releases``.
    """

    def _cancelled_asleep(self) -> None:
        pass  # BUG: Synapse's ``except CancelledError: self._release_lock(...)`` is missing


def _linearizer(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, limit=LIMIT, order="fifo", description=description)


sleepy_linearizer = _linearizer(
    SleepyLinearizer, "Linearizer(max_count=2): a granted waiter starts after sleep(0); a cancel in between gives the slot on"
)
unguarded_sleep_linearizer = _linearizer(
    UnguardedSleepLinearizer, "Linearizer(max_count=2) whose cancel during the post-grant sleep(0) keeps the granted slot"
)

SCENARIOS = (
    Scenario(
        "scenarios.sleepy_linearizer:sleepy_linearizer",
        "pass",
        "two at a time, FIFO; a granted waiter starts after sleep(0); a cancel during it releases the slot",
        "callLater",
    ),
    Scenario(
        "scenarios.sleepy_linearizer:unguarded_sleep_linearizer",
        "cancellation.releases",
        "a cancel in the instant of a release, between the grant and the sleep(0) start: the granted slot is lost",
        "callLater",
    ),
)
