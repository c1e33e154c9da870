"""A watchdog (deadman switch) for long-running tasks.

``watch(factory)`` starts ``factory(kick)``, which returns a Deferred for a long-running task.
The task must call ``kick()`` at least once every ``period`` seconds.  When a period passes with
no kick the task is cancelled and started again, up to ``max_restarts`` restarts; one more
silence and the watch fails with :class:`TaskFailed`.  A task that finishes (success or failure)
ends its watch with that outcome.  ``stop()`` cancels every running task and fails every open
watch with :class:`WatchdogStopped`.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class TaskFailed(Exception):
    """The task missed its kick more than ``max_restarts`` times."""


class WatchdogStopped(Exception):
    """The watchdog was stopped while the task ran."""


Factory = Callable[[Callable[[], None]], "defer.Deferred[Any]"]


class _Watch:
    def __init__(self, dog: "Watchdog", factory: Factory) -> None:
        self.dog = dog
        self.factory = factory
        self.restarts = 0
        self.generation = 0
        self.task: Optional[defer.Deferred[Any]] = None
        self.timer: Optional[IDelayedCall] = None
        self.result: defer.Deferred[Any] = defer.Deferred(self._cancelled)
        self.done = False

    def _cancelled(self, d: "defer.Deferred[Any]") -> None:
        """The caller cancelled the watch: retire and cancel the running incarnation (found by the
        harness: without a canceller the task ran on and was even restarted after the cancel)."""
        if self.done:
            return
        task = self.task
        self.generation += 1
        self.done = True
        self.disarm()
        self.task = None
        self.dog.watches.pop(self, None)
        if task is not None:
            task.cancel()

    # -- one incarnation -------------------------------------------------------------------
    def start(self) -> None:
        self.generation += 1
        gen = self.generation
        self._arm()
        try:
            task = self.factory(lambda: self.kick(gen))
        except Exception:
            self.finish(Failure())
            return
        self.task = task
        task.addBoth(self._task_done, gen)

    def kick(self, gen: int) -> None:
        if self.done or not self._current(gen):
            return
        self._arm()

    def _current(self, gen: int) -> bool:
        return gen == self.generation

    def _arm(self) -> None:
        self.disarm()
        self.timer = self.dog.clock.callLater(self.dog.period, self._silent)

    def disarm(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _task_done(self, outcome: Any, gen: int) -> None:
        if self.done or gen != self.generation:
            return None  # an old incarnation's cancellation: swallow it
        self._on_finish()
        self.finish(outcome)
        return None

    def _on_finish(self) -> None:
        self.disarm()

    def _silent(self) -> None:
        self.timer = None
        if self.done:
            return
        if self._may_restart():
            self.restarts += 1
            old = self.task
            self.generation += 1  # retire the old incarnation before cancelling it
            if old is not None:
                old.cancel()
            self.generation -= 1
            self.start()
        else:
            old = self.task
            self.generation += 1
            if old is not None:
                old.cancel()
            self.finish(Failure(TaskFailed(self.restarts)))

    def _may_restart(self) -> bool:
        return self.restarts < self.dog.max_restarts

    def finish(self, outcome: Any) -> None:
        if self.done:
            return
        self.done = True
        self.disarm()
        self.task = None
        self.dog.watches.pop(self, None)
        if isinstance(outcome, Failure):
            self.result.errback(outcome)
        else:
            self.result.callback(outcome)


class Watchdog:
    """Restarts silent tasks up to ``max_restarts`` times."""

    watch_class = _Watch

    def __init__(self, clock: IReactorTime, period: float, max_restarts: int) -> None:
        if period <= 0 or max_restarts < 0:
            raise ValueError("period > 0 and max_restarts >= 0")
        self.clock = clock
        self.period = period
        self.max_restarts = max_restarts
        self.watches: dict[_Watch, None] = {}  # insertion order: stop() cancels deterministically
        self.stopped = False

    def watch(self, factory: Factory) -> "defer.Deferred[Any]":
        """Start the task; the Deferred fires with its result or fails (TaskFailed, ...)."""
        if self.stopped:
            return defer.fail(WatchdogStopped())
        w = self.watch_class(self, factory)
        self.watches[w] = None
        w.start()
        return w.result

    def stop(self) -> None:
        """Cancel every running task; open watches fail with WatchdogStopped."""
        self.stopped = True
        for w in list(self.watches):
            task = w.task
            w.generation += 1
            w.disarm()
            if task is not None:
                task.cancel()
            w.finish(Failure(WatchdogStopped()))


class _ExtraRestartWatch(_Watch):
    def _may_restart(self) -> bool:
        return self.restarts <= self.dog.max_restarts


class ExtraRestartWatchdog(Watchdog):
    """Bug: restarts max_restarts + 1 times before reporting failure."""

    watch_class = _ExtraRestartWatch


class _StaleKickWatch(_Watch):
    def _current(self, gen: int) -> bool:
        return True


class StaleKickWatchdog(Watchdog):
    """Bug: a kick from a cancelled (old) incarnation still feeds the watchdog."""

    watch_class = _StaleKickWatch


class _LingeringTimerWatch(_Watch):
    def _on_finish(self) -> None:
        pass

    def finish(self, outcome: Any) -> None:
        if self.done:
            return
        self.done = True
        self.task = None  # forgot to disarm the silence timer
        self.dog.watches.pop(self, None)
        if isinstance(outcome, Failure):
            self.result.errback(outcome)
        else:
            self.result.callback(outcome)


class LingeringTimerWatchdog(Watchdog):
    """Bug: a finished task leaves its silence timer pending (never cancelled)."""

    watch_class = _LingeringTimerWatch
