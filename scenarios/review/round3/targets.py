"""Harness targets for the round-3 components, written from the user docs alone.

Each component has a correct target (``hedged``, ``bulkhead``, ``deadline``, ``aging``) and its
buggy twins (``hedged_timer_leak``...).  The promises each makes that no built-in invariant
covers are the ``user.*`` invariants below.
"""
from __future__ import annotations

from typing import Any, Iterator

from harness import EventKind, InvariantFailed, Run, Target, format_ms

from scenarios.review.round3.aging import AgingQueue, AgingQueueLifoTies, AgingQueueTickerLeak, QueueStopped
from scenarios.review.round3.bulkhead import Bulkhead, BulkheadLeaksOnError, BulkheadOffByOne
from scenarios.review.round3.deadline import (
    DeadlineClient,
    DeadlineClientFullBudget,
    DeadlineClientLazyWait,
    DeadlineClientWallClock,
)
from scenarios.review.round3.hedge import HedgedCaller, HedgedCallerCancelsPrimaryOnly, HedgedCallerTimerLeak

# --------------------------------------------------------------------------------------------
# Hedged request
# --------------------------------------------------------------------------------------------
HEDGE_MS = 100


def _start_index(run: Run, job: int, attempt: int) -> int:
    for index, event in run.view.of_kind(EventKind.JOB_START):
        if event.job == job and event.attempt == attempt:
            return index
    raise AssertionError(f"no job.start event for job {job} attempt {attempt}")  # pragma: no cover


def no_copy_after_answer(run: Run) -> None:
    """Once the caller has its answer, no further copy of the request is sent."""
    for job in run.view.jobs.values():
        if job.received is None:
            continue
        for attempt in job.attempts:
            if attempt.start_us > job.received.t_us:
                raise InvariantFailed(
                    f"job {job.id}: copy {attempt.n} was sent at {format_ms(attempt.start_us)}, after the "
                    f"caller already had its answer at {format_ms(job.received.t_us)}",
                    events=(job.received.index, _start_index(run, job.id, attempt.n)))


def losers_cancelled(run: Run) -> None:
    """When the caller's Deferred fires (an answer or its cancel), no copy is left running."""
    for job in run.view.jobs.values():
        if job.received is None:
            continue
        for attempt in job.attempts:
            if attempt.start_us <= job.received.t_us and (attempt.end_us is None or attempt.end_us > job.received.t_us):
                ended = "never ended" if attempt.end_us is None else f"ran until {format_ms(attempt.end_us)}"
                raise InvariantFailed(
                    f"job {job.id}: its caller's Deferred fired at {format_ms(job.received.t_us)}, but copy "
                    f"{attempt.n} (sent at {format_ms(attempt.start_us)}) was not cancelled and {ended}",
                    events=(job.received.index, _start_index(run, job.id, attempt.n)))


def hedges_on_time(run: Run) -> None:
    """At most two copies; the second is sent HEDGE_MS after the first (never early, at most the
    clock's lateness late), and is sent whenever the first is still out then."""
    hedge_us, late_us = HEDGE_MS * 1000, run.view.late_us
    for job in run.view.jobs.values():
        attempts = job.attempts
        if len(attempts) > 2:
            raise InvariantFailed(f"job {job.id}: {len(attempts)} copies sent, at most 2 promised",
                                  events=(_start_index(run, job.id, 2),))
        if len(attempts) == 2:
            gap = attempts[1].start_us - attempts[0].start_us
            if not hedge_us <= gap <= hedge_us + late_us:
                raise InvariantFailed(
                    f"job {job.id}: the hedge copy came {format_ms(gap)} after the first, not {HEDGE_MS}ms",
                    events=(_start_index(run, job.id, 1),))
        elif len(attempts) == 1:
            due = attempts[0].start_us + hedge_us + late_us
            first_out = attempts[0].end_us is None or attempts[0].end_us > due
            caller_waits = job.received is None or job.received.t_us > due
            if first_out and caller_waits and run.view.events[-1].t_us > due:
                raise InvariantFailed(
                    f"job {job.id}: the first copy was still out at {format_ms(due)} and the caller still "
                    f"waited, but no hedge copy was sent", events=(_start_index(run, job.id, 0),))


_HEDGE_INVARIANTS = (no_copy_after_answer, losers_cancelled, hedges_on_time)


def _hedged(cls: type) -> Target:
    return Target(
        build=lambda clock: cls(clock, hedge_after=HEDGE_MS / 1000),
        submit=lambda subject, job, priority: subject.call(job),
        invariants=_HEDGE_INVARIANTS,
        description=f"hedged request ({cls.__name__}): second copy after {HEDGE_MS}ms, first outcome wins",
    )


