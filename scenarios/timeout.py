"""Per-job timeouts: a correct one on ``Deferred.addTimeout``, and two that get it wrong.

The promise: a job still running ``TIMEOUT_MS`` after it started is
cancelled then, and its caller fails with ``twisted.internet.defer.TimeoutError``.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

TIMEOUT_MS = 300
LIMIT = 2
#: How often the polling timeout looks at the clock.
TICK_MS = 10


class TimeoutPool:
    """At most ``limit`` jobs at once, each cancelled if it runs longer than ``timeout_ms``.

    The idiomatic way: ``DeferredSemaphore.run`` for the limit, and
    ``Deferred.addTimeout(T, clock)`` on the job's own Deferred once it
    starts, which cancels the job at T and turns the ``CancelledError`` into
    ``TimeoutError``. Cancelling the caller's Deferred cancels the waiting
    acquire or the running job.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT, timeout_ms: int = TIMEOUT_MS) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._sem.run(self._timed, job)

    def _timed(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(job).addTimeout(self.timeout, self.clock)


class TimeoutWrapper:
    """Wraps each job in ``Deferred.addTimeout``: no pool, no cancellation promised to callers.

    Tested against jobs whose own canceller raises (``menu={"canceller_raises": True}``)
    without taking on the cancellation checks (``cancellable=False``): when
    the timeout's ``cancel()`` meets a raising canceller the job keeps its
    slot in the trace, and the harness blames the job, not the wrapper.
    """

    def __init__(self, clock: IReactorTime, timeout_ms: int = TIMEOUT_MS) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(job).addTimeout(self.timeout, self.clock)


class OrphaningTimeout:
    """Fails the caller at the timeout but never cancels the job.

    BUG: the timeout is a ``callLater`` that errbacks the caller's Deferred
    with ``TimeoutError``, and a late result is dropped ("the caller already
    gave up"). The job itself is never cancelled: it keeps running, holding
    whatever it holds, long after its caller was told it timed out.
    Caught by: ``time.timeout``.
    """

    def __init__(self, clock: IReactorTime, timeout_ms: int = TIMEOUT_MS) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running = defer.maybeDeferred(job)
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: running.cancel())
        timer = self.clock.callLater(self.timeout, self._expire, caller)

        def done(result: Any) -> None:
            if timer.active():
                timer.cancel()
            if caller.called:
                return  # the caller already gave up: drop the late result
            if isinstance(result, Failure):
                caller.errback(result)
            else:
                caller.callback(result)

        running.addBoth(done)
        return caller

    @staticmethod
    def _expire(caller: defer.Deferred[Any]) -> None:
        if not caller.called:
            caller.errback(defer.TimeoutError("job timed out"))


class WallClockTimeout:
    """Times jobs out by polling a deadline read from ``seconds()``.

    BUG: each job gets a deadline ``now + T`` in integer milliseconds of
    ``clock.seconds()``, and a ``LoopingCall`` checks every 10 ms whether
    ``seconds()`` has passed it. ``seconds()`` is wall-clock time: when it
    jumps forward the job is cancelled early, when it jumps back the job runs
    on past its timeout. (Delays given to ``callLater`` or ``addTimeout`` are
    not affected by wall-clock jumps.) Caught by: ``time.timeout``.
    """

    def __init__(self, clock: IReactorTime, timeout_ms: int = TIMEOUT_MS) -> None:
        self.clock = clock
        self.timeout_ms = timeout_ms

    def _now_ms(self) -> int:
        return round(self.clock.seconds() * 1000)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running = defer.maybeDeferred(job)
        if running.called:
            return running
        deadline = self._now_ms() + self.timeout_ms
        timed_out = []

        def check() -> None:
            if self._now_ms() >= deadline:
                timed_out.append(True)
                running.cancel()

        poll = task.LoopingCall(check)
        poll.clock = self.clock
        poll.start(TICK_MS / 1000, now=False)

        def done(result: Any) -> Any:
            if poll.running:
                poll.stop()
            if timed_out and isinstance(result, Failure) and result.check(defer.CancelledError):
                return Failure(defer.TimeoutError("job timed out"))
            return result

        return running.addBoth(done)


timeout_pool = Target(
    build=TimeoutPool,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    description="DeferredSemaphore(2) whose jobs time out after 300ms with Deferred.addTimeout",
)

timeout_wrapper = Target(
    build=TimeoutWrapper,
    timeout_ms=TIMEOUT_MS,
    cancellable=False,  # callers never cancel: no cancellation checks...
    menu={"canceller_raises": True},  # ...but jobs whose own canceller raises are generated
    description="Deferred.addTimeout around each job, against jobs whose canceller raises",
)

orphaning_timeout = Target(
    build=OrphaningTimeout,
    timeout_ms=TIMEOUT_MS,
    description="callLater timeout that fails the caller but leaves the job running",
)

wallclock_timeout = Target(
    build=WallClockTimeout,
    timeout_ms=TIMEOUT_MS,
    description="timeout polling a seconds() deadline from a LoopingCall",
)

SCENARIOS = (
    Scenario(
        "scenarios.timeout:timeout_pool",
        "pass",
        "at most two jobs at once, each cancelled with TimeoutError 300ms after it starts",
        "Deferred.addTimeout",
    ),
    Scenario(
        "scenarios.timeout:timeout_wrapper",
        "pass",
        "each job cancelled with TimeoutError 300ms after it starts, some jobs' own cancellers raising",
        "Deferred.addTimeout",
    ),
    Scenario(
        "scenarios.timeout:orphaning_timeout",
        "time.timeout",
        "timeout errbacks the caller from a callLater but never cancels the job, which runs on",
        "callLater",
    ),
    Scenario(
        "scenarios.timeout:wallclock_timeout",
        "time.timeout",
        "deadline read from seconds() and polled: a wall-clock jump fires the timeout early or late",
        "LoopingCall",
    ),
)
