"""Harness targets for the round-4 components, written from the user docs alone.

Four components written blind (before reading the harness): an AIMD concurrency limiter
(``aimd``), a cron-like runner with no-overlap and misfire grace (``cron``), a keyed
single-flight cache with TTL and stale-while-revalidate (``swr``) and a heartbeat monitor
(``heartbeat``). Each has a correct target and three buggy twins (``aimd_leak_on_timeout``...).
The promises no built-in invariant covers are the ``user.*`` invariants below.
"""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional

from harness import NOT_JUDGED, InvariantFailed, Run, Target, format_ms

from scenarios.review.round4.aimd import AIMDLeakOnTimeout, AIMDLimiter, AIMDOffByOne, AIMDRunsCancelledQueued
from scenarios.review.round4.cron import CronOverlapOnTimeout, CronRunner, CronStopLeavesTick, CronStuckAfterFailure
from scenarios.review.round4.heartbeat import (
    HeartbeatMonitor,
    HeartbeatNoReset,
    HeartbeatOverlappingPings,
    HeartbeatStopKeepsPing,
)
from scenarios.review.round4.swr_cache import SWRCache, SWRDoubleRefresh, SWRKeepsFailedFlight, SWRSharedDeferred


def _first_stop_us(run: Run) -> Optional[int]:
    for _, event in run.view.of_kind("stop"):
        return event.t_us
    return None


def _start_index(run: Run, job: int, attempt: int) -> int:
    for index, event in run.view.of_kind("job.start"):
        if event.job == job and event.attempt == attempt:
            return index
    raise AssertionError(f"no job.start event for job {job} attempt {attempt}")  # pragma: no cover


def _bounded(name: str, limit_ms: int) -> Callable[[Run], Any]:
    """Each attempt ends within ``limit_ms`` of its start (plus the clock's lateness), unless a
    stop came first (the stop may cancel it, judged elsewhere)."""

    def check(run: Run) -> None:
        stop_us = _first_stop_us(run)
        bound_us = limit_ms * 1000 + run.view.late_us
        for attempt in run.view.attempts():
            due = attempt.start_us + bound_us
            if stop_us is not None and stop_us <= due:
                continue
            if attempt.end_us is None or attempt.end_us > due:
                ended = "never ended" if attempt.end_us is None else f"ended at {format_ms(attempt.end_us)}"
                raise InvariantFailed(
                    f"job {attempt.job} attempt {attempt.n} started at {format_ms(attempt.start_us)} and {ended}, "
                    f"past its {limit_ms}ms timeout",
                    events=(_start_index(run, attempt.job, attempt.n),))

    check.__name__ = check.__qualname__ = name
    return check


# --------------------------------------------------------------------------------------------
# AIMD limiter: a submit target; the window is a user invariant replaying the AIMD rule.
# --------------------------------------------------------------------------------------------
AIMD_INITIAL, AIMD_MIN, AIMD_MAX, AIMD_TIMEOUT_MS = 2.0, 1.0, 4, 500


def aimd_window_respected(run: Run) -> None:
    """Replay the AIMD rule on what really happened: each attempt that ends adjusts the window
    (success: +1/limit; failure, timeout or cancel: x0.5), and no attempt starts while
    floor(window) attempts already run. An attempt whose canceller raised never ends, for the
    subject too (its Deferred never fires): it keeps its slot and adjusts nothing."""
    limit = AIMD_INITIAL
    running = 0
    for step in run.view.steps():
        attempt = step.attempt
        if step.kind == "start":
            capacity = max(1, math.floor(min(limit, AIMD_MAX)))
            if running >= capacity:
                raise InvariantFailed(
                    f"job {attempt.job} started at {format_ms(step.t_us)} while {running} ran, but the AIMD "
                    f"window was {limit:.3f} (capacity {capacity})",
                    events=(_start_index(run, attempt.job, attempt.n),))
            running += 1
        elif step.kind == "end" and not attempt.canceller_raised:
            running -= 1
            if attempt.outcome == "finished":
                limit = min(AIMD_MAX, limit + 1.0 / limit)
            else:
                limit = max(AIMD_MIN, limit * 0.5)


def _aimd(cls: type, description: str) -> Target:
    return Target(
        build=lambda clock: cls(clock, initial=AIMD_INITIAL, minimum=AIMD_MIN, maximum=AIMD_MAX,
                                timeout=AIMD_TIMEOUT_MS / 1000),
        submit=lambda subject, job, priority: subject.submit(job),
        # No `limit=AIMD_MAX`: it also tells completion.deadline that AIMD_MAX never-ending jobs
        # are needed to fill the subject, and a window shrunk to 1 is full with one (finding 1).
        # aimd_window_respected checks the maximum and the moving window instead.
        order="fifo",
        timeout_ms=AIMD_TIMEOUT_MS,
        retries=0,
        invariants=(aimd_window_respected,),
        description=description,
    )


