"""A reconnecting client service, in the spirit of Twisted's ClientService (written blind).

`start()` begins connecting through an injected `connect(on_lost)` callable that returns a Deferred
firing with a connection; the connection calls `on_lost()` when it drops. Failed attempts are retried
after an exponential backoff capped at `cap`; a lost connection reconnects after `initial` and the
backoff starts over. `whenConnected(timeout)` answers waiters; each fails with ConnectTimeout at its own
deadline or with ServiceStopped when the service stops. `stop()` cancels a pending attempt and the
backoff timer, fails the waiters and closes the current connection (if it has `close()`).
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class ServiceStopped(Exception):
    """The service was stopped (or not started) before a connection was there."""


class ConnectTimeout(Exception):
    """A whenConnected waiter's own deadline passed before a connection was there."""


Connect = Callable[[Callable[[], None]], "Deferred[object]"]


class _Waiter:
    def __init__(self, d: "Deferred[object]") -> None:
        self.d = d
        self.timer: Optional[IDelayedCall] = None


class ReconnectingService:
    """Keeps one connection up; see the module docstring."""

    def __init__(self, clock: IReactorTime, connect: Connect, initial: float = 1.0,
                 factor: float = 2.0, cap: float = 30.0) -> None:
        self.clock = clock
        self.connect = connect
        self.initial = initial
        self.factor = factor
        self.cap = cap
        self.running = False
        self.connection: Optional[object] = None
        self._attempt: Optional["Deferred[object]"] = None
        self._timer: Optional[IDelayedCall] = None
        self._failures = 0
        self._generation = 0
        self._waiters: list[_Waiter] = []
        # Observations for tests: every attempt's start time, every backoff delay chosen.
        self.attempt_times: list[float] = []
        self.delays: list[float] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self.running = True
        self._failures = 0
        self._connect()

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._cancel_backoff()
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.cancel()
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            w.d.errback(ServiceStopped())
        conn, self.connection = self.connection, None
        self._generation += 1
        close = getattr(conn, "close", None)
        if close is not None:
            close()

    def _cancel_backoff(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- attempts --------------------------------------------------------------------------------
    def _connect(self) -> None:
        self._timer = None
        self._generation += 1
        generation = self._generation
        self.attempt_times.append(self.clock.seconds())
        d = self.connect(lambda: self._lost(generation))
        self._attempt = d
        d.addCallbacks(self._connected, self._failed, callbackArgs=(d,), errbackArgs=(d,))

    def _connected(self, conn: object, d: "Deferred[object]") -> None:
        if self._attempt is not d:
            return None
        self._attempt = None
        self.connection = conn
        self._reset_backoff()
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            self._clear_waiter_timer(w)
            w.d.callback(conn)
        return None

    def _reset_backoff(self) -> None:
        self._failures = 0

    def _clear_waiter_timer(self, w: _Waiter) -> None:
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None

    def _failed(self, reason: Failure, d: "Deferred[object]") -> None:
        if self._attempt is not d:
            return None  # a stale attempt (cancelled by stop): nothing to do
        self._attempt = None
        if not self.running:
            return None
        delay = min(self.cap, self.initial * self.factor ** self._failures)
        self._failures += 1
        self.delays.append(delay)
        self._timer = self.clock.callLater(delay, self._connect)
        return None

    def _lost(self, generation: int) -> None:
        # Found by the harness (harness.livelock): reconnecting at once after a loss spins for ever
        # in one instant against a peer that accepts and drops at once; wait `initial` first.
        if generation != self._generation or self.connection is None or not self.running:
            return
        self.connection = None
        self._timer = self.clock.callLater(self.initial, self._connect)

    # -- waiters ---------------------------------------------------------------------------------
    def whenConnected(self, timeout: Optional[float] = None) -> "Deferred[object]":
        if self.connection is not None:
            return succeed(self.connection)
        if not self.running:
            return fail(ServiceStopped())
        w = _Waiter(Deferred(lambda d: self._cancel_waiter(w)))
        if timeout is not None:
            w.timer = self.clock.callLater(timeout, self._waiter_timeout, w)
        self._waiters.append(w)
        return w.d

    def _cancel_waiter(self, w: _Waiter) -> None:
        if w in self._waiters:
            self._waiters.remove(w)
        self._clear_waiter_timer(w)

    def _waiter_timeout(self, w: _Waiter) -> None:
        w.timer = None
        if w in self._waiters:
            self._waiters.remove(w)
        w.d.errback(ConnectTimeout())


class StopKeepsBackoffTimer(ReconnectingService):
    """Bug: stop() forgets the backoff timer, so a stopped service connects again later."""

    def _cancel_backoff(self) -> None:
        pass


class WaiterDeadlineNotCleared(ReconnectingService):
    """Bug: on connect the waiters' deadline timers stay armed; each later errbacks a fired Deferred."""

    def _clear_waiter_timer(self, w: _Waiter) -> None:
        pass

    def _cancel_waiter(self, w: _Waiter) -> None:
        if w in self._waiters:
            self._waiters.remove(w)
        if w.timer is not None and w.timer.active():
            w.timer.cancel()


class BackoffNotReset(ReconnectingService):
    """Bug: a successful connection does not reset the failure count; after a loss the backoff
    resumes from where it was instead of from `initial`."""

    def _reset_backoff(self) -> None:
        pass
