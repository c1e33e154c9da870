"""A consumer pool over a DeferredQueue: ``n`` workers each take an item, process it (maybe
asynchronously), and take the next. A failing item is recorded and the worker carries on.
``stop()`` stops taking items and fires once every item in progress is done.

Written blind (before reading the harness docs) for the outside-user review, round 2.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.internet.defer import (CancelledError, Deferred, DeferredList, DeferredQueue,
                                    fail, maybeDeferred)
from twisted.python.failure import Failure


class PoolStopped(Exception):
    """submit() after stop()."""


class ConsumerPool:
    """``submit(item)`` returns a Deferred firing with ``process(item)``'s result (or failure)."""

    def __init__(self, process: Callable[[Any], Any], workers: int = 2) -> None:
        self._process = process
        self.queue: DeferredQueue = DeferredQueue()
        self.workers = workers
        self._gets: List[Optional[Deferred]] = [None] * workers
        self._busy: List[Optional[Deferred]] = [None] * workers
        self.stopping = False
        self.errors: List[Failure] = []
        self.started = False

    def start(self) -> None:
        self.started = True
        for i in range(self.workers):
            self._next(i)

    def submit(self, item: Any) -> Deferred:
        # Found by the harness (review round 2, F6): an item submitted after stop() used to wait
        # in the queue for ever, since no worker takes items any more.
        if self.stopping:
            return fail(PoolStopped("the pool is stopped"))
        done: Deferred = Deferred()
        self.queue.put((item, done))
        return done

    def _next(self, i: int) -> None:
        if self.stopping:
            return
        g = self.queue.get()
        self._gets[i] = g
        g.addCallbacks(self._got, self._get_failed, callbackArgs=(i,))

    def _get_failed(self, failure: Failure) -> None:
        failure.trap(CancelledError)  # stop() cancelled the wait

    def _got(self, entry: tuple[Any, Deferred], i: int) -> None:
        self._gets[i] = None
        item, done = entry
        work = maybeDeferred(self._process, item)
        self._busy[i] = work
        work.addBoth(self._finished, i, done)

    def _finished(self, result: Any, i: int, done: Deferred) -> None:
        self._busy[i] = None
        if isinstance(result, Failure):
            self.errors.append(result)
            done.errback(result)
        else:
            done.callback(result)
        self._next(i)

    def stop(self) -> Deferred:
        """Stop taking items; fire once the items in progress are done. Items still queued
        fail with CancelledError."""
        self.stopping = True
        for i, g in enumerate(self._gets):
            if g is not None:
                self._gets[i] = None
                g.cancel()
        while self.queue.pending:
            _, done = self.queue.pending.pop(0)
            done.errback(CancelledError("pool stopped"))
        busy = [b for b in self._busy if b is not None]
        return DeferredList([_settled(b) for b in busy], consumeErrors=True)


def _settled(d: Deferred) -> Deferred:
    """A Deferred that fires (with None) when ``d`` has fired, without touching ``d``'s chain."""
    out: Deferred = Deferred()

    def fire(result: Any) -> Any:
        out.callback(None)
        return result

    d.addBoth(fire)
    return out


class BuggyConsumerPool(ConsumerPool):
    """Planted bug: the worker only continues on success. ``_finished`` was split into a success
    and a failure branch and only the success branch calls ``_next``: every failing item kills
    its worker, so after ``workers`` failures the queue is never served again and later
    submissions wait for ever."""

    def _finished(self, result: Any, i: int, done: Deferred) -> None:
        self._busy[i] = None
        if isinstance(result, Failure):
            self.errors.append(result)
            done.errback(result)
            return  # BUG: the worker does not take the next item
        done.callback(result)
        self._next(i)
