"""A supervisor that restarts a crashed worker, with a restart-intensity limit and backoff.

The worker is started by ``start_worker()``, which returns a Deferred that fires when the worker
exits: a callback is a normal exit (the supervisor then stops, ``stopped`` fires with None), an
errback is a crash. After a crash the supervisor restarts the worker after a backoff
(``base * 2**n`` capped at ``cap``, n = crashes in a row), unless it has already restarted it
``max_restarts`` times within the last ``window`` seconds: then it gives up and ``stopped`` fails
with :class:`GaveUp`. ``stop()`` cancels a pending restart and the running worker and fires
``stopped`` with None. ``stopped`` fires exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.base import DelayedCall
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class GaveUp(Exception):
    """Too many restarts within the window."""


class Supervisor:
    """Restart a worker after crashes, at most ``max_restarts`` per ``window`` seconds."""

    def __init__(
        self,
        clock: IReactorTime,
        start_worker: Callable[[], Deferred[Any]],
        max_restarts: int,
        window: float,
        base: float = 0.5,
        cap: float = 4.0,
    ) -> None:
        self._clock = clock
        self._start_worker = start_worker
        self.max_restarts = max_restarts
        self.window = window
        self.base = base
        self.cap = cap
        self.stopped: Deferred[None] = Deferred()
        # one timer per restart decided in the last ``window`` seconds: it expires the restart.
        # (First written with clock.seconds() readings pruned by ``now - t < window``: the harness
        # found that a wall-clock jump forward forgets the recent restarts and lets R + 1 through.)
        self._window_timers: list[DelayedCall] = []
        self.starts = 0
        self._worker: Deferred[Any] | None = None
        self._pending: DelayedCall | None = None
        self._crashes_in_a_row = 0
        self._done = False

    def start(self) -> None:
        self._launch()

    def _launch(self) -> None:
        self._pending = None
        self.starts += 1
        d = self._start_worker()
        self._worker = d
        d.addCallbacks(self._exited, self._crashed, errbackArgs=(d,), callbackArgs=(d,))

    def _exited(self, _result: object, d: Deferred[Any]) -> None:
        if d is not self._worker or self._done:
            return
        self._worker = None
        self._finish(None)

    def _crashed(self, failure: Failure, d: Deferred[Any]) -> None:
        if d is not self._worker or self._done:
            return
        self._worker = None
        if self._over_limit():
            self._finish(Failure(GaveUp(f"{self.recent_restarts} restarts in {self.window}s")))
            return
        self._window_timers.append(self._clock.callLater(self.window, self._expire_restart))
        delay = min(self.base * 2**self._crashes_in_a_row, self.cap)
        self._crashes_in_a_row += 1
        self._pending = self._clock.callLater(delay, self._launch)

    @property
    def recent_restarts(self) -> int:
        return len(self._window_timers)

    def _expire_restart(self) -> None:
        self._window_timers.pop(0)

    def _over_limit(self) -> bool:
        return self.recent_restarts >= self.max_restarts

    def stop(self) -> None:
        if self._done:
            return
        self._cancel_pending()
        worker, self._worker = self._worker, None
        self._finish(None)
        if worker is not None:
            worker.addErrback(lambda f: f.trap(CancelledError))
            worker.cancel()

    def _cancel_pending(self) -> None:
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None

    def _finish(self, result: None | Failure) -> None:
        self._done = True
        for timer in self._window_timers:
            if timer.active():
                timer.cancel()
        self._window_timers = []
        if isinstance(result, Failure):
            self.stopped.errback(result)
        else:
            self.stopped.callback(None)


class SupervisorOffByOne(Supervisor):
    """Bug: ``>`` for ``>=``: allows max_restarts + 1 restarts in a window."""

    def _over_limit(self) -> bool:
        return self.recent_restarts > self.max_restarts


class SupervisorStopLeaksRestart(Supervisor):
    """Bug: stop() forgets to cancel a pending restart, so a worker starts after stop."""

    def _cancel_pending(self) -> None:
        self._pending = None


class SupervisorCrashAfterStop(Supervisor):
    """Bug: stop() cancels the worker before marking itself done; the cancellation is taken for a
    crash, which schedules a restart that fires after ``stopped``."""

    def stop(self) -> None:
        if self._done:
            return
        self._cancel_pending()
        worker = self._worker
        if worker is not None:
            worker.cancel()  # CancelledError arrives in _crashed while still running
        self._finish(None)
