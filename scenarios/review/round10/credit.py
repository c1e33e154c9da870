"""A credit-based flow-controlled stream (written blind, review round 10).

The receiver grants credits (window updates) with ``grant(n)``; the sender
``send(item)`` transmits only while it holds a credit, one credit per item.
Sends without credit queue in FIFO order.  A queued send that waits ``stall``
seconds without any grant fails with ``WindowStalled`` (the whole queue does:
the window is stuck).  ``close()`` fails the queued sends with ``StreamClosed``.
Transmission itself is asynchronous (``transmit(item)`` returns a Deferred);
cancelling a send while it is transmitting cancels the transmission and gives
the credit back, since the receiver never got the item.

Twins (see BUGS.md): ``LeakyCancelStream`` keeps the credit of a cancelled
transmission, ``StickyStallStream`` forgets to cancel the stall timer when the
queue drains, ``OverdrawStream`` sends one item more than the window allows.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class WindowStalled(Exception):
    """No credit was granted for ``stall`` seconds while sends were queued."""


class StreamClosed(Exception):
    """The stream was closed before this send could be transmitted."""


class _Send:
    def __init__(self, item: object) -> None:
        self.item = item
        self.result: Deferred[object] | None = None
        self.transmission: Deferred[object] | None = None
        self.done = False


class CreditStream:
    """Sender side of a credit-based window."""

    def __init__(
        self,
        clock: IReactorTime,
        transmit: Callable[[object], "Deferred[object]"],
        credit: int = 0,
        stall: float = 5.0,
    ) -> None:
        self._clock = clock
        self._transmit = transmit
        self.credit = credit
        self._stall = stall
        self._queue: deque[_Send] = deque()
        self._stall_timer: IDelayedCall | None = None
        self.closed = False
        self.in_flight = 0
        self.granted = credit
        self.sent = 0  # transmissions started
        self.returned = 0  # credits given back by cancelled transmissions

    # -- public API -----------------------------------------------------
    def send(self, item: object) -> "Deferred[object]":
        """Send ``item``; fires with the transmission's result."""
        s = _Send(item)
        d: Deferred[object] = Deferred(lambda _d: self._cancel(s))
        s.result = d
        if self.closed:
            d.errback(StreamClosed("stream is closed"))
            return d
        self._queue.append(s)
        self._pump()
        return d

    def grant(self, n: int) -> None:
        """The receiver opened the window by ``n`` credits."""
        if n <= 0 or self.closed:
            return
        self.credit += n
        self.granted += n
        self._cancel_stall()
        self._pump()

    def close(self) -> None:
        """Fail every queued send; in-flight transmissions finish normally."""
        if self.closed:
            return
        self.closed = True
        self._cancel_stall()
        queued, self._queue = self._queue, deque()
        for s in queued:
            self._fail(s, StreamClosed("stream closed while queued"))

    # -- internals --------------------------------------------------------
    def _can_send(self) -> bool:
        return self.credit > 0

    def _pump(self) -> None:
        while self._queue and self._can_send():
            s = self._queue.popleft()
            self.credit -= 1
            self.sent += 1
            self._start(s)
        if self._queue:
            if self._stall_timer is None:
                self._stall_timer = self._clock.callLater(self._stall, self._stalled)
        else:
            self._queue_drained()

    def _queue_drained(self) -> None:
        self._cancel_stall()

    def _start(self, s: _Send) -> None:
        self.in_flight += 1
        # maybeDeferred: a transmit that returns a plain value, or raises, is a finished transmission
        # (the harness's first find in this component: a plain value broke addCallbacks)
        t = maybeDeferred(self._transmit, s.item)
        s.transmission = t

        def ok(value: object) -> None:
            s.transmission = None
            self.in_flight -= 1
            if not s.done:
                s.done = True
                assert s.result is not None
                s.result.callback(value)

        def bad(f: Failure) -> None:
            s.transmission = None
            self.in_flight -= 1
            if not s.done:
                s.done = True
                assert s.result is not None
                s.result.errback(f)

        t.addCallbacks(ok, bad)

    def _stalled(self) -> None:
        self._stall_timer = None
        queued, self._queue = self._queue, deque()
        for s in queued:
            self._fail(s, WindowStalled(f"no credit granted for {self._stall}s"))

    def _cancel_stall(self) -> None:
        if self._stall_timer is not None:
            if self._stall_timer.active():
                self._stall_timer.cancel()
            self._stall_timer = None

    def _fail(self, s: _Send, exc: Exception) -> None:
        if s.done:
            return
        s.done = True
        assert s.result is not None
        s.result.errback(exc)

    def _return_credit(self) -> None:
        self.credit += 1
        self.returned += 1

    def _cancel(self, s: _Send) -> None:
        if s.done:
            return
        if s in self._queue:
            self._queue.remove(s)
            s.done = True
            if s.result is not None and not s.result.called:
                s.result.errback(CancelledError())
            if not self._queue:
                self._queue_drained()
            return
        t = s.transmission
        if t is not None:
            # The receiver never got the item: the credit comes back.
            s.done = True
            if s.result is not None and not s.result.called:
                s.result.errback(CancelledError())
            t.cancel()
            self._return_credit()
            if not self.closed:
                self._pump()


class LeakyCancelStream(CreditStream):
    """Bug: a cancelled transmission keeps its credit (slot not freed on cancel)."""

    def _return_credit(self) -> None:
        pass


class StickyStallStream(CreditStream):
    """Bug: the stall timer is not cancelled when the queue drains (forgotten cancel)."""

    def _queue_drained(self) -> None:
        pass


class OverdrawStream(CreditStream):
    """Bug: off-by-one, sends while credit >= 0 (one item beyond the window)."""

    def _can_send(self) -> bool:
        return self.credit >= 0


def accounting_ok(stream: CreditStream) -> bool:
    """Credits are conserved: granted == available + spent - returned, none negative."""
    spent = stream.sent
    return stream.credit >= 0 and stream.granted == stream.credit + spent - stream.returned
