"""A pub/sub fan-out with bounded per-subscriber buffers (written blind).

`publish(msg)` appends `msg` to every subscriber's buffer and returns at once. Each subscriber gets
one delivery at a time: its handler is called with the next message and returns a Deferred (or a
value). A delivery that has not finished `delivery_timeout` seconds after it began is cancelled and
counted as timed out; the next message follows. A buffer holds at most `buffer_size` messages waiting
(the one being delivered is not in it); on overflow the policy `drop_oldest` drops the oldest waiting
message, `evict` removes the subscriber. `unsubscribe` (and eviction) cancels the pending delivery,
its timer and the waiting messages; the subscription's `closed` Deferred fires with the reason.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

Handler = Callable[[Any], Any]


class Subscription:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.buffer: deque[Any] = deque()
        self.active = True
        self.delivering: Optional["Deferred[Any]"] = None
        self.timer: Optional[IDelayedCall] = None
        self.closed: "Deferred[str]" = Deferred()
        self.delivered: list[Any] = []  # messages whose handler finished successfully
        self.failed: list[Any] = []  # messages whose handler failed
        self.timed_out: list[Any] = []  # messages whose delivery timed out
        self.dropped: list[Any] = []  # messages dropped from a full buffer


class Broker:
    def __init__(self, clock: IReactorTime, buffer_size: int, delivery_timeout: float,
                 policy: str = "drop_oldest") -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        if policy not in ("drop_oldest", "evict"):
            raise ValueError(f"unknown policy {policy!r}")
        self.clock = clock
        self.buffer_size = buffer_size
        self.delivery_timeout = delivery_timeout
        self.policy = policy
        self.subscribers: list[Subscription] = []

    def subscribe(self, handler: Handler) -> Subscription:
        sub = Subscription(handler)
        self.subscribers.append(sub)
        return sub

    def publish(self, msg: Any) -> None:
        for sub in list(self.subscribers):
            if self._full(sub):
                if self.policy == "drop_oldest":
                    sub.dropped.append(sub.buffer.popleft())
                else:
                    self._close(sub, "evicted")
                    continue
            sub.buffer.append(msg)
            self._pump(sub)

    def _full(self, sub: Subscription) -> bool:
        return len(sub.buffer) >= self.buffer_size

    def unsubscribe(self, sub: Subscription) -> None:
        self._close(sub, "unsubscribed")

    def _close(self, sub: Subscription, reason: str) -> None:
        if not sub.active:
            return
        sub.active = False
        self.subscribers.remove(sub)
        sub.buffer.clear()
        self._abandon_delivery(sub)
        sub.closed.callback(reason)

    def _abandon_delivery(self, sub: Subscription) -> None:
        if sub.timer is not None and sub.timer.active():
            sub.timer.cancel()
        sub.timer = None
        d, sub.delivering = sub.delivering, None
        if d is not None:
            try:
                d.cancel()
            except Exception:
                log.failure("cancelling the delivery of an unsubscribed subscriber")

    def _pump(self, sub: Subscription) -> None:
        if not sub.active or sub.delivering is not None or not sub.buffer:
            return
        msg = sub.buffer.popleft()
        d = maybeDeferred(sub.handler, msg)
        sub.delivering = d
        sub.timer = self.clock.callLater(self.delivery_timeout, self._timeout, sub, d, msg)
        d.addBoth(self._done, sub, d, msg)

    def _done(self, result: Any, sub: Subscription, d: "Deferred[Any]", msg: Any) -> None:
        if sub.delivering is not d:
            return None  # abandoned (unsubscribed) or already handled by the timeout
        sub.delivering = None
        if sub.timer is not None and sub.timer.active():
            sub.timer.cancel()
        sub.timer = None
        if isinstance(result, Failure):
            sub.failed.append(msg)
        else:
            sub.delivered.append(msg)
        self._pump(sub)
        return None

    def _timeout(self, sub: Subscription, d: "Deferred[Any]", msg: Any) -> None:
        sub.timer = None
        sub.timed_out.append(msg)
        sub.delivering = None
        try:
            d.cancel()
        except Exception:
            # Found by the harness: a handler whose canceller raises escaped into the reactor here
            # and left the subscriber with no delivery and a full buffer. Such a handler never
            # ends: the subscriber stays on it (as it would on a handler that hangs).
            log.failure("cancelling a delivery at its timeout")
            sub.delivering = d
            return
        self._pump(sub)


class UnsubscribeLeavesDelivery(Broker):
    """Bug: unsubscribe forgets the delivery in progress: neither it nor its timer is cancelled, so
    the handler's work goes on until the delivery timeout cancels it later."""

    def _abandon_delivery(self, sub: Subscription) -> None:
        sub.delivering = None


class BufferOneTooMany(Broker):
    """Bug: off-by-one in the bound; a buffer holds buffer_size + 1 waiting messages."""

    def _full(self, sub: Subscription) -> bool:
        return len(sub.buffer) > self.buffer_size


class TimeoutDoubleAdvance(Broker):
    """Bug: the timeout cancels before it marks the delivery abandoned; the cancellation's errback
    already moved on to the next message, and the timeout then clobbers it and starts another, so
    the subscriber gets two deliveries at once (and the clobbered one's timer stays armed)."""

    def _timeout(self, sub: Subscription, d: "Deferred[Any]", msg: Any) -> None:
        sub.timer = None
        sub.timed_out.append(msg)
        try:
            d.cancel()
        except Exception:
            log.failure("cancelling a delivery at its timeout")
            sub.delivering = d
            return
        sub.delivering = None
        self._pump(sub)
