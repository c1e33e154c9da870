"""An asynchronous connection pool: bounded size, async connect with a timeout, a checkout timeout,
idle eviction and a maximum connection lifetime.

Written the way a Twisted service would ship it (plain Deferred callbacks, ``addTimeout`` on the
connect, a timer per connection for its lifetime and its idle time), against ``IReactorTime`` so a
``task.Clock`` can drive it.

(Round 5's first version measured ages by subtracting ``clock.seconds()`` readings, with a
``LoopingCall`` reaper: the harness showed a connection past its lifetime handed out after the
wall clock was set back. Ages are now timers, which run on monotonic time.)

Promises:

1. at most ``max_size`` connections exist at once (connecting + idle + checked out);
2. every ``acquire()`` Deferred fires exactly once: with a :class:`Lease`, with :class:`PoolTimeout`
   no later than ``checkout_timeout`` after the call, with the connect error when the connect made
   for it failed, with :class:`PoolClosed`, or with ``CancelledError`` when the caller cancels it;
3. a connection is checked out by at most one holder at a time, and a connection older than
   ``max_lifetime`` (or idle longer than ``idle_timeout``) is never handed out;
4. a cancelled ``acquire()`` leaves nothing behind (no timer, no queued waiter, no lost connection);
5. every connection that was opened is eventually closed once the pool is closed and the leases
   are released; after ``close()`` no timer of the pool is left.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

_log = Logger()


class PoolTimeout(Exception):
    """No connection became available within the checkout timeout."""


class PoolClosed(Exception):
    """The pool was closed before a connection could be handed out."""


class _Conn:
    """One pooled connection and its bookkeeping (identity-hashed)."""

    __slots__ = ("conn", "created", "expired", "life_timer", "idle_timer")

    def __init__(self, conn: Any, created: float) -> None:
        self.conn = conn
        self.created = created
        self.expired = False
        self.life_timer: IDelayedCall | None = None
        self.idle_timer: IDelayedCall | None = None


class _Waiter:
    __slots__ = ("d", "timer")

    def __init__(self) -> None:
        self.d: Deferred[Lease] = Deferred()
        self.timer: IDelayedCall | None = None


class Lease:
    """A checked-out connection; give it back with :meth:`release` exactly once."""

    def __init__(self, pool: ConnectionPool, rec: _Conn) -> None:
        self._pool = pool
        self._rec = rec
        self.released = False

    @property
    def connection(self) -> Any:
        return self._rec.conn

    @property
    def created(self) -> float:
        return self._rec.created

    def release(self, broken: bool = False) -> None:
        self._pool._release(self, broken)


class ConnectionPool:
    def __init__(
        self,
        reactor: IReactorTime,
        connect: Callable[[], Deferred[Any]],
        disconnect: Callable[[Any], object],
        *,
        max_size: int = 4,
        checkout_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        idle_timeout: float = 30.0,
        max_lifetime: float = 300.0,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._reactor = reactor
        self._connect = connect
        self._disconnect = disconnect
        self.max_size = max_size
        self.checkout_timeout = checkout_timeout
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._idle: list[_Conn] = []  # LIFO: the most recently used connection is reused first
        self._in_use: set[_Conn] = set()
        # Insertion-ordered (a dict of keys to None), so close() cancels connects in the order they started:
        # a set of Deferreds iterates in address order, which differs between runs (the harness said so).
        self._connecting: dict[Deferred[Any], None] = {}
        self._waiters: deque[_Waiter] = deque()
        self._closed = False
        self.opened = 0
        self.closed_count = 0

    # -- introspection ---------------------------------------------------------------------------
    def size(self) -> int:
        return len(self._idle) + len(self._in_use) + len(self._connecting)

    def idle_count(self) -> int:
        return len(self._idle)

    def waiting(self) -> int:
        return len(self._waiters)

    # -- checkout --------------------------------------------------------------------------------
    def acquire(self) -> Deferred[Lease]:
        if self._closed:
            return defer.fail(PoolClosed("pool is closed"))
        while self._idle:
            rec = self._idle.pop()
            self._stop_timer(rec, "idle_timer")
            if rec.expired:
                self._close_conn(rec)
                continue
            return defer.succeed(self._lease(rec))
        w = _Waiter()
        w.d = Deferred(lambda _d: self._cancel_waiter(w))
        w.timer = self._reactor.callLater(self.checkout_timeout, self._waiter_timed_out, w)
        self._waiters.append(w)
        self._maybe_connect()
        return w.d

    def _cancel_waiter(self, w: _Waiter) -> None:
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None
        try:
            self._waiters.remove(w)
        except ValueError:
            pass

    def _waiter_timed_out(self, w: _Waiter) -> None:
        w.timer = None
        self._waiters.remove(w)
        w.d.errback(PoolTimeout(f"no connection within {self.checkout_timeout}s"))

    def _pop_waiter(self) -> _Waiter:
        w = self._waiters.popleft()
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None
        return w

    def _lease(self, rec: _Conn) -> Lease:
        self._in_use.add(rec)
        return Lease(self, rec)

    @staticmethod
    def _stop_timer(rec: _Conn, name: str) -> None:
        timer = getattr(rec, name)
        if timer is not None and timer.active():
            timer.cancel()
        setattr(rec, name, None)

    def _life_over(self, rec: _Conn) -> None:
        rec.life_timer = None
        rec.expired = True
        if rec in self._idle:  # in use: closed when it comes back
            self._idle.remove(rec)
            self._close_conn(rec)

    def _idle_over(self, rec: _Conn) -> None:
        rec.idle_timer = None
        self._idle.remove(rec)
        self._close_conn(rec)

    # -- connecting ------------------------------------------------------------------------------
    def _maybe_connect(self) -> None:
        while (
            not self._closed
            and len(self._waiters) > len(self._connecting)
            and self.size() < self.max_size
        ):
            self._start_connect()

    def _start_connect(self) -> None:
        d: Deferred[Any] = defer.maybeDeferred(self._connect)
        self._connecting[d] = None
        d.addTimeout(self.connect_timeout, self._reactor)
        d.addCallbacks(
            self._connected, self._connect_failed, callbackArgs=(d,), errbackArgs=(d,)
        )

    def _connected(self, conn: Any, d: Deferred[Any]) -> None:
        self._connecting.pop(d, None)
        self.opened += 1
        rec = _Conn(conn, self._reactor.seconds())
        if self._closed:
            self._close_conn(rec)
            return
        rec.life_timer = self._reactor.callLater(self.max_lifetime, self._life_over, rec)
        self._hand_over(rec)

    def _connect_failed(self, f: Failure, d: Deferred[Any]) -> None:
        self._connecting.pop(d, None)
        if self._closed:
            return None
        if self._waiters and len(self._waiters) > len(self._connecting):
            # The connect was made for the oldest waiter that has no other connect coming: tell it why.
            self._pop_waiter().d.errback(f)
        else:
            _log.failure("connect failed (no waiter needed it)", f)
        # The slot is free again: waiters queued while the pool was full of connects need one.
        # (Found by the harness, round 5: time.timeout, a waiter timed out on an empty pool.)
        self._maybe_connect()
        return None

    def _hand_over(self, rec: _Conn) -> None:
        if self._waiters:
            w = self._pop_waiter()
            w.d.callback(self._lease(rec))
        else:
            rec.idle_timer = self._reactor.callLater(self.idle_timeout, self._idle_over, rec)
            self._idle.append(rec)

    # -- checkin ---------------------------------------------------------------------------------
    def _release(self, lease: Lease, broken: bool) -> None:
        if lease.released:
            raise RuntimeError("lease released twice")
        lease.released = True
        rec = lease._rec
        self._in_use.discard(rec)
        if broken or self._closed or rec.expired:
            self._close_conn(rec)
            self._maybe_connect()
        else:
            self._hand_over(rec)

    def _close_conn(self, rec: _Conn) -> None:
        self._stop_timer(rec, "life_timer")
        self._stop_timer(rec, "idle_timer")
        self.closed_count += 1
        d = defer.maybeDeferred(self._disconnect, rec.conn)
        d.addErrback(lambda f: _log.failure("disconnect failed", f))

    # -- shutdown --------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            self._pop_waiter().d.errback(PoolClosed("pool closed while waiting"))
        idle, self._idle = self._idle, []
        for rec in idle:
            self._close_conn(rec)
        for d in list(self._connecting):
            d.cancel()


# ----------------------------------------------------------------------------------------------
# Buggy twins (see BUGS.md). Each overrides the smallest piece of code a real bug would touch.
# ----------------------------------------------------------------------------------------------


class CancelLeaksPool(ConnectionPool):
    """P1: the canceller stops the checkout timer but leaves the waiter queued. A connection later
    handed to that cancelled Deferred raises AlreadyCalledError in the connect's callback chain, and
    the connection, already counted in use, is never released: a leaked slot per cancelled acquire."""

    def _cancel_waiter(self, w: _Waiter) -> None:
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None


class FailedConnectLeaksPool(ConnectionPool):
    """P2: a failed (or timed-out) connect is not removed from the in-flight set, so its slot is
    counted forever; after max_size failures the pool can never connect again."""

    def _connect_failed(self, f: Failure, d: Deferred[Any]) -> None:
        if self._closed:
            return None
        if self._waiters:
            self._pop_waiter().d.errback(f)
        else:
            _log.failure("connect failed (no waiter needed it)", f)
        return None


class StaleCheckoutPool(ConnectionPool):
    """P3: the lifetime timer only flags the connection (the author meant the idle timer to close
    it), and acquire() hands out whatever is idle without looking at the flag: a connection past
    max_lifetime is reused until its idle timer closes it."""

    def _life_over(self, rec: _Conn) -> None:
        rec.life_timer = None
        rec.expired = True

    def acquire(self) -> Deferred[Lease]:
        if self._closed:
            return defer.fail(PoolClosed("pool is closed"))
        if self._idle:
            rec = self._idle.pop()
            self._stop_timer(rec, "idle_timer")
            return defer.succeed(self._lease(rec))
        w = _Waiter()
        w.d = Deferred(lambda _d: self._cancel_waiter(w))
        w.timer = self._reactor.callLater(self.checkout_timeout, self._waiter_timed_out, w)
        self._waiters.append(w)
        self._maybe_connect()
        return w.d