aimd = _aimd(AIMDLimiter, "AIMD concurrency limiter (correct)")
aimd_leak_on_timeout = _aimd(AIMDLeakOnTimeout, "AIMD limiter: a timed-out call never gives its slot back")
aimd_runs_cancelled_queued = _aimd(AIMDRunsCancelledQueued, "AIMD limiter: a call cancelled while queued still runs")
aimd_off_by_one = _aimd(AIMDOffByOne, "AIMD limiter: the pump lets one call more than the window run")


# --------------------------------------------------------------------------------------------
# Cron runner: periodic work, no overlap, each run bounded by a timeout.
# --------------------------------------------------------------------------------------------
CRON_INTERVAL_MS, CRON_TIMEOUT_MS = 100, 80
# The grace is above the reactor lateness the schedules draw (strides up to 1000 ms were seen):
# with a grace of 50 ms a stalled reactor makes the runner skip every other tick, by design, and
# time.loop_died, whose wait for an interval loop is not documented, calls the gap a dead loop
# (finding 5; mistakes.cron_tight_grace). Misfires still come from forward wall-clock jumps.
CRON_GRACE_MS = 1500

cron_runs_bounded = _bounded("cron_runs_bounded", CRON_TIMEOUT_MS)


def cron_keeps_ticking(run: Run) -> None:
    """One run's end (failure, timeout or success) never ends the schedule: before stop(), a run
    that ended is followed by another within two ticks (one may misfire), each up to the
    clock's lateness late."""
    stop_us = _first_stop_us(run)
    attempts = run.view.attempts()
    window_us = 2 * (CRON_INTERVAL_MS * 1000 + run.view.late_us)
    for attempt in attempts:
        if attempt.end_us is None or attempt.canceller_raised:
            continue
        if stop_us is not None and attempt.end_us + window_us > stop_us:
            continue
        # A later run (n above) starting in the instant this one ended counts: the first soak
        # of the fixed runner caught this check requiring a strictly later start.
        if not any(other.n > attempt.n and other.start_us >= attempt.end_us for other in attempts):
            raise InvariantFailed(
                f"job {attempt.job} run {attempt.n} ended ({attempt.outcome}) at {format_ms(attempt.end_us)} and "
                f"no run started after it, though the runner was not stopped until "
                f"{format_ms(stop_us) if stop_us is not None else 'the end'}",
                events=(_start_index(run, attempt.job, attempt.n),))


def _cron(cls: type, description: str, grace_ms: int = CRON_GRACE_MS) -> Target:
    return Target(
        build=lambda clock, work: cls(clock, work, interval=CRON_INTERVAL_MS / 1000, grace=grace_ms / 1000,
                                      timeout=CRON_TIMEOUT_MS / 1000),
        kind="periodic",
        interval_ms=CRON_INTERVAL_MS,
        invariants=(cron_runs_bounded, cron_keeps_ticking),
        description=description,
    )


cron = _cron(CronRunner, "cron-like runner, no overlap, misfire grace (correct)")
cron_stuck_after_failure = _cron(CronStuckAfterFailure, "cron runner: a failed run leaves it marked running for ever")
cron_stop_leaves_tick = _cron(CronStopLeavesTick, "cron runner: stop() forgets the pending tick")
cron_overlap_on_timeout = _cron(CronOverlapOnTimeout, "cron runner: the timeout watches a copy, the job runs on")


# --------------------------------------------------------------------------------------------
# SWR cache: keyed, shared (single flight), served from cache for ttl + stale after a fetch.
# --------------------------------------------------------------------------------------------
SWR_TTL_MS, SWR_STALE_MS, SWR_TIMEOUT_MS = 100, 200, 300


class SWRGate:
    """Adapts the cache to submit(job): the cache fetches a key with a fixed function; the job
    it runs is the one of the caller whose get() started the fetch (a stale get starts a
    background refresh with its caller's job; that caller is answered from the cache)."""

    def __init__(self, clock: Any, cls: type = SWRCache) -> None:
        self._current: Any = None
        self.cache = cls(clock, self._fetch, ttl=SWR_TTL_MS / 1000, stale=SWR_STALE_MS / 1000,
                         timeout=SWR_TIMEOUT_MS / 1000)

    def _fetch(self, key: int) -> Any:
        job, self._current = self._current, None
        assert job is not None and job.key == key, f"fetch of key {key} with no caller's job to run"
        return job()

    def submit(self, job: Any) -> Any:
        self._current = job
        try:
            return self.cache.get(job.key)
        finally:
            self._current = None


