"""A cron-like periodic job runner with no-overlap and misfire grace, written blind.

Ticks fall on multiples of ``interval`` of the injected clock (wall-aligned, no drift). At a
tick the runner starts ``job()`` unless:
  * the previous run is still going (no overlap: the tick is *skipped*, not queued), or
  * the tick fires more than ``grace`` seconds late (a *misfire*: skipped, the next aligned
    tick is scheduled instead), unless the tick before it misfired too (so a reactor that is
    always late still runs the job every other tick).
Each run is bounded by ``timeout`` seconds (``addTimeout``); a run that fails or times out is
logged and does not stop the schedule. ``stop()`` cancels the pending tick and the running
job; it returns a Deferred that fires once nothing of the runner is left on the clock.

Promises:
  P1 never two runs of the job at once;
  P2 each run is answered within ``timeout`` seconds;
  P3 one failure or timeout does not stop later ticks (the runner keeps running);
  P4 after ``stop()`` fires, no timer of the runner is pending and no job starts.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class CronRunner:
    """Correct version."""

    def __init__(
        self,
        clock: IReactorTime,
        job: Callable[[], Any],
        interval: float = 10.0,
        grace: float = 2.0,
        timeout: float = 8.0,
    ) -> None:
        self._clock = clock
        self._job = job
        self._interval = interval
        self._grace = grace
        self._timeout = timeout
        self._pending: Optional[IDelayedCall] = None
        self._running: Optional[Deferred] = None
        self._stopped = False
        self._last_misfired = False
        self.runs = 0
        self.skipped = 0
        self.misfired = 0
        self.failures: List[Failure] = []

    def start(self) -> None:
        self._schedule_next()

    def stop(self) -> Deferred:
        self._stopped = True
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if self._running is not None:
            running = self._running
            running.cancel()
            # _run_done has already cleared _running (cancel fires the chain synchronously).
        return succeed(None)

    # -- internals -------------------------------------------------------------
    def _next_tick_time(self) -> float:
        now = self._clock.seconds()
        return (math.floor(now / self._interval) + 1) * self._interval

    def _schedule_next(self) -> None:
        if self._stopped:
            return
        at = self._next_tick_time()
        self._pending = self._clock.callLater(at - self._clock.seconds(), self._tick, at)

    def _tick(self, scheduled: float) -> None:
        self._pending = None
        late = self._clock.seconds() - scheduled
        if self._running is not None:
            self.skipped += 1
        elif late > self._grace and not self._last_misfired:
            # Skip a late tick, but never two in a row: a reactor that is always later than
            # the grace would otherwise starve the job for ever (found by the harness, see
            # docs/reviews/outside-user-4.md: the blind version skipped every late tick).
            self.misfired += 1
            self._last_misfired = True
        else:
            self._last_misfired = False
            self._launch()
        self._schedule_next()

    def _launch(self) -> None:
        self.runs += 1
        d = maybeDeferred(self._job)
        d.addTimeout(self._timeout, self._clock)
        self._running = d
        d.addBoth(self._run_done, d)

    def _run_done(self, result: Any, d: Deferred) -> None:
        if self._running is d:
            self._running = None
        if isinstance(result, Failure):
            self.failures.append(result)
        return None


class CronStuckAfterFailure(CronRunner):
    """Twin A: the "running" mark is cleared only on success.

    Real code: ``d.addCallback(self._clear)`` plus a separate ``addErrback(log.err)``; the
    first failure or timeout leaves ``_running`` set forever, so every later tick is skipped
    as an "overlap". Breaks P3 (one failure stops the job for good).
    """

    def _launch(self) -> None:
        self.runs += 1
        d = maybeDeferred(self._job)
        d.addTimeout(self._timeout, self._clock)
        self._running = d
        d.addCallback(self._clear, d)
        d.addErrback(self.failures.append)

    def _clear(self, result: Any, d: Deferred) -> None:
        if self._running is d:
            self._running = None


class CronStopLeavesTick(CronRunner):
    """Twin B: ``stop()`` sets the flag and cancels the job but forgets the pending tick.

    The tick still fires after ``stop()`` (it does nothing since ``_stopped`` is checked only
    when scheduling, and ``_tick`` launches the job anyway). Breaks P4.
    """

    def stop(self) -> Deferred:
        self._stopped = True
        if self._running is not None:
            self._running.cancel()
        return succeed(None)


class CronOverlapOnTimeout(CronRunner):
    """Twin C: the timeout is applied to a *copy* of the job's Deferred.

    Real code: ``d = maybeDeferred(job); t = Deferred(); d.chainDeferred(t); t.addTimeout(...)``
    so the caller-side Deferred times out and clears ``_running`` while the job itself keeps
    going; the next tick starts a second run next to the first. Breaks P1 (overlap) and the
    job's work is never cancelled.
    """

    def _launch(self) -> None:
        self.runs += 1
        job_d = maybeDeferred(self._job)
        watched: Deferred = Deferred()
        job_d.chainDeferred(watched)
        watched.addTimeout(self._timeout, self._clock)
        self._running = watched
        watched.addBoth(self._run_done, watched)
