"""A third set of Twisted's own scheduling code, each target declaring only what Twisted documents
(``twisted_prims`` and ``twisted_more`` hold the first two). Each correct target has a twin, a
subclass or glue that breaks one documented promise the way a user's code would, which the
harness must catch with the invariant named in ``tests/test_thirdparty_extra.py``.

``timer_service``: ``twisted.application.internet.TimerService(0.1, work)`` with its ``clock``
set to the harness's clock: "Every ``step`` seconds call the given function ... The service
starts the calls when it starts, and cancels them when it stops" (a ``LoopingCall`` started
with ``now=True``: a first call at once, then every 100 ms, never overlapping); a failed call
ends the loop and is logged (``_failed``: ``log.err``), not silent; ``stopService`` returns "a
Deferred which is fired when the currently running call (if any) is finished". Periodic,
``interval_ms=100``. Twin ``timer_service_restarting``: a subclass whose ``_failed`` restarts the
service to keep the timer alive, so the restarted loop's ``now=True`` call comes right after the
failed one (``time.early``).

``race_timeout``: ``defer.race([work, deferLater(clock, 0.3, ...)])`` as a per-job timeout:
race "select[s] the first available result ... and cancel[s] the rest", and is "a cancellable
Deferred". The job's failure is carried as a value so that it wins the race too (a failure in a
race waits for the others), and the timer winning is turned into ``TimeoutError``: the job is
cancelled and its caller fails 300 ms after it started (``timeout_ms=300``), and cancelling the
caller cancels the job (``cancellable``). Twin ``first_of_timeout``: the same with
``DeferredList([work, timer], fireOnOneCallback=True, consumeErrors=True)``, which fires with the
first result but cancels nothing: the job runs on past its timeout (``time.timeout``).

``coroutine_pool``: ``Deferred.fromCoroutine`` of a coroutine doing ``async with semaphore:
return await maybeDeferred(job)`` over a ``DeferredSemaphore(2)`` (the lock and semaphore are
"asynchronous context manager[s]"). Cancelling the Deferred of ``fromCoroutine`` cancels what
the coroutine awaits: the ``acquire`` (which leaves the waiting list) or the job's Deferred;
``CancelledError`` is then raised in the coroutine, the ``async with`` releases, and the caller
fails with it. ``limit=2``, ``order="fifo"``, cancellable. Twin
``coroutine_pool_swallowing_cancel``: a coroutine that catches ``CancelledError`` around its
work and returns None, as graceful shutdown code does: the cancelled caller gets a result
(``cancellation.fires``).

``looping_call_count``: ``LoopingCall.withCount(f).start(0.1)``: ``f`` gets "the number of calls
which should have occurred since it was last invoked" ("normally 1, but can be higher ... if
the reactor is blocked", or a Deferred of a previous call was not fired within an interval).
Periodic, ``interval_ms=100``, and target invariant ``counts_every_interval``: at each call the
counts handed so far add up to the interval boundaries (``start + k * 0.1`` by the clock's
``seconds()``, the time ``LoopingCall`` reads) passed since the start. Twin
``looping_call_count_ones``: a plain ``LoopingCall`` whose glue counts one per call, the usual
way to lose the intervals a stalled reactor skipped (``user.counts_every_interval``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from twisted.application.internet import TimerService
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.protocols import policies
from twisted.python.failure import Failure

from harness import InvariantFailed, JobRecord, Run, RunView, Target, format_ms

INTERVAL_MS = 100
TIMEOUT_MS = 300
IDLE_MS = 300
POOL_LIMIT = 2

# -- TimerService -----------------------------------------------------------------------------


class Timer:
    """``TimerService(0.1, work)`` on the harness's clock, set before ``startService``."""

    service_class: type[TimerService] = TimerService

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        self.service = self.service_class(INTERVAL_MS / 1000, work)
        self.service.clock = clock

    def start(self) -> None:
        self.service.startService()

    def stop(self) -> defer.Deferred[Any] | None:
        # The harness stops every subject at the end of a run, started or not (a schedule may
        # hold no start); ``stopService`` of a service never started raises AttributeError.
        if not self.service.running:
            return None
        return self.service.stopService()  # type: ignore[no-any-return]


