"""A request coalescer: requests for one key within a short window share one upstream call.

The first ``request(key)`` opens a batch and arms a ``max_wait`` timer; requests for the same key
join the batch until the timer fires or the batch holds ``max_size`` callers, then a single
``upstream(key)`` call is made.  Each caller gets its own Deferred with the answer; one caller's
cancel removes only that caller (the upstream call is cancelled only when no caller is left).
Each upstream call is given ``call_timeout`` seconds; past it, it is cancelled and every caller
of the batch fails with :class:`UpstreamTimeout`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class UpstreamTimeout(Exception):
    """The upstream call took longer than ``call_timeout``."""


Upstream = Callable[[Any], "defer.Deferred[Any]"]


class _Batch:
    def __init__(self, key: Any) -> None:
        self.key = key
        self.callers: List[defer.Deferred[Any]] = []
        self.timer: Optional[IDelayedCall] = None
        self.call: Optional[defer.Deferred[Any]] = None
        self.call_timer: Optional[IDelayedCall] = None
        self.timed_out = False
        self.sent = False


class RequestCoalescer:
    """Merge concurrent requests per key into one upstream call."""

    def __init__(self, clock: IReactorTime, upstream: Upstream, max_wait: float,
                 max_size: int, call_timeout: float) -> None:
        if max_wait < 0 or max_size < 1 or call_timeout <= 0:
            raise ValueError("max_wait >= 0, max_size >= 1, call_timeout > 0")
        self.clock = clock
        self.upstream = upstream
        self.max_wait = max_wait
        self.max_size = max_size
        self.call_timeout = call_timeout
        self.open: Dict[Any, _Batch] = {}
        self.upstream_calls = 0

    def request(self, key: Any) -> "defer.Deferred[Any]":
        """A Deferred for ``key``'s answer, shared upstream with concurrent requests."""
        batch = self.open.get(key)
        if batch is None:
            batch = _Batch(key)
            self.open[key] = batch
            batch.timer = self.clock.callLater(self.max_wait, self._send, batch)
        d: defer.Deferred[Any] = defer.Deferred(lambda d: self._leave(batch, d))
        batch.callers.append(d)
        if self._full(batch):
            self._send(batch)
        return d

    # -- internals -------------------------------------------------------------------------
    def _full(self, batch: _Batch) -> bool:
        return len(batch.callers) >= self.max_size

    def _cancel_window(self, batch: _Batch) -> None:
        if batch.timer is not None and batch.timer.active():
            batch.timer.cancel()
        batch.timer = None

    def _send(self, batch: _Batch) -> None:
        self._cancel_window(batch)
        if batch.sent:
            return
        batch.sent = True
        if self.open.get(batch.key) is batch:
            del self.open[batch.key]
        self.upstream_calls += 1
        call = defer.maybeDeferred(self.upstream, batch.key)
        batch.call = call
        batch.call_timer = self.clock.callLater(self.call_timeout, self._call_expired, batch)
        call.addBoth(self._answered, batch)

    def _call_expired(self, batch: _Batch) -> None:
        batch.call_timer = None
        batch.timed_out = True
        if batch.call is not None:
            batch.call.cancel()

    def _answered(self, outcome: Any, batch: _Batch) -> None:
        if batch.call_timer is not None and batch.call_timer.active():
            batch.call_timer.cancel()
        batch.call_timer = None
        if batch.timed_out and isinstance(outcome, Failure) and outcome.check(defer.CancelledError):
            outcome = Failure(UpstreamTimeout(batch.key))
        callers, batch.callers = batch.callers, []
        for d in callers:
            if isinstance(outcome, Failure):
                d.errback(outcome)
            else:
                d.callback(outcome)
        return None

    def _leave(self, batch: _Batch, d: "defer.Deferred[Any]") -> None:
        if d in batch.callers:
            batch.callers.remove(d)
        if batch.callers:
            return
        if not batch.sent:
            self._cancel_window(batch)
            if self.open.get(batch.key) is batch:
                del self.open[batch.key]
        elif batch.call is not None:
            self._abandon(batch)

    def _abandon(self, batch: _Batch) -> None:
        if batch.call_timer is not None and batch.call_timer.active():
            batch.call_timer.cancel()
        batch.call_timer = None
        assert batch.call is not None
        batch.call.cancel()


class OversizeCoalescer(RequestCoalescer):
    """Bug: a batch takes max_size + 1 callers before it is sent."""

    def _full(self, batch: _Batch) -> bool:
        return len(batch.callers) > self.max_size


class CancelAllCoalescer(RequestCoalescer):
    """Bug: one caller's cancel cancels the shared upstream call for every caller."""

    def _leave(self, batch: _Batch, d: "defer.Deferred[Any]") -> None:
        if d in batch.callers:
            batch.callers.remove(d)
        if batch.sent and batch.call is not None:
            self._abandon(batch)
        elif not batch.callers:
            self._cancel_window(batch)
            if self.open.get(batch.key) is batch:
                del self.open[batch.key]


class DoubleSendCoalescer(RequestCoalescer):
    """Bug: a batch sent because it is full keeps its window timer, which sends it again."""

    def _send(self, batch: _Batch) -> None:
        if batch.timer is not None and not batch.timer.active():
            batch.timer = None
        if self.open.get(batch.key) is batch:
            del self.open[batch.key]
        batch.sent = True
        self.upstream_calls += 1
        call = defer.maybeDeferred(self.upstream, batch.key)
        batch.call = call
        batch.call_timer = self.clock.callLater(self.call_timeout, self._call_expired, batch)
        call.addBoth(self._answered, batch)
