"""A batcher: ``add(item)`` queues an item and returns a Deferred that fires with the sink's
result for the batch it went out in. A batch is flushed when it reaches ``max_size`` items or
``max_delay`` seconds after its first item, whichever comes first.

Written blind (before reading the harness docs) for the outside-user review, round 2.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class Batcher:
    """Groups items for a sink.

    ``sink(items)`` returns a Deferred (or a value). Every waiter of a batch gets the sink's
    result (or its failure). Batches are flushed one at a time: a batch that fills while the
    previous flush is still out waits for it (order of sink calls = order of items).
    ``stop()`` flushes what is pending and returns a Deferred firing when every flush is done.
    """

    def __init__(self, clock: IReactorTime, sink: Callable[[List[Any]], Any], max_size: int = 3,
                 max_delay: float = 1.0) -> None:
        self.clock = clock
        self._sink = sink
        self.max_size = max_size
        self.max_delay = max_delay
        self._pending: List[tuple[Any, Deferred]] = []
        self._timer: Optional[IDelayedCall] = None
        self._ready: List[List[tuple[Any, Deferred]]] = []
        self._flushing = False
        self._idle: List[Deferred] = []
        self.batches: List[List[Any]] = []

    def add(self, item: Any) -> Deferred:
        d: Deferred = Deferred()
        self._pending.append((item, d))
        if len(self._pending) >= self.max_size:
            self._cut()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.max_delay, self._on_timer)
        return d

    def _on_timer(self) -> None:
        self._timer = None
        self._cut()

    def _cut(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            batch, self._pending = self._pending, []
            self._ready.append(batch)
        self._pump()

    def _pump(self) -> None:
        if self._flushing:
            return
        if not self._ready:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)
            return
        batch = self._ready.pop(0)
        self._flushing = True
        items = [item for item, _ in batch]
        self.batches.append(items)
        d = maybeDeferred(self._sink, items)
        d.addBoth(self._flushed, batch)

    def _flushed(self, result: Any, batch: List[tuple[Any, Deferred]]) -> None:
        self._flushing = False
        for _, waiter in batch:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)
        self._pump()

    def stop(self) -> Deferred:
        d: Deferred = Deferred()
        self._idle.append(d)
        self._cut()
        return d


class BuggyBatcher(Batcher):
    """Planted bug: a size-triggered cut forgets the pending timer (sets it to None without
    cancelling it). The orphaned timer later fires and cuts whatever is pending then: a later
    batch goes out early (maybe a single item), and after ``stop()`` the timer is still pending
    (it then fires with nothing pending and completes the idle waiters of a later stop early)."""

    def _cut(self) -> None:
        self._timer = None  # BUG: not cancelled
        if self._pending:
            batch, self._pending = self._pending, []
            self._ready.append(batch)
        self._pump()
