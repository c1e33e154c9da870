"""A token-bucket rate limiter for Twisted code.

``acquire()`` returns a Deferred that fires (with None) when a token is granted.  The bucket
holds at most ``capacity`` tokens (the burst size) and gains one every ``1 / rate`` seconds while
it is below capacity.  Waiters are served in FIFO order; cancelling a waiter's Deferred removes
it from the queue.

Time is measured only with ``clock.callLater`` delays, never by subtracting ``clock.seconds()``
readings: on a real reactor ``seconds()`` is the wall clock, and a bucket that refills by
``elapsed = now - last`` mints a burst of tokens when the clock jumps forward (the first version
of this class did that, and the harness caught it: see docs/reviews/outside-user.md).  A refill tick re-arms itself
relative to when it actually ran, so a late tick never shortens the next gap either.

Promises:
  * grants in any interval of length T are at most ``capacity + floor(T * rate)``;
  * waiters are granted in the order they called ``acquire()`` (FIFO): a caller never jumps
    ahead of a queued waiter;
  * every non-cancelled acquire eventually fires; a cancelled one fails with CancelledError and
    never consumes a token;
  * no timer is left pending once the bucket is full and nobody waits.

Written blind (as an outside user) for the review in docs/reviews/outside-user.md.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class TokenBucket:
    """Correct token bucket."""

    def __init__(self, clock: IReactorTime, rate: float, capacity: int) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("TokenBucket needs rate > 0 and capacity >= 1")
        self._clock = clock
        self._period = 1.0 / rate
        self._capacity = capacity
        self._tokens = capacity
        self._waiters: Deque[Deferred[None]] = deque()
        self._tick: Optional[IDelayedCall] = None
        self._drain_call: Optional[IDelayedCall] = None

    # -- public -------------------------------------------------------------------------------

    def acquire(self) -> "Deferred[None]":
        if not self._waiters and self._tokens >= 1:
            self._take()
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        return d

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def tokens(self) -> int:
        return self._tokens

    # -- internals ----------------------------------------------------------------------------

    def _take(self) -> None:
        self._tokens -= 1
        self._arm()

    def _full(self) -> bool:
        return self._tokens >= self._capacity

    def _arm(self) -> None:
        """Keep one refill tick pending while the bucket is below capacity."""
        if self._full():
            return
        if self._tick is not None and self._tick.active():
            return
        self._tick = self._clock.callLater(self._period, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        if not self._full():
            self._tokens += 1
        if self._waiters:
            # Hand the token over in a later round of this instant, outside the timer's own
            # call: a waiter's callbacks may re-enter acquire() or cancel other waiters.
            if self._drain_call is None or not self._drain_call.active():
                self._drain_call = self._clock.callLater(0, self._drain)
        else:
            self._arm()

    def _drain(self) -> None:
        self._drain_call = None
        while self._waiters and self._tokens >= 1:
            d = self._waiters.popleft()
            self._take()
            d.callback(None)
        self._arm()

    def _cancel_waiter(self, d: "Deferred[None]") -> None:
        try:
            self._waiters.remove(d)
        except ValueError:
            pass


class OffByOneBurstTokenBucket(TokenBucket):
    """PLANTED BUG: the refill stops one token too late (``>`` for ``>=``), so an idle bucket
    holds ``capacity + 1`` tokens and a burst of one more than promised goes through."""

    def _full(self) -> bool:
        return self._tokens > self._capacity  # BUG: should stop at capacity


class DoubleTickTokenBucket(TokenBucket):
    """PLANTED BUG: ``_arm`` forgets to check for a pending tick, so every token taken while the
    bucket refills starts one more refill chain: under load the bucket refills at several times
    its rate.  Bursts never exceed ``capacity`` at one instant, so a single (n, per) rate check
    with n = capacity does not see it; the sustained rate is what breaks."""

    def _arm(self) -> None:
        if self._full():
            return
        # BUG: no "is a tick already pending?" check
        self._tick = self._clock.callLater(self._period, self._on_tick)


class QueueJumpingTokenBucket(TokenBucket):
    """PLANTED BUG: the fast path takes an available token without checking for queued
    waiters.  A caller arriving in the instant of a refill tick, before the tick's hand-over to
    the queue has run, takes the token: FIFO is broken and the queued waiter is pushed back by
    a whole refill period."""

    def acquire(self) -> "Deferred[None]":
        if self._tokens >= 1:  # BUG: ignores self._waiters
            self._take()
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        return d


class WallClockTokenBucket(TokenBucket):
    """PLANTED BUG (the first, blind version of this module did exactly this): refills by
    ``elapsed = clock.seconds() - last``.  On a real reactor ``seconds()`` is the wall clock:
    a forward jump (NTP, a suspended VM) mints a burst of tokens, and a backward one starves
    the bucket."""

    def __init__(self, clock: IReactorTime, rate: float, capacity: int) -> None:
        super().__init__(clock, rate, capacity)
        self._rate = float(rate)
        self._level = float(capacity)
        self._last = clock.seconds()

    def _refill(self) -> None:
        now = self._clock.seconds()
        self._level = min(float(self._capacity), self._level + max(0.0, now - self._last) * self._rate)
        self._last = now

    def acquire(self) -> "Deferred[None]":
        self._refill()
        if not self._waiters and self._level >= 1 - 1e-9:
            self._level = max(0.0, self._level - 1)
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        self._arm_wall()
        return d

    def _arm_wall(self) -> None:
        if not self._waiters or (self._tick is not None and self._tick.active()):
            return
        self._tick = self._clock.callLater(max(0.0, 1 - self._level) / self._rate, self._on_wall_tick)

    def _on_wall_tick(self) -> None:
        self._tick = None
        self._refill()
        while self._waiters and self._level >= 1 - 1e-9:
            self._level = max(0.0, self._level - 1)
            self._waiters.popleft().callback(None)
        self._arm_wall()

    def _cancel_waiter(self, d: "Deferred[None]") -> None:
        super()._cancel_waiter(d)
        if not self._waiters and self._tick is not None and self._tick.active():
            self._tick.cancel()
            self._tick = None
