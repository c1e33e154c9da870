"""Round 7 targets, written from the user documentation only (as a new user would).

Each component is adapted to ``submit(job) -> Deferred`` (or, for the lease keeper, to periodic
work): the adapter classes below are the glue a user writes. What no built-in promise says is a
user invariant: a bulkhead's queue bound, a lease lost and not reported by its expiry, a change
saved within the saver's max-wait.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime

from harness import (
    NOT_JUDGED,
    EventKind,
    InvariantFailed,
    JobRecord,
    Operation,
    Run,
    RunView,
    Target,
    format_ms,
)

from . import bulkhead as bh
from . import lease as ls
from . import saver as sv
from . import swr

# -- bulkhead -------------------------------------------------------------------------------------
N, Q, DEADLINE = 2, 2, 0.2


class BulkheadGate:
    """Every job is one call through the bulkhead."""

    def __init__(self, clock: IReactorTime, cls: type[bh.Bulkhead] = bh.Bulkhead) -> None:
        self.bulkhead = cls(clock, n=N, q=Q, deadline=DEADLINE)

    def submit(self, job: Callable[[], Any]) -> Deferred[Any]:
        return self.bulkhead.call(job)


def _occupancy(view: RunView, upto: int) -> tuple[int, int]:
    """(running, waiting) just before trace index ``upto``: replayed from the trace's own events.

    Waiting: submitted, not refused at once, not started, caller not answered. Running: started, not ended (an attempt
    whose canceller raised never ends, as the run API says)."""
    waiting: set[int] = set()
    running: set[tuple[int, int]] = set()
    raised = {(a.job, a.n) for a in view.attempts() if a.canceller_raised}
    refused = {j.id for j in view.jobs.values() if j.received is not None and j.received.error == "BulkheadFull"}
    for index, event in enumerate(view.events[:upto]):
        kind = event.kind
        if kind == EventKind.SUBMIT and event.job not in refused:
            waiting.add(event.job)
        elif kind == EventKind.JOB_START:
            waiting.discard(event.job)
            running.add((event.job, event.attempt))
        elif kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL):
            if (event.job, event.attempt) not in raised:
                running.discard((event.job, event.attempt))
        elif kind in (EventKind.RESULT, EventKind.FAILURE):
            waiting.discard(event.job)
    return len(running), len(waiting)


def _submit_index(view: RunView, job: int) -> int:
    for index, event in view.of_kind(EventKind.SUBMIT):
        if event.job == job:
            return index
    raise AssertionError(f"job {job} has no submit event")


def bulkhead_full_when_refused(view: RunView, job: JobRecord, t_us: int) -> bool:
    """A refusal is legitimate only while n calls run and q wait."""
    running, waiting = _occupancy(view, _submit_index(view, job.id))
    return running >= N and waiting >= Q


def bulkhead_queue_bounded(run: Run) -> object:
    """At no point do more than q callers wait."""
    view = run.view
    for index, event in view.of_kind(EventKind.SUBMIT):
        _running, waiting = _occupancy(view, index + 1)
        if waiting > Q:
            raise InvariantFailed(f"job {event.job} was queued at {format_ms(event.t_us)} with {waiting} callers "
                                  f"waiting, but the queue holds {Q}", events=(index,))
    return None


def _bulkhead(cls: type[bh.Bulkhead], description: str) -> Target:
    return Target(
        build=lambda clock: BulkheadGate(clock, cls),
        limit=N, order="fifo", retries=0,
        timeout_ms=int(DEADLINE * 1000), timeout_from="wait", timeout_error=bh.QueueDeadline,
        rejects=(bh.BulkheadFull,), rejects_only_while=bulkhead_full_when_refused,
        invariants=(bulkhead_queue_bounded,),
        description=description,
    )


bulkhead_ok = _bulkhead(bh.Bulkhead, "round 7 bulkhead (n=2, q=2, 200ms queue deadline)")
bulkhead_queue_off_by_one = _bulkhead(bh.BulkheadQueueOffByOne, "bulkhead twin: q + 1 may wait")
bulkhead_deadline_not_cleared = _bulkhead(bh.BulkheadDeadlineNotCleared, "bulkhead twin: deadline left armed")
bulkhead_slot_leak_on_failure = _bulkhead(bh.BulkheadSlotLeakOnFailure, "bulkhead twin: a failure starts no waiter")


# -- stale-while-revalidate cache ------------------------------------------------------------------
TTL, STALE, FETCH_TIMEOUT = 0.1, 0.3, 0.5


class SWRGate:
    """``submit(job)`` is ``cache.get(job.key)``; a fetch the cache starts inside that call runs the
    caller's own job (the cache only ever starts a fetch inside ``get``)."""

    def __init__(self, clock: IReactorTime, cls: type[swr.SWRCache] = swr.SWRCache) -> None:
        self.cache = cls(clock, self._fetch, ttl=TTL, stale=STALE, timeout=FETCH_TIMEOUT)
        self._job: Callable[[], Any] | None = None

    def _fetch(self, key: object) -> Deferred[Any]:
        job, self._job = self._job, None
        assert job is not None, "the cache fetched outside get()"
        return maybeDeferred(job)

    def submit(self, job: Any) -> Deferred[Any]:
        self._job = job
        try:
            return self.cache.get(job.key)
        finally:
            self._job = None