hedged = _hedged(HedgedCaller)
hedged_timer_leak = _hedged(HedgedCallerTimerLeak)
hedged_cancels_primary_only = _hedged(HedgedCallerCancelsPrimaryOnly)

# --------------------------------------------------------------------------------------------
# Bulkhead
# --------------------------------------------------------------------------------------------
TENANTS, PER_TENANT, TOTAL = 3, 2, 3


def _bulkhead(cls: type) -> Target:
    return Target(
        build=lambda clock: cls(clock, per_tenant=PER_TENANT, total=TOTAL),
        submit=lambda subject, job, priority: subject.submit(job, job.key),
        keys=TENANTS,
        key_limit=PER_TENANT,
        limit=TOTAL,
        order="fifo",
        description=f"bulkhead ({cls.__name__}): {PER_TENANT} per tenant, {TOTAL} in all, FIFO per tenant",
    )


bulkhead = _bulkhead(Bulkhead)
bulkhead_off_by_one = _bulkhead(BulkheadOffByOne)
bulkhead_leaks_on_error = _bulkhead(BulkheadLeaksOnError)

# --------------------------------------------------------------------------------------------
# Whole-request deadline over a connection pool
# --------------------------------------------------------------------------------------------
CONNECTIONS, DEADLINE_MS = 2, 300


def _deadline(cls: type) -> Target:
    return Target(
        build=lambda clock: cls(clock, connections=CONNECTIONS, deadline=DEADLINE_MS / 1000),
        submit=lambda subject, job, priority: subject.request(job),
        limit=CONNECTIONS,
        order="fifo",
        timeout_ms=DEADLINE_MS,
        timeout_from="submit",
        timeout_fires=True,
        description=f"deadline client ({cls.__name__}): {CONNECTIONS} connections, {DEADLINE_MS}ms from the call",
    )


deadline = _deadline(DeadlineClient)
deadline_full_budget = _deadline(DeadlineClientFullBudget)
deadline_wall_clock = _deadline(DeadlineClientWallClock)
deadline_lazy_wait = _deadline(DeadlineClientLazyWait)

# --------------------------------------------------------------------------------------------
# Priority queue with aging
# --------------------------------------------------------------------------------------------
AGING_MS = 100


def _indices(run: Run, kind: str) -> Iterator[tuple[int, Any]]:
    return run.view.of_kind(kind)


def older_not_overtaken(run: Run) -> None:
    """Aging only raises a waiting job's priority, and an older job has aged at least as much as
    a younger one: so a job never starts while an older job of no lower base priority waits."""
    submitted: dict[int, int] = {index_job: index for index, index_job in
                                 ((i, e.job) for i, e in _indices(run, EventKind.SUBMIT))}
    first_start: dict[int, int] = {}
    for index, event in _indices(run, EventKind.JOB_START):
        first_start.setdefault(event.job, index)
    settled: dict[int, int] = {}       # job -> index from which it no longer waits (cancel or answer)
    for index, event in _indices(run, EventKind.CANCEL):
        settled.setdefault(event.job, index)
    for job in run.view.jobs.values():
        if job.received is not None:
            settled[job.id] = min(settled.get(job.id, job.received.index), job.received.index)
    jobs = run.view.jobs
    for young, start in first_start.items():
        for old, sub in submitted.items():
            if sub >= submitted[young] or jobs[old].priority < jobs[young].priority:
                continue
            waiting = first_start.get(old, len(run.trace.events)) > start and settled.get(old, len(run.trace.events)) > start
            if waiting:
                raise InvariantFailed(
                    f"job {young} (priority {jobs[young].priority}) started at {format_ms(run.trace.events[start].t_us)} "
                    f"while older job {old} (priority {jobs[old].priority}, so at least as aged) still waited",
                    events=(sub, submitted[young], start))


def _aging(cls: type) -> Target:
    return Target(
        build=lambda clock: cls(clock, workers=1, aging=AGING_MS / 1000),
        submit=lambda subject, job, priority: subject.submit(job, priority),
        menu={"priorities": 3},
        limit=1,
        rejects=(QueueStopped,),
        invariants=(older_not_overtaken,),
        description=f"priority queue with aging ({cls.__name__}): +1 every {AGING_MS}ms waited",
    )


aging = _aging(AgingQueue)
aging_lifo_ties = _aging(AgingQueueLifoTies)
aging_ticker_leak = _aging(AgingQueueTickerLeak)
