"""A bulkhead: at most ``n`` calls run at once, at most ``q`` wait; the rest are rejected.

``call(fn, *args, deadline=...)`` runs ``fn(*args)`` (which returns a Deferred) when a slot is free.
With no slot free it queues the call if fewer than ``q`` are waiting, else fails at once with
:class:`BulkheadFull`. A queued call that has waited ``deadline`` seconds (its own ``callLater``)
leaves the queue and fails with :class:`QueueDeadline`. Cancelling a queued call takes it off the
queue; cancelling a running call cancels ``fn``'s Deferred. The slot is freed whatever the outcome.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class BulkheadFull(Exception):
    """All ``n`` slots are busy and ``q`` calls already wait."""


class QueueDeadline(Exception):
    """A queued call waited longer than its deadline."""


@dataclass
class _Waiter:
    fn: Callable[..., Deferred[Any]]
    args: tuple[Any, ...]
    result: Deferred[Any] = field(default_factory=Deferred)
    timer: IDelayedCall | None = None
    inner: Deferred[Any] | None = None  # fn's Deferred once the call runs


class Bulkhead:
    """Bounds concurrency to ``n`` and the wait queue to ``q``."""

    def __init__(self, clock: IReactorTime, n: int, q: int, deadline: float) -> None:
        if n < 1 or q < 0:
            raise ValueError("need n >= 1 and q >= 0")
        self.clock = clock
        self.n = n
        self.q = q
        self.deadline = deadline
        self.running = 0
        self.max_running = 0
        self.max_queued = 0
        self._queue: deque[_Waiter] = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def call(self, fn: Callable[..., Deferred[Any]], *args: Any,
             deadline: float | None = None) -> Deferred[Any]:
        if self.running < self.n:
            return self._run(fn, args)
        if not self._has_room():
            return fail(BulkheadFull(f"{self.running} running, {len(self._queue)} waiting"))
        w = self._make_waiter(fn, args)
        wait = self.deadline if deadline is None else deadline
        w.timer = self.clock.callLater(wait, self._expire, w)
        self._queue.append(w)
        self.max_queued = max(self.max_queued, len(self._queue))
        return w.result

    # -- internals --------------------------------------------------------------------------
    def _has_room(self) -> bool:
        return len(self._queue) < self.q

    def _make_waiter(self, fn: Callable[..., Deferred[Any]], args: tuple[Any, ...]) -> _Waiter:
        w = _Waiter(fn, args)

        def cancel(_d: Deferred[Any]) -> None:
            if w in self._queue:  # still waiting: leave the queue
                self._queue.remove(w)
                self._clear_timer(w)
            elif w.inner is not None:  # running: cancel the call itself
                w.inner.cancel()

        w.result = Deferred(cancel)
        return w

    def _run(self, fn: Callable[..., Deferred[Any]], args: tuple[Any, ...]) -> Deferred[Any]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        d = maybeDeferred(fn, *args)
        d.addBoth(self._release)
        return d

    def _release(self, result: Any) -> Any:
        self.running -= 1
        self._next()
        return result

    def _next(self) -> None:
        while self._queue and self.running < self.n:
            w = self._queue.popleft()
            self._clear_timer(w)
            self._start_waiter(w)

    def _start_waiter(self, w: _Waiter) -> None:
        w.inner = self._run(w.fn, w.args)
        w.inner.chainDeferred(w.result)

    def _expire(self, w: _Waiter) -> None:
        w.timer = None
        if w in self._queue:
            self._queue.remove(w)
            w.result.errback(QueueDeadline(f"waited {self.deadline}s"))

    def _clear_timer(self, w: _Waiter) -> None:
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None


# -- buggy twins -----------------------------------------------------------------------------
class BulkheadQueueOffByOne(Bulkhead):
    """BUG: the queue bound is checked with ``<=``, so q + 1 calls may wait."""

    def _has_room(self) -> bool:
        return len(self._queue) <= self.q


class BulkheadDeadlineNotCleared(Bulkhead):
    """BUG: a waiter's deadline timer is not cancelled when the waiter leaves the queue to run,
    so the timer stays pending (and fires later into a call that is already running)."""

    def _next(self) -> None:
        while self._queue and self.running < self.n:
            w = self._queue.popleft()
            self._start_waiter(w)

    def _expire(self, w: _Waiter) -> None:
        w.timer = None
        if w in self._queue:
            self._queue.remove(w)
        w.result.errback(QueueDeadline(f"waited {self.deadline}s"))


class BulkheadSlotLeakOnFailure(Bulkhead):
    """BUG: a call that fails frees its slot but does not start the next waiter (the errback path
    only decrements), so waiters sit in the queue while slots are free until their deadline."""

    def _run(self, fn: Callable[..., Deferred[Any]], args: tuple[Any, ...]) -> Deferred[Any]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        d = maybeDeferred(fn, *args)
        d.addCallbacks(self._release, self._release_only)
        return d

    def _release_only(self, failure: Any) -> Any:
        self.running -= 1
        return failure
