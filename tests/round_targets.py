"""A token bucket whose refill hands the token to the queue in a later round of its instant
(``callLater(0, drain)``), and its queue-jumping twin (the fast path ignores the queue).

Copied, trimmed, from the outside-user review (``blind`` branch: ``scenarios/review/token_bucket.py``
and ``targets.py``, REVIEW.md finding F1). The twin breaks FIFO only when a new caller comes between
the refill tick and the hand-over: on a real reactor, I/O between two passes of ``runUntilCurrent``;
in a schedule, an operation with ``after_rounds=1`` at the tick's instant.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed

from harness import Target

RATE = 10.0  # tokens per second: one every 100 ms
CAPACITY = 3


class TokenBucket:
    """Correct: at most ``capacity`` tokens, one more every ``1 / rate`` s; waiters served FIFO."""

    def __init__(self, clock: Any, rate: float = RATE, capacity: int = CAPACITY) -> None:
        self._clock = clock
        self._period = 1.0 / rate
        self._capacity = capacity
        self._tokens = capacity
        self._waiters: deque[Deferred[None]] = deque()
        self._tick: Any = None
        self._drain_call: Any = None

    def acquire(self) -> Deferred[None]:
        if not self._waiters and self._tokens >= 1:
            self._take()
            return succeed(None)
        return self._wait()

    def _wait(self) -> Deferred[None]:
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        return d

    def _take(self) -> None:
        self._tokens -= 1
        self._arm()

    def _arm(self) -> None:
        """Keep one refill tick pending while the bucket is below capacity."""
        if self._tokens >= self._capacity or (self._tick is not None and self._tick.active()):
            return
        self._tick = self._clock.callLater(self._period, self._on_tick)

    def _on_tick(self) -> None:
        self._tick = None
        if self._tokens < self._capacity:
            self._tokens += 1
        if self._waiters:
            # Hand the token over in a later round of this instant, outside the timer's own call.
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

    def _cancel_waiter(self, d: Deferred[None]) -> None:
        if d in self._waiters:
            self._waiters.remove(d)


class QueueJumpingTokenBucket(TokenBucket):
    """BUG: the fast path takes a token without looking at the queue."""

    def acquire(self) -> Deferred[None]:
        if self._tokens >= 1:
            self._take()
            return succeed(None)
        return self._wait()


class BucketGate:
    """Runs each job once the bucket grants it a token."""

    def __init__(self, clock: Any, cls: type = TokenBucket) -> None:
        self.bucket = cls(clock)

    def submit(self, job: Callable[[], Any]) -> Deferred[Any]:
        return self.bucket.acquire().addCallback(lambda _: job())


def _bucket(cls: type, description: str) -> Target:
    return Target(
        build=lambda clock: BucketGate(clock, cls),
        rate=(CAPACITY, int(1000 / RATE)),  # capacity + 1 starts span a refill period
        order="fifo",
        description=description,
    )


token_bucket = _bucket(TokenBucket, "token bucket (correct)")
token_bucket_queue_jump = _bucket(QueueJumpingTokenBucket, "token bucket: fast path jumps the queue")
