"""A retry queue with a dead-letter queue, on an injected clock.

``RetryQueue(clock, concurrency, max_attempts, base_delay, max_delay)`` runs submitted jobs (zero-
argument callables returning a value or a Deferred), at most ``concurrency`` attempts at once.
A failed attempt is retried after ``base_delay * 2**(n-1)`` seconds (capped at ``max_delay``),
where n is the number of attempts made so far; a retry waits for a free slot like a new job.
After ``max_attempts`` failed attempts the job goes to the dead-letter queue (``dlq``) and the
caller's Deferred fails with DeadLettered (carrying the last error).  ``redrive()`` resubmits
every dead-lettered job with a fresh attempt count and returns their new Deferreds.  A caller may
cancel its Deferred (the job is withdrawn; a running attempt is cancelled).  ``stop()`` refuses new
work and fails every pending job (queued, waiting to retry or running) with QueueStopped.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class DeadLettered(Exception):
    """The job failed ``max_attempts`` times and was moved to the dead-letter queue."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"dead-lettered after {attempts} attempts: {last!r}")
        self.attempts = attempts
        self.last = last


class QueueStopped(Exception):
    """The queue was stopped before the job succeeded."""


@dataclass(eq=False)
class _Job:
    fn: Callable[[], Any] = field(repr=False)
    d: Deferred[Any] = field(repr=False)
    attempts: int = 0
    state: str = "queued"  # queued | running | waiting | done
    work: Deferred[Any] | None = field(default=None, repr=False)
    timer: IDelayedCall | None = None
    last: BaseException = field(default_factory=Exception)
    seq: int = -1


class RetryQueue:
    def __init__(
        self, clock: IReactorTime, concurrency: int, max_attempts: int, base_delay: float, max_delay: float
    ) -> None:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self._clock = clock
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.running = 0
        self.dlq: list[_Job] = []
        self._queue: deque[_Job] = deque()
        self._waiting: set[_Job] = set()
        self._stopped = False
        self._pending: dict[int, _Job] = {}
        self._next_seq = 0

    def submit(self, fn: Callable[[], Any]) -> Deferred[Any]:
        if self._stopped:
            return fail(QueueStopped("submit() after stop()"))
        job = _Job(fn, Deferred())
        job.d = Deferred(self._canceller(job))
        job.seq = self._register(job)
        self._queue.append(job)
        self._pump()
        return job.d

    def _canceller(self, job: _Job) -> Callable[[Deferred[Any]], None]:
        return lambda _d: self._cancel(job)

    def _register(self, job: _Job) -> int:
        """Track ``job`` as pending (for stop()), in submission order."""
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = job
        return seq

    def redrive(self) -> list[Deferred[Any]]:
        """Resubmit every dead-lettered job; returns the new Deferreds in DLQ order."""
        jobs, self.dlq = self.dlq, []
        return [self.submit(job.fn) for job in jobs]

    # -- running -------------------------------------------------------------------------------
    def _pump(self) -> None:
        while self.running < self.concurrency and self._queue and not self._stopped:
            self._start(self._queue.popleft())

    def _start(self, job: _Job) -> None:
        job.state = "running"
        job.attempts += 1
        self.running += 1
        job.work = maybeDeferred(job.fn)
        job.work.addCallbacks(self._succeeded, self._failed, callbackArgs=(job,), errbackArgs=(job,))

    def _succeeded(self, result: Any, job: _Job) -> None:
        if job.state != "running":
            return None
        self.running -= 1
        job.state = "done"
        self._pending.pop(job.seq, None)
        job.d.callback(result)
        self._pump()
        return None

    def _failed(self, failure: Failure, job: _Job) -> None:
        if job.state != "running":  # cancelled or stopped: its CancelledError is ours
            return None
        self._slot_freed_on_failure()
        job.last = failure.value or Exception('unknown failure')
        if self._should_retry(job):
            job.state = "waiting"
            delay = min(self.base_delay * 2 ** (job.attempts - 1), self.max_delay)
            job.timer = self._clock.callLater(delay, self._retry, job)
            self._waiting.add(job)
        else:
            job.state = "done"
            self._pending.pop(job.seq, None)
            self.dlq.append(job)
            job.d.errback(DeadLettered(job.attempts, job.last))
        self._pump()
        return None

    def _slot_freed_on_failure(self) -> None:
        self.running -= 1

    def _should_retry(self, job: _Job) -> bool:
        return job.attempts < self.max_attempts

    def _retry(self, job: _Job) -> None:
        job.timer = None
        self._waiting.discard(job)
        job.state = "queued"
        self._queue.append(job)
        self._pump()

    # -- cancelling and stopping -----------------------------------------------------------------
    def _withdraw(self, job: _Job) -> None:
        """Take a pending job out of wherever it is (queue, retry wait, running attempt)."""
        was = job.state
        job.state = "done"
        self._pending.pop(job.seq, None)
        if was == "queued":
            self._queue.remove(job)
        elif was == "waiting":
            self._waiting.discard(job)
            self._cancel_retry_timer(job)
        elif was == "running":
            self._free_slot_on_withdraw()
            if job.work is not None:
                job.work.cancel()

    def _free_slot_on_withdraw(self) -> None:
        self.running -= 1

    def _cancel_retry_timer(self, job: _Job) -> None:
        if job.timer is not None and job.timer.active():
            job.timer.cancel()
        job.timer = None

    def _cancel(self, job: _Job) -> None:
        if job.state == "done":
            return
        try:
            self._withdraw(job)
        finally:  # a job's canceller that raises must not strand the caller
            job.d.errback(CancelledError("job cancelled by its caller"))
            self._pump()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        raised: BaseException | None = None
        for job in list(self._pending.values()):
            if job.state != "done":
                try:
                    self._withdraw(job)
                except Exception as e:  # a job's canceller raised: stop the others all the same
                    raised = raised or e
                job.d.errback(QueueStopped("queue stopped"))
        if raised is not None:
            raise raised


class RetryQueueOneAttemptTooMany(RetryQueue):
    """BUG: off-by-one in the retry test: a job is attempted max_attempts + 1 times before it is
    dead-lettered."""

    def _should_retry(self, job: _Job) -> bool:
        return job.attempts <= self.max_attempts


class RetryQueueCancelLeaksSlot(RetryQueue):
    """BUG: cancelling a job whose attempt is running cancels the attempt but never gives its
    slot back: after ``concurrency`` such cancels nothing runs any more."""

    def _free_slot_on_withdraw(self) -> None:
        pass


class RetryQueueRedriveKeepsAttempts(RetryQueue):
    """BUG: redrive() requeues the dead-lettered job records themselves (with a new Deferred)
    and forgets to reset their attempt count: a redriven job is dead-lettered again after a
    single attempt instead of getting max_attempts fresh ones."""

    def _canceller(self, job: _Job) -> Callable[[Deferred[Any]], None]:
        return lambda _d: self._cancel(job)

    def _register(self, job: _Job) -> int:
        """Track ``job`` as pending (for stop()), in submission order."""
        seq = self._next_seq
        self._next_seq += 1
        self._pending[seq] = job
        return seq

    def redrive(self) -> list[Deferred[Any]]:
        jobs, self.dlq = self.dlq, []
        out = []
        for job in jobs:
            job.d = Deferred(self._canceller(job))
            job.state = "queued"
            job.seq = self._register(job)
            self._queue.append(job)
            out.append(job.d)
        self._pump()
        return out
