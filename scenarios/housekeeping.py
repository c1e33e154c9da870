"""Periodic loops beside housekeeping timers: what the loop's own timers say once it failed.

The promise every subject here declares: the work (supplied by the harness)
is called every ``INTERVAL_MS``, never sooner and never while the previous
call runs, and an error in it is reported, never silently ending the loop.
Most subjects also keep other timers of their own, which go on whatever the
loop does: a stats ``LoopingCall`` flushing counters, a cache sweeper
re-arming itself. A loop that ends at an error and logs it (as
``TimerService`` documents) has reported its end even while those timers
tick on, and so has one that logs it from a one-shot ``callLater(0, ...)``;
a loop that swallows the error, or that logs each failure and keeps ticking
without calling its work again, has not, whatever the housekeeping does
(``time.loop_died``).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.application.internet import TimerService
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

INTERVAL_MS = 100
#: How often the stats loop flushes its counters (not a multiple of the interval: its ticks fall between).
STATS_MS = 250
#: How long a cached result lives, and how often the sweeper looks for expired ones.
CACHE_TTL_MS = 300
SWEEP_MS = 150

log = Logger()


class ServiceWithStats:
    """``TimerService(0.1, work)`` and a stats ``LoopingCall`` every 250 ms, started and stopped together.

    ``TimerService`` calls the work at once, then every interval (its
    ``LoopingCall`` waits for the call's Deferred); a failed call ends its
    loop and is logged (``TimerService._failed``), its documented report.
    The stats loop counts calls and flushes every 250 ms until ``stop()``:
    it ticks on after the work's loop ended, as such housekeeping does.
    """

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        self.work = work
        self.calls = self.flushed = 0
        self.service = TimerService(INTERVAL_MS / 1000, self._counted)
        self.service.clock = clock
        self.stats = task.LoopingCall(self._flush)
        self.stats.clock = clock

    def _counted(self) -> Any:
        self.calls += 1
        return self.work()

    def _flush(self) -> None:
        self.flushed = self.calls

    def start(self) -> None:
        self.service.startService()
        self.stats.start(STATS_MS / 1000, now=False)

    def stop(self) -> defer.Deferred[Any] | None:
        if self.stats.running:
            self.stats.stop()
        if not self.service.running:
            return None  # never started (a schedule without a start)
        return self.service.stopService()  # type: ignore[no-any-return]


class CachingPoller:
    """A ``callLater`` poller caching each result for 300 ms, swept by a timer of its own every 150 ms.

    Each tick calls the work and, once its Deferred fired, sets the next
    tick an interval later: calls never overlap. A result goes into the
    cache with an expiry time; a sweeper timer, re-armed every 150 ms from
    ``start()`` until ``stop()``, drops expired entries. A failed call ends
    the polling: the failure is reported in a ``callLater(0, ...)`` (out of
    the failed call's stack, as much Twisted code does) that logs it, and no
    tick is set again. ``stop()`` cancels the tick and the sweeper.
    """

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        self.clock = clock
        self.work = work
        self.cache: dict[int, tuple[float, Any]] = {}
        self.polls = 0
        self._tick_call: IDelayedCall | None = None
        self._sweep_call: IDelayedCall | None = None
        self._running = False

    def start(self) -> None:
        self._running = True
        self._tick_call = self.clock.callLater(INTERVAL_MS / 1000, self._tick)
        self._sweep_call = self.clock.callLater(SWEEP_MS / 1000, self._sweep)

    def _tick(self) -> None:
        self._tick_call = None
        n = self.polls
        self.polls += 1
        defer.maybeDeferred(self.work).addCallbacks(self._polled, self._failed, callbackArgs=(n,))

    def _polled(self, result: Any, n: int) -> None:
        self.cache[n] = (self.clock.seconds() + CACHE_TTL_MS / 1000, result)
        self._next()

    def _next(self) -> None:
        if self._running:
            self._tick_call = self.clock.callLater(INTERVAL_MS / 1000, self._tick)

    def _failed(self, failure: Failure) -> None:
        self.clock.callLater(0, self._report, failure)

    def _report(self, failure: Failure) -> None:
        log.failure("poll failed; polling ends", failure, level=LogLevel.error)

    def _sweep(self) -> None:
        now = self.clock.seconds()
        self.cache = {n: entry for n, entry in self.cache.items() if entry[0] > now}
        self._sweep_call = self.clock.callLater(SWEEP_MS / 1000, self._sweep) if self._running else None

    def stop(self) -> None:
        self._running = False
        for call in (self._tick_call, self._sweep_call):
            if call is not None and call.active():
                call.cancel()


class ReportingPoller(CachingPoller):
    """The caching poller without its sweeper: a failed call is logged from a ``callLater(0, ...)``, and polling ends.

    The one timer the loop sets after the failed call is that report, a
    one-shot: it fires, logs, and sets nothing. The loop went quiet with
    its report.
    """

    def start(self) -> None:
        self._running = True
        self._tick_call = self.clock.callLater(INTERVAL_MS / 1000, self._tick)


class SwallowingServiceWithStats(ServiceWithStats):
    """The service with stats, its loop a bare ``LoopingCall`` whose failure is swallowed.

    BUG: the work's ``LoopingCall`` is started with
    ``.addErrback(lambda f: None)`` to keep errors out of the logs: at the
    first failed call the loop ends and nothing says so. The stats loop
    ticks on, which says nothing about the work's loop.
    Caught by: ``time.loop_died``.
    """

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        super().__init__(clock, work)
        self.loop = task.LoopingCall(self._counted)
        self.loop.clock = clock

    def start(self) -> None:
        self.loop.start(INTERVAL_MS / 1000).addErrback(lambda failure: None)
        self.stats.start(STATS_MS / 1000, now=False)

    def stop(self) -> None:  # type: ignore[override]
        for loop in (self.loop, self.stats):
            if loop.running:
                loop.stop()


class StuckCachingPoller(CachingPoller):
    """The caching poller, but a failed call opens a "circuit" that never closes again.

    BUG: after a failure each tick logs "circuit open" and sets the next
    tick without calling the work, meant to retry once the backend
    recovers; nothing ever closes the circuit. The loop logs each tick and
    ticks on, but its work is never called again: stuck, not ended (the
    sweeper's timers tick too). Caught by: ``time.loop_died``.
    """

    def __init__(self, clock: IReactorTime, work: Callable[[], Any]) -> None:
        super().__init__(clock, work)
        self.open = False

    def _tick(self) -> None:
        if self.open:
            self._tick_call = None
            log.error("circuit open: poll skipped")
            self._next()
            return
        super()._tick()

    def _failed(self, failure: Failure) -> None:
        log.failure("poll failed; circuit opened", failure, level=LogLevel.error)
        self.open = True
        self._next()


def _periodic(build: Callable[[IReactorTime, Callable[[], Any]], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, description=description)


service_with_stats = _periodic(ServiceWithStats, "TimerService beside a stats LoopingCall; a failure is logged, the loop ends")
caching_poller = _periodic(CachingPoller, "callLater poller with a cache sweeper; a failure is logged from callLater(0)")
reporting_poller = _periodic(ReportingPoller, "callLater poller whose failure is logged from callLater(0); polling ends")
swallowing_service_with_stats = _periodic(
    SwallowingServiceWithStats, "LoopingCall whose failure is swallowed, beside a stats LoopingCall"
)
stuck_caching_poller = _periodic(
    StuckCachingPoller, "caching poller whose circuit opens at a failure and never closes: it logs and ticks on"
)

SCENARIOS = (
    Scenario("scenarios.housekeeping:service_with_stats", "pass",
             "TimerService ends and logs at a failure while a stats LoopingCall ticks on", "TimerService, LoopingCall"),
    Scenario("scenarios.housekeeping:caching_poller", "pass",
             "a callLater poller ends at a failure, logged from callLater(0), while its cache sweeper ticks on",
             "callLater"),
    Scenario("scenarios.housekeeping:reporting_poller", "pass",
             "a callLater poller ends at a failure, logged from a one-shot callLater(0)", "callLater"),
    Scenario("scenarios.housekeeping:swallowing_service_with_stats", "time.loop_died",
             "the loop's failure is swallowed; only the stats LoopingCall ticks on", "LoopingCall"),
    Scenario("scenarios.housekeeping:stuck_caching_poller", "time.loop_died",
             "after a failure the poller logs and ticks on without calling its work again", "callLater"),
)