def _swr(cls: type[swr.SWRCache], description: str) -> Target:
    return Target(
        build=lambda clock: SWRGate(clock, cls),
        submit=lambda gate, job, priority: gate.submit(job),
        keys=2, shared=True, cache_ms=int(STALE * 1000), cancellable="detach",
        timeout_ms=int(FETCH_TIMEOUT * 1000),
        description=description,
    )


swr_ok = _swr(swr.SWRCache, "round 7 stale-while-revalidate cache (ttl 100ms, stale 300ms, fetch timeout 500ms)")
swr_not_single_flight = _swr(swr.SWRNotSingleFlight, "swr twin: a refresh per stale hit")
swr_cancel_kills_fetch = _swr(swr.SWRCancelKillsFetch, "swr twin: the first caller's cancel cancels the fetch")
swr_failure_strands = _swr(swr.SWRFailureStrands, "swr twin: a failed fetch stays in flight")


# -- lease keeper (periodic: each renewal is a call of the work) ------------------------------------
RENEW_EVERY, LEASE_TTL = 0.1, 0.3


class LeaseHolder:
    """The keeper, started with the harness's work as its renewal; a lost lease is reported as the
    loop's end (``work.report_end``)."""

    def __init__(self, clock: IReactorTime, work: Any, cls: type[ls.LeaseKeeper] = ls.LeaseKeeper) -> None:
        self.work = work
        self.keeper = cls(clock, acquire=lambda: succeed(None), renew=lambda: maybeDeferred(work),
                          release=lambda: succeed(None), renew_every=RENEW_EVERY, ttl=LEASE_TTL)

    def start(self) -> Deferred[None]:
        d = self.keeper.start()
        held = self.keeper.held()
        held.addErrback(lambda failure: self.work.report_end(f"lease lost: {failure.getErrorMessage()}"))
        return d

    def stop(self) -> Deferred[None]:
        return self.keeper.stop()


