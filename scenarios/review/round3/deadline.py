"""A client with a whole-request deadline: a request first waits for one of ``connections``
connections (FIFO), then runs; the deadline ``deadline`` seconds after the call covers both
stages, so the time spent waiting shrinks what is left for the request itself.  When it passes
the caller fails with ``defer.TimeoutError`` at once, and the wait or the running request is
cancelled.  Plain Twisted, clock passed in."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.internet import defer


@dataclass(eq=False)
class _Call:
    work: Callable[[], Any]
    caller: defer.Deferred
    timer: Any = None
    acquiring: Optional[defer.Deferred] = None
    running: Optional[defer.Deferred] = None


class DeadlineClient:
    def __init__(self, clock: Any, connections: int = 2, deadline: float = 0.3) -> None:
        self.clock = clock
        self.deadline = deadline
        self.connections = defer.DeferredSemaphore(connections)

    def request(self, work: Callable[[], Any]) -> defer.Deferred:
        call = _Call(work, defer.Deferred(lambda _: self._abort(call)))
        self._arm(call)
        call.acquiring = self.connections.acquire()
        call.acquiring.addCallbacks(self._connected, self._not_connected,
                                    callbackArgs=(call,), errbackArgs=(call,))
        return call.caller

    # -- the deadline ------------------------------------------------------------------
    def _arm(self, call: _Call) -> None:
        call.timer = self.clock.callLater(self.deadline, self._expired, call)

    def _expired(self, call: _Call) -> None:
        call.caller.errback(defer.TimeoutError(f"no answer within {self.deadline}s"))
        self._abort(call)

    def _disarm(self, call: _Call) -> None:
        if call.timer is not None and call.timer.active():
            call.timer.cancel()

    def _abort(self, call: _Call) -> None:
        """The caller gave up (cancel) or the deadline passed: stop whatever stage it is in."""
        self._disarm(call)
        if call.acquiring is not None:
            call.acquiring.cancel()
        elif call.running is not None:
            call.running.cancel()

    # -- the stages --------------------------------------------------------------------
    def _connected(self, _: Any, call: _Call) -> None:
        call.acquiring = None
        call.running = defer.maybeDeferred(call.work)
        self._limit_running(call)
        call.running.addBoth(self._answered, call)

    def _limit_running(self, call: _Call) -> None:
        """The request's own stage needs no timer: the call's deadline covers it."""

    def _not_connected(self, failure: Any, call: _Call) -> None:
        failure.trap(defer.CancelledError)   # our own cancel of the wait
        call.acquiring = None

    def _answered(self, outcome: Any, call: _Call) -> None:
        call.running = None
        self.connections.release()
        self._disarm(call)
        if not call.caller.called:
            call.caller.callback(outcome)
        return None


class DeadlineClientFullBudget(DeadlineClient):
    """BUG: the deadline is passed down to each stage whole instead of what is left of it: the
    wait for a connection gets ``deadline`` and then the request gets ``deadline`` again, so a
    caller who waited for a connection hears of the timeout up to twice as late."""

    def _arm(self, call: _Call) -> None:
        call.timer = self.clock.callLater(self.deadline, self._expired_waiting, call)

    def _expired_waiting(self, call: _Call) -> None:
        if call.acquiring is not None:       # still waiting: time out the wait
            self._expired(call)

    def _connected(self, _: Any, call: _Call) -> None:
        self._disarm(call)
        call.acquiring = None
        call.running = defer.maybeDeferred(call.work)
        call.timer = self.clock.callLater(self.deadline, self._expired, call)
        call.running.addBoth(self._answered, call)


class DeadlineClientWallClock(DeadlineClient):
    """BUG: what is left of the deadline for the request is computed from ``clock.seconds()``
    readings (``deadline - (now - called_at)``); on a real reactor those are wall-clock time,
    so a clock step backwards during the wait gives the request more time than the caller has."""

    def request(self, work: Callable[[], Any]) -> defer.Deferred:
        called_at = self.clock.seconds()
        call = _Call(work, defer.Deferred(lambda _: self._abort(call)))
        call.acquiring = self.connections.acquire()
        call.acquiring.addCallbacks(self._connected_at, self._not_connected,
                                    callbackArgs=(call, called_at), errbackArgs=(call,))
        if call.acquiring is not None:       # the wait gets the whole deadline
            self._arm(call)
        return call.caller

    def _connected_at(self, _: Any, call: _Call, called_at: float) -> None:
        self._disarm(call)
        call.acquiring = None
        left = self.deadline - (self.clock.seconds() - called_at)
        call.running = defer.maybeDeferred(call.work)
        call.timer = self.clock.callLater(max(left, 0), self._expired, call)
        call.running.addBoth(self._answered, call)


class DeadlineClientLazyWait(DeadlineClient):
    """BUG: when the deadline passes during the wait for a connection, the wait is not
    cancelled; the expiry is only noticed when a connection comes, and the caller hears of its
    timeout then (or never, if no connection frees up)."""

    def _expired(self, call: _Call) -> None:
        if call.acquiring is not None:
            call.expired = True               # noticed in _connected
            return
        super()._expired(call)

    def _connected(self, _: Any, call: _Call) -> None:
        if getattr(call, "expired", False):
            call.acquiring = None
            if not call.caller.called:
                call.caller.errback(defer.TimeoutError(f"no answer within {self.deadline}s"))
            self.connections.release()
            return
        super()._connected(_, call)
