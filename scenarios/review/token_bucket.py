"""A token-bucket rate limiter for Twisted code.

``acquire()`` returns a Deferred that fires (with None) when a token is granted.  Tokens refill
continuously at ``rate`` per second up to ``capacity`` (the burst size).  Waiters are served in
FIFO order by a single refill timer scheduled with ``clock.callLater``; cancelling a waiter's
Deferred removes it from the queue (and stops the timer when nobody is left waiting).

Promises:
  * grants in any interval of length T are at most ``capacity + rate * T`` (plus rounding);
  * waiters are granted in the order they called ``acquire()`` (FIFO), and a caller never jumps
    ahead of a queued waiter;
  * every non-cancelled acquire eventually fires; a cancelled one fails with CancelledError and
    never consumes a token;
  * no timer is left pending once nobody waits.

Written blind (as an outside user) for the review in REVIEW.md.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

# Token counts are floats; a refill that lands a hair below a whole token because of rounding
# must still count as a whole token, or the timer would re-arm for a nanosecond forever.
_EPSILON = 1e-9


class TokenBucket:
    """Correct token bucket."""

    def __init__(self, clock: IReactorTime, rate: float, capacity: int) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("TokenBucket needs rate > 0 and capacity >= 1")
        self._clock = clock
        self._rate = float(rate)
        self._capacity = float(capacity)
        self._tokens = float(capacity)
        self._last = clock.seconds()
        self._waiters: Deque[Deferred[None]] = deque()
        self._timer: Optional[IDelayedCall] = None

    # -- public -------------------------------------------------------------------------------

    def acquire(self) -> "Deferred[None]":
        self._refill()
        if not self._waiters and self._tokens >= 1 - _EPSILON:
            self._take()
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        self._arm()
        return d

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    # -- internals ----------------------------------------------------------------------------

    def _take(self) -> None:
        self._tokens = max(0.0, self._tokens - 1.0)

    def _refill(self) -> None:
        now = self._clock.seconds()
        # A clock that steps backwards must not mint or destroy tokens.
        elapsed = max(0.0, now - self._last)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._last = now

    def _arm(self) -> None:
        if not self._waiters:
            self._disarm()
            return
        if self._timer is not None and self._timer.active():
            return
        missing = max(0.0, 1.0 - self._tokens)
        self._timer = self._clock.callLater(missing / self._rate, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._refill()
        while self._waiters and self._tokens >= 1 - _EPSILON:
            self._take()
            d = self._waiters.popleft()
            d.callback(None)  # may re-enter acquire(); it queues behind the rest
        self._arm()

    def _cancel_waiter(self, d: "Deferred[None]") -> None:
        try:
            self._waiters.remove(d)
        except ValueError:
            pass
        if not self._waiters:
            self._disarm()


class UncappedTokenBucket(TokenBucket):
    """PLANTED BUG: the refill forgets the burst cap, so after a long idle period the bucket
    holds more than ``capacity`` tokens and a burst larger than promised goes through."""

    def _refill(self) -> None:
        now = self._clock.seconds()
        elapsed = max(0.0, now - self._last)
        self._tokens = self._tokens + elapsed * self._rate  # BUG: no min(capacity, ...)
        self._last = now


class QueueJumpingTokenBucket(TokenBucket):
    """PLANTED BUG: the fast path takes an available token without checking for queued
    waiters.  When a caller arrives after the refill time but before the refill timer has run
    (same instant, or the timer is late), it jumps ahead of the queue: FIFO is broken and the
    queued waiter is pushed back by a whole token period."""

    def acquire(self) -> "Deferred[None]":
        self._refill()
        if self._tokens >= 1 - _EPSILON:  # BUG: ignores self._waiters
            self._take()
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        self._arm()
        return d
