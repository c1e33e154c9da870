"""A delay queue (written blind, review round 10).

``DelayQueue(clock, concurrency)``: ``schedule(when, job)`` runs ``job()`` (a
callable returning a Deferred or a value) at absolute time ``when`` and returns
a job id; ``result(id)`` is a Deferred firing with the job's outcome.
``reschedule(id, when)`` moves a pending job, ``cancel(id)`` drops a pending
job (its result fails with ``CancelledError``) or cancels a running one.  At
most ``concurrency`` jobs run at once; jobs that fell due while the queue was
full run as slots free up, in due order (earliest ``when`` first, ties by id).
``stop()`` cancels every pending job and returns a Deferred firing once the
running ones have finished.

One timer is armed, for the earliest pending due time.

Twins (BUGS.md): ``StaleTimerQueue`` does not re-arm the timer on reschedule
(the job runs at its old time), ``FifoLateQueue`` runs late jobs in the order
they were scheduled, not due order, ``LeakySlotQueue`` does not free a slot when
a running job is cancelled.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class _Job:
    def __init__(self, jid: int, when: float, fn: Callable[[], Any]) -> None:
        self.id = jid
        self.when = when
        self.fn = fn
        self.state = "pending"  # pending, running, done, cancelled
        self.result: Deferred[object] = Deferred()
        self.running: Deferred[object] | None = None
        self.started_at: float | None = None


class DelayQueue:
    def __init__(self, clock: IReactorTime, concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._clock = clock
        self.concurrency = concurrency
        self._jobs: dict[int, _Job] = {}
        self._heap: list[tuple[float, int]] = []  # (when, id); stale entries skipped
        self._timer: IDelayedCall | None = None
        self._timer_at: float | None = None
        self._next_id = 0
        self.running = 0
        self.max_running = 0
        self.stopped = False
        self._drained: list[Deferred[None]] = []
        self.started: list[tuple[int, float]] = []  # (id, time) in start order

    # -- public -----------------------------------------------------------
    def schedule(self, when: float, fn: Callable[[], Any]) -> int:
        if self.stopped:
            raise RuntimeError("queue stopped")
        jid = self._next_id
        self._next_id += 1
        job = _Job(jid, when, fn)
        job.result = Deferred(lambda _d: self._cancel_from_result(jid))
        self._jobs[jid] = job
        self._push(job)
        self._arm()
        return jid

    def result(self, jid: int) -> "Deferred[object]":
        return self._jobs[jid].result

    def due(self, jid: int) -> float:
        return self._jobs[jid].when

    def reschedule(self, jid: int, when: float) -> bool:
        job = self._jobs.get(jid)
        if job is None or job.state != "pending":
            return False
        job.when = when
        self._push(job)
        self._rearm_after_reschedule()
        return True

    def cancel(self, jid: int) -> bool:
        job = self._jobs.get(jid)
        if job is None:
            return False
        if job.state == "pending":
            job.state = "cancelled"
            job.result.errback(CancelledError())
            self._arm()
            return True
        if job.state == "running":
            assert job.running is not None
            job.running.cancel()
            return True
        return False

    def _cancel_from_result(self, jid: int) -> None:
        self.cancel(jid)

    def stop(self) -> "Deferred[None]":
        self.stopped = True
        for job in list(self._jobs.values()):
            if job.state == "pending":
                job.state = "cancelled"
                job.result.errback(CancelledError())
        self._heap = []
        self._disarm()
        d: Deferred[None] = Deferred()
        if self.running == 0:
            d.callback(None)
        else:
            self._drained.append(d)
        return d

    # -- internals ----------------------------------------------------------
    def _key(self, job: _Job) -> tuple[float, int]:
        return (job.when, job.id)

    def _push(self, job: _Job) -> None:
        heapq.heappush(self._heap, self._key(job))

    def _live(self, entry: tuple[float, int]) -> _Job | None:
        job = self._jobs.get(entry[1])
        if job is None or job.state != "pending" or self._key(job) != entry:
            return None
        return job

    def _peek(self) -> _Job | None:
        while self._heap:
            job = self._live(self._heap[0])
            if job is not None:
                return job
            heapq.heappop(self._heap)
        return None

    def _rearm_after_reschedule(self) -> None:
        self._arm()

    def _disarm(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _arm(self) -> None:
        """Arm the timer for the earliest pending job (none while full)."""
        job = self._peek()
        if job is None or self.stopped or self.running >= self.concurrency:
            self._disarm()
            return
        if self._timer is not None and self._timer_at == job.when:
            return
        self._disarm()
        delay = max(0.0, job.when - self._clock.seconds())
        self._timer_at = job.when
        self._timer = self._clock.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        self._start_due()
        self._arm()

    def _pick_due(self) -> _Job | None:
        job = self._peek()
        if job is not None and job.when <= self._clock.seconds():
            return job
        return None

    def _start_due(self) -> None:
        while self.running < self.concurrency and not self.stopped:
            job = self._pick_due()
            if job is None:
                return
            self._start(job)  # its heap entry is now stale and skipped

    def _start(self, job: _Job) -> None:
        job.state = "running"
        job.started_at = self._clock.seconds()
        self.started.append((job.id, job.started_at))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        d = maybeDeferred(job.fn)
        job.running = d

        def done(outcome: object) -> None:
            job.running = None
            if job.state == "running":
                job.state = "done"
                self._release(job, outcome)
            if job.result.called:  # the caller cancelled the result
                return None
            if isinstance(outcome, Failure):
                job.result.errback(outcome)
            else:
                job.result.callback(outcome)
            return None

        d.addBoth(done)

    def _release(self, job: _Job, outcome: object) -> None:
        self.running -= 1
        if self.running == 0 and self._drained:
            waiters, self._drained = self._drained, []
            for w in waiters:
                w.callback(None)
        self._start_due()
        self._arm()


class StaleTimerQueue(DelayQueue):
    """Bug: reschedule updates the job but keeps the timer armed for the old
    time, and the timer starts whatever is first in line when it fires."""

    def _rearm_after_reschedule(self) -> None:
        if self._timer is None:
            self._arm()


class FifoLateQueue(DelayQueue):
    """Bug: jobs that are late (due while the queue was full) start in the
    order they were scheduled (by id), not in due order."""

    def _pick_due(self) -> _Job | None:
        now = self._clock.seconds()
        late = [j for j in self._jobs.values() if j.state == "pending" and j.when <= now]
        return min(late, key=lambda j: j.id) if late else None


class LeakySlotQueue(DelayQueue):
    """Bug: a running job that is cancelled never gives back its slot."""

    def _release(self, job: _Job, outcome: object) -> None:
        if isinstance(outcome, Failure) and outcome.check(CancelledError):
            return
        super()._release(job, outcome)
