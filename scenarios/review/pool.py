"""A connection-style resource pool for Twisted code.

``acquire(timeout=None)`` returns a Deferred firing with a resource; ``release(resource)`` gives
it back.  The pool creates resources with ``factory()`` (value or Deferred) up to ``max_size``
(idle + in use + being created), hands them out FIFO, and evicts resources idle for longer than
``idle_timeout`` with a ``task.LoopingCall`` sweeping every ``sweep_interval`` seconds (each
evicted resource goes to ``destroy``).  ``acquire(timeout)`` uses ``Deferred.addTimeout``: a
waiter that times out fails with ``TimeoutError`` and leaves the queue; the pool loses no
capacity.  ``close()`` stops the sweeper, fails every waiter and destroys idle resources;
resources released after close are destroyed.

Promises:
  * never more than ``max_size`` resources alive at once; a resource is never handed to two
    holders at once;
  * every acquire fires: with a resource, TimeoutError, the factory's error, or PoolClosed;
  * capacity is never lost: if there are waiters, either the pool is full of busy resources or
    one is being created;
  * after close() and every resource released, every created resource has been destroyed and
    no timer is pending.

Written blind (as an outside user) for the review in docs/reviews/outside-user.md.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, List, Optional, Set, Tuple

from twisted.internet import task
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class PoolClosed(Exception):
    """The pool was closed while this acquire waited (or before it was made)."""


class Pool:
    """Correct pool."""

    def __init__(
        self,
        clock: IReactorTime,
        factory: Callable[[], Any],
        destroy: Callable[[Any], None],
        max_size: int,
        idle_timeout: float,
        sweep_interval: float,
    ) -> None:
        self._clock = clock
        self._factory = factory
        self._destroy = destroy
        self._max = max_size
        self._idle_timeout = idle_timeout
        self._idle: List[Tuple[Any, float]] = []
        self._in_use: Set[Any] = set()
        self._creating = 0
        self._waiters: Deque[Deferred[Any]] = deque()
        self._closed = False
        self._sweeper = task.LoopingCall(self._evict)
        self._sweeper.clock = clock
        self._sweeper.start(sweep_interval, now=False)

    # -- public -------------------------------------------------------------------------------

    def acquire(self, timeout: Optional[float] = None) -> "Deferred[Any]":
        if self._closed:
            return fail(PoolClosed())
        d: Deferred[Any] = self._new_waiter()
        self._waiters.append(d)
        self._dispatch()
        if timeout is not None and not d.called:
            d.addTimeout(timeout, self._clock)
        return d

    def release(self, resource: Any) -> None:
        if resource not in self._in_use:
            raise ValueError(f"release of {resource!r}, which this pool did not hand out")
        self._in_use.discard(resource)
        if self._closed:
            self._destroy(resource)
            return
        self._idle.append((resource, self._clock.seconds()))
        self._dispatch()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sweeper.running:
            self._sweeper.stop()
        waiters, self._waiters = self._waiters, deque()
        for w in waiters:
            if not w.called:
                w.errback(PoolClosed())
        idle, self._idle = self._idle, []
        for r, _ in idle:
            self._destroy(r)

    @property
    def size(self) -> int:
        return len(self._idle) + len(self._in_use) + self._creating

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # -- internals ----------------------------------------------------------------------------

    def _new_waiter(self) -> "Deferred[Any]":
        return Deferred(self._cancel_waiter)

    def _cancel_waiter(self, d: "Deferred[Any]") -> None:
        try:
            self._waiters.remove(d)
        except ValueError:
            pass

    def _room(self) -> bool:
        return self.size < self._max

    def _hand_out(self, w: "Deferred[Any]", r: Any) -> None:
        self._in_use.add(r)
        w.callback(r)

    def _dispatch(self) -> None:
        while self._waiters and self._idle and not self._closed:
            r, _ = self._idle.pop()  # most recently used: the warmest
            w = self._waiters.popleft()
            self._hand_out(w, r)
        while (
            not self._closed
            and len(self._waiters) > self._creating
            and self._room()
        ):
            self._creating += 1
            maybeDeferred(self._factory).addCallbacks(self._created, self._create_failed)

    def _created(self, r: Any) -> None:
        self._creating -= 1
        if self._closed:
            self._destroy(r)
            return
        self._idle.append((r, self._clock.seconds()))
        self._dispatch()

    def _create_failed(self, f: Failure) -> None:
        self._creating -= 1
        if self._waiters:
            self._waiters.popleft().errback(f)
        self._dispatch()

    def _evict(self) -> None:
        now = self._clock.seconds()
        keep: List[Tuple[Any, float]] = []
        for r, since in self._idle:
            if now - since >= self._idle_timeout:
                self._evicted(r)
            else:
                keep.append((r, since))
        self._idle = keep

    def _evicted(self, r: Any) -> None:
        self._destroy(r)


class TimeoutLeakPool(Pool):
    """PLANTED BUG: waiters are plain Deferreds (no canceller), so a waiter that times out stays
    in the queue.  The next release pops it, marks the resource in use, and skips the callback
    because the waiter already fired: the resource is leaked and the pool shrinks for good."""

    def _new_waiter(self) -> "Deferred[Any]":
        return Deferred()  # BUG: no canceller; a timed-out waiter is never dequeued

    def _hand_out(self, w: "Deferred[Any]", r: Any) -> None:
        self._in_use.add(r)
        if not w.called:  # "defensive" guard that turns a crash into a silent leak
            w.callback(r)


class CountingPool(Pool):
    """PLANTED BUG: keeps a running size counter for speed, and eviction forgets to decrement
    it.  After an eviction the pool believes it is fuller than it is; once the phantom count
    reaches max_size no resource is ever created again and waiters hang."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._count = 0
        super().__init__(*args, **kwargs)

    def _room(self) -> bool:
        return self._count < self._max

    def _dispatch(self) -> None:
        while self._waiters and self._idle and not self._closed:
            r, _ = self._idle.pop()
            w = self._waiters.popleft()
            self._hand_out(w, r)
        while not self._closed and len(self._waiters) > self._creating and self._room():
            self._creating += 1
            self._count += 1
            maybeDeferred(self._factory).addCallbacks(self._created, self._create_failed)

    def _create_failed(self, f: Failure) -> None:
        self._count -= 1
        super()._create_failed(f)

    def _evicted(self, r: Any) -> None:
        self._destroy(r)  # BUG: self._count is not decremented