class RestartingTimerService(TimerService):
    """Keeps the timer alive: a failed call is logged and the service started again (its new
    ``LoopingCall`` calls at once, right after the failure)."""

    def _failed(self, why: Failure) -> None:
        super()._failed(why)  # type: ignore[misc]
        if self.running:
            self.startService()


class RestartingTimer(Timer):
    service_class = RestartingTimerService


timer_service = Target(
    build=Timer,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    description="Twisted's TimerService(0.1): a call at start, then every 100ms; stopService waits for the call",
)

timer_service_restarting = Target(
    build=RestartingTimer,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    description="TimerService subclass restarting itself after a failed call: the next call comes at once",
)

# -- defer.race as a timeout ------------------------------------------------------------------


class _Failed:
    """A job's failure carried as a value, so that it wins the race like a result."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure


class _TimedOut:
    """What the timer of the race fires with."""


class RaceTimeout:
    """``race([work, timer])``: the first to finish wins and the other is cancelled."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def first(self, work: defer.Deferred[Any], timer: defer.Deferred[Any]) -> defer.Deferred[Any]:
        return defer.race([work, timer]).addCallback(lambda won: won[1])

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        work = defer.maybeDeferred(job).addErrback(_Failed)
        timer = task.deferLater(self.clock, TIMEOUT_MS / 1000, _TimedOut)

        def settle(value: Any) -> Any:
            if isinstance(value, _TimedOut):
                raise defer.TimeoutError(f"job timed out after {TIMEOUT_MS}ms")
            if isinstance(value, _Failed):
                return value.failure
            return value

        return self.first(work, timer).addCallback(settle)


class FirstOfTimeout(RaceTimeout):
    """The same with ``DeferredList(fireOnOneCallback=True)``: the first result, nothing cancelled."""

    def first(self, work: defer.Deferred[Any], timer: defer.Deferred[Any]) -> defer.Deferred[Any]:
        first = defer.DeferredList([work, timer], fireOnOneCallback=True, consumeErrors=True)
        return first.addCallback(lambda won: won[0])  # (result, index)


race_timeout = Target(
    build=RaceTimeout,
    timeout_ms=TIMEOUT_MS,
    description="Twisted's defer.race([job, deferLater(0.3)]) as a timeout: the loser is cancelled",
)

first_of_timeout = Target(
    build=FirstOfTimeout,
    timeout_ms=TIMEOUT_MS,
    description="DeferredList(fireOnOneCallback=True) as a timeout: the job is never cancelled",
)

# -- Deferred.fromCoroutine over async with DeferredSemaphore ----------------------------------


