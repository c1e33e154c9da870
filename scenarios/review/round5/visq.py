"""A visibility-timeout work queue (SQS-like) and an ``inlineCallbacks`` consumer for it.

Promises of :class:`VisibilityQueue`:

1. a received message is invisible for ``visibility_timeout`` seconds: no other receive gets it
   while its receipt is valid; if it is not acked in time it becomes visible again and is redelivered;
2. ``ack(receipt)`` deletes the message and returns True only for the receipt of its current
   delivery; a receipt whose visibility expired is stale: ``ack`` returns False and changes nothing;
3. ``receive_count`` counts deliveries; after ``max_receives`` deliveries without an ack the message
   is dead-lettered (exactly once, never also acked) instead of being made visible again;
4. every message sent ends exactly once: acked or dead-lettered (none lost, none twice);
5. a ``receive(wait)`` that finds nothing waits: it gets a message as soon as one becomes visible
   (sent or redelivered), or ``None`` at ``wait`` seconds; cancelling it leaves nothing behind;
6. after ``close()`` no timer of the queue remains.

:class:`Worker` promises: each message it receives is handled once per delivery, acked only after
its handler succeeded, never acked after a failure (left to redelivery); ``stop()`` fires once the
loop has ended and leaves no receive outstanding.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator

from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

_log = Logger()


class QueueClosed(Exception):
    """The queue was closed."""


@dataclass(frozen=True)
class Message:
    id: int
    body: Any
    receipt: int
    receive_count: int


class _Record:
    __slots__ = ("id", "body", "receive_count", "receipt", "timer")

    def __init__(self, id: int, body: Any) -> None:
        self.id = id
        self.body = body
        self.receive_count = 0
        self.receipt: int | None = None
        self.timer: IDelayedCall | None = None


class _Waiter:
    __slots__ = ("d", "timer")

    def __init__(self) -> None:
        self.d: Deferred[Message | None] = Deferred()
        self.timer: IDelayedCall | None = None


class VisibilityQueue:
    def __init__(
        self,
        reactor: IReactorTime,
        visibility_timeout: float = 30.0,
        max_receives: int = 3,
        on_dead_letter: Callable[[Message], object] | None = None,
    ) -> None:
        if max_receives < 1:
            raise ValueError(f"max_receives must be at least 1, got {max_receives}")
        self._reactor = reactor
        self.visibility_timeout = visibility_timeout
        self.max_receives = max_receives
        self._on_dead_letter = on_dead_letter
        self._records: dict[int, _Record] = {}
        self._by_receipt: dict[int, int] = {}
        self._ready: deque[int] = deque()
        self._waiters: deque[_Waiter] = deque()
        self._next_id = 0
        self._next_receipt = 0
        self._closed = False
        self.acked: list[int] = []
        self.dead_letters: list[Message] = []

    # -- producer --------------------------------------------------------------------------------
    def send(self, body: Any) -> int:
        if self._closed:
            raise QueueClosed("send on a closed queue")
        self._next_id += 1
        rec = _Record(self._next_id, body)
        self._records[rec.id] = rec
        self._ready.append(rec.id)
        self._dispatch()
        return rec.id

    def in_flight(self) -> int:
        return len(self._by_receipt)

    def visible(self) -> int:
        return len(self._ready)

    def outstanding(self) -> int:
        return len(self._records)

    # -- consumer --------------------------------------------------------------------------------
    def receive(self, wait: float = 0.0) -> Deferred[Message | None]:
        if self._closed:
            return defer.fail(QueueClosed("receive on a closed queue"))
        if self._ready:
            return defer.succeed(self._deliver(self._ready.popleft()))
        if wait <= 0:
            return defer.succeed(None)
        w = _Waiter()
        w.d = Deferred(lambda _d: self._cancel_waiter(w))
        w.timer = self._reactor.callLater(wait, self._wait_over, w)
        self._waiters.append(w)
        return w.d

    def _cancel_waiter(self, w: _Waiter) -> None:
        if w.timer is not None and w.timer.active():
            w.timer.cancel()
        w.timer = None
        if w in self._waiters:
            self._waiters.remove(w)

    def _wait_over(self, w: _Waiter) -> None:
        w.timer = None
        self._waiters.remove(w)
        w.d.callback(None)

    def _dispatch(self) -> None:
        while self._ready and self._waiters:
            w = self._waiters.popleft()
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            w.timer = None
            w.d.callback(self._deliver(self._ready.popleft()))

    def _deliver(self, mid: int) -> Message:
        rec = self._records[mid]
        rec.receive_count += 1
        self._next_receipt += 1
        rec.receipt = self._next_receipt
        self._by_receipt[rec.receipt] = mid
        rec.timer = self._reactor.callLater(
            self.visibility_timeout, self._visibility_expired, mid, rec.receipt
        )
        return Message(mid, rec.body, rec.receipt, rec.receive_count)

    def _visibility_expired(self, mid: int, receipt: int) -> None:
        rec = self._records[mid]
        rec.timer = None
        rec.receipt = None
        del self._by_receipt[receipt]
        if rec.receive_count >= self.max_receives:
            self._dead_letter(rec, receipt)
        else:
            self._ready.append(mid)
            self._dispatch()

    def _dead_letter(self, rec: _Record, receipt: int) -> None:
        del self._records[rec.id]
        msg = Message(rec.id, rec.body, receipt, rec.receive_count)
        self.dead_letters.append(msg)
        if self._on_dead_letter is not None:
            try:
                self._on_dead_letter(msg)
            except Exception:
                _log.failure("dead-letter handler failed for message {id}", id=rec.id)

    def ack(self, receipt: int) -> bool:
        mid = self._by_receipt.pop(receipt, None)
        if mid is None:
            return False
        rec = self._records.pop(mid)
        if rec.timer is not None and rec.timer.active():
            rec.timer.cancel()
        rec.timer = None
        self.acked.append(mid)
        return True

    def extend(self, receipt: int, seconds: float) -> bool:
        """Change the visibility of a current delivery to ``seconds`` from now."""
        mid = self._by_receipt.get(receipt)
        if mid is None:
            return False
        rec = self._records[mid]
        assert rec.timer is not None
        rec.timer.reset(seconds)
        return True

    def close(self) -> None:
        """Stop: pending receives get None, visibility timers stop (in-flight receipts stay ackable)."""
        if self._closed:
            return
        self._closed = True
        while self._waiters:
            w = self._waiters.popleft()
            if w.timer is not None and w.timer.active():
                w.timer.cancel()
            w.timer = None
            w.d.callback(None)
        for rec in self._records.values():
            if rec.timer is not None and rec.timer.active():
                rec.timer.cancel()
            rec.timer = None


class Worker:
    """Receives in a loop and runs ``handler(body)`` (a Deferred, with an optional timeout) for each
    message; acks on success, leaves the message to redelivery on failure."""

    def __init__(
        self,
        reactor: IReactorTime,
        queue: VisibilityQueue,
        handler: Callable[[Any], Deferred[Any]],
        wait: float = 20.0,
        handler_timeout: float | None = None,
    ) -> None:
        if wait <= 0:
            raise ValueError("wait must be positive (a zero wait would spin)")
        self._reactor = reactor
        self._queue = queue
        self._handler = handler
        self._wait = wait
        self._handler_timeout = handler_timeout
        self._running = False
        self._receiving: Deferred[Message | None] | None = None
        self._loop: Deferred[None] | None = None
        self._stop_waiters: list[Deferred[None]] = []
        self.processed = 0
        self.failed = 0
        self.late_acks = 0

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._loop = self._run()
        self._loop.addErrback(lambda f: _log.failure("worker loop crashed", f))

    def stop(self) -> Deferred[None]:
        self._running = False
        d: Deferred[None] = Deferred()
        if self._loop is None or self._loop.called:
            d.callback(None)
            return d
        self._stop_waiters.append(d)
        if self._receiving is not None:
            self._receiving.cancel()
        return d

    @defer.inlineCallbacks
    def _run(self) -> Generator[Deferred[Any], Any, None]:
        try:
            while self._running:
                self._receiving = self._queue.receive(self._wait)
                try:
                    msg = yield self._receiving
                except CancelledError:
                    break
                except QueueClosed:
                    break
                finally:
                    self._receiving = None
                if msg is None:
                    continue
                try:
                    d = defer.maybeDeferred(self._handler, msg.body)
                    if self._handler_timeout is not None:
                        d.addTimeout(self._handler_timeout, self._reactor)
                    yield d
                except Exception:
                    self.failed += 1
                    _log.failure("handler failed for message {id}; left for redelivery", id=msg.id)
                    continue
                if self._queue.ack(msg.receipt):
                    self.processed += 1
                else:
                    self.late_acks += 1
        finally:
            self._running = False
            waiters, self._stop_waiters = self._stop_waiters, []
            for d in waiters:
                d.callback(None)


# ----------------------------------------------------------------------------------------------
# Buggy twins (see BUGS.md).
# ----------------------------------------------------------------------------------------------


class DoubleCountQueue(VisibilityQueue):
    """V1: the expiry path bumps receive_count as well (it was meant as a 'failed attempts'
    counter), so a message is dead-lettered after about half the promised deliveries."""

    def _visibility_expired(self, mid: int, receipt: int) -> None:
        rec = self._records[mid]
        rec.timer = None
        rec.receipt = None
        del self._by_receipt[receipt]
        rec.receive_count += 1
        if rec.receive_count >= self.max_receives:
            self._dead_letter(rec, receipt)
        else:
            self._ready.append(mid)
            self._dispatch()


class StaleAckQueue(VisibilityQueue):
    """V2: the receipt is not invalidated when its visibility expires; ack() looks the message up by
    the old receipt and deletes it, even though it was redelivered to another consumer meanwhile."""

    def _visibility_expired(self, mid: int, receipt: int) -> None:
        rec = self._records[mid]
        rec.timer = None
        rec.receipt = None
        if rec.receive_count >= self.max_receives:
            self._by_receipt.pop(receipt, None)
            self._dead_letter(rec, receipt)
        else:
            self._ready.append(mid)
            self._dispatch()

    def ack(self, receipt: int) -> bool:
        mid = self._by_receipt.pop(receipt, None)
        if mid is None or mid not in self._records:
            return False
        rec = self._records.pop(mid)
        if rec.receipt is not None:
            self._by_receipt.pop(rec.receipt, None)
        if rec.timer is not None and rec.timer.active():
            rec.timer.cancel()
        rec.timer = None
        self.acked.append(mid)
        return True


class LostWakeupQueue(VisibilityQueue):
    """V3: a message whose visibility expired goes back on the ready list but the receivers already
    waiting are not woken: they sit until their wait ends (and get None) although it is visible."""

    def _visibility_expired(self, mid: int, receipt: int) -> None:
        rec = self._records[mid]
        rec.timer = None
        rec.receipt = None
        del self._by_receipt[receipt]
        if rec.receive_count >= self.max_receives:
            self._dead_letter(rec, receipt)
        else:
            self._ready.append(mid)
