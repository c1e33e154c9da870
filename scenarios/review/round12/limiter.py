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

    def _cancel(self, d: "defer.Deferred[Any]") -> None:
        if self.owner is not None:
            self.owner._forget(self)


class SlidingWindowLimiter:
    """At most ``n`` starts per sliding ``window``; FIFO waiters with a bounded wait."""

    def __init__(self, clock: IReactorTime, n: int, window: float, max_wait: float) -> None:
        if n < 1 or window <= 0 or max_wait < 0:
            raise ValueError("n >= 1, window > 0, max_wait >= 0")
        self.clock = clock
        self.n = n
        self.window = window
        self.max_wait = max_wait
        self.starts: Deque[float] = deque()
        self.waiters: Deque[_Waiter] = deque()
        self.wakeup: Optional[IDelayedCall] = None
        self.closed = False

    # -- window bookkeeping ---------------------------------------------------------------
    def _prune(self) -> None:
        now = self.clock.seconds()
        while self.starts and self.starts[0] <= now - self.window:
            self.starts.popleft()

    def _has_slot(self) -> bool:
        self._prune()
        return len(self.starts) < self.n

    def _start(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> "defer.Deferred[Any]":
        self.starts.append(self.clock.seconds())
        return defer.maybeDeferred(fn, *args)

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
        self._arm()
        return w.d

    def close(self) -> None:
        """Fail every waiter with LimiterClosed; later calls fail at once."""
        self.closed = True
        if self.wakeup is not None and self.wakeup.active():
            self.wakeup.cancel()
        self.wakeup = None
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
        if not self.waiters and self.wakeup is not None and self.wakeup.active():
            self.wakeup.cancel()
            self.wakeup = None

    def _expire(self, w: _Waiter) -> None:
        w.timer = None
        self._forget(w)
        w.d.errback(WaitTimeout())

    def _next_waiter(self) -> _Waiter:
        return self.waiters.popleft()

    def _arm(self) -> None:
        if self.wakeup is not None and self.wakeup.active():
            return
        self.wakeup = None
        if not self.waiters or not self.starts:
            return
        delay = max(0.0, self.starts[0] + self.window - self.clock.seconds())
        self.wakeup = self.clock.callLater(delay, self._wake)

    def _wake(self) -> None:
        self.wakeup = None
        while self.waiters and self._has_slot():
            w = self._next_waiter()
            self._disarm_waiter(w)
            self._start(w.fn, w.args).chainDeferred(w.d)
        self._arm()


class OffByOneLimiter(SlidingWindowLimiter):
    """Bug: lets n + 1 calls start within one window (``<=`` for ``<``)."""

    def _has_slot(self) -> bool:
        self._prune()
        return len(self.starts) <= self.n


class LeakyTimerLimiter(SlidingWindowLimiter):
    """Bug: a waiter that gets its slot keeps its max-wait timer, which later errbacks it again."""

    def _wake(self) -> None:
        self.wakeup = None
        while self.waiters and self._has_slot():
            w = self._next_waiter()
            w.owner = None  # forgot to cancel w.timer
            self._start(w.fn, w.args).chainDeferred(w.d)
        self._arm()


class LifoLimiter(SlidingWindowLimiter):
    """Bug: wakes the newest waiter first (FIFO broken)."""

    def _next_waiter(self) -> _Waiter:
        return self.waiters.pop()
