"""A sliding-window rate limiter with a FIFO waiting queue.

At most ``n`` calls start within any window of ``window`` seconds: a call starting at ``t`` is
allowed when fewer than ``n`` calls started in ``(t - window, t]``.  Excess calls wait in FIFO
order up to ``max_wait`` seconds, then fail with :class:`WaitTimeout`.  A waiter may be cancelled;
``close()`` fails every waiter with :class:`LimiterClosed` and refuses later calls.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, List, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class WaitTimeout(Exception):
    """A call waited longer than ``max_wait`` for a slot."""


class LimiterClosed(Exception):
    """The limiter was closed before the call got a slot."""


class _Waiter:
    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.d: defer.Deferred[Any] = defer.Deferred(self._cancel)
        self.timer: Optional[IDelayedCall] = None
        self.owner: Optional["SlidingWindowLimiter"] = None
        self.running: Optional[defer.Deferred[Any]] = None

    def _cancel(self, d: "defer.Deferred[Any]") -> None:
        if self.owner is not None:
            self.owner._forget(self)
        elif self.running is not None:
            # the call got its slot: the cancel reaches it (found by the harness: completion.once,
            # the job's late result fired the cancelled caller again)
            self.running.cancel()


class SlidingWindowLimiter:
    """At most ``n`` starts per sliding ``window``; FIFO waiters with a bounded wait."""

    def __init__(self, clock: IReactorTime, n: int, window: float, max_wait: float) -> None:
        if n < 1 or window <= 0 or max_wait < 0:
            raise ValueError("n >= 1, window > 0, max_wait >= 0")
        self.clock = clock
        self.n = n
        self.window = window
        self.max_wait = max_wait
        self.in_window = 0
        self.waiters: Deque[_Waiter] = deque()
        self.closed = False

    # -- window bookkeeping ---------------------------------------------------------------
    # Each start holds its place in the window for ``window`` seconds, counted down by a timer of
    # its own: delays are monotonic, while clock.seconds() is the wall clock and may jump (found by
    # the harness: a forward jump emptied a window that was read by subtracting seconds()).
    def _has_slot(self) -> bool:
        return self.in_window < self.n

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> "defer.Deferred[Any]":
        self.in_window += 1
        self.clock.callLater(self.window, self._slot_expired)
        return defer.maybeDeferred(fn, *args)

    def _slot_expired(self) -> None:
        self.in_window -= 1
        if not self.closed:
            self._wake()

    # -- public API ------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any) -> "defer.Deferred[Any]":
        """Run ``fn(*args)`` when the window allows; the Deferred fires with its result."""
        if self.closed:
            return defer.fail(LimiterClosed())
        if not self.waiters and self._has_slot():
            return self._start(fn, args)
        w = _Waiter(fn, args)
        w.owner = self
        w.timer = self.clock.callLater(self.max_wait, self._expire, w)
        self.waiters.append(w)
        return w.d

    def close(self) -> None:
        """Fail every waiter with LimiterClosed; later calls fail at once."""
        self.closed = True
        waiters, self.waiters = list(self.waiters), deque()
        for w in waiters:
            self._disarm_waiter(w)
            w.d.errback(LimiterClosed())

    # -- waiter handling -----------------------------------------------------------------
    def _disarm_waiter(self, w: _Waiter) -> None:
        w.owner = None
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None

    def _forget(self, w: _Waiter) -> None:
        try:
            self.waiters.remove(w)
        except ValueError:
            pass
        self._disarm_waiter(w)

    def _expire(self, w: _Waiter) -> None:
        w.timer = None
        self._forget(w)
        w.d.errback(WaitTimeout())

    def _next_waiter(self) -> _Waiter:
        return self.waiters.popleft()

    def _wake(self) -> None:
        while self.waiters and self._has_slot():
            w = self._next_waiter()
            self._disarm_waiter(w)
            w.running = self._start(w.fn, w.args)
            w.running.chainDeferred(w.d)


class OffByOneLimiter(SlidingWindowLimiter):
    """Bug: lets n + 1 calls start within one window (``<=`` for ``<``)."""

    def _has_slot(self) -> bool:
        return self.in_window <= self.n


class LeakyTimerLimiter(SlidingWindowLimiter):
    """Bug: a waiter that gets its slot keeps its max-wait timer, which later errbacks it again."""

    def _wake(self) -> None:
        while self.waiters and self._has_slot():
            w = self._next_waiter()
            w.owner = None  # forgot to cancel w.timer
            w.running = self._start(w.fn, w.args)
            w.running.chainDeferred(w.d)


class LifoLimiter(SlidingWindowLimiter):
    """Bug: wakes the newest waiter first (FIFO broken)."""

    def _next_waiter(self) -> _Waiter:
        return self.waiters.pop()


class LazyWakeLimiter(SlidingWindowLimiter):
    """Bug (found while probing, after phase 1): a freed place in the window wakes no waiter; waiters
    are served only when a new call comes, so with no more calls they all time out."""

    def _slot_expired(self) -> None:
        self.in_window -= 1
