"""At-least-once work: a visibility-timeout queue (``lease_ms``) and writers that stop waiting
(``cancellable="detach_queued"``), from the fifth outside review (findings 3 and 6).

The components are the review's own (``scenarios.review.round5``): an SQS-like queue whose two
workers call each message's job without a handler timeout, and a keyed write-behind buffer.

* A queue delivery is leased for ``VQ_VISIBILITY_MS``: a handler still running when its lease
  runs out has its message delivered again to the other worker, and its late ack is refused (the
  message is dead-lettered after three deliveries without an accepted ack). The target declares
  ``lease_ms`` for it: an attempt may be called again once it ran that long without succeeding,
  and its later success is not final. A redelivery before the lease ran out, or after a success
  within it, is still ``time.retries``.
* A caller's cancel only stops it waiting: the message stays queued and is delivered, the write
  stays buffered and is flushed. The targets declare ``cancellable="detach_queued"``: the work,
  queued or running, goes on (it may start, or be redelivered, after the cancel). Work dropped
  because its caller cancelled is ``cancellation.detaches``.

``LeaseQueueGate`` is the review's gate with one change to ``stop()``: it answers the callers still
waiting at once (``QueueClosed``) instead of once every worker's handler has ended, which a handler
without a timeout that never ends (a ``hang`` job, or one whose canceller raised) put off for ever
(``completion.deadline``, ``errors.poison`` on the review's ``queue_*`` targets).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from harness import Target

from scenarios import Scenario
from scenarios.review.round5.targets import (
    VQ_MAX_RECEIVES,
    VQ_VISIBILITY_MS,
    VQ_WORKERS,
    WB_ATTEMPTS,
    WB_KEYS,
    WB_RETRY_MS,
    DeadLettered,
    QueueGate,
    WriteBehindGate,
    queue_answer_within_visibility,
)
from scenarios.review.round5.visq import QueueClosed, StaleAckQueue, VisibilityQueue
from scenarios.review.round5.writebehind import FlushFailed, WriteBehind, WriterClosed


class LeaseQueueGate(QueueGate):
    """The review's queue gate, its callers answered as soon as ``stop()`` is called."""

    def __init__(self, clock: Any, cls: type[VisibilityQueue] = VisibilityQueue) -> None:
        super().__init__(clock, cls, handler_timeout_ms=None)
        self.stopping = False

    def submit(self, job: Any) -> Deferred[Any]:
        if self.stopping:
            return defer.fail(QueueClosed("queue stopping"))
        return super().submit(job)

    def stop(self) -> Deferred[None]:
        self.stopping = True
        for job_id in list(self.callers):
            self._answer(job_id, QueueClosed("queue stopping"))
        return super().stop()


