"""A readers-writer lock with writer preference, on an injected clock.

``acquire_read()`` and ``acquire_write()`` return Deferreds firing (with None) once the lock is
held; each takes an optional acquire ``timeout`` (seconds) after which the Deferred fails with
LockTimeout, and each is cancellable (``d.cancel()`` withdraws the request).  ``release()``
releases the writer's hold if a writer holds the lock, else one reader's hold.

Waiters are served first come first served, but a waiting writer blocks new readers: a reader
arriving while any waiter is queued queues behind it.  When the head of the queue is a run of
readers they are all let in together.  A queued writer that times out or is cancelled lets the
readers queued behind it in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class LockTimeout(Exception):
    """The lock could not be acquired within the acquire timeout."""


@dataclass(eq=False)
class _Waiter:
    write: bool
    d: Deferred[None] = field(repr=False)
    timer: IDelayedCall | None = None


class RWLock:
    """Readers-writer lock, writer preference, FIFO among waiters."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self.readers = 0
        self.writer = False
        self._queue: deque[_Waiter] = deque()

    # -- acquiring ---------------------------------------------------------------------------
    def acquire_read(self, timeout: float | None = None) -> Deferred[None]:
        if not self.writer and not self._queue:
            self.readers += 1
            return succeed(None)
        return self._enqueue(False, timeout)

    def acquire_write(self, timeout: float | None = None) -> Deferred[None]:
        if self._can_write_now() and not self._queue:
            self.writer = True
            return succeed(None)
        return self._enqueue(True, timeout)

    def _can_write_now(self) -> bool:
        return not self.writer and self.readers == 0

    def _enqueue(self, write: bool, timeout: float | None) -> Deferred[None]:
        waiter: _Waiter

        def cancel(_: Deferred[None]) -> None:
            self._withdraw(waiter)

        waiter = _Waiter(write, Deferred(cancel))
        if timeout is not None:
            waiter.timer = self._clock.callLater(timeout, self._timed_out, waiter)
        self._queue.append(waiter)
        return waiter.d

    def _withdraw(self, waiter: _Waiter) -> None:
        """A queued waiter was cancelled: forget it, and let in whoever it was blocking."""
        if waiter in self._queue:
            self._queue.remove(waiter)
            self._stop_timer(waiter)
            self._pump()

    def _timed_out(self, waiter: _Waiter) -> None:
        waiter.timer = None
        self._queue.remove(waiter)
        waiter.d.errback(LockTimeout(f"{'write' if waiter.write else 'read'} lock not acquired in time"))
        self._after_timeout()

    def _after_timeout(self) -> None:
        self._pump()

    @staticmethod
    def _stop_timer(waiter: _Waiter) -> None:
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        waiter.timer = None

    # -- releasing ---------------------------------------------------------------------------
    def release(self) -> None:
        if self.writer:
            self.writer = False
        elif self.readers > 0:
            self.readers -= 1
        else:
            raise RuntimeError("release() of an RWLock that is not held")
        self._pump()

    def _pump(self) -> None:
        """Grant the head of the queue while it can be granted (a run of readers together)."""
        while self._queue:
            head = self._queue[0]
            if head.write:
                if not self._can_write_now():
                    return
                self._queue.popleft()
                self.writer = True
            else:
                if self.writer:
                    return
                self._queue.popleft()
                self.readers += 1
            self._grant(head)

    def _grant(self, waiter: _Waiter) -> None:
        self._stop_timer(waiter)
        waiter.d.callback(None)


class RWLockTimerLeak(RWLock):
    """BUG: a granted waiter's acquire timer is not cancelled; it fires later and the timeout
    handler tries to dequeue a waiter that is no longer queued (ValueError in the reactor)."""

    def _grant(self, waiter: _Waiter) -> None:
        waiter.d.callback(None)


class RWLockStuckBehindTimedOutWriter(RWLock):
    """BUG: a queued writer that times out is dropped, but the readers queued behind it are not
    let in (no pump after the timeout): they wait until some unrelated release."""

    def _after_timeout(self) -> None:
        pass


class RWLockWriterOffByOne(RWLock):
    """BUG: off-by-one in the writer's admission test: a writer is let in while one reader still
    holds the lock."""

    def _can_write_now(self) -> bool:
        return not self.writer and self.readers <= 1