class CoroutinePool:
    """Each job in a coroutine under ``async with`` a ``DeferredSemaphore(2)``."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.semaphore = defer.DeferredSemaphore(POOL_LIMIT)

    async def run(self, job: Callable[[], Any]) -> Any:
        async with self.semaphore:
            return await defer.maybeDeferred(job)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return defer.Deferred.fromCoroutine(self.run(job))


class SwallowingCoroutinePool(CoroutinePool):
    """A cancelled job "just stops": the coroutine catches ``CancelledError`` and returns None."""

    async def run(self, job: Callable[[], Any]) -> Any:
        try:
            return await super().run(job)
        except defer.CancelledError:
            return None


coroutine_pool = Target(
    build=CoroutinePool,
    limit=POOL_LIMIT,
    order="fifo",
    description="Twisted's Deferred.fromCoroutine, async with DeferredSemaphore(2): limit 2, FIFO, cancellable",
)

coroutine_pool_swallowing_cancel = Target(
    build=SwallowingCoroutinePool,
    limit=POOL_LIMIT,
    order="fifo",
    description="the same, the coroutine catching CancelledError and returning None",
)

# -- LoopingCall.withCount ----------------------------------------------------------------------


class CountingLoop:
    """``LoopingCall.withCount(tick).start(0.1)``: ``tick(count)`` records the count, then works."""

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        self.clock = clock
        self.work = work
        self.started: float | None = None
        self.counts: list[tuple[float, int]] = []  # (seconds() at the call, count handed)
        self.loop = self.make_loop()
        self.loop.clock = clock

    def make_loop(self) -> task.LoopingCall:
        return task.LoopingCall.withCount(self.tick)

    def tick(self, count: int) -> Any:
        self.counts.append((self.clock.seconds(), count))
        return self.work()

    def start(self) -> defer.Deferred[Any]:
        self.started = self.clock.seconds()
        return self.loop.start(INTERVAL_MS / 1000, now=False)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()


class OnePerCallLoop(CountingLoop):
    """A plain ``LoopingCall``, counting one interval per call."""

    def make_loop(self) -> task.LoopingCall:
        return task.LoopingCall(lambda: self.tick(1))


def counts_every_interval(run: Run) -> None:
    """The counts handed so far add up, at every call, to the interval boundaries passed since
    the start by the clock ``LoopingCall`` reads (``seconds()``: jumps included)."""
    loop: CountingLoop = run.subject
    if loop.started is None:
        return
    total = 0
    calls = [index for index, _ in run.view.of_kind("job.start")]
    for n, (now, count) in enumerate(loop.counts):
        total += count
        passed = math.floor(round((now - loop.started) * 1_000_000) / (INTERVAL_MS * 1000))
        if total != passed:
            marks = (calls[n],) if n < len(calls) else ()
            raise InvariantFailed(
                f"call {n} at {format_ms(round((now - loop.started) * 1_000_000))} after the start (by seconds()) "
                f"was handed count {count}: the counts add up to {total}, but {passed} intervals of "
                f"{INTERVAL_MS}ms have passed", events=marks)


looping_call_count = Target(
    build=CountingLoop,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    invariants=(counts_every_interval,),
    description="Twisted's LoopingCall.withCount(f).start(0.1): f is handed the intervals passed since its last call",
)

looping_call_count_ones = Target(
    build=OnePerCallLoop,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    invariants=(counts_every_interval,),
    description="a plain LoopingCall counting one interval per call: skipped intervals are lost",
)

# -- policies.TimeoutMixin ------------------------------------------------------------------------


class ConnectionTimedOut(Exception):
    """The connection timed out (or was stopped) before the request came: refused."""


class IdleConnection(policies.TimeoutMixin):
    """A connection handling requests (jobs), timed out after ``IDLE_MS`` without traffic.

    ``callLater`` is the injected clock's (the mixin's hook "for test purpose"). A request
    arriving and a response going out both reset the timeout; ``timeoutConnection`` drops the
    connection: the requests in flight are cancelled and later ones refused. ``stop()`` is
    ``connectionLost``: ``setTimeout(None)``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.callLater = clock.callLater  # type: ignore[method-assign]
        self.open = True
        self.inflight: list[defer.Deferred[Any]] = []  # in arrival order (a set would cancel in address order)
        self.setTimeout(IDLE_MS / 1000)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        if not self.open:
            return defer.fail(ConnectionTimedOut("the connection is closed"))
        self.resetTimeout()
        work = defer.maybeDeferred(job)
        self.inflight.append(work)

        def responded(result: Any) -> Any:
            if work in self.inflight:
                self.inflight.remove(work)
            if self.open:
                self.responded()
            return result

        return work.addBoth(responded)

    def responded(self) -> None:
        self.resetTimeout()

    def timeoutConnection(self) -> None:
        self.open = False
        for work in list(self.inflight):
            work.cancel()

    def stop(self) -> None:
        self.open = False
        self.setTimeout(None)


