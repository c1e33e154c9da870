"""An ordered-results executor on an injected clock: up to ``concurrency`` jobs run at once and
their results are delivered to the callers in submission order (a reorder buffer).

``submit(job, timeout=None)`` queues ``job`` (a zero-argument callable returning a value or a
Deferred) and returns a Deferred that fires with the job's result, or fails with the job's error,
ItemTimeout (the job ran longer than its timeout, counted from its start; the job's Deferred is
cancelled), ExecutorShutdown, or CancelledError if the caller cancels it.  Whatever the outcome,
the Deferreds fire in submission order, except that a caller's own cancel fires at once (the
cancelled item then no longer holds back the items after it).  A stuck item holds delivery back
only until its timeout.  ``shutdown()`` refuses new work, fails queued items with
ExecutorShutdown and cancels running ones (which then also fail with ExecutorShutdown).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class ItemTimeout(Exception):
    """The job ran longer than its per-item timeout."""


class ExecutorShutdown(Exception):
    """The executor was shut down before the job finished."""


QUEUED, RUNNING, DONE = "queued", "running", "done"


@dataclass(eq=False)
class _Item:
    seq: int
    job: Callable[[], Any] = field(repr=False)
    timeout: float
    d: Deferred[Any] = field(repr=False)
    state: str = QUEUED
    outcome: Any = None
    cancelled: bool = False
    failed: bool = False
    work: Deferred[Any] | None = field(default=None, repr=False)
    timer: IDelayedCall | None = None


class OrderedExecutor:
    """Runs jobs ``concurrency`` at a time, delivers their outcomes in submission order."""

    def __init__(self, clock: IReactorTime, concurrency: int, item_timeout: float) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._clock = clock
        self.concurrency = concurrency
        self.item_timeout = item_timeout
        self.running = 0
        self._queue: deque[_Item] = deque()
        self._items: dict[int, _Item] = {}
        self._next_seq = 0
        self._next_delivery = 0
        self._shut = False

    def submit(self, job: Callable[[], Any], timeout: float | None = None) -> Deferred[Any]:
        if self._shut:
            return fail(ExecutorShutdown("submit() after shutdown()"))
        item: _Item

        def cancel(_: Deferred[Any]) -> None:
            self._cancel(item)

        item = _Item(self._next_seq, job, self.item_timeout if timeout is None else timeout, Deferred(cancel))
        self._next_seq += 1
        self._items[item.seq] = item
        self._queue.append(item)
        self._pump()
        return item.d

    # -- running -------------------------------------------------------------------------------
    def _pump(self) -> None:
        while self.running < self.concurrency and self._queue and not self._shut:
            self._start(self._queue.popleft())

    def _start(self, item: _Item) -> None:
        item.state = RUNNING
        self.running += 1
        item.timer = self._clock.callLater(item.timeout, self._timed_out, item)
        item.work = maybeDeferred(item.job)
        item.work.addBoth(self._finished, item)

    def _finished(self, result: Any, item: _Item) -> None:
        if item.state != RUNNING:  # timed out, cancelled or shut down already: the late outcome is dropped
            return None
        self._stop_timer(item)
        self.running -= 1
        self._done(item, result, isinstance(result, Failure))
        self._deliver()
        self._pump()
        return None

    def _timed_out(self, item: _Item) -> None:
        item.timer = None
        self._done(item, ItemTimeout(f"item {item.seq} ran over its {item.timeout}s timeout"), True)
        self._free_slot_after_timeout()
        try:
            if item.work is not None:
                item.work.cancel()
        finally:  # a job's canceller that raises must not strand the items behind it
            self._deliver()
            self._pump()

    def _free_slot_after_timeout(self) -> None:
        self.running -= 1

    @staticmethod
    def _done(item: _Item, outcome: Any, failed: bool) -> None:
        item.state = DONE
        item.outcome = outcome
        item.failed = failed

    @staticmethod
    def _stop_timer(item: _Item) -> None:
        if item.timer is not None and item.timer.active():
            item.timer.cancel()
        item.timer = None

    # -- cancelling and shutting down ------------------------------------------------------------
    def _cancel(self, item: _Item) -> None:
        """The caller cancelled (its Deferred has not fired yet): fail the Deferred now and stop
        holding back later items.  A finished item waiting in the reorder buffer is dropped."""
        was = item.state
        if was == QUEUED:
            self._queue.remove(item)
        elif was == RUNNING:
            self._stop_cancelled_timer(item)
            self.running -= 1
        self._done(item, None, False)
        item.cancelled = True
        try:
            if was == RUNNING and item.work is not None:
                item.work.cancel()
        finally:  # a job's canceller that raises must not strand the caller or the items behind it
            item.d.errback(CancelledError(f"item {item.seq} cancelled by its caller"))
            self._deliver()
            self._pump()

    def _stop_cancelled_timer(self, item: _Item) -> None:
        self._stop_timer(item)

    def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        to_cancel: list[Deferred[Any]] = []
        for item in list(self._items.values()):
            if item.state == QUEUED:
                self._queue.remove(item)
                self._done(item, ExecutorShutdown("executor shut down"), True)
            elif item.state == RUNNING:
                self._stop_timer(item)
                self.running -= 1
                self._done(item, ExecutorShutdown("executor shut down"), True)
                if item.work is not None:
                    to_cancel.append(item.work)
        raised: BaseException | None = None
        for work in to_cancel:
            try:
                work.cancel()
            except Exception as e:  # a job's canceller raised: cancel the others all the same
                raised = raised or e
        self._deliver()
        if raised is not None:
            raise raised

    # -- delivering ------------------------------------------------------------------------------
    def _deliver(self) -> None:
        """Fire, in submission order, every finished item not held back by an earlier one."""
        while True:
            item = self._items.get(self._next_delivery)
            if item is None or item.state != DONE:
                return
            del self._items[self._next_delivery]
            self._next_delivery += 1
            self._fire(item)

    @staticmethod
    def _fire(item: _Item) -> None:
        if item.cancelled:
            return
        if item.failed:
            item.d.errback(item.outcome)
        else:
            item.d.callback(item.outcome)


class OrderedExecutorTimeoutLeaksSlot(OrderedExecutor):
    """BUG: a timed-out item never gives its slot back: after ``concurrency`` timeouts nothing
    runs any more and every later item waits forever."""

    def _free_slot_after_timeout(self) -> None:
        pass


class OrderedExecutorCancelKeepsTimer(OrderedExecutor):
    """BUG: cancelling a running item forgets to cancel its timeout timer; the timer fires later,
    gives the slot back a second time, and more than ``concurrency`` jobs run at once."""

    def _stop_cancelled_timer(self, item: _Item) -> None:
        pass


class OrderedExecutorSkipsAhead(OrderedExecutor):
    """BUG: the delivery loop skips over an unfinished item (``continue`` where ``break`` was
    meant): finished later items are delivered before an earlier item still running."""

    def _deliver(self) -> None:
        for seq in sorted(self._items):
            item = self._items.get(seq)
            if item is None or item.state != DONE:
                continue
            del self._items[seq]
            self._next_delivery = max(self._next_delivery, seq + 1)
            self._fire(item)
