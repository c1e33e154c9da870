"""A pool with a graceful ``stop()`` and a ``when_idle()`` operation, and two twins whose Deferreds never fire.

``stop()`` returns a Deferred that fires once the work in flight ended, as
``Service.stopService`` may; ``when_idle()`` one that fires once nothing is
in flight. Both are answered at once when the pool is idle already. Each
twin forgets that case in one method: its Deferred waits for a job to end,
and with nothing in flight none ever will (a shutdown that hangs, a waiter
never answered).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Operation, Target

from . import Scenario


class GracefulPool:
    """At most ``limit`` jobs at once on a ``DeferredSemaphore``; ``stop()`` and ``when_idle()`` return
    Deferreds that fire once no job is outstanding (at once if none is)."""

    def __init__(self, clock: IReactorTime, limit: int) -> None:
        self.clock = clock
        self._sem = defer.DeferredSemaphore(limit)
        self._outstanding = 0
        self._idle: list[defer.Deferred[None]] = []

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        self._outstanding += 1
        d = self._sem.run(job)
        d.addBoth(self._done)
        return d

    def _done(self, result: Any) -> Any:
        self._outstanding -= 1
        if not self._outstanding:
            waiting, self._idle = self._idle, []
            for waiter in waiting:
                waiter.callback(None)
        return result

    def _wait_idle(self) -> defer.Deferred[None]:
        if not self._outstanding:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle.append(waiter)
        return waiter

    def when_idle(self) -> defer.Deferred[None]:
        return self._wait_idle()

    def stop(self) -> defer.Deferred[None]:
        return self._wait_idle()


class IdleStopPool(GracefulPool):
    """BUG (``stop``): always waits for the next job to end, even when none is outstanding: a
    ``stop()`` of an idle pool never completes. Caught by: ``completion.stop``."""

    def stop(self) -> defer.Deferred[None]:
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle.append(waiter)
        return waiter


class IdleWaiterPool(GracefulPool):
    """BUG (``when_idle``): always waits for the next job to end, even when none is outstanding: a
    caller asking an idle pool is never answered. Caught by: ``completion.operation``."""

    def when_idle(self) -> defer.Deferred[None]:
        waiter: defer.Deferred[None] = defer.Deferred()
        self._idle.append(waiter)
        return waiter


WHEN_IDLE = {"when_idle": Operation(lambda pool: pool.when_idle())}

def _pool(pool: type[GracefulPool], description: str) -> Target:
    return Target(build=lambda clock: pool(clock, limit=2), limit=2, order="fifo", operations=WHEN_IDLE, description=description)


graceful_pool = _pool(GracefulPool, "pool on DeferredSemaphore(2) with a graceful stop() and when_idle()")
idle_stop_pool = _pool(IdleStopPool, "graceful pool whose stop() of an idle pool never completes")
idle_waiter_pool = _pool(IdleWaiterPool, "graceful pool whose when_idle() on an idle pool is never answered")

SCENARIOS = (
    Scenario(
        "scenarios.graceful:graceful_pool",
        "pass",
        "pool on DeferredSemaphore(2): stop() and when_idle() fire once nothing is outstanding",
        "DeferredSemaphore",
    ),
    Scenario(
        "scenarios.graceful:idle_stop_pool",
        "completion.stop",
        "graceful pool whose stop() always waits for the next job to end: on an idle pool it never completes",
        "Deferred",
    ),
    Scenario(
        "scenarios.graceful:idle_waiter_pool",
        "completion.operation",
        "graceful pool whose when_idle() always waits for the next job to end: on an idle pool it is never answered",
        "Deferred",
    ),
)