swr_fetches_bounded = _bounded("swr_fetches_bounded", SWR_TIMEOUT_MS)


def _swr(cls: type, description: str, **promises: Any) -> Target:
    return Target(
        build=lambda clock: SWRGate(clock, cls),
        submit=lambda subject, job, priority: subject.submit(job),
        keys=2,
        shared=True,
        cache_ms=SWR_TTL_MS + SWR_STALE_MS,
        cancellable="abandon",
        # No `timeout_ms`: time.timeout judges each caller by its own job, not the execution it
        # joined, so joined and stale-served callers are false alarms (finding 4); the fetch's
        # bound is swr_fetches_bounded instead.
        invariants=(swr_fetches_bounded,),
        description=description,
        **promises,
    )


swr = _swr(SWRCache, "single-flight cache with TTL and stale-while-revalidate (correct)")
swr_shared_deferred = _swr(SWRSharedDeferred, "SWR cache: every waiter gets the one in-flight Deferred")
swr_keeps_failed_flight = _swr(SWRKeepsFailedFlight, "SWR cache: a failed fetch stays registered as in flight")
swr_double_refresh = _swr(SWRDoubleRefresh, "SWR cache: each stale get starts another refresh")


# --------------------------------------------------------------------------------------------
# Heartbeat monitor: periodic pings, one at a time, dead after N consecutive misses.
# --------------------------------------------------------------------------------------------
HB_INTERVAL_MS, HB_TIMEOUT_MS, HB_MISSES = 100, 150, 3

pings_bounded = _bounded("pings_bounded", HB_TIMEOUT_MS)


def dead_only_after_consecutive_misses(run: Run) -> Any:
    """The peer is declared dead (the loop reports its end) only when the last HB_MISSES pings
    that ended before the report all missed (failed or timed out) and, before that, ..."""
    ends = [index for index, _ in run.view.of_kind("loop.end")]
    if not ends:
        return NOT_JUDGED
    report = run.view.events[ends[0]]
    ended = sorted((a for a in run.view.attempts() if a.end_us is not None and a.end_us <= report.t_us),
                   key=lambda a: a.end_us)
    last = ended[-HB_MISSES:]
    if len(last) < HB_MISSES or any(a.outcome == "finished" for a in last):
        outcomes = ", ".join(f"ping {a.n} {a.outcome}" for a in last) or "no ping ended"
        raise InvariantFailed(
            f"the peer was declared dead at {format_ms(report.t_us)}, but the last {HB_MISSES} pings were not "
            f"all missed: {outcomes}", events=(ends[0],))


def stop_cancels_ping(run: Run) -> None:
    """stop() cancels the ping in flight, in the same instant (its timeout timer goes with it).

    Needed because no built-in invariant holds periodic work in flight to the stop: the ping is
    work in flight, so `stop_cancels_timers` does not look, and its timeout timer fires in the
    drain, so `leaks.calls` does not either (finding 3)."""
    for index, event in run.view.of_kind("stop"):
        for attempt in run.view.running_at(event.t_us):
            if attempt.start_us <= event.t_us and (attempt.end_us is None or attempt.end_us > event.t_us):
                ended = "never ended" if attempt.end_us is None else f"ran until {format_ms(attempt.end_us)}"
                raise InvariantFailed(
                    f"stop() at {format_ms(event.t_us)} left ping {attempt.n} (started "
                    f"{format_ms(attempt.start_us)}) in flight: it {ended}",
                    events=(index, _start_index(run, attempt.job, attempt.n)))
        return


def _heartbeat(cls: type, description: str) -> Target:
    def build(clock: Any, work: Any) -> Any:
        monitor = cls(clock, work, interval=HB_INTERVAL_MS / 1000, ping_timeout=HB_TIMEOUT_MS / 1000,
                      misses=HB_MISSES)
        monitor.dead.addCallback(lambda n: work.report_end(f"peer dead after {n} missed pings"))
        return monitor

    return Target(
        build=build,
        kind="periodic",
        interval_ms=HB_INTERVAL_MS,
        stop_cancels_timers=True,
        invariants=(pings_bounded, dead_only_after_consecutive_misses, stop_cancels_ping),
        description=description,
    )


heartbeat = _heartbeat(HeartbeatMonitor, "heartbeat monitor (correct)")
heartbeat_no_reset = _heartbeat(HeartbeatNoReset, "heartbeat: a good ping does not reset the miss count")
heartbeat_stop_keeps_ping = _heartbeat(HeartbeatStopKeepsPing, "heartbeat: stop() leaves the outstanding ping")
heartbeat_overlapping_pings = _heartbeat(HeartbeatOverlappingPings, "heartbeat: a ping every beat, even with one out")