class EarlyExpiryQueue(VisibilityQueue):
    """BUG: the lease is counted from when the message became visible, not from its delivery: a
    message that waited for a worker is leased only for what is left, and is delivered again while
    its first delivery is still within the promised visibility timeout. Caught by: ``time.retries``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._visible_since: dict[int, float] = {}

    def send(self, body: Any) -> int:
        self._visible_since[self._next_id + 1] = self._reactor.seconds()
        return super().send(body)

    def _visibility_expired(self, mid: int, receipt: int) -> None:
        self._visible_since[mid] = self._reactor.seconds()
        super()._visibility_expired(mid, receipt)

    def _deliver(self, mid: int) -> Any:
        msg = super()._deliver(mid)
        waited = self._reactor.seconds() - self._visible_since.get(mid, self._reactor.seconds())
        timer = self._records[mid].timer
        if timer is not None and waited > 0:
            timer.reset(max(0.0, self.visibility_timeout - waited))
        return msg


class AckKeepsTimerQueue(VisibilityQueue):
    """BUG: ``ack`` forgets the receipt but leaves the message and its visibility timer: the timer
    delivers an acked message again, after a success within its lease. Caught by: ``time.retries``."""

    def ack(self, receipt: int) -> bool:
        mid = self._by_receipt.pop(receipt, None)
        if mid is None:
            return False
        self.acked.append(mid)
        return True

    def _visibility_expired(self, mid: int, receipt: int) -> None:
        self._by_receipt[receipt] = mid  # (ack forgot it; the base class deletes it)
        super()._visibility_expired(mid, receipt)


class UnsendingGate(LeaseQueueGate):
    """BUG: a caller's cancel takes its message back when no worker has received it yet ("nobody
    waits for it"): the work a cancel promised to leave alone is dropped. Caught by:
    ``cancellation.detaches``."""

    def submit(self, job: Any) -> Deferred[Any]:
        d = super().submit(job)
        mid = self.queue._next_id
        outer: Deferred[Any] = Deferred(lambda _d: self._unsend(job.id, mid))
        d.chainDeferred(outer)
        return outer

    def _unsend(self, job_id: int, mid: int) -> None:
        self.callers.pop(job_id, None)
        if mid in self.queue._ready:
            self.queue._ready.remove(mid)
            del self.queue._records[mid]


class DroppingWriteBehind(WriteBehind):
    """BUG: a cancelled write leaves its batch, and a batch nobody waits for any more is dropped
    before it is flushed: the write the caller stopped waiting for is lost. Caught by:
    ``cancellation.detaches``."""

    def write(self, key: Any, value: Any) -> Deferred[None]:
        d = super().write(key, value)
        k = self._keys.get(key)
        batch = k.batch if k is not None else None
        if batch is None or d not in batch.waiters:
            return d

        def cancel(_: Deferred[None]) -> None:
            if d in batch.waiters:
                batch.waiters.remove(d)
            if not batch.waiters and k is not None and k.batch is batch:
                self._stop_timers(batch)
                k.batch = None
                if k.flushing is None:
                    del self._keys[key]
                    self._check_closed()

        outer: Deferred[None] = Deferred(cancel)
        d.chainDeferred(outer)
        return outer


def _queue(cls: type[VisibilityQueue] = VisibilityQueue, gate: type[LeaseQueueGate] = LeaseQueueGate,
           invariants: tuple[Any, ...] = ()) -> Target:
    return Target(
        invariants=invariants,
        build=lambda clock: gate(clock, cls),
        limit=VQ_WORKERS,
        retries=VQ_MAX_RECEIVES - 1,
        lease_ms=VQ_VISIBILITY_MS,
        cancellable="detach_queued",
        wraps={DeadLettered: lambda e: e.last},
        description=f"visibility-timeout queue, 2 workers, no handler timeout ({cls.__name__}, {gate.__name__})",
    )


def _writes(cls: type[WriteBehind] = WriteBehind) -> Target:
    return Target(
        build=lambda clock: WriteBehindGate(clock, cls),
        keys=WB_KEYS,
        shared=True,
        cancellable="detach_queued",
        retries=WB_ATTEMPTS - 1,
        backoff_ms=(WB_RETRY_MS, WB_RETRY_MS),
        wraps={FlushFailed: lambda e: e.last},
        rejects=(WriterClosed,),
        description=f"keyed write-behind buffer, writers may stop waiting ({cls.__name__})",
    )


lease_queue = _queue()
lease_queue_early_expiry = _queue(EarlyExpiryQueue)
lease_queue_ack_keeps_timer = _queue(AckKeepsTimerQueue)
lease_queue_unsends = _queue(gate=UnsendingGate)
#: The review's twin V2 (a stale receipt still acks), leased: the built-ins hold, the review's own invariant catches it.
lease_queue_stale_ack = _queue(StaleAckQueue, invariants=(queue_answer_within_visibility,))
detached_writes = _writes()
detached_writes_dropped = _writes(DroppingWriteBehind)

SCENARIOS = (
    Scenario(
        "scenarios.at_least_once:lease_queue",
        "pass",
        'visibility-timeout queue: redelivery once a lease ran out, late acks refused (lease_ms), callers detach (cancellable="detach_queued")',
        "DelayedCall.reset",
    ),
    Scenario(
        "scenarios.at_least_once:lease_queue_early_expiry",
        "time.retries",
        "a lease counted from when the message became visible: redelivered before its lease ran out",
        "DelayedCall.reset",
    ),
    Scenario(
        "scenarios.at_least_once:lease_queue_ack_keeps_timer",
        "time.retries",
        "ack leaves the visibility timer armed: a message acked within its lease is delivered again",
        "DelayedCall.reset",
    ),
    Scenario(
        "scenarios.at_least_once:lease_queue_stale_ack",
        "user.queue_answer_within_visibility",
        "the review's twin V2: an ack with a receipt whose lease ran out deletes the message redelivered to another worker",
        "DelayedCall.reset",
        # The stale ack also corrupts the queue's records (a KeyError in a worker), leaving a caller unanswered.
        also=("errors.poison", "cancellation.releases", "completion.deadline"),
    ),
    Scenario(
        "scenarios.at_least_once:lease_queue_unsends",
        "cancellation.detaches",
        "a caller's cancel takes back its message before a worker received it",
        "Deferred(canceller)",
    ),
    Scenario(
        "scenarios.at_least_once:detached_writes",
        "pass",
        'keyed write-behind buffer: a writer\'s cancel stops it waiting, the write is still flushed (cancellable="detach_queued")',
        "Deferred.fromCoroutine",
    ),
    Scenario(
        "scenarios.at_least_once:detached_writes_dropped",
        "cancellation.detaches",
        "a batch whose writers all cancelled is dropped before its flush",
        "Deferred(canceller)",
    ),
)
