"""A batching queue: items wait to be sent in batches, on size, on a timer, or on ``flush()``.

The shape of Synapse's ``BatchingQueue`` and of every "coalesce writes"
buffer: ``submit`` queues an item and returns its Deferred; the queue sends
everything pending once ``size`` items wait, ``delay_ms`` after the first
one, or when its owner calls ``flush()`` (a target operation, drawn into
schedules like submits and cancels). Cancelling a waiting item takes it out
of the queue; cancelling a sent one only detaches its caller
(``cancellable="detach"``): the batch is already on its way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Operation, Target

from . import Scenario

SIZE = 3
DELAY_MS = 50


class _Item:
    __slots__ = ("job", "caller")

    def __init__(self, job: Callable[[], Any]) -> None:
        self.job = job
        self.caller: defer.Deferred[Any] = defer.Deferred()


class BatchingQueue:
    """Sends pending items in batches; each caller gets its own item's outcome."""

    def __init__(self, clock: IReactorTime, size: int = SIZE, delay_ms: int = DELAY_MS) -> None:
        self.clock = clock
        self.size = size
        self.delay_ms = delay_ms
        self.pending: list[_Item] = []
        self._timer: IDelayedCall | None = None

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        item = _Item(job)
        item.caller = defer.Deferred(lambda d: self._cancel(item))
        self.pending.append(item)
        if len(self.pending) >= self.size:
            self.flush()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.delay_ms / 1000, self._on_timer)
        return item.caller

    def _cancel(self, item: _Item) -> None:
        if item in self.pending:
            self.pending.remove(item)
        # A sent item's batch runs on; Twisted fails the caller with CancelledError.

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Send every pending item now (nothing to do when none is pending)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self.pending = self.pending, []
        self._send(batch)

    def _send(self, batch: list[_Item]) -> None:
        for item in batch:
            defer.maybeDeferred(item.job).addBoth(self._deliver, item)

    def _deliver(self, outcome: Any, item: _Item) -> None:
        if item.caller.called:
            return None  # its caller detached; a failure is consumed here, not left unhandled
        if isinstance(outcome, Failure):
            item.caller.errback(outcome)
        else:
            item.caller.callback(outcome)
        return None

    def stop(self) -> None:
        """Send whatever is still pending."""
        if self.pending:
            self.flush()


class FlagCancelQueue(BatchingQueue):
    """Bug: cancelling a waiting item only fails its caller; the item stays queued and is still sent."""

    def _cancel(self, item: _Item) -> None:
        pass  # "the batch skips items whose caller is gone"... but nothing checks


class InOrderQueue(BatchingQueue):
    """Bug: each outcome that comes back is handed to the oldest caller of the batch still waiting.

    The code assumes a batch answers in the order it was sent; when a later
    item finishes first, callers get each other's results.
    """

    def _send(self, batch: list[_Item]) -> None:
        waiting = list(batch)
        for item in batch:
            defer.maybeDeferred(item.job).addBoth(lambda outcome: self._deliver(outcome, waiting.pop(0)))


class EmptyFlushQueue(BatchingQueue):
    """Bug: ``flush()`` with nothing pending pops from an empty batch and raises IndexError."""

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        first = self.pending.pop(0)  # the first item opens the batch
        batch, self.pending = [first, *self.pending], []
        self._send(batch)


def _queue(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(
        build=build,
        cancellable="detach",
        operations={"flush": Operation(lambda queue: queue.flush())},
        description=description,
    )


batching_queue = _queue(BatchingQueue, f"batches of {SIZE}, or after {DELAY_MS}ms, or on flush(); each caller gets its own outcome")
flag_cancel_queue = _queue(FlagCancelQueue, "a cancelled item stays queued and is still sent")
in_order_queue = _queue(InOrderQueue, "outcomes are handed to callers in sending order, not to the item they belong to")
empty_flush_queue = _queue(EmptyFlushQueue, "flush() on an empty queue raises IndexError")

SCENARIOS = (
    Scenario("scenarios.batching:batching_queue", "pass", "a batching queue flushed on size, timer or flush()", "callLater"),
    Scenario("scenarios.batching:flag_cancel_queue", "cancellation.no_start", "a cancelled item is still sent with its batch", "callLater"),
    Scenario(
        "scenarios.batching:in_order_queue",
        "errors.own_result",
        "each outcome goes to the oldest waiting caller of its batch: an item that finishes first answers another",
        "callLater",
    ),
    Scenario("scenarios.batching:empty_flush_queue", "errors.operation", "flush() on an empty queue raises IndexError", "callLater"),
)
