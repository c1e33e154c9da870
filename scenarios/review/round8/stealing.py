"""A work-stealing pool of k lanes (written blind).

`submit(job, lane=None)` queues `job` (a callable returning a Deferred or a value) on a lane (round
robin unless given) and returns a Deferred for its result. Each lane runs one job at a time; a lane
that goes idle takes the head of its own queue, or, when that is empty, steals the tail of the
longest other queue (ties: the lowest lane number). Each job gets `timeout` seconds from its start;
then it is cancelled and its Deferred fails with JobTimeout. Cancelling the returned Deferred
removes a queued job or cancels a running one (the lane is free at once).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Optional

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class JobTimeout(Exception):
    """A job ran longer than the pool's per-job timeout and was cancelled."""


class _Job:
    def __init__(self, fn: Callable[[], Any], home: int) -> None:
        self.fn = fn
        self.home = home
        self.result: "Deferred[Any]" = Deferred(lambda d: None)  # canceller set by the pool
        self.running: Optional["Deferred[Any]"] = None
        self.lane: Optional[int] = None
        self.timed_out = False


class _Lane:
    def __init__(self) -> None:
        self.queue: deque[_Job] = deque()
        self.current: Optional[_Job] = None
        self.timer: Optional[IDelayedCall] = None


class StealingPool:
    def __init__(self, clock: IReactorTime, lanes: int, timeout: float) -> None:
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        self.clock = clock
        self.timeout = timeout
        self.lanes = [_Lane() for _ in range(lanes)]
        self._rr = 0
        self.started: list[tuple[int, int]] = []  # (lane, job id) at each start, for tests
        self.stolen = 0

    def submit(self, fn: Callable[[], Any], lane: Optional[int] = None) -> "Deferred[Any]":
        if lane is None:
            lane = self._rr % len(self.lanes)
            self._rr += 1
        job = _Job(fn, lane)
        job.result = Deferred(lambda d: self._cancel(job))
        self.lanes[lane].queue.append(job)
        self._kick_all()
        return job.result

    def queued(self) -> int:
        return sum(len(lane.queue) for lane in self.lanes)

    def _kick_all(self) -> None:
        for i in range(len(self.lanes)):
            self._kick(i)

    def _kick(self, i: int) -> None:
        lane = self.lanes[i]
        if lane.current is not None:
            return
        job = self._next_for(i)
        if job is not None:
            self._start(i, job)

    def _next_for(self, i: int) -> Optional[_Job]:
        own = self.lanes[i].queue
        if own:
            return own.popleft()
        victim: Optional[_Lane] = None
        for j, other in enumerate(self.lanes):
            if j != i and self._stealable(other) and (victim is None or len(other.queue) > len(victim.queue)):
                victim = other
        if victim is None:
            return None
        self.stolen += 1
        return victim.queue.pop()

    def _stealable(self, lane: _Lane) -> bool:
        return len(lane.queue) > 0

    def _start(self, i: int, job: _Job) -> None:
        lane = self.lanes[i]
        lane.current = job
        job.lane = i
        self.started.append((i, id(job)))
        lane.timer = self.clock.callLater(self.timeout, self._timeout, i)
        d = maybeDeferred(job.fn)
        job.running = d
        d.addBoth(self._finished, i, job)

    def _finished(self, result: Any, i: int, job: _Job) -> None:
        lane = self.lanes[i]
        if lane.current is not job:
            return None  # the job was cancelled and its lane already moved on
        lane.current = None
        job.running = None
        self._clear_timer(lane)
        if not job.result.called:
            if job.timed_out:
                job.result.errback(JobTimeout())
            elif isinstance(result, Failure):
                job.result.errback(result)
            else:
                job.result.callback(result)
        self._kick_all()
        return None

    def _clear_timer(self, lane: _Lane) -> None:
        if lane.timer is not None and lane.timer.active():
            lane.timer.cancel()
        lane.timer = None

    def _timeout(self, i: int) -> None:
        lane = self.lanes[i]
        lane.timer = None
        job = lane.current
        assert job is not None and job.running is not None, f"lane {i} timed out while idle"
        job.timed_out = True
        job.running.cancel()

    def _cancel(self, job: _Job) -> None:
        """The canceller of a job's result Deferred (Deferred.cancel then errbacks it)."""
        if job.lane is None:
            self._unqueue(job)
            return
        lane = self.lanes[job.lane]
        if lane.current is job:
            lane.current = None
            self._clear_timer(lane)
            running, job.running = job.running, None
            if running is not None:
                running.addErrback(lambda f: f.trap(CancelledError))
                running.cancel()
            self._kick_all()

    def _unqueue(self, job: _Job) -> None:
        for lane in self.lanes:
            if job in lane.queue:
                lane.queue.remove(job)
                return


class TimerKeyedByLaneLeaks(StealingPool):
    """Bug: a finished job's timeout timer is not cancelled; the timer is keyed by lane, so it later
    times out whatever job that lane runs then (or asserts on an idle lane)."""

    def _finished(self, result: Any, i: int, job: _Job) -> None:
        lane = self.lanes[i]
        if lane.current is not job:
            return None
        lane.current = None
        job.running = None
        lane.timer = None  # forgets lane.timer.cancel()
        if not job.result.called:
            if job.timed_out:
                job.result.errback(JobTimeout())
            elif isinstance(result, Failure):
                job.result.errback(result)
            else:
                job.result.callback(result)
        self._kick_all()
        return None


class StealsOnlyFromBusyQueues(StealingPool):
    """Bug: off-by-one; an idle lane steals only from a queue holding two or more jobs, so a single
    queued job waits behind a busy lane while another lane idles."""

    def _stealable(self, lane: _Lane) -> bool:
        return len(lane.queue) > 1


class CancelLeavesQueued(StealingPool):
    """Bug: cancelling a queued job does not take it off its queue; it later runs anyway and its
    result is delivered to a Deferred that already failed with CancelledError."""

    def _unqueue(self, job: _Job) -> None:
        pass
