"""A ticker that keeps its own schedule and assumes one tick per wake: a stalled reactor makes two due together.

The promise is the ticker's (``scenarios.ticker``): the tick function is
called every ``INTERVAL_MS``, never sooner, never overlapping; after
``stop()`` nothing more. A hand-rolled ticker that wants no drift keeps the
due time of the next tick and schedules each tick for that due time, not
one interval after the last call. If the reactor wakes late by more than an
interval (a stalled or loaded reactor: ``step_ms`` here) or the wall clock
jumps forward, ticks are missed; a ticker that skips one missed tick but not
two then schedules the next tick in the past after a wake more than two
intervals late, and ticks twice back to back. On a punctual reactor with a
steady wall clock the window never opens; with the strides and jumps the
default search draws it opens often (tens of examples).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel

from harness import Target

from . import Scenario

INTERVAL_MS = 100

log = Logger()


class DriftFreeTicker:
    """Ticks on a ``callLater`` chain aimed at fixed due times; ticks missed by a late wake are skipped.

    Each tick waits for the tick function's Deferred, then schedules the next
    tick for the first due time still ahead of the clock, as ``LoopingCall``
    does. Failed ticks are logged; ``stop()`` cancels the pending tick.
    """

    def __init__(self, clock: IReactorTime, interval_ms: int = INTERVAL_MS) -> None:
        self.clock = clock
        self.interval = interval_ms / 1000
        self._tick_fn: Callable[[], Any] | None = None
        self._call: IDelayedCall | None = None
        self._due = 0.0
        self._running = False

    def start(self, tick: Callable[[], Any]) -> None:
        self._tick_fn = tick
        self._running = True
        self._due = self.clock.seconds()
        self._tick()

    def _tick(self) -> None:
        self._call = None
        d = defer.maybeDeferred(self._tick_fn)
        d.addErrback(lambda failure: log.failure("tick failed", failure, level=LogLevel.error))
        d.addCallback(lambda _: self._schedule())

    def _schedule(self) -> None:
        if not self._running:
            return
        self._advance()
        self._call = self.clock.callLater(max(0.0, self._due - self.clock.seconds()), self._tick)

    def _advance(self) -> None:
        now = self.clock.seconds()
        self._due += self.interval
        while self._due <= now:
            self._due += self.interval  # ticks a late wake missed are skipped, not replayed

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


class SkipOneTicker(DriftFreeTicker):
    """The same ticker, but a late wake skips one missed tick at most.

    BUG: ``_advance`` skips a missed tick with ``if`` where it needs
    ``while``: after a wake more than two intervals late the next due time is
    still past, so the next tick is scheduled at once and comes right after
    the one that just ran. Caught by: ``time.early``.
    """

    def _advance(self) -> None:
        now = self.clock.seconds()
        self._due += self.interval
        if self._due <= now:
            self._due += self.interval


def _periodic(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, description=description)


drift_free_ticker = _periodic(DriftFreeTicker, "callLater ticker aimed at fixed due times; a late wake skips missed ticks")
skip_one_ticker = _periodic(
    SkipOneTicker, "callLater ticker aimed at fixed due times that skips one missed tick at most"
)

SCENARIOS = (
    Scenario(
        "scenarios.drift_ticker:drift_free_ticker",
        "pass",
        "ticks every 100ms at fixed due times without drift; ticks missed by a late reactor are skipped",
        "callLater, seconds()",
    ),
    Scenario(
        "scenarios.drift_ticker:skip_one_ticker",
        "time.early",
        "a wake over two intervals late (stall or wall-clock jump) leaves a due time in the past: two ticks back to back",
        "callLater, seconds()",
    ),
)