def _lease_lapses(run: Run, send_slack: bool) -> object:
    """The lease is good for ttl from the start of the last renewal that succeeded while it was
    still good (the acquire, at the start, first). Once that runs out with no renewal succeeding, the
    loop must report its end by then (plus the clock's lateness), unless stopped before.

    ``send_slack``: a renewal sent up to the clock's lateness after the lease ran out still counts.
    A keeper keeps time with timers, so a renewal the reactor runs late (a tick, or the hop after
    it, overdue in a late wake-up) cannot know it is late: the harness's own time invariants allow
    the same lateness."""
    view = run.view
    starts = list(view.of_kind(EventKind.START))
    if not starts:
        return NOT_JUDGED
    ttl_us = int(LEASE_TTL * 1e6)
    slack = view.late_us if send_slack else 0
    valid_until = starts[0][1].t_us + ttl_us
    stops = [e.t_us for _i, e in view.of_kind(EventKind.STOP)]
    ends = [e.t_us for _i, e in view.of_kind(EventKind.LOOP_END)]
    for attempt in view.attempts():
        if attempt.start_us >= valid_until + slack:
            break
        if attempt.outcome == "finished" and attempt.end_us is not None:
            valid_until = max(valid_until, attempt.start_us + ttl_us)
    bound = valid_until + view.late_us
    stop_us = min(stops) if stops else None
    if stop_us is not None and stop_us <= bound:
        return None  # stopped before the loss was due to be reported
    end_us = min(ends) if ends else None
    drained = [e.t_us for _i, e in view.of_kind(EventKind.DRAINED)]
    if end_us is None:
        if drained and drained[0] < bound:
            return NOT_JUDGED  # the run ended before the lease ran out
        raise AssertionError(f"the lease ran out at {format_ms(valid_until)} and the loop never reported it lost")
    assert end_us <= bound, (f"the lease ran out at {format_ms(valid_until)} but the loop reported it lost only "
                             f"at {format_ms(end_us)}")
    return None


def lease_lost_reported_by_expiry(run: Run) -> object:
    """A lease that ran out is reported lost by then (a renewal sent late by the clock's lateness
    still counts)."""
    return _lease_lapses(run, send_slack=True)


def lease_lapse_never_renewed(run: Run) -> object:
    """Stricter: a renewal sent after the lease ran out does not count, however late the reactor
    ran it (more than a keeper keeping time with timers can promise; kept for the specimen)."""
    return _lease_lapses(run, send_slack=False)


def _lease(cls: type[ls.LeaseKeeper], description: str,
           invariant: Callable[[Run], object] = lease_lost_reported_by_expiry) -> Target:
    return Target(
        build=lambda clock, work: LeaseHolder(clock, work, cls),
        start=lambda holder, work: holder.start(),
        kind="periodic", interval_ms=int(RENEW_EVERY * 1000), stop_cancels_timers=True,
        invariants=(invariant,),
        description=description,
    )


lease_ok = _lease(ls.LeaseKeeper, "round 7 lease keeper (renew every 100ms, ttl 300ms)")
lease_stop_leaks_expiry = _lease(ls.LeaseStopLeaksExpiry, "lease twin: stop() leaves the expiry timer")
lease_no_deadline_while_renewing = _lease(ls.LeaseNoDeadlineWhileRenewing, "lease twin: no expiry while a renewal is out")
lease_double_errback = _lease(ls.LeaseDoubleErrback, "lease twin: the waiters errbacked twice")


# -- debounced saver --------------------------------------------------------------------------------
QUIET, MAX_WAIT = 0.1, 0.3


class SaverGate:
    """``submit(job)`` is ``change(job)``: the caller waits until a save holding its change ends.
    The value saved is the latest change, so a save runs the latest caller's job."""

    def __init__(self, clock: IReactorTime, cls: type[sv.DebouncedSaver] = sv.DebouncedSaver) -> None:
        self.saver = cls(clock, self._save, quiet=QUIET, max_wait=MAX_WAIT)
        self._unsaved: list[Deferred[Any]] = []

    def submit(self, job: Any) -> Deferred[Any]:
        self.saver.change(job)
        d: Deferred[Any] = Deferred()
        self._unsaved.append(d)
        return d

    def _save(self, job: Any) -> Deferred[Any]:
        batch, self._unsaved = self._unsaved, []

        def answer(result: Any) -> Any:
            for d in batch:
                if not d.called:
                    d.callback(result)
            return result

        return maybeDeferred(job).addBoth(answer)

    def stop(self) -> Deferred[None]:
        return self.saver.stop()


