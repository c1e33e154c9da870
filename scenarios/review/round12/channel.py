"""A bounded asynchronous channel in the style of a Go channel.

``put(item)`` waits while the buffer is full, ``get()`` waits while it is empty; each takes an
optional timeout (:class:`ChannelTimeout`) and may be cancelled.  Waiters are served FIFO.
``close()`` fails every waiting put with :class:`ChannelClosed`; gets drain the buffer, then fail.
Capacity 0 is a rendezvous channel: a put completes only when a get takes its item.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, Optional

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class ChannelClosed(Exception):
    """The channel is closed (puts) or closed and drained (gets)."""


class ChannelTimeout(Exception):
    """A put or get waited past its timeout."""


class _Pending:
    def __init__(self, chan: "BoundedChannel", queue: "Deque[_Pending]", item: Any = None) -> None:
        self.chan = chan
        self.queue = queue
        self.item = item
        self.timer: Optional[IDelayedCall] = None
        self.d: defer.Deferred[Any] = defer.Deferred(self._cancel)

    def _cancel(self, d: "defer.Deferred[Any]") -> None:
        self.chan._withdraw(self)

    def disarm(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


class BoundedChannel:
    """A FIFO channel holding at most ``capacity`` items."""

    def __init__(self, clock: IReactorTime, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.clock = clock
        self.capacity = capacity
        self.buffer: Deque[Any] = deque()
        self.putters: Deque[_Pending] = deque()
        self.getters: Deque[_Pending] = deque()
        self.closed = False

    # -- public API ------------------------------------------------------------------------
    def put(self, item: Any, timeout: Optional[float] = None) -> "defer.Deferred[None]":
        """Fires with None once ``item`` is in the channel (or taken by a getter)."""
        if self.closed:
            return defer.fail(ChannelClosed())
        if self.getters:
            g = self.getters.popleft()
            g.disarm()
            g.d.callback(item)
            return defer.succeed(None)
        if not self.putters and self._room():
            self.buffer.append(item)
            return defer.succeed(None)
        p = _Pending(self, self.putters, item)
        self._wait(p, timeout)
        return p.d

    def get(self, timeout: Optional[float] = None) -> "defer.Deferred[Any]":
        """Fires with the oldest item; fails with ChannelClosed once closed and drained."""
        if self.buffer:
            item = self.buffer.popleft()
            self._refill()
            return defer.succeed(item)
        if self.putters:  # rendezvous (capacity 0)
            p = self.putters.popleft()
            p.disarm()
            p.d.callback(None)
            return defer.succeed(p.item)
        if self.closed:
            return defer.fail(ChannelClosed())
        g = _Pending(self, self.getters)
        self._wait(g, timeout)
        return g.d

    def close(self) -> None:
        """Fail waiting puts; waiting gets fail too (the buffer is empty when gets wait)."""
        if self.closed:
            return
        self.closed = True
        putters, self.putters = list(self.putters), deque()
        for p in putters:
            p.disarm()
            p.d.errback(ChannelClosed())
        self._close_getters()

    def __len__(self) -> int:
        return len(self.buffer)

    # -- internals -------------------------------------------------------------------------
    def _room(self) -> bool:
        return len(self.buffer) < self.capacity

    def _refill(self) -> None:
        while self.putters and self._room():
            p = self.putters.popleft()
            p.disarm()
            self.buffer.append(p.item)
            p.d.callback(None)

    def _close_getters(self) -> None:
        getters, self.getters = list(self.getters), deque()
        for g in getters:
            g.disarm()
            g.d.errback(ChannelClosed())

    def _wait(self, w: _Pending, timeout: Optional[float]) -> None:
        w.queue.append(w)
        if timeout is not None:
            w.timer = self.clock.callLater(timeout, self._timeout, w)

    def _timeout(self, w: _Pending) -> None:
        w.timer = None
        self._withdraw(w)
        w.d.errback(ChannelTimeout())

    def _withdraw(self, w: _Pending) -> None:
        try:
            w.queue.remove(w)
        except ValueError:
            pass
        w.disarm()


class OverfullChannel(BoundedChannel):
    """Bug: holds capacity + 1 items (``<=`` for ``<``)."""

    def _room(self) -> bool:
        return len(self.buffer) <= self.capacity


class StaleGetterChannel(BoundedChannel):
    """Bug: a cancelled get stays queued, so the next put hands its item to a dead Deferred."""

    def _withdraw(self, w: _Pending) -> None:
        if w.queue is self.putters:
            super()._withdraw(w)
        else:
            w.disarm()


class DropOnCloseChannel(BoundedChannel):
    """Bug: close() throws the buffered items away instead of letting gets drain them."""

    def close(self) -> None:
        super().close()
        self.buffer.clear()
