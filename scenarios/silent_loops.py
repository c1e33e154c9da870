"""Loops that die in silence without a failed call: dead from the start, or after a success.

``time.loop_died`` once judged only a loop's silence after a call that ended
in error. Two real bugs end a loop without one, and passed every invariant:

* ``never_called_loop``: ``start()`` arms the first tick, but a flag that
  ``start()`` forgot to set makes every tick skip the work (it re-arms, so
  the loop ticks for ever and never calls its work). Caught by:
  ``time.loop_died`` (silent from the start).
* ``value_ends_loop``: the loop re-arms in a callback on the Deferred the work
  returns; a work that returns a plain value (no Deferred) is the end of it.
  Caught by: ``time.loop_died`` (silent after a successful call).

``rearming_loop`` is their correct reference: the same hand-written
``callLater`` chain, calling its work at each tick (none while a call is in
flight: that tick is skipped) and re-arming whatever the work returned or
raised. ``sparse_loop`` skips every other tick by design (it calls its work
on even ticks only): at most one tick in a row is skipped, within the wait.
``third_tick_loop`` skips two in a row, which it declares (``skips=2``):
undeclared, its silence before a ``stop()`` would be taken for a death.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from harness import Target

from . import Scenario

INTERVAL_MS = 100

log = Logger()


class RearmingLoop:
    """Calls ``work`` every ``INTERVAL_MS`` on a ``callLater`` chain, first one interval after ``start()``.

    A tick that finds the previous call still running skips it; a failed call
    is logged; the chain re-arms at every tick, whatever the work did.
    ``stop()`` cancels the pending tick.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.work: Callable[[], Any] | None = None
        self.running = False
        self.busy = False
        self.ticks = 0
        self.timer: IDelayedCall | None = None

    def start(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.running = True
        self._arm()

    def _arm(self) -> None:
        self.timer = self.clock.callLater(INTERVAL_MS / 1000, self._tick)

    def _tick(self) -> None:
        self.timer = None
        self.ticks += 1
        if self.running and self._wanted() and not self.busy:
            self._call()
        if self.running:
            self._arm()

    def _wanted(self) -> bool:
        return True

    def _call(self) -> None:
        self.busy = True
        d = defer.maybeDeferred(self.work)  # type: ignore[arg-type]
        d.addErrback(lambda f: log.failure("call failed", f))
        d.addBoth(self._done)

    def _done(self, _: Any) -> None:
        self.busy = False

    def stop(self) -> None:
        self.running = False
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


class NeverCalledLoop(RearmingLoop):
    """BUG: ``start()`` arms the first tick but never sets the flag the tick reads (a rename left
    ``self.running`` for ``self.started``): every tick skips the work and re-arms. The loop ticks
    for ever and never calls its work."""

    def start(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.started = True  # BUG: the tick reads self.running
        self._arm()

    def _tick(self) -> None:
        self.timer = None
        self.ticks += 1
        if self.running and not self.busy:
            self._call()
        if self.started:
            self._arm()

    def stop(self) -> None:
        self.started = False
        super().stop()


class ValueEndsLoop(RearmingLoop):
    """BUG: the next tick is armed when the work's Deferred fires; a work that returns a plain value
    (no Deferred: a cache hit) arms nothing, and the loop ends in silence after a successful call."""

    def _tick(self) -> None:
        self.timer = None
        if not self.running:
            return
        try:
            result = self.work()  # type: ignore[misc]
        except Exception:
            log.failure("call failed")
            self._arm()
            return
        if isinstance(result, defer.Deferred):
            result.addErrback(lambda f: log.failure("call failed", f))
            result.addBoth(lambda _: self._arm() if self.running else None)
        # BUG: a plain value re-arms nothing

    def _call(self) -> None:  # (unused: the tick calls the work itself)
        raise AssertionError("not reached")


class SparseLoop(RearmingLoop):
    """Calls its work on even ticks only, by design (a half-rate sampler): one tick in two is skipped."""

    every = 2

    def _wanted(self) -> bool:
        return self.ticks % self.every == 0


class ThirdTickLoop(SparseLoop):
    """Calls its work on every third tick, by design: two ticks in a row are skipped (``skips=2``)."""

    every = 3


def _loop(build: Callable[[IReactorTime], RearmingLoop], description: str, skips: int = 1) -> Target:
    return Target(build=build, kind="periodic", interval_ms=INTERVAL_MS, skips=skips, description=description)


rearming_loop = _loop(RearmingLoop, "callLater chain re-armed at every tick, whatever the work did")
sparse_loop = _loop(SparseLoop, "callLater chain calling its work on every other tick, by design")
third_tick_loop = _loop(ThirdTickLoop, "callLater chain calling its work on every third tick, declared skips=2", skips=2)
never_called_loop = _loop(NeverCalledLoop, "start() arms the tick, a flag it forgot makes every tick skip the work")
value_ends_loop = _loop(ValueEndsLoop, "re-arms when the work's Deferred fires: a plain value ends the loop")

SCENARIOS = (
    Scenario(
        "scenarios.silent_loops:rearming_loop",
        "pass",
        "callLater chain: a tick finding a call in flight skips it, a failed call is logged, every tick re-arms",
        "callLater",
    ),
    Scenario(
        "scenarios.silent_loops:sparse_loop",
        "pass",
        "calls its work on every other tick by design: one skipped tick at a time is within the loop's wait",
        "callLater",
    ),
    Scenario(
        "scenarios.silent_loops:third_tick_loop",
        "pass",
        "calls its work on every third tick by design, and declares it (skips=2): the wait is three ticks",
        "callLater",
    ),
    Scenario(
        "scenarios.silent_loops:never_called_loop",
        "time.loop_died",
        "start() arms the tick but a forgotten flag makes every tick skip the work: dead from the start",
        "callLater",
    ),
    Scenario(
        "scenarios.silent_loops:value_ends_loop",
        "time.loop_died",
        "the next tick is armed on the work's Deferred: a plain value returned ends the loop in silence",
        "callLater",
    ),
)