class InputOnlyConnection(IdleConnection):
    """Resets the timeout on input only, as ``resetTimeout``'s docstring suggests for a protocol
    that only reads: a response going out is no traffic, so a slow request's connection times
    out 300 ms after the request came, though the last response went out later."""

    def responded(self) -> None:
        pass


def _timed_out(run: Run) -> tuple[int, int] | None:
    """When the mixin's timeout call ran (monotonic microseconds, trace index), from the
    subject's timers (``run.view.timers``) that call ``TimeoutMixin.__timedOut``."""
    return _timed_out_in(run.view)


def _timed_out_in(view: RunView) -> tuple[int, int] | None:
    fired = [t for t in view.timers_calling(policies.TimeoutMixin._TimeoutMixin__timedOut) if t.fired_us is not None]
    first = min(fired, key=lambda t: t.end_index or 0, default=None)
    return (first.end_us, first.end_index) if first is not None and first.end_index is not None else None


#: Traffic on the connection: a request coming in (its submission), a response going out (the
#: job's end; a cancel by its caller ends it too).
_TRAFFIC = frozenset({"submit", "job.finish", "job.fail", "job.cancel"})


def refused_only_once_timed_out(view: RunView, job: JobRecord, t_us: int) -> bool:
    """``rejects_only_while``: a request is refused only once the connection has timed out."""
    fired = _timed_out_in(view)
    return fired is not None and fired[0] <= t_us


def _never_ended(run: Run, event: Any) -> bool:
    """A ``job.cancel`` whose job's own canceller raised: its Deferred never fired, so the
    connection never saw a response (docs/reference/target.md, "Jobs that hold something")."""
    return bool(event.kind == "job.cancel" and run.view.jobs[event.job].attempts[event.attempt].canceller_raised)


def times_out_only_when_idle(run: Run) -> None:
    """``timeoutConnection`` runs only once ``IDLE_MS`` passed with no traffic while the
    connection was open, and no later than that plus the clock's lateness (unless ``stop()``
    came first)."""
    view = run.view
    fired = _timed_out(run)
    stop = next((index for index, _ in view.of_kind("stop")), len(view.events))
    closed = min(fired[1], stop) if fired is not None else stop
    traffic = [(event.t_us, index) for index, event in enumerate(view.events[:closed])
               if event.kind in _TRAFFIC and not _never_ended(run, event)]
    idle = IDLE_MS * 1000
    if fired is not None:
        last, index = traffic[-1] if traffic else (0, None)
        if fired[0] < last + idle:
            raise InvariantFailed(
                f"the connection timed out at {format_ms(fired[0])}, {format_ms(fired[0] - last)} after the last "
                f"traffic (at {format_ms(last)}); the timeout is {IDLE_MS}ms",
                events=(index, fired[1]) if index is not None else (fired[1],))
    times = [0] + [t for t, _ in traffic]
    stop_us = view.events[stop].t_us if stop < len(view.events) else None
    for t in times:
        due = t + idle + view.late_us
        if any(t < later <= due for later in times) or (stop_us is not None and stop_us <= due):
            continue
        if (fired is None or fired[0] > due) and due <= view.events[-1].t_us:
            raise InvariantFailed(f"no traffic after {format_ms(t)}, yet the connection had not timed out by {format_ms(due)}")
        break

idle_connection = Target(
    build=IdleConnection,
    rejects=(ConnectionTimedOut,),
    rejects_only_while=refused_only_once_timed_out,
    stop_cancels_timers=True,
    invariants=(times_out_only_when_idle,),
    description="Twisted's policies.TimeoutMixin, 300ms: times out only after 300ms without traffic",
)

idle_connection_input_only = Target(
    build=InputOnlyConnection,
    rejects=(ConnectionTimedOut,),
    rejects_only_while=refused_only_once_timed_out,
    stop_cancels_timers=True,
    invariants=(times_out_only_when_idle,),
    description="TimeoutMixin reset on requests only: a response going out does not count as traffic",
)
