"""A coalescing debouncer for Twisted code.

``call(key)`` returns a Deferred.  The first call for a key opens a window of ``window`` seconds
(a ``clock.callLater``); every further call for that key inside the window joins the same batch.
When the window closes, ``work(key)`` runs once (it may return a value, a Deferred, or raise) and
every caller of the batch gets the shared result, or the shared error.  A call arriving while the
work for its key is already running opens a new window (it must not get a result computed from
a run that started before it called).

Cancelling one caller's Deferred detaches only that caller: the shared work still runs for the
others.

Promises:
  * one execution of ``work`` per window per key, however many callers joined;
  * every caller's Deferred fires exactly once, with the batch's result or error;
  * the result a caller gets comes from a run of ``work`` that started after that caller called;
  * no error is left unhandled, no timer is left pending once every batch is delivered.

Written blind (as an outside user) for the review in docs/reviews/outside-user.md.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Hashable, List

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class _Batch:
    def __init__(self) -> None:
        self.waiters: List[Deferred[Any]] = []
        self.timer: IDelayedCall | None = None


class Debouncer:
    """Correct coalescing debouncer."""

    def __init__(
        self, clock: IReactorTime, window: float, work: Callable[[Hashable], Any]
    ) -> None:
        self._clock = clock
        self._window = window
        self._work = work
        self._open: Dict[Hashable, _Batch] = {}
        self.executions = 0

    def call(self, key: Hashable) -> "Deferred[Any]":
        batch = self._open.get(key)
        if batch is None:
            batch = _Batch()
            self._open[key] = batch
            batch.timer = self._clock.callLater(self._window, self._fire, key, batch)
        d: Deferred[Any] = Deferred()
        batch.waiters.append(d)
        return d

    def pending(self) -> int:
        return len(self._open)

    def _start(self, key: Hashable) -> "Deferred[Any]":
        return maybeDeferred(self._work, key)

    def _fire(self, key: Hashable, batch: _Batch) -> None:
        # Close the window before running the work: later callers open a new window.
        if self._open.get(key) is batch:
            del self._open[key]
        self.executions += 1
        d = self._start(key)
        d.addBoth(self._deliver, batch.waiters)

    def _deliver(self, result: Any, waiters: List["Deferred[Any]"]) -> None:
        for w in waiters:
            if w.called:  # this caller cancelled: it is detached
                continue
            if isinstance(result, Failure):
                w.errback(result)
            else:
                w.callback(result)
        return None  # the batch's own chain is finished: the error went to the callers


class SyncRaiseDebouncer(Debouncer):
    """PLANTED BUG: runs ``work`` directly instead of through maybeDeferred, so a work function
    that raises synchronously throws out of the timer callback: the exception is logged by the
    reactor and every caller of that batch waits forever."""

    def _start(self, key: Hashable) -> "Deferred[Any]":
        result = self._work(key)  # BUG: a synchronous raise escapes
        if isinstance(result, Deferred):
            return result
        d: Deferred[Any] = Deferred()
        d.callback(result)
        return d


class LeakyErrorDebouncer(Debouncer):
    """PLANTED BUG: the delivery step passes the failure on down the batch's own chain after
    handing it to the callers, so each failed batch also leaves an 'Unhandled error in
    Deferred' behind when the chain is garbage collected."""

    def _deliver(self, result: Any, waiters: List["Deferred[Any]"]) -> Any:
        super()._deliver(result, waiters)
        return result  # BUG: a Failure stays at the end of the chain, unhandled
