"""A keyed write-behind buffer: writes to a key are coalesced (last value wins) and flushed after a
quiet period or a maximum wait, whichever comes first; failed flushes are retried.

``async def`` coroutines driven by ``Deferred.fromCoroutine``, ``deferLater`` for the retry delay,
``addTimeout`` on each flush attempt.

Promises:

1. ``write(key, value)`` returns a Deferred that fires exactly once: with None once a flush of that
   key carrying this value (or a newer one written after it) succeeded, or with :class:`FlushFailed`
   after ``max_attempts`` failed attempts of the flush that carried it;
2. a key is flushed no later than ``max_wait`` after the first unflushed write to it (if no flush of
   the key is in flight then), and not before ``quiet`` seconds without writes unless ``max_wait``
   came first (a batch that fell due while the key's previous flush ran takes further writes
   and goes as soon as that flush ends: the quiet period it already had counts);
3. at most one flush per key is in flight, and a key's flushes carry its values in write order;
4. ``close()`` flushes everything pending at once and fires once nothing is pending or in flight;
   afterwards no timer remains; writes after ``close()`` fail with :class:`WriterClosed`.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

_log = Logger()


class FlushFailed(Exception):
    """The flush carrying this write failed ``max_attempts`` times; ``last`` is the last error."""

    def __init__(self, message: str, last: BaseException | None = None) -> None:
        super().__init__(message)
        self.last = last


class WriterClosed(Exception):
    """The buffer is closed."""


class _Batch:
    __slots__ = ("value", "waiters", "quiet_timer", "max_timer", "due")

    def __init__(self) -> None:
        self.value: Any = None
        self.waiters: list[Deferred[None]] = []
        self.quiet_timer: IDelayedCall | None = None
        self.max_timer: IDelayedCall | None = None
        self.due = False


class _Key:
    __slots__ = ("batch", "flushing")

    def __init__(self) -> None:
        self.batch: _Batch | None = None
        self.flushing: _Batch | None = None


class WriteBehind:
    def __init__(
        self,
        reactor: IReactorTime,
        flush: Callable[[Hashable, Any], Deferred[Any]],
        *,
        quiet: float = 1.0,
        max_wait: float = 5.0,
        retry_delay: float = 0.5,
        max_attempts: int = 3,
        flush_timeout: float | None = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._reactor = reactor
        self._flush = flush
        self.quiet = quiet
        self.max_wait = max_wait
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.flush_timeout = flush_timeout
        self._keys: dict[Hashable, _Key] = {}
        self._closed = False
        self._close_waiters: list[Deferred[None]] = []
        self.flushes: list[tuple[Hashable, Any]] = []  # successful flushes, in order

    def pending(self) -> int:
        return len(self._keys)

    # -- writing ---------------------------------------------------------------------------------
    def write(self, key: Hashable, value: Any) -> Deferred[None]:
        if self._closed:
            return defer.fail(WriterClosed(f"write to {key!r} after close"))
        k = self._keys.get(key)
        if k is None:
            k = self._keys[key] = _Key()
        b = k.batch
        if b is None:
            b = k.batch = _Batch()
            b.max_timer = self._reactor.callLater(self.max_wait, self._due, key)
        b.value = value
        d: Deferred[None] = Deferred()
        b.waiters.append(d)
        if not b.due:
            if b.quiet_timer is not None and b.quiet_timer.active():
                b.quiet_timer.reset(self.quiet)
            else:
                b.quiet_timer = self._reactor.callLater(self.quiet, self._due, key)
        return d

    def _due(self, key: Hashable) -> None:
        k = self._keys[key]
        b = k.batch
        assert b is not None
        self._stop_timers(b)
        b.due = True
        if k.flushing is None:
            self._start(key, k)

    @staticmethod
    def _stop_timers(b: _Batch) -> None:
        for t in (b.quiet_timer, b.max_timer):
            if t is not None and t.active():
                t.cancel()
        b.quiet_timer = b.max_timer = None

    # -- flushing --------------------------------------------------------------------------------
    def _start(self, key: Hashable, k: _Key) -> None:
        batch, k.batch = k.batch, None
        assert batch is not None
        k.flushing = batch
        d = Deferred.fromCoroutine(self._flush_batch(key, k, batch))
        d.addErrback(lambda f: _log.failure("flush of {key!r} crashed", f, key=key))

    async def _attempt(self, key: Hashable, value: Any) -> None:
        d = defer.maybeDeferred(self._flush, key, value)
        if self.flush_timeout is not None:
            d.addTimeout(self.flush_timeout, self._reactor)
        await d

    async def _flush_batch(self, key: Hashable, k: _Key, batch: _Batch) -> None:
        error: BaseException | None = None
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._attempt(key, batch.value)
            except Exception as e:
                if attempt >= self.max_attempts:
                    error = e
                    break
                await task.deferLater(self._reactor, self.retry_delay, lambda: None)
                continue
            self.flushes.append((key, batch.value))
            break
        self._finished(key, k, batch, error)

    def _finished(self, key: Hashable, k: _Key, batch: _Batch, error: BaseException | None) -> None:
        k.flushing = None
        if k.batch is not None and k.batch.due:
            self._start(key, k)
        elif k.batch is None:
            del self._keys[key]
        for d in batch.waiters:
            if error is None:
                d.callback(None)
            else:
                d.errback(FlushFailed(f"flush of {key!r} failed {self.max_attempts} times: {error!r}", error))
        self._check_closed()

    # -- shutdown --------------------------------------------------------------------------------
    def close(self) -> Deferred[None]:
        """Flush everything now; fires once nothing is pending or in flight."""
        self._closed = True
        for key, k in list(self._keys.items()):
            b = k.batch
            if b is not None and not b.due:
                self._stop_timers(b)
                b.due = True
                if k.flushing is None:
                    self._start(key, k)
        d: Deferred[None] = Deferred()
        self._close_waiters.append(d)
        self._check_closed()
        return d

    def _check_closed(self) -> None:
        if self._closed and not self._keys:
            waiters, self._close_waiters = self._close_waiters, []
            for d in waiters:
                d.callback(None)


# ----------------------------------------------------------------------------------------------
# Buggy twins (see BUGS.md).
# ----------------------------------------------------------------------------------------------


class StaleTimerWriteBehind(WriteBehind):
    """W1: when a batch falls due, only the max-wait timer is cancelled (the author assumed the
    quiet timer is the one that fired). After a max-wait flush the quiet timer stays armed: it
    later fires for a key whose batch is gone (KeyError/AssertionError in the reactor) or flushes a
    newer batch before its quiet period; a timer can outlive close()."""

    @staticmethod
    def _stop_timers(b: _Batch) -> None:
        if b.max_timer is not None and b.max_timer.active():
            b.max_timer.cancel()
        b.max_timer = None


class SwallowingWriteBehind(WriteBehind):
    """W2: the give-up path logs the error and forgets the batch's writers: after max_attempts
    failures their Deferreds never fire: the callers hang (close() still fires, the key is gone)."""

    def _finished(self, key: Hashable, k: _Key, batch: _Batch, error: BaseException | None) -> None:
        k.flushing = None
        if k.batch is not None and k.batch.due:
            self._start(key, k)
        elif k.batch is None:
            del self._keys[key]
        if error is not None:
            _log.error("giving up on {key!r}: {error!r}", key=key, error=error)
        else:
            for d in batch.waiters:
                d.callback(None)
        self._check_closed()


class PiggybackWriteBehind(WriteBehind):
    """W3: a write that arrives while its key is being flushed is attached to the in-flight batch
    (its waiter list) instead of a new batch: its Deferred succeeds when the older value lands, so
    the caller is told the write is durable although its value was never flushed."""

    def write(self, key: Hashable, value: Any) -> Deferred[None]:
        k = self._keys.get(key)
        if not self._closed and k is not None and k.flushing is not None and k.batch is None:
            d: Deferred[None] = Deferred()
            k.flushing.waiters.append(d)
            return d
        return super().write(key, value)
