"""Tickers: periodic work that must behave around ``stop()`` and wall-clock jumps.

The promise both subjects declare: the tick function (supplied by the
harness) is called every ``INTERVAL_MS``, never sooner, never overlapping; a
failed tick is reported and ticking goes on; after ``stop()`` nothing more is
called and nothing is left scheduled.

The correct ``CountingTicker`` shows a case the invariants must not flag: a
tick in flight when ``stop()`` is called that fails afterwards is counted,
not reported, because after ``stop()`` no more ticks are expected.
``CatchUpTicker`` replays the ticks it believes it missed, reading
``seconds()``: a wall-clock jump makes a burst.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

INTERVAL_MS = 100

log = Logger()


class CountingTicker:
    """Ticks with ``task.LoopingCall``; a failed tick is logged and a fresh loop starts one interval later.

    ``stop()`` stops the loop. A tick still running at ``stop()`` may fail
    afterwards: ``LoopingCall`` then errbacks its start Deferred, and the
    ticker, as documented, only counts it in ``failed_after_stop`` (the owner
    asked for no more ticks; the error is theirs to read from the counter).
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self.failed_after_stop = 0
        self._tick: Callable[[], Any] | None = None
        self._loop: task.LoopingCall | None = None
        self._stopped = False

    def start(self, tick: Callable[[], Any]) -> None:
        self._tick = tick
        self._run(now=True)

    def _run(self, now: bool) -> None:
        self._loop = task.LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=now).addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        if self._stopped:
            self.failed_after_stop += 1
            return
        log.failure("tick failed; ticking again in {interval}s", failure, level=LogLevel.error, interval=self.interval)
        self._run(now=False)

    def stop(self) -> None:
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()


class CatchUpTicker:
    """Ticks on a ``callLater`` chain and makes up for ticks it missed.

    Each tick counts, from ``seconds()``, how many ticks are due since the
    start and runs the tick function that many times more than it already
    did, one call after the other (each waits for the previous one), then
    schedules the next tick one interval later. Failed ticks are logged;
    ``stop()`` cancels the pending tick and ends a catch-up in progress.
    BUG: missed ticks are replayed back to back, a burst that hits whatever
    the tick polls, and the count comes from ``seconds()``, wall-clock
    time: after a forward jump of 5 s it replays 50 "missed" ticks at once,
    where a ``LoopingCall`` makes one call and re-aligns (a slow tick makes
    a smaller burst). Caught by: ``time.early``.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval_ms = interval_ms
        self._tick_fn: Callable[[], Any] | None = None
        self._call: IDelayedCall | None = None
        self._origin_ms = 0
        self._done = 0
        self._running = False

    def _now_ms(self) -> int:
        return round(self.clock.seconds() * 1000)

    def start(self, tick: Callable[[], Any]) -> None:
        self._tick_fn = tick
        self._origin_ms = self._now_ms()
        self._running = True
        self._tick()

    def _tick(self) -> None:
        self._call = None
        due = (self._now_ms() - self._origin_ms) // self.interval_ms + 1  # BUG: wall-clock ticks
        self._catch_up(max(1, due - self._done))

    def _catch_up(self, count: int) -> None:
        if not self._running:
            return
        if count == 0:
            self._call = self.clock.callLater(self.interval_ms / 1000, self._tick)
            return
        self._done += 1
        d = defer.maybeDeferred(self._tick_fn)
        d.addErrback(lambda failure: log.failure("tick failed", failure, level=LogLevel.error))
        d.addCallback(lambda _: self._catch_up(count - 1))

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()


counting_ticker = Target(
    build=CountingTicker,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    description="LoopingCall ticker that counts, without reporting, a tick that fails after stop()",
)

catch_up_ticker = Target(
    build=CatchUpTicker,
    kind="periodic",
    interval_ms=INTERVAL_MS,
    description="callLater ticker that replays the ticks seconds() says it missed",
)

SCENARIOS = (
    Scenario(
        "scenarios.ticker:counting_ticker",
        "pass",
        "ticks every 100ms; a tick that fails after stop() is counted, not reported: no more ticks are expected",
        "LoopingCall",
    ),
    Scenario(
        "scenarios.ticker:catch_up_ticker",
        "time.early",
        "replays the ticks seconds() says were missed: a +5s wall-clock jump makes a burst of 50 ticks",
        "callLater",
    ),
)