def saved_within_max_wait(run: Run) -> object:
    """A change is saved (a save starts after it) within max_wait of it, plus the clock's lateness;
    a save running at that moment holds the next one until it ends (then the next starts at once)."""
    view = run.view
    max_us = int(MAX_WAIT * 1e6)
    attempts = view.attempts()
    stops = [e.t_us for _i, e in view.of_kind(EventKind.STOP)]
    judged = False
    for job in view.jobs.values():
        if job.received is not None and job.received.error == "SaverStopped":
            continue  # refused after stop()
        due = job.submitted_us + max_us
        running = [a for a in attempts if a.running_at(due)]
        if running:
            ends = [a.end_us for a in running]
            if any(end is None for end in ends) or any(a.canceller_raised for a in running):
                continue  # a save that never ends holds every later one
            due = max(e for e in ends if e is not None)
        if stops and stops[0] <= due + view.late_us:
            continue  # stop() flushes
        judged = True
        later = [a.start_us for a in attempts if a.start_us >= job.submitted_us]
        if not later or later[0] > due + view.late_us:
            first = format_ms(later[0]) if later else "never"
            raise AssertionError(f"job {job.id} changed the value at {format_ms(job.submitted_us)}; the next save "
                                 f"started {first}, after the {format_ms(max_us)} max-wait (due by {format_ms(due)})")
    return None if judged else NOT_JUDGED


def _saver(cls: type[sv.DebouncedSaver], description: str) -> Target:
    return Target(
        build=lambda clock: SaverGate(clock, cls),
        submit=lambda gate, job, priority: gate.submit(job),
        keys=1, shared=True, cancellable="detach_queued", retries_after_answer=True,
        rejects=(sv.SaverStopped,), stop_cancels_timers=True,
        operations={"flush": Operation(lambda gate: gate.saver.flush(), raises=(Exception,))},
        invariants=(saved_within_max_wait,),
        description=description,
    )


saver_ok = _saver(sv.DebouncedSaver, "round 7 debounced saver (quiet 100ms, max-wait 300ms)")
saver_no_max_wait = _saver(sv.SaverNoMaxWait, "saver twin: no max-wait")
saver_stop_leaves_timer = _saver(sv.SaverStopLeavesTimer, "saver twin: stop() leaves the trailing timer")
saver_overlapping_saves = _saver(sv.SaverOverlappingSaves, "saver twin: flush() overlaps the running save")


# -- specimens kept for the findings ----------------------------------------------------------------
from . import lease_wallclock  # noqa: E402

lease_wall_clock = _lease(lease_wallclock.LeaseKeeper, "specimen: my lease keeper that compared seconds() readings",
                          lease_lapse_never_renewed)


class BackwardsSleeper:
    """Specimen for finding 4: runs each job 100 ms after its submission, and refuses it (fails the
    caller with ValueError) when ``clock.seconds()`` went back by more than 4.5 s meanwhile: a bug
    only a large wall-clock jump back shows (the menu's jumps go up to 5 s each)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def submit(self, job: Any) -> Deferred[Any]:
        submitted = self.clock.seconds()
        d: Deferred[Any] = Deferred()

        def run() -> None:
            if self.clock.seconds() - submitted < -4.5:
                d.errback(ValueError("the clock went back"))
            else:
                maybeDeferred(job).chainDeferred(d)

        self.clock.callLater(0.1, run)
        return d


backwards_sleeper = Target(build=BackwardsSleeper, cancellable=False, retries=0,
                           description="specimen: fails a job after a 4.5 s jump back")


class ZeroHop:
    """Specimen for finding 2: each job runs 100 ms after its submission, after one hop through
    ``callLater(0)`` (the shape of the lease keeper's renewal: a tick, then a zero-delay send)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def submit(self, job: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()

        def hop() -> None:
            self.clock.callLater(0, d.callback, None)

        self.clock.callLater(0.1, hop)
        return d.addCallback(lambda _r: job())


zero_hop = Target(build=ZeroHop, cancellable=False, retries=0, description="specimen: a tick, then callLater(0)")
