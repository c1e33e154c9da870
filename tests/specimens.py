"""Small subjects for tests/test_trust_messages.py, one bug each, that make single violation messages fire.

The scenarios in ``scenarios/`` show each invariant on realistic code; these
are the smallest subjects that reach the messages no scenario reaches. Each
docstring says its bug; the correct subject each is compared with is named
in the test table.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python import log
from twisted.python.failure import Failure

from harness import Operation, Target

from scenarios.backoff_loop import ReconnectingClient, delay_ms
from scenarios._pool import Entry
from scenarios.priority import PriorityPool


class PoolFull(Exception):
    """The pool had no room for the job and refused it without running it."""


class PoolError(Exception):
    """The pool's own wrapper around a job's error."""


class JobTimedOut(Exception):
    """A target's own timeout error (declared as ``timeout_error``)."""


class LifoAmongEqualsPool(PriorityPool):
    """Priority first, but among equal priorities the newest job first.

    BUG: the heap key is ``(-priority, -seq)``: equal priorities are served
    last come first served, not in submission order.
    """

    def _enqueue(self, entry: Entry) -> None:
        heapq.heappush(self._heap, (-entry.priority, -next(self._seq), entry))  # BUG: -seq
        self._pump()


class BoundedPool:
    """At most ``limit`` jobs at once and ``room`` waiting; a job beyond that is refused with ``PoolFull``.

    ``raises=True`` is the bug: the refusal is raised from ``submit`` instead
    of returned as a failed Deferred, so a caller's errback chain never sees it.
    """

    def __init__(self, clock: IReactorTime, limit: int = 1, room: int = 1, raises: bool = False) -> None:
        self.clock = clock
        self.room = room
        self.raises = raises
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if len(self._sem.waiting) >= self.room and not self._sem.tokens:
            if self.raises:
                raise PoolFull("no room")  # BUG when raises: should be defer.fail(...)
            return defer.fail(PoolFull("no room"))
        return self._sem.run(job)


class CoalescingPool:
    """Runs one job at a time; a job submitted while one runs shares that job's result.

    BUG: coalescing is only right for identical requests; here every job
    submitted while another runs gets the other's result, and never runs.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._current: defer.Deferred[Any] | None = None
        self._sharers: list[defer.Deferred[Any]] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if self._current is not None:
            shared: defer.Deferred[Any] = defer.Deferred()
            self._sharers.append(shared)
            return shared  # BUG: this job never runs
        self._current = defer.maybeDeferred(job)
        return self._current.addBoth(self._share)

    def _share(self, result: Any) -> Any:
        sharers, self._sharers, self._current = self._sharers, [], None
        for d in sharers:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)
        return result


class WrappingPool:
    """``DeferredSemaphore.run`` that wraps a job's error in ``PoolError``.

    BUG: the caller gets ``PoolError`` instead of the job's own exception
    (and without declaring the wrapper anywhere).
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(2)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def wrap(failure: Failure) -> Failure:
            if failure.check(defer.CancelledError):
                return failure
            return Failure(PoolError(f"job failed: {failure.value!r}"))

        return self._sem.run(job).addErrback(wrap)


