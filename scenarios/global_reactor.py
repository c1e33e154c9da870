"""A pool written on the global reactor, tested as it is with ``Target(global_reactor="lend")``.

Much Twisted code takes no clock: it imports ``twisted.internet.reactor`` and calls
``reactor.callLater``, ``task.deferLater(reactor, ...)``, or starts a ``LoopingCall`` whose
``clock`` it never sets. The harness refuses the global reactor in a run unless the target lends it
the run's clock (``global_reactor="lend"``): then those calls schedule on the fault clock, their
timers recorded, faulted and judged exactly as a clock passed to ``build(clock)`` would be
(``tests/test_global_reactor.py`` shows the traces are byte-identical). ``build`` ignores its clock.

``ReactorPool`` uses all three: a pump on the next reactor turn (``reactor.callLater(0, ...)``),
a slot released a cooldown after its job ended (``deferLater(reactor, ...)``), and a sweeper
``LoopingCall`` on its default clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import reactor, task
from twisted.internet.interfaces import IDelayedCall

from harness import Target

from . import Scenario
from ._pool import Entry, Pool

LIMIT = 2
#: How long a slot rests after its job ended before the next job may take it.
COOLDOWN_S = 0.02
#: The sweeper's period: it pumps the queue (a safety net; the pump is also scheduled at each change).
SWEEP_S = 0.05


class Stopped(Exception):
    """The pool was stopped: the job is refused."""


class ReactorPool(Pool):
    """At most ``LIMIT`` jobs at once, started in submission order, written on the global reactor.

    ``submit`` queues the job and schedules one pump on the next reactor turn
    (``reactor.callLater(0, self._pump)``, one call for every job waiting then: jobs due together start in
    queue order whatever the reactor's tie-break). A job that ends keeps its slot for ``COOLDOWN_S``
    (``task.deferLater(reactor, COOLDOWN_S)``) and then frees it. A sweeper ``LoopingCall(self._sweep)``
    on its default clock pumps every ``SWEEP_S``. Cancels as the skeleton's (``scenarios._pool.Pool``).
    ``stop()`` refuses later jobs and stops the sweeper; the jobs already queued still run.
    """

    def __init__(self) -> None:
        super().__init__(reactor, LIMIT)  # type: ignore[arg-type]  # (the skeleton's clock; unused here)
        self.stopped = False
        self.pump_call: IDelayedCall | None = None
        self.sweeper = task.LoopingCall(self._pump)  # its clock: the global reactor
        self.sweeper.start(SWEEP_S, now=False)

    def _refusal(self) -> Exception | None:
        return Stopped("the pool is stopped: the job is refused") if self.stopped else None

    def _enqueue(self, entry: Entry) -> None:
        self.waiting.append(entry)
        self._schedule_pump()

    def _schedule_pump(self) -> None:
        if self.pump_call is None and self.waiting:
            self.pump_call = reactor.callLater(0, self._pump)  # type: ignore[attr-defined]

    def _pump(self) -> None:
        if self.pump_call is not None:
            if self.pump_call.active():
                self.pump_call.cancel()
            self.pump_call = None
        super()._pump()

    def _done(self, result: Any, entry: Entry) -> None:
        self._deliver(result, entry)
        task.deferLater(reactor, COOLDOWN_S, self._release)

    def _release(self) -> None:
        self.active -= 1
        self._schedule_pump()

    def stop(self) -> None:
        self.stopped = True
        self.sweeper.stop()


class LoopLeftPool(ReactorPool):
    """The pool whose ``stop()`` refuses later jobs but leaves its sweeper running.

    BUG: ``stop()`` forgets ``self.sweeper.stop()``: the ``LoopingCall`` on the global reactor ticks for
    ever after the pool stopped (on a real reactor, a process that never goes idle). The loop is the
    run's, on the clock lent to the global reactor. Caught by: ``leaks.loops``.
    """

    def stop(self) -> None:
        self.stopped = True  # BUG: the sweeper is left running


class EarlyReleasePool(ReactorPool):
    """The pool that frees a job's slot when the job ends as well as after the cooldown.

    BUG: ``_done`` frees the slot at once ("the job is over"), and the cooldown's ``deferLater``
    frees it again: every finished job frees two slots, and more than ``LIMIT`` jobs run at once.
    Caught by: ``concurrency.limit``.
    """

    def _done(self, result: Any, entry: Entry) -> None:
        self.active -= 1  # BUG: freed here, and again by _release after the cooldown
        self._schedule_pump()
        super()._done(result, entry)


def _target(pool: Callable[[], Pool], description: str) -> Target:
    return Target(build=lambda clock: pool(), limit=LIMIT, order="fifo", rejects=(Stopped,), global_reactor="lend",
                  description=description)


reactor_pool = _target(ReactorPool, "a FIFO pool of 2 on the global reactor (callLater, deferLater, LoopingCall)")
reactor_pool_loop_left = _target(LoopLeftPool, "the pool on the global reactor whose stop() leaves its LoopingCall running")
reactor_pool_early_release = _target(EarlyReleasePool, "the pool on the global reactor freeing a slot twice per job")

SCENARIOS = (
    Scenario("scenarios.global_reactor:reactor_pool", "pass",
             "FIFO pool of 2 written on the global reactor (lent the run's clock)", "global reactor"),
    Scenario("scenarios.global_reactor:reactor_pool_loop_left", "leaks.loops",
             "pool on the global reactor whose stop() leaves its sweeper LoopingCall running", "global reactor",
             also=("leaks.calls",)),
    Scenario("scenarios.global_reactor:reactor_pool_early_release", "concurrency.limit",
             "pool on the global reactor freeing a job's slot at its end and again after the cooldown",
             "global reactor"),
)
