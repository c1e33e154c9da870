"""Buggy subjects that the rules relaxed for review 5's findings 1, 4 and 5 must still catch.

* finding 1 (``time.timeout``: a caller answered in a late wake-up by a timer
  of the subject's that was due before T was answered before T):
  ``pool_timeout_as_refusal``, a pool whose checkout timer fails the waiter
  with the connect's ``defer.TimeoutError`` (a declared reject) instead of
  ``PoolTimeout``. The checkout timer is due at T, not before: still judged.
* finding 4 (``sharing.joined``: among the executions of the key that ended
  in the instant a caller failed with an error naming none, the one whose end
  fits what the caller got served it): ``wb_reports_timeout``, a write-behind
  buffer that tells its writers their flush timed out whatever it failed with.
* finding 5 (``slot_timers``: a pool's connects in progress hold its slots;
  a waiter's timeout is judged at the moment it fired): ``pool_strands_waiter``,
  the blind pool's H1 bug (a failed connect frees its slot but no connect is
  started for the waiters queued while the pool was full of connects), which
  the connects held early in the wait must not excuse; ``pool_idle_kept``, a
  pool that leaves a returned connection idle while a job waits.

And the correct pool for the long campaigns (its connects in progress kept in
insertion order since the harness called the blind pool's ``close()``, which
cancelled them in a set's address order, nondeterministic):
``pool_full_ordered`` (every clock fault, a metrics loop beside it: finding 1)
and ``pool_hang_ordered`` (connects may hang: finding 5).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from twisted.internet import defer

from twisted.python.failure import Failure

from scenarios.review.round5.connpool import ConnectionPool, Lease, _Waiter
from scenarios.review.round5.targets import WB_FLUSH_TIMEOUT_MS, MeteredPoolGate, _pool, _wb
from scenarios.review.round5.writebehind import WriteBehind, _Batch, _Key


class TimeoutAsRefusalPool(ConnectionPool):
    """Bug: the checkout timeout fails the waiter with ``defer.TimeoutError`` (the connect timeout's type,
    which the target declares a legitimate refusal) instead of ``PoolTimeout``."""

    def _waiter_timed_out(self, w: _Waiter) -> None:
        w.timer = None
        self._waiters.remove(w)
        w.d.errback(defer.TimeoutError(self.checkout_timeout, "no connection"))


pool_timeout_as_refusal = _pool(TimeoutAsRefusalPool, "pool whose checkout timeout fails waiters with defer.TimeoutError",
                                menu=None, modes=("ok", "slow", "fail", "hang"), gate=MeteredPoolGate)


class TimeoutReportingWriteBehind(WriteBehind):
    """Bug: a flush that gave up is reported to its writers as a timeout, whatever its last attempt failed with."""

    def _finished(self, key: Hashable, k: _Key, batch: _Batch, error: BaseException | None) -> None:
        if error is not None and not isinstance(error, defer.TimeoutError):
            error = defer.TimeoutError(0.2, "flush")
        super()._finished(key, k, batch, error)


wb_reports_timeout = _wb(TimeoutReportingWriteBehind, "write-behind that reports every failed flush as a timeout",
                         flush_timeout_ms=WB_FLUSH_TIMEOUT_MS)


class StrandingPool(ConnectionPool):
    """Bug (the blind pool's H1): a failed connect frees its slot, but no connect is started for the waiters
    that queued while the pool was full of connects: they wait for the checkout timeout on an empty pool."""

    def _connect_failed(self, f: Failure, d: defer.Deferred[Any]) -> None:
        self._connecting.pop(d, None)
        if self._closed:
            return None
        if self._waiters and len(self._waiters) > len(self._connecting):
            self._pop_waiter().d.errback(f)
        return None


class IdleKeptPool(ConnectionPool):
    """Bug: a returned connection goes back to the idle list even when a job waits for one."""

    _releasing = False

    def _release(self, lease: Lease, broken: bool) -> None:
        self._releasing = True
        try:
            super()._release(lease, broken)
        finally:
            self._releasing = False

    def _hand_over(self, rec: Any) -> None:
        if not self._releasing:
            super()._hand_over(rec)
            return
        rec.idle_timer = self._reactor.callLater(self.idle_timeout, self._idle_over, rec)
        self._idle.append(rec)


pool_strands_waiter = _pool(StrandingPool, "pool that connects no more after failed connects (the blind pool's H1)",
                            modes=("ok", "slow", "fail", "hang"))
pool_idle_kept = _pool(IdleKeptPool, "pool that keeps a returned connection idle while a job waits",
                       modes=("ok", "slow", "fail", "hang"))


pool_full_ordered = _pool(ConnectionPool, "the round-5 pool (connects in order) with a metrics loop, every clock fault",
                          menu=None, modes=("ok", "slow", "fail", "hang"), gate=MeteredPoolGate)
pool_hang_ordered = _pool(ConnectionPool, "the round-5 pool (connects in order), connects may hang",
                          modes=("ok", "slow", "fail", "hang"))