class ValidatingPool:
    """``DeferredSemaphore.run`` that checks each result.

    BUG: the check expects ``bytes`` while jobs return ``str``: every
    success is turned into a ``ValueError``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(2)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        def validate(result: Any) -> Any:
            if not isinstance(result, bytes):  # BUG
                raise ValueError(f"unexpected result {result!r}")
            return result

        return self._sem.run(job).addCallback(validate)


class CancelAtTimeout:
    """A per-job timeout written as ``callLater(T, running.cancel)``.

    ``error`` is what the caller gets at the timeout. BUG (with the default,
    ``None``): the job's ``CancelledError`` reaches the caller unconverted,
    where the timeout error was promised. With a type, the ``CancelledError``
    of a timeout is converted to it.
    """

    def __init__(self, clock: IReactorTime, timeout_ms: int = 300, error: type[Exception] | None = None) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000
        self.error = error

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        running = defer.maybeDeferred(job)
        if running.called:
            return running
        fired: list[bool] = []

        def expire() -> None:
            fired.append(True)
            running.cancel()

        timer = self.clock.callLater(self.timeout, expire)

        def done(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            if fired and self.error is not None and isinstance(result, Failure) and result.check(defer.CancelledError):
                return Failure(self.error("job timed out"))
            return result

        return running.addBoth(done)


class HedgedRetry:
    """Retries a job that has not answered within ``hedge_ms``, racing the two attempts.

    BUG: a retry may come only after the previous attempt failed; this one
    starts while the first attempt still runs (and ignores its result).
    """

    def __init__(self, clock: IReactorTime, hedge_ms: int = 50) -> None:
        self.clock = clock
        self.hedge = hedge_ms / 1000

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        first = defer.maybeDeferred(job)
        if first.called:
            return first
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: first.cancel())
        hedge = self.clock.callLater(self.hedge, lambda: defer.maybeDeferred(job).addErrback(lambda f: None))

        def done(result: Any) -> None:
            if hedge.active():
                hedge.cancel()
            if not caller.called:
                if isinstance(result, Failure):
                    caller.errback(result)
                else:
                    caller.callback(result)

        first.addBoth(done)
        return caller


class RetryUnlessTrue:
    """Retries a job until its result is ``True``, at most ``retries`` times.

    BUG: any result but ``True`` counts as a failure, so a job that
    succeeded with a value is run again.
    """

    def __init__(self, clock: IReactorTime, retries: int = 1) -> None:
        self.clock = clock
        self.retries = retries

    @defer.inlineCallbacks
    def submit(self, job: Callable[[], Any]) -> Any:
        result: Any = None
        for attempt in range(self.retries + 1):
            try:
                result = yield defer.maybeDeferred(job)
            except defer.CancelledError:
                raise
            except Exception:
                if attempt == self.retries:
                    raise
                continue
            if result is True:  # BUG: a successful result is not necessarily True
                return result
        return result



class _Stubborn(defer.Deferred):  # type: ignore[type-arg]
    """A Deferred whose ``cancel()`` does nothing."""

    def cancel(self) -> None:
        pass


class StubbornPool:
    """Runs every job at once; its Deferreds cannot be cancelled.

    BUG: ``cancel()`` is overridden to do nothing ("a job, once submitted,
    always completes"), so a cancelled caller later gets the job's result.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        caller = _Stubborn()
        defer.maybeDeferred(job).chainDeferred(caller)
        return caller


class SlowBackoffClient(ReconnectingClient):
    """A reconnecting client that waits three times its declared backoff.

    BUG: it waits ``3 * delay_ms(k)`` after the k-th failure, beyond the
    declared range: retries come too late.
    """

    def _failed(self, _: Any) -> None:
        self.failures += 1
        self._later(3 * delay_ms(self.failures))


class GivingUpClient(ReconnectingClient):
    """A reconnecting client that gives up after its second failure in a row, silently.

    BUG: no retry is scheduled and nothing reports the end (no failed
    Deferred, no ``report_end``): the loop dies in silence.
    """

    def _failed(self, failure: Any) -> None:
        if self.failures < 1:
            super()._failed(failure)


class MisSharing:
    """A single-flight subject (callers of one key join its running execution) with one wrong turn.

    ``mode`` picks the bug: ``"invent"`` hands joining callers a value of its
    own making; ``"cross"`` ignores the key, so callers of one key join
    another's execution; ``"swallow"`` gives joining callers None when the
    execution fails; ``"rewrap"`` fails them with ``RuntimeError`` instead of
    the execution's error; ``"spoil"`` fails them when the execution succeeds.
    """

    def __init__(self, clock: IReactorTime, mode: str) -> None:
        self.clock = clock
        self.mode = mode
        self._flights: dict[Any, list[defer.Deferred[Any]]] = {}

    def submit(self, job: Callable[[], Any], key: Any = 0) -> defer.Deferred[Any]:
        key = 0 if self.mode == "cross" else key
        if key in self._flights:
            if self.mode == "invent":
                return defer.succeed("made up")
            joined: defer.Deferred[Any] = defer.Deferred()
            self._flights[key].append(joined)
            return joined
        self._flights[key] = []
        return defer.maybeDeferred(job).addBoth(self._land, key)

    def _land(self, outcome: Any, key: Any) -> Any:
        for joined in self._flights.pop(key):
            failed = isinstance(outcome, Failure)
            if self.mode == "swallow" and failed:
                joined.callback(None)
            elif (self.mode == "rewrap" and failed) or (self.mode == "spoil" and not failed):
                joined.errback(RuntimeError("the shared call went wrong"))
            elif failed:
                joined.errback(outcome)
            else:
                joined.callback(outcome)
        return outcome


class LateDelayedCancel:
    """``cancellable="delayed"``: a caller cancelled while its job runs fails when the job ends, the job
    running on (``lag_ms`` later: the bug of ``delayed.late``)."""

    def __init__(self, clock, lag_ms: int = 0) -> None:
        self.clock, self.lag_ms = clock, lag_ms

    def submit(self, job) -> defer.Deferred:
        work = defer.maybeDeferred(job)

        def on_cancel(outer: defer.Deferred) -> None:
            outer.pause()
            outer.errback(defer.CancelledError())
            resume = (lambda _: self.clock.callLater(self.lag_ms / 1000, outer.unpause)) if self.lag_ms else (lambda _: outer.unpause())
            work.addBoth(resume)

        outer: defer.Deferred = defer.Deferred(on_cancel)
        work.addBoth(lambda r: None if outer.called else (outer.errback(r) if isinstance(r, Failure) else outer.callback(r)))
        return outer


class WaitTimeout:
    """A ``DeferredSemaphore(slots)`` whose acquire times out after ``timeout_ms`` (None: never; ``whole``:
    the timeout covers the whole call, job too)."""

    def __init__(self, clock, timeout_ms: int | None = 300, whole: bool = False, slots: int = 2) -> None:
        self.clock, self.timeout_ms, self.whole = clock, timeout_ms, whole
        self.sem = defer.DeferredSemaphore(slots)

    def submit(self, job) -> defer.Deferred:
        d = self.sem.acquire()
        if self.timeout_ms is not None and not self.whole:
            d.addTimeout(self.timeout_ms / 1000, self.clock)
        d.addCallback(lambda _: defer.maybeDeferred(job).addBoth(self._release))
        if self.timeout_ms is not None and self.whole:
            d.addTimeout(self.timeout_ms / 1000, self.clock)
        return d

    def _release(self, result):
        self.sem.release()
        return result



class PumpedDeadline:
    """Jobs wait in a queue that a pump empties every 400 ms; each caller is promised an answer within
    300 ms of its call.

    BUG: at the deadline the waiting caller fails with ``TimeoutError`` but its job stays queued: the
    pump starts it later, for nobody."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.queue: list[tuple[Callable[[], Any], defer.Deferred]] = []
        self.clock.callLater(0.4, self._pump)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        caller: defer.Deferred = defer.Deferred()
        self.queue.append((job, caller))
        self.clock.callLater(0.3, lambda: None if caller.called else caller.errback(defer.TimeoutError()))
        return caller

    def _pump(self) -> None:
        queue, self.queue = self.queue, []
        for job, caller in queue:
            defer.maybeDeferred(job).addBoth(lambda r, c=caller: None if c.called else c.callback(r))


class RetryAfterAnswer:
    """BUG: a failed job is retried 50 ms later, but its caller was already failed with the first error:
    the retry runs for nobody."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def submit(self, job: Callable[[], Any]) -> defer.Deferred:
        def retry(failure: Failure) -> Failure:
            self.clock.callLater(0.05, lambda: defer.maybeDeferred(job).addErrback(lambda _: None))
            return failure

        return defer.maybeDeferred(job).addErrback(retry)


class Hopping(ReconnectingClient):
    """Waits ``HOPS`` hops of ``HOP_MS`` after each call before arming its backoff (a drop or a cleanup
    deferred out of the call's stack by ``callLater(0)``): a correct loop. (The fault clock runs the
    zero-delay calls made in a late wake-up in that wake-up: only the first ``callLater(0)`` hop is late;
    hops of 1 ms are each late by their own draw.)"""

    HOPS = 1
    HOP_MS = 0

    def _later(self, ms: int, hops: int | None = None) -> None:
        left = self.HOPS if hops is None else hops
        if not self.running:
            return
        if left:
            self._next = self.clock.callLater(self.HOP_MS / 1000, self._later, ms, left - 1)
        else:
            super()._later(ms - self.HOPS * self.HOP_MS)  # the hops' own delays are part of the wait


class HopsThenGivesUp(Hopping):
    """Hops, then never arms the backoff after a success: dead in silence."""

    def _ended(self, _: Any) -> None:
        self.failures = 0
        self._next = self.clock.callLater(0, lambda: None)


class HopsForEver(Hopping):
    """After a success, re-arms its 100 ms timer for ever without calling the work (stuck)."""

    def _ended(self, _: Any) -> None:
        self.failures = 0
        self._spin()

    def _spin(self) -> None:
        if self.running:
            self._next = self.clock.callLater(0.1, self._spin)


class HopsThenSlowBackoff(Hopping):
    """Hops, then waits three times its declared backoff after a failure (time.backoff)."""

    def _failed(self, _: Any) -> None:
        self.failures += 1
        self._later(3 * 100 * 2 ** (self.failures - 1) + self.HOPS * self.HOP_MS)


# -- restarted keepalives (tests/test_loop_restarts.py) ------------------------------------------------


class Keepalive:
    """``RepeatedActionHandler`` in miniature: the timer is armed an interval after ``start()`` and
    before each call; ``restart`` is ``stop(); start()``."""

    DELAY = 0.1

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.timer: IDelayedCall | None = None
        self.work: Any = None
        self.in_flight: Any = None
        self.calls_work = True

    def start(self, work: Any) -> None:
        self.work = work
        self._arm(self.DELAY)

    def _arm(self, delay: float) -> None:
        self.timer = self.clock.callLater(delay, self._tick)

    def _tick(self) -> None:
        self._arm(self.DELAY)
        if self.calls_work:
            self.in_flight = self.work()
            self.in_flight.addErrback(self._ended)

    @staticmethod
    def _ended(failure: Failure) -> None:
        """A call ended on purpose (cancelled) is no error to log; any other failure is logged."""
        if not failure.check(defer.CancelledError):
            log.err(failure)

    def _disarm(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def restart(self) -> None:
        self._disarm()
        self._arm(self.DELAY)

    def skip(self) -> None:
        """End the call in flight (a partial stop, declared ``cancels_work``); the loop goes on."""
        if self.in_flight is not None:
            self.in_flight.cancel()

    def stop(self) -> None:
        self._disarm()


class Silent(Keepalive):
    """BUG: its ticks never call the work (a flag it forgot), from the ``start()`` on."""

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self.calls_work = False


class ForgetsToStart(Keepalive):
    """BUG: ``restart`` stops and never starts again: the loop is dead from the restart."""

    def restart(self) -> None:
        self._disarm()


class ArmsTheWrongTimer(Keepalive):
    """BUG: ``restart`` stops, then arms a timer of another function (that calls nothing) for the loop's."""

    def restart(self) -> None:
        self._disarm()
        self.timer = self.clock.callLater(self.DELAY, self._idle)

    def _idle(self) -> None:
        pass


class StuckAfterRestart(Keepalive):
    """BUG: ``restart`` re-arms, but leaves a flag set that its ticks read: they call nothing."""

    def restart(self) -> None:
        self.calls_work = False
        super().restart()


class SlowRestart(Keepalive):
    """BUG: ``restart`` re-arms ten intervals out (seconds taken for tenths): late past any allowance."""

    def restart(self) -> None:
        self._disarm()
        self._arm(self.DELAY * 10)


class ResetsOnRestart(Keepalive):
    """Correct: ``restart`` puts the pending tick off by ``DelayedCall.reset`` (``TimeoutMixin``'s way) rather
    than cancelling it and arming another; the same design as ``Keepalive``'s."""

    def restart(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.reset(self.DELAY)
        else:
            self._arm(self.DELAY)


class ResetsTooFar(ResetsOnRestart):
    """BUG: ``restart`` puts the pending tick off ten intervals (seconds taken for tenths) by ``reset``."""

    def restart(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.reset(self.DELAY * 10)


class StuckAfterReset(ResetsOnRestart):
    """BUG: ``restart`` puts the pending tick off by ``reset``, but leaves a flag set that its ticks read: they
    fire on, one interval after each restart, and call nothing (audit 13)."""

    def restart(self) -> None:
        self.calls_work = False
        super().restart()


class KillsOnSkip(Keepalive):
    """BUG: ``skip`` ends the call in flight and the loop with it, in silence."""

    def skip(self) -> None:
        super().skip()
        self._disarm()


def keepalive_target(cls: type[Keepalive]) -> Target:
    """A periodic target on ``cls`` (100 ms, overlapping calls allowed) with its ``restart`` and ``skip``
    (declared ``cancels_work``)."""
    return Target(build=cls, kind="periodic", interval_ms=100, overlap=True, operations={
        "restart": Operation(lambda s: s.restart()),
        "skip": Operation(lambda s: s.skip(), cancels_work=True),
    })
