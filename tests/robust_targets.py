"""Targets that misbehave the ways issue 10 is about: they hang, escape virtual time, are nondeterministic.

Importable as ``robust_targets:NAME`` (the tests directory is on ``sys.path``),
also from a subprocess run with this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import itertools
import random
import sys
import threading
import time
from typing import Any

from twisted.internet import defer, task

from harness import Target
from scenarios.pools import DoubleReleasePool, SemaphorePool


class _Pool(SemaphorePool):
    """The correct pool, counting submissions so that a bug can strike at the n-th."""

    def __init__(self, clock: Any, limit: int = 2) -> None:
        super().__init__(clock, limit)
        self.submitted = 0

    def submit(self, job: Any) -> defer.Deferred[Any]:
        self.submitted += 1
        return super().submit(job)


# -- hangs -------------------------------------------------------------------


class SpinningPool(_Pool):
    """Spins forever in ``submit`` on the second job."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = super().submit(job)
        if self.submitted == 2:
            while True:
                pass
        return d


class CallbackSpinningPool(_Pool):
    """Spins forever in a callback of the second job's Deferred (a Deferred swallows what is raised there)."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = super().submit(job)
        if self.submitted == 2:
            d.addBoth(self._spin)
        return d

    @staticmethod
    def _spin(result: Any) -> Any:
        while True:
            pass


class StubbornPool(_Pool):
    """Catches everything, three times over, before spinning for good in ``submit`` of the second job."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = super().submit(job)
        if self.submitted == 2:
            for _ in range(3):
                try:
                    while True:
                        pass
                except BaseException:
                    pass
            while True:
                pass
        return d


class BlockingPool(_Pool):
    """Blocks on an event nobody sets, in ``submit`` of the second job."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = super().submit(job)
        if self.submitted == 2:
            threading.Event().wait()
        return d


class LivelockPool(_Pool):
    """Schedules a call for now, which schedules another for now, without end, on the second job."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        d = super().submit(job)
        if self.submitted == 2:
            self._again()
        return d

    def _again(self) -> None:
        self.clock.callLater(0, self._again)


spinning = Target(build=lambda clock: SpinningPool(clock), limit=2)
callback_spinning = Target(build=lambda clock: CallbackSpinningPool(clock), limit=2)
stubborn = Target(build=lambda clock: StubbornPool(clock), limit=2)
blocking = Target(build=lambda clock: BlockingPool(clock), limit=2)
livelock = Target(build=lambda clock: LivelockPool(clock), limit=2)


def _spin_forever(clock: Any) -> Any:
    while True:
        pass


spinning_build = Target(build=_spin_forever, limit=2)


# -- escapes from virtual time -------------------------------------------------


class GlobalCallLaterPool(_Pool):
    """Delays every job with the global reactor's callLater."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        from twisted.internet import reactor

        d: defer.Deferred[Any] = defer.Deferred()
        reactor.callLater(0.1, lambda: defer.maybeDeferred(job).chainDeferred(d))
        return d


class DeferLaterPool(_Pool):
    """Runs every job through ``deferLater(reactor, ...)``."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        from twisted.internet import reactor

        return task.deferLater(reactor, 0.1, job)


class SleepingPool(_Pool):
    """Sleeps for real before every job."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        time.sleep(0.01)
        return super().submit(job)


class HidingPool(_Pool):
    """Calls the global reactor and hides whatever happens."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        from twisted.internet import reactor

        try:
            reactor.callLater(0, job)
        except BaseException:
            pass
        return super().submit(job)


class Ticker:
    """Periodic work on a LoopingCall whose clock was never set: the global reactor."""

    def __init__(self) -> None:
        self.loop: task.LoopingCall | None = None

    def start(self, work: Any) -> Any:
        self.loop = task.LoopingCall(work)
        return self.loop.start(0.1)

    def stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()


global_call_later = Target(build=lambda clock: GlobalCallLaterPool(clock), limit=2)
defer_later = Target(build=lambda clock: DeferLaterPool(clock), limit=2)
sleeping = Target(build=lambda clock: SleepingPool(clock), limit=2)
hiding = Target(build=lambda clock: HidingPool(clock), limit=2)
default_clock_loop = Target(build=lambda clock: Ticker(), kind="periodic", interval_ms=100)


# -- nondeterminism --------------------------------------------------------------

_served = itertools.count()


class CountingPool(_Pool):
    """Tags every result with a module-level counter: global state that outlives the run."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        return super().submit(job).addCallback(lambda result: f"{result} #{next(_served)}")


class CoinFlipPool(DoubleReleasePool):
    """The double-release pool, but the bug strikes only when an unseeded coin says so.

    Results say how many coins came up heads, so that two runs tossing differently differ in
    their traces even when the bug does not strike.
    """

    heads = 0

    def submit(self, job: Any) -> defer.Deferred[Any]:
        if random.random() < 0.5:
            self.heads += 1
        return super().submit(job).addCallback(lambda result: f"{result} heads={self.heads}")

    def _failed(self, failure: Any) -> Any:
        if random.random() < 0.5:
            self.active -= 1
        return failure


counting = Target(build=lambda clock: CountingPool(clock), limit=2)
coin_flip = Target(build=lambda clock: CoinFlipPool(clock, limit=2), limit=2)


# -- construction and stop --------------------------------------------------------


class FragilePool(DoubleReleasePool):
    """The double-release pool with a ``stop()`` that raises while a job still runs."""

    def stop(self) -> None:
        if self.active > 0:
            raise RuntimeError("cannot stop while a job runs")


def _exit(clock: Any) -> Any:
    sys.exit(3)


fragile = Target(build=lambda clock: FragilePool(clock, limit=2), limit=2)
exiting = Target(build=_exit, limit=2)


class _BadStop(_Pool):
    def stop(self) -> None:
        raise OSError("stop failed")


bad_stop = Target(build=lambda clock: _BadStop(clock), limit=2)


class CountingDoubleReleasePool(DoubleReleasePool):
    """The double-release pool (a real, deterministic bug) tagging results with a module-level counter."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        return super().submit(job).addCallback(lambda result: f"{result} #{next(_served)}")


counting_buggy = Target(build=lambda clock: CountingDoubleReleasePool(clock, limit=2), limit=2)

builds = itertools.count()


def _count_and_fail(clock: Any) -> Any:
    next(builds)
    raise ValueError("no pool today")


failing_build = Target(build=_count_and_fail, limit=2)


class LeakyPool(_Pool):
    """Runs every job but hands back a Deferred of its own: a failing job's error is never handled."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        defer.maybeDeferred(job)
        return defer.succeed(None)


leaky = Target(build=lambda clock: LeakyPool(clock))
