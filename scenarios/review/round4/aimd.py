"""An adaptive (AIMD) concurrency limiter, written blind (before reading the harness).

The limiter runs at most ``floor(limit)`` calls at once. Each call that succeeds in time
raises the limit additively (``+1/limit``, so about +1 per full window); each call that fails
or times out cuts it multiplicatively (``limit * backoff``), never below ``minimum`` and never
above ``maximum``. Calls wait FIFO for a slot. Each running call is bounded by ``timeout``
seconds of the injected clock (``addTimeout``), and cancelling the caller's Deferred cancels the
call wherever it is: a queued call is dropped from the queue without ever running, a running
one is cancelled and its slot released.

Promises (what a user of this class relies on):
  P1 at most ``maximum`` calls (and at most ``floor(limit)``) run at once;
  P2 every submitted call is answered (success, failure, timeout or cancel), nothing hangs;
  P3 a running call is answered within ``timeout`` seconds of starting;
  P4 a call cancelled while queued never starts;
  P5 waiting calls start in submission order.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class AIMDLimiter:
    """Correct version."""

    def __init__(
        self,
        clock: IReactorTime,
        initial: float = 2.0,
        minimum: float = 1.0,
        maximum: float = 4.0,
        timeout: float = 5.0,
        backoff: float = 0.5,
    ) -> None:
        self._clock = clock
        self.limit = float(initial)
        self._minimum = float(minimum)
        self._maximum = float(maximum)
        self._timeout = timeout
        self._backoff = backoff
        self.in_flight = 0
        self._queue: Deque[Tuple[Deferred, Callable[..., Any], tuple]] = deque()

    # -- public -------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> Deferred:
        """Run ``fn(*args)`` when a slot is free; the Deferred fires with its result."""
        entry: list = []

        def cancel(d: Deferred) -> None:
            self._cancel(entry[0])

        caller = Deferred(cancel)
        item = (caller, fn, args)
        entry.append(item)
        self._queue.append(item)
        self._pump()
        return caller

    # -- internals ------------------------------------------------------------
    def _capacity(self) -> int:
        return max(1, int(math.floor(min(self.limit, self._maximum))))

    def _pump(self) -> None:
        while self._queue and self.in_flight < self._capacity():
            item = self._queue.popleft()
            self._start(item)

    def _cancel(self, item: tuple) -> None:
        # Queued: drop it. Running: _start replaced the canceller's target (see _start).
        try:
            self._queue.remove(item)
        except ValueError:
            runner = getattr(item[0], "_limiter_inner", None)
            if runner is not None:
                runner.cancel()
            return
        # The caller's Deferred errbacks with CancelledError by itself after the canceller.

    def _start(self, item: tuple) -> None:
        caller, fn, args = item
        self.in_flight += 1
        inner = maybeDeferred(fn, *args)
        inner.addTimeout(self._timeout, self._clock)
        caller._limiter_inner = inner  # type: ignore[attr-defined]
        inner.addBoth(self._finished, caller)

    def _finished(self, result: Any, caller: Deferred) -> None:
        self.in_flight -= 1
        caller._limiter_inner = None  # type: ignore[attr-defined]
        if isinstance(result, Failure):
            self._decrease()
        else:
            self._increase()
        if not caller.called:
            if isinstance(result, Failure):
                caller.errback(result)
            else:
                caller.callback(result)
        elif isinstance(result, Failure):
            result.trap(CancelledError)
        self._pump()

    def _increase(self) -> None:
        self.limit = min(self._maximum, self.limit + 1.0 / self.limit)

    def _decrease(self) -> None:
        self.limit = max(self._minimum, self.limit * self._backoff)


class AIMDLeakOnTimeout(AIMDLimiter):
    """Twin A: a timed-out call cuts the limit but its slot is never given back.

    Real code: the author special-cased TimeoutError to "just shrink the window" and
    returned early, before the ``in_flight -= 1`` that the common path does. After enough
    timeouts ``in_flight`` never drops below the capacity and queued calls wait forever.
    Breaks P2 (calls hang).
    """

    def _finished(self, result: Any, caller: Deferred) -> None:
        from twisted.internet.defer import TimeoutError as DeferTimeout

        if isinstance(result, Failure) and result.check(DeferTimeout):
            self._decrease()
            caller._limiter_inner = None  # type: ignore[attr-defined]
            if not caller.called:
                caller.errback(result)
            self._pump()
            return
        super()._finished(result, caller)


class AIMDRunsCancelledQueued(AIMDLimiter):
    """Twin B: cancelling a queued call does not remove it from the queue.

    Real code: the canceller only handled the running case (``inner.cancel()``), so a call
    cancelled while waiting is still popped later and its work runs after the caller was
    told it was cancelled. Breaks P4 (work starts after cancel).
    """

    def _cancel(self, item: tuple) -> None:
        runner = getattr(item[0], "_limiter_inner", None)
        if runner is not None:
            runner.cancel()

    def _pump(self) -> None:
        while self._queue and self.in_flight < self._capacity():
            item = self._queue.popleft()
            self._start(item)


class AIMDOffByOne(AIMDLimiter):
    """Twin C: the pump compares with ``<=``, so one call more than the limit runs.

    Breaks P1 (concurrency exceeds the limit, and ``maximum``, by one).
    """

    def _pump(self) -> None:
        while self._queue and self.in_flight <= self._capacity():
            item = self._queue.popleft()
            self._start(item)
