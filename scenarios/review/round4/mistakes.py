"""Targets that reproduce the round-4 findings (docs/reviews/outside-user-4.md).

* ``swr_blind``, ``cron_blind``: my "correct" components as first written; the harness found
  their bugs (they are meant to fail).
* ``cron_tight_grace``: the correct runner with a 50 ms grace: under a reactor waking on
  100 ms strides it skips every other tick by design, and ``time.loop_died`` calls the gap a
  dead loop (finding 5).
* ``aimd_declared_limit``: the AIMD limiter declaring its maximum as ``limit``: a false
  ``completion.deadline`` once the window has shrunk (finding 1); fixed by declaring the
  window's floor as ``capacity``.
* ``cron_stuck_builtin_only``: the cron twin that stops for good after a run ends in error,
  judged by the built-in invariants only: a run ended by the runner's own timeout, then
  silence, breaks nothing built in (finding 2).
* ``heartbeat_stop_keeps_ping_builtin_only``: the heartbeat twin whose ``stop()`` leaves the ping
  in flight with its timeout timer, with ``stop_cancels_timers=True`` and no user invariant:
  nothing built in catches it (finding 3).
* ``swr_timeout_declared``: the correct cache declaring ``timeout_ms``: ``time.timeout`` judges
  a caller that joined an execution (or was served a stale value while its job refreshed the
  entry) by its own job: false alarms at once (finding 4).
* ``cron_stuck_logs_builtin_only``: the stuck cron twin logging each failed run, as most code
  does: a logged failure counts as the loop reporting its end, so ``time.loop_died`` never
  judges it (finding 3).
* ``heartbeat_no_timeout_declared``: ``timeout_ms`` on a periodic target is accepted and checks
  nothing: a ping that never answers breaks no invariant (finding 8).
* ``swr_default_submit``: a keyed target whose subject's ``submit`` takes no ``key``: a clear
  one-line error (no finding).
"""
from __future__ import annotations

from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.python import log

from harness import Target

from scenarios.review.round4.blind import CronRunnerBlind, SWRCacheBlind
from scenarios.review.round4.cron import CronRunner, CronStuckAfterFailure
from scenarios.review.round4.heartbeat import HeartbeatMonitor, HeartbeatStopKeepsPing
from scenarios.review.round4.swr_cache import SWRCache
from scenarios.review.round4.aimd import AIMDLimiter
from scenarios.review.round4.targets import (
    AIMD_INITIAL,
    AIMD_MAX,
    AIMD_MIN,
    AIMD_TIMEOUT_MS,
    CRON_GRACE_MS,
    CRON_INTERVAL_MS,
    CRON_TIMEOUT_MS,
    HB_INTERVAL_MS,
    HB_MISSES,
    HB_TIMEOUT_MS,
    SWR_TIMEOUT_MS,
    SWRGate,
    _cron,
    _swr,
    aimd_window_respected,
)

swr_blind = _swr(SWRCacheBlind, "SWR cache as first written (the harness found two bugs)")
cron_blind = _cron(CronRunnerBlind, "cron runner as first written (the harness found one bug)", grace_ms=50)
cron_tight_grace = _cron(CronRunner, "cron runner (correct) with a 50 ms misfire grace", grace_ms=50)

aimd_declared_limit = Target(
    build=lambda clock: AIMDLimiter(clock, initial=AIMD_INITIAL, minimum=AIMD_MIN, maximum=AIMD_MAX,
                                    timeout=AIMD_TIMEOUT_MS / 1000),
    submit=lambda subject, job, priority: subject.submit(job),
    limit=AIMD_MAX,
    # the window's floor: one call that never ends fills a window shrunk to its minimum (finding 1's fix)
    capacity=int(AIMD_MIN),
    order="fifo",
    timeout_ms=AIMD_TIMEOUT_MS,
    retries=0,
    invariants=(aimd_window_respected,),
    description="AIMD limiter (correct) declaring its maximum as limit and its smallest window as capacity",
)

cron_stuck_builtin_only = Target(
    build=lambda clock, work: CronStuckAfterFailure(clock, work, interval=CRON_INTERVAL_MS / 1000,
                                                    grace=CRON_GRACE_MS / 1000, timeout=CRON_TIMEOUT_MS / 1000),
    kind="periodic",
    interval_ms=CRON_INTERVAL_MS,
    description="cron runner that stops after an error, built-in invariants only",
)

def _monitor(cls: type) -> Any:
    """build(clock, work) for a heartbeat class, its death reported as the loop's end."""

    def build(clock: Any, work: Any) -> Any:
        monitor = cls(clock, work, interval=HB_INTERVAL_MS / 1000, ping_timeout=HB_TIMEOUT_MS / 1000,
                      misses=HB_MISSES)
        monitor.dead.addCallback(lambda n: work.report_end(f"peer dead after {n} missed pings"))
        return monitor

    return build


heartbeat_stop_keeps_ping_builtin_only = Target(
    build=_monitor(HeartbeatStopKeepsPing),
    kind="periodic",
    interval_ms=HB_INTERVAL_MS,
    stop_cancels_timers=True,
    stop_cancels_work=True,  # the promise finding 4 asked for (leaks.work)
    description="heartbeat whose stop() leaves the ping in flight, built-in invariants only",
)

swr_timeout_declared = _swr(SWRCache, "SWR cache (correct) declaring its fetch timeout", timeout_ms=SWR_TIMEOUT_MS)



class CronStuckLogs(CronStuckAfterFailure):
    """The stuck twin as most code is written: each failed run is logged (``log.err``). The
    runner still never runs again after the first failure."""

    def _launch(self) -> None:
        self.runs += 1
        d = maybeDeferred(self._job)
        d.addTimeout(self._timeout, self._clock)
        self._running = d
        d.addCallback(self._clear, d)
        d.addErrback(log.err, "cron job failed")


cron_stuck_logs_builtin_only = Target(
    build=lambda clock, work: CronStuckLogs(clock, work, interval=CRON_INTERVAL_MS / 1000,
                                            grace=CRON_GRACE_MS / 1000, timeout=CRON_TIMEOUT_MS / 1000),
    kind="periodic",
    interval_ms=CRON_INTERVAL_MS,
    description="cron runner that logs a failed run and never runs again, built-in invariants only",
)


class HeartbeatNoTimeout(HeartbeatMonitor):
    """A monitor whose author forgot ``addTimeout``: a ping that never answers is never a miss."""

    def _beat(self) -> None:
        if self._outstanding is not None:
            return
        self.pings += 1
        d = maybeDeferred(self._ping)
        self._outstanding = d
        d.addBoth(self._answered, d)


heartbeat_no_timeout_declared = Target(
    build=_monitor(HeartbeatNoTimeout),
    kind="periodic",
    interval_ms=HB_INTERVAL_MS,
    timeout_ms=HB_TIMEOUT_MS,
    description="heartbeat without a ping timeout, declaring timeout_ms on a periodic target",
)

swr_default_submit = Target(build=lambda clock: SWRGate(clock), keys=2, shared=True, cancellable="abandon")
