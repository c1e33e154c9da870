"""A connection pool with a size cap, idle eviction, a max lifetime and a health check on reuse.

Written blind (review round 6, phase 1) from general Twisted knowledge, before reading the harness.

Promises of :class:`HealthPool`:

* never more than ``max_size`` connections exist at once (connecting, idle, checked or lent);
* a connection idle for ``idle_timeout`` is closed (and no sooner);
* no connection whose age is ``max_lifetime`` or more is ever handed out; an idle connection is
  closed when it reaches its lifetime;
* a connection is health-checked before it is reused from the idle set, and one that fails the
  check is closed and never handed out;
* the pool never closes a connection that is lent out;
* waiters are served in FIFO order; a cancelled waiter is removed and never gets a connection;
* ``close()`` closes every idle connection and fails every waiter; connections released after it
  are closed.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class PoolClosed(Exception):
    """The pool was closed while the caller waited (or before it asked)."""


class Conn:
    """A pooled connection: the pool only needs ``created_at``, ``close()`` and ``closed``."""

    def __init__(self, ident: int, created_at: float) -> None:
        self.ident = ident
        self.created_at = created_at
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"Conn({self.ident})"


class HealthPool:
    """The correct pool."""

    def __init__(
        self,
        clock: IReactorTime,
        connect: Callable[[], "Deferred[Any]"],
        health_check: Callable[[Any], "Deferred[bool]"],
        max_size: int,
        idle_timeout: float,
        max_lifetime: float,
    ) -> None:
        self.clock = clock
        self._connect = connect
        self._health_check = health_check
        self.max_size = max_size
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._open = 0  # connections that exist: connecting + idle + checking + lent
        self._idle: deque[tuple[Any, float, IDelayedCall]] = deque()  # (conn, idle_since, timer)
        self._waiters: deque[Deferred[Any]] = deque()
        self._closed = False

    # -- public API -------------------------------------------------------------------------
    def acquire(self) -> "Deferred[Any]":
        if self._closed:
            return fail(PoolClosed())
        d: Deferred[Any] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        self._pump()
        return d

    def release(self, conn: Any) -> None:
        if self._closed or self._expired(conn):
            self._discard(conn)
            self._pump()
            return
        self._park(conn)
        self._pump()

    def close(self) -> None:
        self._closed = True
        while self._idle:
            conn, _, timer = self._idle.popleft()
            if timer.active():
                timer.cancel()
            self._discard(conn)
        while self._waiters:
            self._waiters.popleft().errback(PoolClosed())

    @property
    def open_count(self) -> int:
        return self._open

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    # -- internals --------------------------------------------------------------------------
    def _expired(self, conn: Any) -> bool:
        return self.clock.seconds() - conn.created_at >= self.max_lifetime

    def _discard(self, conn: Any) -> None:
        conn.close()
        self._open -= 1

    def _park(self, conn: Any) -> None:
        now = self.clock.seconds()
        deadline = min(now + self.idle_timeout, conn.created_at + self.max_lifetime)
        timer = self.clock.callLater(max(0.0, deadline - now), self._evict, conn)
        self._idle.append((conn, now, timer))

    def _take_idle(self) -> Any:
        conn, _, timer = self._idle.pop()  # most recently used first
        if timer.active():
            timer.cancel()
        return conn

    def _evict(self, conn: Any) -> None:
        for i, (c, _, _) in enumerate(self._idle):
            if c is conn:
                del self._idle[i]
                self._discard(conn)
                self._pump()
                return

    def _cancel_waiter(self, d: "Deferred[Any]") -> None:
        try:
            self._waiters.remove(d)
        except ValueError:
            pass  # already paired with a connection being made or checked

    def _pump(self) -> None:
        while self._waiters and not self._closed:
            if self._idle:
                conn = self._take_idle()
                if self._expired(conn):
                    self._discard(conn)
                    continue
                waiter = self._waiters.popleft()
                self._check(conn, waiter)
            elif self._open < self.max_size:
                waiter = self._waiters.popleft()
                self._open += 1
                self._make(waiter)
            else:
                return

    def _make(self, waiter: "Deferred[Any]") -> None:
        def made(conn: Any) -> None:
            self._deliver(conn, waiter)

        def failed(f: Any) -> None:
            self._open -= 1
            if not waiter.called:
                waiter.errback(f)
            self._pump()

        maybeDeferred(self._connect).addCallbacks(made, failed)

    def _check(self, conn: Any, waiter: "Deferred[Any]") -> None:
        def checked(ok: bool) -> None:
            if ok and not self._expired(conn):
                self._deliver(conn, waiter)
                return
            self._discard(conn)
            if not waiter.called:
                if self._closed:
                    waiter.errback(PoolClosed())
                else:
                    self._waiters.appendleft(waiter)
            self._pump()

        def broken(f: Any) -> None:
            checked(False)

        maybeDeferred(self._health_check, conn).addCallbacks(checked, broken)

    def _deliver(self, conn: Any, waiter: "Deferred[Any]") -> None:
        if waiter.called:  # the waiter was cancelled while we connected or checked
            self.release(conn)
            return
        if self._closed:
            self._discard(conn)
            waiter.errback(PoolClosed())
            return
        waiter.callback(conn)


class EvictsLentPool(HealthPool):
    """Twin A: reusing an idle connection does not cancel its eviction timer, and the eviction
    handler closes whatever connection it was given without checking it is still idle."""

    def _take_idle(self) -> Any:
        conn, _, _timer = self._idle.pop()
        return conn  # BUG: the eviction timer stays armed

    def _evict(self, conn: Any) -> None:
        for i, (c, _, _) in enumerate(self._idle):
            if c is conn:
                del self._idle[i]
                break
        else:
            # BUG: "not idle any more? it was already taken: close it anyway, it is stale"
            conn.close()
            self._open -= 1
            self._pump()
            return
        self._discard(conn)
        self._pump()


class DoubleCountPool(HealthPool):
    """Twin B: a connection that fails its health check is counted out twice (once by the
    discard, once more by the check's own bookkeeping), so the pool later opens more than
    ``max_size`` connections."""

    def _check(self, conn: Any, waiter: "Deferred[Any]") -> None:
        def checked(ok: bool) -> None:
            if ok and not self._expired(conn):
                self._deliver(conn, waiter)
                return
            self._discard(conn)
            self._open -= 1  # BUG: _discard already did this
            if not waiter.called:
                if self._closed:
                    waiter.errback(PoolClosed())
                else:
                    self._waiters.appendleft(waiter)
            self._pump()

        def broken(f: Any) -> None:
            checked(False)

        maybeDeferred(self._health_check, conn).addCallbacks(checked, broken)


class SlidingLifetimePool(HealthPool):
    """Twin C: the lifetime is measured from when the connection was last parked, not from when it
    was created, so a connection in steady use lives forever."""

    def _expired(self, conn: Any) -> bool:
        since = getattr(conn, "_parked_at", conn.created_at)
        return self.clock.seconds() - since >= self.max_lifetime

    def _park(self, conn: Any) -> None:
        now = self.clock.seconds()
        conn._parked_at = now  # BUG: the age restarts on every release
        deadline = min(now + self.idle_timeout, now + self.max_lifetime)
        timer = self.clock.callLater(max(0.0, deadline - now), self._evict, conn)
        self._idle.append((conn, now, timer))


__all__ = [
    "CancelledError",
    "Conn",
    "DoubleCountPool",
    "EvictsLentPool",
    "HealthPool",
    "PoolClosed",
    "SlidingLifetimePool",
]


class DropsOnCancelPool(HealthPool):
    """Twin D (added in phase 2): a connection made (or checked) for a waiter that cancelled in the
    meantime is dropped on the floor, still open and still counted, so every such cancel shrinks
    the pool for good."""

    def _deliver(self, conn: Any, waiter: "Deferred[Any]") -> None:
        if waiter.called:
            return  # BUG: "nobody wants it"; neither released nor closed
        super()._deliver(conn, waiter)
