"""Issue 13, item 11: every violation message of the built-in invariants, and every Target option, both ways.

Each row of ``MESSAGES`` names an invariant, a fragment of one of its
messages, a buggy subject whose run on the row's schedule breaks that
invariant first with that message, and a correct subject that stays clean
on the same schedule. ``test_every_message_has_a_row`` keeps the table
complete: each message template in ``harness/invariants`` is matched by a row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from twisted.internet import defer

import harness.invariants as invariants_package
from harness import (
    Call, Cancel, ClockPolicy, JobSpec, Jump, Operation, Schedule, Stop, Submit, Target, check, load_target, run_schedule,
)
from harness.model.schedule import Start
from scenarios.caller_timeout import CallerTimeoutPool
from scenarios.review.round11 import dlq as _round11_dlq
from scenarios.review.round11 import targets as _round11
from scenarios.retry import BackoffRetry, JitteryBackoff
from scenarios.quorum import QuorumReadWaitsForAll
from scenarios.review.round3.hedge import HedgedCaller
from scenarios.timeout import OrphaningTimeout, TimeoutPool
from test_audit14_leftovers import BackoffRetry as _RetryLater, TimerBatcher as _TimerBatcher
from test_redrives import redrive_twice as _redrive_twice
from test_retry_slot_wait import retry_not_pumped as _retry_not_pumped
from specimens import Keepalive, LateDelayedCancel, StuckAfterRestart, WaitTimeout, keepalive_target
from specimens import (
    BoundedPool,
    CancelAtTimeout,
    CoalescingPool,
    HedgedRetry,
    JobTimedOut,
    LifoAmongEqualsPool,
    MisSharing,
    PoolFull,
    PumpedDeadline,
    RetryAfterAnswer,
    RetryUnlessTrue,
    GivingUpClient,
    Hopping,
    HopsThenGivesUp,
    HopsThenSlowBackoff,
    SlowBackoffClient,
    StubbornPool,
    ValidatingPool,
    WrappingPool,
)

SEMAPHORE = "scenarios.pools:semaphore_pool"


def ok(after_ms: int = 10, **kw) -> JobSpec:
    return JobSpec("succeed", after_ms, **kw)


def fail(after_ms: int = 10, error: str = "InjectedError") -> JobSpec:
    return JobSpec("fail", after_ms, error)


HANG = JobSpec("hang")
RAISE = JobSpec("raise")


@dataclass(frozen=True)
class Row:
    """One message: who breaks it, who keeps the promise, on which schedule."""

    id: str
    invariant: str
    fragment: str
    buggy: str | Target
    correct: str | Target
    schedule: Schedule


def _target(spec: str | Target) -> Target:
    return load_target(spec) if isinstance(spec, str) else spec


def _hops(cls: type, hops: int, hop_ms: int) -> Target:
    """The reconnecting client hopping ``hops`` timers of ``hop_ms`` before its backoff (``specimens.Hopping``)."""
    return replace(load_target("scenarios.backoff_loop:reconnecting_client"),
                   build=type(f"{cls.__name__}{hops}", (cls,), {"HOPS": hops, "HOP_MS": hop_ms}))


def S(*ops, clock: ClockPolicy | None = None) -> Schedule:  # noqa: N802 - reads as a constructor in the table
    return Schedule(tuple(ops), clock or ClockPolicy())


_SINGLE_FLIGHT = "scenarios.single_flight:single_flight"


def _mis_sharing(mode: str) -> Target:
    return Target(build=lambda clock: MisSharing(clock, mode), keys=2, shared=True, cancellable="detach")
_slow_backoff = replace(load_target("scenarios.backoff_loop:reconnecting_client"), build=SlowBackoffClient)
_lifo_equals = Target(build=lambda clock: LifoAmongEqualsPool(clock, limit=1), limit=1, order="priority")
_bounded_raising = Target(build=lambda clock: BoundedPool(clock, raises=True), limit=1)
_bounded_undeclared = Target(build=lambda clock: BoundedPool(clock), limit=1)
_bounded_declared = Target(build=lambda clock: BoundedPool(clock), limit=1, rejects=(PoolFull,))
_short_timeout = Target(build=lambda clock: TimeoutPool(clock, timeout_ms=30), limit=2, timeout_ms=300)
_orphan_30 = Target(build=lambda clock: OrphaningTimeout(clock, timeout_ms=30), timeout_ms=300)
_orphan_30_submit = replace(_orphan_30, timeout_from="submit")
_cancel_timeout_raw = Target(build=CancelAtTimeout, timeout_ms=300)
_cancel_timeout_converted = Target(
    build=lambda clock: CancelAtTimeout(clock, error=defer.TimeoutError), timeout_ms=300
)
_own_timeout_error_wrong = Target(build=CallerTimeoutPool, limit=2, timeout_ms=300, timeout_error=JobTimedOut)
_own_timeout_error_right = replace(
    _own_timeout_error_wrong, build=lambda clock: CallerTimeoutPool(clock, error=JobTimedOut)
)
_hedged = Target(build=HedgedRetry, retries=1)
_retry_then_late = load_target("scenarios.review.round10.probes:retry_then_late")
_retry_then_prompt = load_target("scenarios.review.round10.probes:retry_then_prompt")
_HEDGE = "scenarios.hedge"
_QUORUM = "scenarios.quorum"
_ROUND5 = "scenarios.review.round5.targets"


class _NeverAnswers(QuorumReadWaitsForAll):
    timeout = None  # waits for every copy, and one hangs: the quorum reached is never answered


_never_answers = Target(build=_NeverAnswers, fanout=4, quorum=3)
#: The round-3 hedger sending its copy after 300 ms where 100 ms is declared.
_hedged_late = Target(build=lambda clock: HedgedCaller(clock, hedge_after=0.3), hedge_ms=100,
                      submit=lambda subject, job, priority: subject.call(job))
_retry_unless_true = Target(build=RetryUnlessTrue, retries=1)
_backoff_exact = Target(build=BackoffRetry, retries=3, backoff_ms=(100, 400))
_backoff_jittery = Target(build=JitteryBackoff, retries=3, backoff_ms=(100, 400))

class WaitTimedOut(Exception):
    """A timeout error a wait-timeout target may declare instead of Twisted's."""


_TIMED_FLIGHT = "scenarios.timed_flight:timed_flight"
#: A pool declaring a 300ms timeout it never sets (no timer at all: the run drains at once).
_forgotten_timeout = Target(build=lambda clock: WaitTimeout(clock, timeout_ms=None), limit=2, timeout_ms=300)
#: Twisted's LoopingCall declaring a 1s timeout on each call it never sets (it waits for a hanging call; the
#: run drains 4 intervals after the last operation, before the call's timeout is due).
_looping_call_timeout = replace(load_target("scenarios.thirdparty.twisted_prims:looping_call"), timeout_ms=1000)


#: The hedged request whose deadline fails the caller but leaves the copies running (copy 0 fails first here).
_orphaning_hedge_copy0_done = "scenarios.hedge_deadline:orphaning_deadline_hedged_request"


def _wait(**kwargs) -> Target:
    return Target(build=lambda clock: WaitTimeout(clock, **kwargs), limit=2, timeout_ms=300, timeout_from="wait")


_delayed_late = Target(build=lambda clock: LateDelayedCancel(clock, lag_ms=50), cancellable="delayed")
_delayed_ok = Target(build=LateDelayedCancel, cancellable="delayed")
TWO_BUSY = S(Submit(0, 0, ok(500)), Submit(0, 1, ok(500)), Submit(10, 2, ok()))
TWO_HANG = S(Submit(0, 0, HANG), Submit(0, 1, HANG), Submit(10, 2, ok()), Stop(400))  # the stop: the run lasts past 310ms

CANCELS = S(Submit(0, 0, ok(50)), Submit(0, 1, ok(50)), Submit(0, 2, ok(50)), Cancel(10, 0), Cancel(10, 2))
HOSTILE = S(Submit(0, 0, JobSpec("hang", canceller_raises=True)), Submit(0, 1, ok()))
THREE = S(Submit(0, 0, ok()), Submit(0, 1, ok()), Submit(0, 2, ok()))

_DEADLINE = "scenarios.review.round3.targets:deadline"  # timeout_from="submit", timeout_fires, 2 connections
_HOSTILE_HANG = JobSpec("hang", canceller_raises=True)
HOSTILE_TWO = S(Submit(0, 0, _HOSTILE_HANG), Submit(0, 1, _HOSTILE_HANG), Submit(0, 2, ok()))
# Two jobs whose cancel fails keep both connections until 500ms; the third caller waits past its 300ms deadline.
CANCELLED_TWO = S(Submit(0, 0, ok(500, canceller_raises=True)), Submit(0, 1, ok(500, canceller_raises=True)),
                  Submit(0, 2, ok()), Cancel(100, 0), Cancel(100, 1))

class _LoggingPool:
    """Runs each job and logs a failed one; ``own``: also logs a KeyError of its own at each submit."""

    def __init__(self, clock: object, own: bool = False) -> None:
        self.own, self.n = own, 0

    def submit(self, job):  # type: ignore[no-untyped-def]
        from twisted.logger import Logger

        self.n += 1
        if self.own:
            try:
                {}[self.n]
            except KeyError:
                Logger().failure("bookkeeping failed")
        return defer.maybeDeferred(job).addErrback(lambda f: (Logger().failure("job failed", f), f)[1])


_job_logger = Target(build=_LoggingPool, retries=0, logs=())
_own_logger = Target(build=lambda clock: _LoggingPool(clock, own=True), retries=0, logs=())


def _detach_and_glue_rows() -> tuple[Row, ...]:
    """time.timeout with timeout_detaches (review 9, finding 1) and timeout_from="glue" (finding 3)."""
    import test_timeout_detaches as d
    import test_timeout_glue as g
    off = g.Target(build=type("Off", (g.Group,), {"submit": lambda self, job: (job.stop_timeout(), g.Group.submit(self, job))[1]}),
                   timeout_ms=g.T, timeout_from="glue", timeout_error=g.Expired, cancellable=False)
    return (
        Row("detach.early", "time.timeout", "(and, with timeout_detaches, it leaves the work running)",
            d.target(early_cancel=True), d.target(), S(d.SLOW)),
        Row("detach.unanswered", "time.timeout", "timeout_detaches promises it fails with Timeout then (its work may run on)",
            d.target(answer=False), d.target(), S(d.SLOW)),
        Row("detach.wrong_error", "time.timeout", "timed out at 300ms (300ms after it was submitted), but its Deferred fired with KeyError",
            d.target(error=KeyError), d.target(), S(d.SLOW)),
        Row("glue.early", "time.timeout", "only 250ms after its deadline last ran from 0ms", g.target(skew=-50), g.target(),
            S(*g.OPS[:2])),
        Row("glue.late", "time.timeout", "was still waiting at 300ms, 300ms after its deadline ran from 0ms (its submission)",
            g.target(skew=200), g.target(), S(*g.OPS[:2])),
        Row("glue.off", "time.timeout", "while its glue had switched its deadline off (stop_timeout())", off, g.target(),
            S(*g.OPS[:1])),
    )


def _cleanup_rows() -> tuple[Row, ...]:
    """time.timeout with timeout_cleanup_ms: the caller answered after a bounded cleanup (review 10, finding 2)."""
    import test_timeout_cleanup as c
    late = ClockPolicy(step_ms=7, jitter_ms=5, seed=1)
    return (
        Row("cleanup.late", "time.timeout", "but its Deferred fired only at 340ms, 40ms later; timeout_cleanup_ms=39 "
            "promises it fails with Timeout within 39ms of the timeout", c.target(cleanup_ms=39),
            c.target(), S(c.HANG)),
        Row("cleanup.never", "time.timeout", "but its Deferred never fired; timeout_cleanup_ms=40 promises it fails with "
            "Timeout within 40ms of the timeout (and the 9ms the timers on the cleanup's way fired late)",
            c.target(answer=False), c.target(), S(c.HANG, clock=late)),
        Row("cleanup.wrong_error", "time.timeout", "but its Deferred fired with KeyError: 'timed out', not Timeout "
            "(timeout_cleanup_ms=40", c.target(error=KeyError), c.target(), S(c.HANG)),
    )


#: The round-8 subscriber whose unsubscribe() cancels the delivery in progress, not declaring it (cancels_work).
_UNSUBSCRIBE_UNDECLARED = replace(load_target("scenarios.review.round8.targets:fanout_unsubscribe_op"),
                                  operations={"unsubscribe": Operation(lambda s: s.unsubscribe())})

class _SlowerAfterRedrive(_round11_dlq.RetryQueue):
    """BUG: each redrive doubles the queue's base delay, so a redriven job's retries wait twice too long."""

    def redrive(self):  # type: ignore[no-untyped-def]
        self.base_delay *= 2
        return super().redrive()


MESSAGES: tuple[Row, ...] = (
    # completion
    Row("once", "completion.once", "was fired twice", "scenarios.next_tick:next_tick_delivery_pool", SEMAPHORE,
        S(Submit(0, 0, ok()), Cancel(0, 0))),
    Row("deadline.stranded", "completion.deadline", "(deadlock or starvation)", "scenarios.priority:idle_flag_scheduler",
        "scenarios.priority:priority_pool", S(Submit(0, 0, JobSpec("immediate"), 1), Submit(0, 1, ok(), 0))),
    Row("deadline.took", "completion.deadline", "took 350ms from submit to result; the declared deadline is 300ms",
        "scenarios.submit_timeout:start_timed_deadline", "scenarios.submit_timeout:submit_timeout_pool",
        S(Submit(0, 0, ok(250)), Submit(0, 1, ok(250)), Submit(0, 2, ok(100)))),
    # audit 14's leftover, round 15: a drain that stopped with timers pending names the declaration that waits
    Row("deadline.timers_pending", "completion.deadline", "1 timer still pending then: the run stops waiting 10 s",
        Target(build=_TimerBatcher), Target(build=_TimerBatcher, deadline_ms=16_000), S(Submit(0, 0, ok()))),
    Row("deadline.past_declared", "completion.deadline", "but the run waited past the declared deadline_ms=16000",
        Target(build=lambda clock: _TimerBatcher(clock, forever=True), deadline_ms=16_000),
        Target(build=_TimerBatcher, deadline_ms=16_000), S(Submit(0, 0, ok()))),
    Row("stop.pending", "completion.stop", "returned a Deferred that never fired: the run ended",
        "scenarios.graceful:idle_stop_pool", "scenarios.graceful:graceful_pool", S(Submit(0, 0, ok()), Stop(20))),
    Row("operation.pending", "completion.operation", "so its caller waits for ever",
        "scenarios.graceful:idle_waiter_pool", "scenarios.graceful:graceful_pool", S(Submit(0, 0, ok()), Call(20, "when_idle"))),
    Row("operation.restart_hint", "completion.operation", "started the stopped subject again, declare Operation(restarts=True)",
        "tests.answer_subjects:undeclared_wake", "tests.answer_subjects:declared_wake",
        S(Stop(0), Call(0, "wake"), Call(0, "when_stopped"))),
    # concurrency
    Row("limit", "concurrency.limit", "but the limit is 2", "scenarios.pools:double_release_pool", SEMAPHORE,
        S(Submit(0, 0, ok(20)), Submit(0, 1, fail()), Submit(0, 2, ok()), Submit(0, 3, ok()))),
    Row("fifo", "concurrency.fifo", "FIFO order was declared", "scenarios.next_tick:next_tick_fifo",
        "scenarios.lock:lock_resource", S(Submit(0, 0, ok()), Submit(0, 1, ok()), clock=ClockPolicy("lifo", jitter_ms=5))),
    Row("priority.higher", "concurrency.priority", "the higher priority goes first",
        "scenarios.fifo_priority:fifo_priority_pool", "scenarios.priority:priority_pool",
        S(Submit(0, 0, ok(), 0), Submit(0, 1, ok(), 0), Submit(0, 2, ok(), 1))),
    Row("priority.equal", "concurrency.priority", "equal priorities start in submission order", _lifo_equals,
        "scenarios.priority:priority_pool", S(Submit(0, 0, ok(), 0), Submit(0, 1, ok(), 0), Submit(0, 2, ok(), 0))),
    # cancellation
    Row("fires.never", "cancellation.fires", "but its Deferred never fired", "scenarios.cancel:cooperative_cancel_pool",
        SEMAPHORE, S(Submit(0, 0, HANG), Cancel(5, 0))),
    Row("fires.result", "cancellation.fires", "delivered a result", Target(build=StubbornPool), SEMAPHORE, S(Submit(0, 0, ok()), Cancel(5, 0))),
    Row("fires.late", "cancellation.fires", "it must fire by the end of the instant of the cancel",
        "scenarios.cancel:cooperative_cancel_pool", SEMAPHORE, S(Submit(0, 0, fail()), Cancel(5, 0))),
    Row("fires.type", "cancellation.fires", "not Aborted (or a subclass)", "scenarios.abort:half_abort_pool",
        "scenarios.abort:abort_pool", CANCELS),
    Row("delayed.late", "cancellation.fires", "while its job ran, and the job's work ended at 50ms, but its Deferred fired only at 100ms",
        _delayed_late, _delayed_ok, S(Submit(0, 0, ok(50)), Cancel(10, 0))),
    Row("no_start.started", "cancellation.no_start", "started at", "scenarios.queue_workers:no_skip_queue_workers",
        "scenarios.queue_workers:queue_workers", S(Submit(0, 0, ok()), Submit(0, 1, ok()), Cancel(0, 1))),
    Row("no_start.retried", "cancellation.no_start", "was retried (attempt 1)", "scenarios.retry:retry_after_cancel",
        "scenarios.retry:backoff_retry", S(Submit(0, 0, fail(), then=(ok(),)), Cancel(50, 0))),
    Row("propagates.kept", "cancellation.propagates", "and kept running", "scenarios.cancel:detaching_pool", SEMAPHORE,
        S(Submit(0, 0, HANG), Cancel(5, 0))),
    Row("propagates.ran_on", "cancellation.propagates", "and it ran on until 10ms", "scenarios.cancel:detaching_pool",
        SEMAPHORE, S(Submit(0, 0, ok()), Cancel(5, 0))),
    Row("propagates.attempt", "cancellation.propagates",
        "job 0 attempt 1 (0#1 in the trace) was running when the job's Deferred was cancelled at 150ms, but that "
        "attempt's own Deferred was not cancelled", "scenarios.review.round3.targets:hedged_cancels_primary_only",
        "scenarios.review.round3.targets:hedged", S(Submit(0, 0, ok(500)), Cancel(150, 0))),
    Row("harmless", "cancellation.harmless", "cancel() must never raise", "scenarios.cancel:ticket_pool", SEMAPHORE,
        S(Submit(0, 0, JobSpec("immediate")), Cancel(0, 0))),
    Row("releases", "cancellation.releases", "the cancelled job's slot was not released",
        "scenarios.semaphore:cancel_leak_pool", SEMAPHORE,
        S(Submit(0, 0, ok()), Submit(0, 1, ok()), Cancel(0, 1), Submit(0, 2, ok()))),
    Row("releases.error_path", "cancellation.releases",
        "the job stays stranded when that work fails instead of being cancelled: a failure strands it too, see errors.poison",
        "scenarios.review.round3.targets:bulkhead_leaks_on_error", "scenarios.review.round3.targets:bulkhead",
        S(Submit(0, 0, ok(900)), Cancel(0, 0), Submit(0, 1, fail(0)), Submit(0, 2, ok(0)))),
    # time.timeout
    *_detach_and_glue_rows(),
    *_cleanup_rows(),
    Row("wait.started_late", "time.timeout", "job 2 started at 500ms, after its wait timed out at 310ms", _wait(timeout_ms=None),
        _wait(), TWO_BUSY),
    Row("wait.unfired", "time.timeout", "job 2 waited 300ms without starting (submitted at 10ms) but its Deferred never fired",
        _wait(timeout_ms=None), _wait(), TWO_HANG),
    Row("wait.wrong_error", "time.timeout", "job 2's wait timed out at 310ms but its Deferred fired with TimeoutError",
        replace(_wait(), timeout_error=WaitTimedOut), _wait(), TWO_HANG),
    Row("wait.whole_call", "time.timeout", 'timeout_from="wait" times out only the wait, not the job', _wait(whole=True),
        _wait(), S(Submit(0, 0, ok(500)))),
    Row("wait.free_slot", "time.timeout", "the declared limit of 2 was never full while it waited (at most 1 running",
        _wait(slots=1), _wait(), S(Submit(0, 0, HANG), Submit(10, 1, ok()))),
    Row("wait.slot_left_free", "time.timeout", "but a slot had been free since 10ms (1 running of the declared limit of 2 "
        "from then on): a job with a free slot must not be kept waiting; only a slot freed in the instant of the timeout, "
        "or within the clock's lateness of it (0ms), excuses it",
        "scenarios.review.round7.targets:bulkhead_slot_leak_on_failure", "scenarios.review.round7.targets:bulkhead_ok",
        S(Submit(0, 0, fail(10)), Submit(0, 1, ok(500)), Submit(0, 2, ok(0)))),
    # review 12, finding 3: with rate and no limit, the window makes a wait timeout legitimate
    Row("wait.window_room", "time.timeout", "job 1's wait timed out at 50ms, but the declared rate of 2 per 100ms had room "
        "for its start all along its wait (since its submission at 0ms): a job the rate lets start must not be kept waiting",
        "tests.test_fix12:limiter_one_short", "scenarios.review.round12.targets:limiter_short_wait",
        S(Submit(0, 0, ok(0)), Submit(0, 1, ok(0)))),
    Row("wait.window_left_open", "time.timeout", "job 2's wait timed out at 300ms, but the declared rate of 2 per 100ms had "
        "had room for its start since 100ms: a job the rate lets start must not be kept waiting; only room made in the "
        "instant of the timeout, or within the clock's lateness of it (0ms), excuses it",
        "scenarios.review.round12.targets:limiter_lazy_wake", "scenarios.review.round12.targets:limiter_ok",
        S(Submit(0, 0, ok(0)), Submit(0, 1, ok(0)), Submit(0, 2, ok(0)))),
    # a weighted capacity (review 11, finding 5): a readers-writer lock, a writer weighing it all, a reader 1
    Row("wait.weighted_left_free", "time.timeout", "job 2's wait timed out at 301ms, but it had had room to run since "
        "300ms (a weight of 1 held of the declared capacity of 64 from then on, room for its weight of 1, and no waiter "
        "ahead of it blocked)", _round11.rwlock_stuck_builtin_only, _round11.rwlock_ok,
        S(Submit(0, 0, ok(1000)), Submit(0, 1, ok(0), priority=1), Submit(1, 2, ok(0)))),
    # declared without order, the reader queued behind the waiting writer (lifo: it times out first) had room
    Row("wait.weighted_never_room", "time.timeout", "but the declared capacity of 64 always had room for its weight of 1 "
        "while it waited (at most a weight of 1 held, and no waiter ahead of it blocked", replace(_round11.rwlock_ok, order=None),
        _round11.rwlock_ok, S(Submit(0, 0, ok(1000)), Submit(0, 1, ok(0), priority=1), Submit(0, 2, ok(0)),
                              clock=ClockPolicy(tie_break="lifo"))),
    # a timeout due after the run drained, with nothing left scheduled then: nothing could ever fire it
    Row("timeout.after_drain", "time.timeout", "job 0 was still running when the run drained at 0ms with nothing left "
        "scheduled: no timeout could cancel it at 300ms, 300ms after it started", _forgotten_timeout,
        "scenarios.timeout:timeout_pool", S(Submit(0, 0, HANG))),
    Row("wait.after_drain", "time.timeout", "job 2 was still waiting, unanswered, when the run drained at 10ms with "
        'nothing left scheduled: nothing could fail it with TimeoutError at 310ms, as timeout_from="wait" promises',
        _wait(timeout_ms=None), _wait(), S(Submit(0, 0, HANG), Submit(0, 1, HANG), Submit(10, 2, ok()))),
    Row("timeout.after_drain_periodic", "time.timeout", "periodic call 0 was still running when the run drained at "
        "400ms with nothing left scheduled: no timeout could cancel it at 1100ms, 1000ms after it started", _looping_call_timeout,
        "scenarios.review.round4.declared:heartbeat_declared", S(Start(0, 0, HANG))),
    # shared: the callers still waiting on an execution that timed out time out with it
    Row("timeout.joined_stranded", "time.timeout", "job 1 was waiting on job 0's execution of key 0 when it timed out "
        "at 300ms (300ms after it started), and its Deferred never fired", "scenarios.timed_flight:stranding_flight",
        _TIMED_FLIGHT, S(Submit(0, 0, HANG), Submit(0, 1, ok()))),
    Row("timeout.joined_wrong_error", "time.timeout", "job 1 was waiting on job 0's execution of key 0 when it timed "
        "out at 300ms, but its Deferred fired with RuntimeError: fetch timed out, not TimeoutError",
        "scenarios.timed_flight:rewrapping_flight", _TIMED_FLIGHT, S(Submit(0, 0, HANG), Submit(0, 1, ok()), Cancel(100, 0))),
    # hedge_ms with timeout_ms: the request's timeout, from its first copy's start
    Row("timeout.hedged_copy_cancelled", "time.timeout", "job 0's copy 0 was cancelled at 100ms while its caller still "
        "waited, only 100ms after the request started; the timeout is 300ms",
        "scenarios.hedge_deadline:superseding_hedged_request", "scenarios.hedge_deadline:deadline_hedged_request",
        S(Submit(0, 0, HANG))),
    Row("timeout.hedged_copy_running", "time.timeout", "job 0's copy 1 was still running at 300ms, 300ms after the "
        "request started, but the timeout did not cancel it", _orphaning_hedge_copy0_done,
        "scenarios.hedge_deadline:deadline_hedged_request", S(Submit(0, 0, JobSpec("fail", 150), then=(HANG,)))),
    Row("wait.free_slot_held", "time.timeout", "not full (0 running, 0 slots held by pending FakeDB._connect_done timers)",
        "tests.specimens_relaxed5a:pool_idle_kept", "scenarios.review.round5.targets:pool_hang_connects",
        S(Submit(0, 0, ok(100)), Submit(0, 1, ok(100)), Submit(0, 2, ok()))),
    # an early cancel names the call it happened in and only the declarations that apply (review 10, finding 3)
    Row("timeout.early_by_call", "time.timeout", "(cancelled in the call of unsubscribe() at 50ms; if unsubscribe "
        "cancels work on purpose, declare Operation(..., cancels_work=True) for it; its caller was refused with "
        "Unsubscribed then: if the subject shed the work on purpose, declare it in the Target's sheds)",
        _UNSUBSCRIBE_UNDECLARED, "scenarios.review.round8.targets:fanout_unsubscribe_op",
        S(Submit(0, 0, ok(200)), Call(at_ms=50, operation="unsubscribe"))),
    Row("timeout.early_stale_timer", "time.timeout", "(cancelled by the subject's timer #1 "
        "LingeringTimeoutSaga._timed_out, set at 0ms, due 400ms, before the job started at 100ms: not this job's "
        "timeout; a deadline of earlier work left armed?)",
        "scenarios.review.round10.targets:saga_timeout_lingers", "scenarios.review.round10.targets:saga_ok",
        S(Submit(0, 0, HANG))),
    Row("timeout.early_start", "time.timeout", "only 30ms after it started; the timeout is 300ms (cancelled by the subject's timer #1 timeItOut, set at 0ms, due 30ms)", _short_timeout,
        "scenarios.timeout:timeout_pool", S(Submit(0, 0, HANG))),
    Row("timeout.early_submit", "time.timeout", "only 30ms after it was submitted; the timeout is 300ms",
        "scenarios.submit_timeout:slipped_submit_timeout", "scenarios.submit_timeout:submit_timeout_pool",
        S(Submit(0, 0, HANG))),
    # shared (review 4, finding 5): a caller that joined an execution times out with it, judged from its start
    Row("timeout.joined_early", "time.timeout", "only 150ms after job 0's execution, which it joined, started",
        "tests.specimens_relaxed:swr_half_timeout", "scenarios.review.round4.mistakes:swr_timeout_declared",
        S(Submit(0, 0, HANG), Submit(0, 1, HANG), Cancel(10, 0))),
    Row("timeout.never_ended", "time.timeout", "but the timeout did not cancel it (it never ended)",
        "scenarios.timeout:orphaning_timeout", "scenarios.timeout:timeout_pool", S(Submit(0, 0, HANG))),
    Row("timeout.ran_on", "time.timeout", "but the timeout did not cancel it (it ran on until 360ms)",
        "scenarios.timeout:orphaning_timeout", "scenarios.timeout:timeout_pool", S(Submit(0, 0, ok(360)))),
    Row("timeout.caller_unfired", "time.timeout", "but its Deferred did not fail then",
        "scenarios.caller_timeout:add_timeout_pool", "scenarios.caller_timeout:caller_timeout_pool", HOSTILE),
    Row("timeout.wrong_error", "time.timeout", "fired with CancelledError", _cancel_timeout_raw,
        _cancel_timeout_converted, S(Submit(0, 0, HANG))),
    Row("timeout.declared_error", "time.timeout", "not JobTimedOut", _own_timeout_error_wrong,
        _own_timeout_error_right, S(Submit(0, 0, HANG))),
    # retries with a timeout from the start (each attempt's): the subject's own cancel is no error the job produced
    # (retries=1: retries=0 has no later attempt, and its caller is held to T as without retries: review 10, finding 1)
    Row("timeout.kept_cancel", "time.timeout", "job 0's attempt 0 timed out at 300ms and its Deferred failed at 300ms "
        "with CancelledError, though its caller never cancelled", replace(_cancel_timeout_raw, retries=1),
        replace(_cancel_timeout_converted, retries=1), S(Submit(0, 0, HANG))),
    # the last attempt declared: no retry left, its caller fails once the subject gives up, no later than a
    # retry would have come (review 10, finding 1)
    Row("timeout.last_attempt", "time.timeout", "job 0's last attempt (2: 1 + 2 retries declared) timed out at 900ms "
        "but its Deferred failed only at 2900ms; with no retry left the caller fails when the subject gives up, by "
        "900ms", "scenarios.review.round10.probes:retry_then_late", "scenarios.review.round10.probes:retry_then_prompt",
        S(Submit(0, 0, HANG))),
    Row("timeout.last_attempt_waited", "time.timeout", "failed only at 3000ms; with no retry left the caller fails when "
        "the subject gives up, by 1050ms: this subject started a retry at most 50ms after the attempt before ended",
        "scenarios.review.round10.probes:waited_retry_then_late", "scenarios.review.round10.probes:waited_retry_then_prompt",
        S(Submit(0, 0, HANG))),
    Row("timeout.last_attempt_backoff", "time.timeout", "failed only at 2900ms; with no retry left the caller fails when "
        "the subject gives up, by 910ms: the declared backoff before one more retry is at most 10ms",
        replace(_retry_then_late, backoff_ms=(0, 10)), replace(_retry_then_prompt, backoff_ms=(0, 10)), S(Submit(0, 0, HANG))),
    Row("timeout.never_started", "time.timeout", "never started, yet its Deferred failed with TimeoutError",
        "scenarios.shedding:timeout_shedding_pool", "scenarios.shedding:queue_deadline_pool",
        S(Submit(0, 0, HANG), Submit(0, 1, HANG), Submit(0, 2, ok()))),
    Row("timeout.short_start", "time.timeout", "only 30ms after it started; a timeout error is legitimate only after",
        _orphan_30, "scenarios.timeout:timeout_pool", S(Submit(0, 0, ok(100)))),
    Row("timeout.short_submit", "time.timeout",
        "only 30ms after it was submitted; a timeout error is legitimate only after", _orphan_30_submit,
        "scenarios.submit_timeout:submit_timeout_pool", S(Submit(0, 0, ok(100)))),
    Row("timeout.waiting_unfired", "time.timeout",
        "job 2 was still waiting for a slot at 300ms, 300ms after it was submitted, but its Deferred never fired",
        "scenarios.review.round3.targets:deadline_lazy_wait", _DEADLINE, HOSTILE_TWO),
    Row("timeout.waiting_wrong_error", "time.timeout",
        "job 2 timed out at 300ms while still waiting for a slot, but its Deferred fired with TimeoutError",
        replace(load_target(_DEADLINE), timeout_error=WaitTimedOut), _DEADLINE, CANCELLED_TWO),
    Row("timeout.waiting_started", "time.timeout", "yet it started at 400ms: a timed-out job must not start",
        Target(build=PumpedDeadline, timeout_ms=300, timeout_from="submit", timeout_fires=True), _DEADLINE,
        S(Submit(0, 0, ok()))),
    # time: retries and backoff
    Row("retries.bound", "time.retries", "attempted 5 times; at most 4 (1 + 3 retries)",
        "scenarios.retry:off_by_one_retry", "scenarios.retry:backoff_retry", S(Submit(0, 0, RAISE))),
    Row("retries.overlap", "time.retries", "while attempt 0 was still running", _hedged,
        "scenarios.retry:backoff_retry", S(Submit(0, 0, ok(100)))),
    Row("retries.after_success", "time.retries", "although attempt 0 succeeded", _retry_unless_true,
        "scenarios.retry:backoff_retry", S(Submit(0, 0, ok()))),
    Row("retries.undeclared_success", "time.retries", "although attempt 0 succeeded; a success is final, retries declared or not",
        "scenarios.review.round3.mistakes:runs_twice", SEMAPHORE, S(Submit(0, 0, ok()))),
    Row("retries.lease_early", "time.retries", "while attempt 0 was still running, before its 300ms lease ran out (at 400ms)",
        "scenarios.at_least_once:lease_queue_early_expiry", "scenarios.at_least_once:lease_queue",
        S(Submit(0, 0, ok(100)), Submit(0, 1, ok(100)), Submit(0, 2, ok(400)))),
    Row("retries.lease_final", "time.retries", "although attempt 0 succeeded within its 300ms lease; a success within the lease is final",
        "scenarios.at_least_once:lease_queue_ack_keeps_timer", "scenarios.at_least_once:lease_queue", S(Submit(0, 0, ok(10)))),
    Row("retries.after_fired", "time.retries", "job 0 attempt 1 started at 60ms, after its Deferred had fired at 10ms",
        Target(build=RetryAfterAnswer), SEMAPHORE, S(Submit(0, 0, fail()))),
    # time: hedging (scenarios.hedge)
    Row("hedge.count", "time.hedge_count",
        "job 0 ran 4 copies: attempt 3 (0#3 in the trace) started at 300ms, but hedge_ms=100, hedges=2 promises at most 3 "
        "(the first and 2 hedges)", f"{_HEDGE}:hedged_request_one_too_many", f"{_HEDGE}:hedged_request", S(Submit(0, 0, HANG))),
    Row("hedge.early", "time.hedge_early",
        "job 0 attempt 2 (0#2 in the trace) started at 100ms, only 70ms after attempt 1 started; hedge_ms=100, hedges=2 "
        "promises a copy no sooner than 100ms after the previous one (or at once after a copy failed)",
        f"{_HEDGE}:hedged_request_stale_timer", f"{_HEDGE}:hedged_request", S(Submit(0, 0, fail(30), then=(ok(250),)))),
    Row("hedge.never", "time.hedge_late",
        "job 0 attempt 0 started at 0ms and its caller still waited 100ms later, at 100ms, with no copy succeeded, but no "
        "copy was ever started; hedge_ms=100 promises the next copy then (within the clock's lateness, 0ms)",
        f"{_HEDGE}:hedged_call_units", f"{_HEDGE}:hedged_call", S(Submit(0, 0, ok(250)))),
    Row("hedge.late", "time.hedge_late", "but attempt 1 (0#1 in the trace) started only at 300ms",
        _hedged_late, f"{_HEDGE}:hedged_call", S(Submit(0, 0, ok(500)))),
    Row("hedge.losers", "time.hedge_losers",
        "job 0's caller had its answer at 250ms, but attempt 1 (0#1 in the trace), started at 100ms, was not cancelled "
        "then: it ran on until 350ms; a hedged request cancels its losing copies when the first answer comes",
        f"{_HEDGE}:hedged_call_keeps_losers", f"{_HEDGE}:hedged_call", S(Submit(0, 0, ok(250)))),
    # time: quorum calls (scenarios.quorum, review round 5)
    Row("fanout.count", "time.fanout_count",
        "job 0 ran 5 copies: attempt 4 (0#4 in the trace) started at 0ms, but fanout=4, quorum=3 promises at most 4 "
        "(its fan-out)", f"{_QUORUM}:quorum_read_one_too_many", f"{_QUORUM}:quorum_read", S(Submit(0, 0, HANG))),
    Row("fanout.missing", "time.fanout_together",
        "job 0 started 3 copies at 0ms and nothing decided its answer then; fanout=4, quorum=3 promises 4 copies at "
        "once (fewer only when the answer is decided as they start)",
        f"{_QUORUM}:quorum_read_lazy_spares", f"{_QUORUM}:quorum_read", S(Submit(0, 0, HANG))),
    Row("fanout.later", "time.fanout_together",
        "job 0 attempt 3 (0#3 in the trace) started at 10ms, after its fan-out at 0ms; fanout=4, quorum=3 promises every "
        "copy starts together, in the instant of the first (within the clock's lateness, 0ms)",
        f"{_QUORUM}:quorum_read_lazy_spares", f"{_QUORUM}:quorum_read", S(Submit(0, 0, fail(10), then=(ok(50),)))),
    Row("quorum.early_value", "time.quorum_early",
        "job 0's caller got ['job0.0', 'job0.1'] at 20ms when 2 of its copies had succeeded; fanout=4, quorum=3 promises "
        "a value only once 3 have", f"{_QUORUM}:quorum_read_off_by_one", f"{_QUORUM}:quorum_read",
        S(Submit(0, 0, ok(10), then=(ok(20), HANG)))),
    Row("quorum.early_failure", "time.quorum_early",
        "at 10ms when 1 of its 3 copies had failed, so 2 could still succeed; fanout=3, quorum=2 promises a failure only "
        "once more than 1 has failed (or the timeout error at the timeout)",
        f"{_ROUND5}:quorum_eager_fail", f"{_ROUND5}:quorum_ok", S(Submit(0, 0, fail(10), then=(ok(20), ok(30))))),
    Row("quorum.late", "time.quorum_late",
        "job 0's quorum was decided at 10ms (3 of its copies succeeded), but its caller was answered only at 200ms; "
        "fanout=4, quorum=3 promises the answer then (within the clock's lateness, 0ms)",
        f"{_QUORUM}:quorum_read_waits_for_all", f"{_QUORUM}:quorum_read", S(Submit(0, 0, ok(10), then=(ok(10), ok(10), ok(200))))),
    Row("quorum.late_failure", "time.quorum_late",
        "job 0's quorum was decided at 10ms (2 of its 4 copies failed, leaving fewer than 3 to succeed), but its caller "
        "was answered only at 300ms", f"{_QUORUM}:quorum_read_waits_for_all", f"{_QUORUM}:quorum_read",
        S(Submit(0, 0, fail(10), then=(fail(10), ok(200), ok(300))))),
    Row("quorum.never", "time.quorum_late",
        "job 0's quorum was decided at 10ms (3 of its copies succeeded), but its caller was never answered",
        _never_answers, f"{_QUORUM}:quorum_read", S(Submit(0, 0, ok(10), then=(ok(10), ok(10), HANG)))),
    Row("fanout.losers", "time.fanout_losers",
        "job 0's caller had its answer at 0ms, but attempt 0 (0#0 in the trace), started at 0ms, was not cancelled then: "
        "it never ended; a quorum call cancels the copies still running when it answers",
        f"{_QUORUM}:quorum_read_keeps_losers", f"{_QUORUM}:quorum_read", S(Submit(0, 0, HANG, then=(JobSpec("immediate"),)))),
    Row("propagate.quorum", "errors.propagate",
        "job 0's Deferred failed with QuorumFailed: quorum of 2 impossible: 2 replicas failed, but its copies failed with "
        "InjectedError: a quorum call fails with a copy's error",
        replace(load_target(f"{_ROUND5}:quorum_ok"), wraps={}), f"{_ROUND5}:quorum_ok",
        S(Submit(0, 0, fail(10), then=(HANG, fail(20))))),
    Row("backoff.function", "time.backoff", "the declared backoff is", "scenarios.retry:jittery_backoff",
        "scenarios.retry:backoff_retry", S(Submit(0, 0, RAISE))),
    Row("backoff.tuple", "time.backoff", "the declared backoff is 100ms to 400ms", _backoff_jittery, _backoff_exact,
        S(Submit(0, 0, RAISE))),
    # time: early, periodic work
    Row("early.periodic", "time.early", "earlier than the 100ms interval allows", "scenarios.poller:eager_retry_poller",
        "scenarios.poller:looping_poller", S(Start(0, 0, RAISE, then=(ok(),)))),
    Row("early.periodic_jump", "time.early", "allowing one interval for each of the 1 wall-clock jumps between",
        "scenarios.poller:eager_retry_poller", "scenarios.poller:looping_poller",
        S(Start(0, 0, RAISE, then=(RAISE, ok())), Jump(10, 10))),
    Row("early.rate", "time.early", "the declared rate is 2 per 100ms", "scenarios.rate_limit:fixed_window_limiter",
        "scenarios.rate_limit:token_bucket",
        S(Submit(90, 0, ok()), Submit(90, 1, ok()), Submit(100, 2, ok()), Submit(100, 3, ok()))),
    Row("early.rate_jump", "time.early", "the wall-clock jump between them excuses nothing",
        "scenarios.wall_rate:seconds_log_limiter", "scenarios.rate_limit:token_bucket",
        S(Submit(0, 0, ok()), Submit(0, 1, ok()), Jump(5, 5000), Submit(10, 2, ok()), Submit(10, 3, ok()))),
    Row("early.backoff", "time.early", "after call 1 failed (retry 2); the declared wait is at least 200ms",
        "scenarios.backoff_loop:flat_backoff", "scenarios.backoff_loop:reconnecting_client",
        S(Start(0, 0, JobSpec("fail", 0)))),
    # a retry queue's retry waiting for a slot (review 11, finding 2) and a redrive's fresh run (finding 6)
    Row("backoff.slot_free", "time.backoff", "a slot was free from 100ms to 400ms (1 running of the declared limit of 2): "
        "a retry past its backoff may wait only for a slot, not beside a free one",
        _retry_not_pumped, _round11.dlq_exact,
        S(Submit(0, 0, RAISE), Submit(0, 1, HANG), Submit(400, 2, JobSpec("succeed", 10)))),
    # gives_up_after_retries (cancel15): a first run given up one attempt too soon; a redriven run left short
    Row("gave_up.answer", "time.gave_up_early", "job 0's caller failed at 100ms with its attempt 1's InjectedError after 2 "
        "attempts; gives_up_after_retries promises 3 (1 + 2 retries) before the job is given up",
        _round11.dlq_one_attempt_too_few, _round11.dlq_ok, S(Submit(0, 0, RAISE))),
    Row("gave_up.redrive", "time.gave_up_early", "job 0's run since a redrive (attempt 3) was left after 1 failed attempt, "
        "with nothing scheduled when the run drained at 300ms",
        _round11.dlq_redrive_keeps_attempts_op, _round11.dlq_redrive_ok, S(Submit(0, 0, RAISE), Call(300, "redrive"))),
    Row("retries.redrive_count", "time.retries", "attempted 6 times since a redrive started it afresh (attempt 3)",
        _redrive_twice, _round11.dlq_redrive_ok, S(Submit(0, 0, RAISE), Call(300, "redrive"), Stop(2000))),
    Row("backoff.redriven", "time.backoff", "retry 1 (attempt 4, since a redrive) started",
        _round11._dlq(_SlowerAfterRedrive, "retries twice as slow after a redrive", redrive=True,
                      backoff=_round11.dlq_backoff_exact),
        _round11._dlq(_round11_dlq.RetryQueue, "exact backoff, redrive", redrive=True, backoff=_round11.dlq_backoff_exact),
        S(Submit(0, 0, RAISE), Call(300, "redrive"), Stop(2000))),
    Row("backoff.loop", "time.backoff", "came 300ms after call 0 failed (retry 1); the declared backoff is 100ms to 100ms",
        _slow_backoff, "scenarios.backoff_loop:reconnecting_client", S(Start(0, 0, JobSpec("fail", 0)), Stop(2000))),
    # a wait of several timers in a row, each late (review 8, finding 2)
    Row("backoff.loop_hops", "time.backoff", "(the timers on its way fired 1378.603ms late, one after another)",
        _hops(HopsThenSlowBackoff, 2, 1), _hops(Hopping, 2, 1),
        S(Start(0, 0, JobSpec("fail", 0)), Stop(3000), clock=ClockPolicy(jitter_ms=900, seed=1))),
    Row("loop_died_hops", "time.loop_died", "plus the 1000ms the timers on its way fired late, one after another",
        _hops(HopsThenGivesUp, 1, 0), _hops(Hopping, 1, 0),
        S(Start(0, 0, JobSpec("immediate")), Stop(3500), clock=ClockPolicy(step_ms=1000, jitter_ms=50))),
    Row("overlap", "time.overlap", "while call 0 (started 0ms) was still running", "scenarios.poller:overlapping_poller",
        "scenarios.poller:looping_poller", S(Start(0, 0, ok(250)))),
    Row("after_stop", "time.after_stop", "after stop() at 170ms", "scenarios.heartbeat:zombie_heartbeat",
        "scenarios.heartbeat:heartbeat", S(Start(0, 0, ok(50)), Stop(170))),
    Row("loop_died", "time.loop_died", "the error was not reported", "scenarios.poller:silent_poller",
        "scenarios.poller:looping_poller", S(Start(0, 0, ok(), then=(fail(),)), Stop(600))),
    # a backoff loop's wait; a call the subject's own timeout cancelled (round-4 review, finding 2)
    Row("loop_died_backoff", "time.loop_died", "twice the 200ms its retry may wait",
        replace(load_target("scenarios.backoff_loop:reconnecting_client"), build=GivingUpClient),
        "scenarios.backoff_loop:reconnecting_client", S(Start(0, 0, fail(0)), Stop(1200))),
    Row("loop_died_cancelled", "time.loop_died", "was cancelled by the subject (before any stop())",
        "scenarios.review.round4.mistakes:cron_stuck_builtin_only", "scenarios.review.round4.targets:cron",
        S(Start(0, 0, HANG), Stop(1000))),
    # a periodic target's timeout_ms and stop_cancels_work (round-4 review, findings 8 and 4)
    Row("timeout_periodic", "time.timeout", "but the timeout did not cancel it (it ran on until 1000ms)",
        "scenarios.review.round4.declared:heartbeat_no_timeout", "scenarios.review.round4.declared:heartbeat_declared",
        S(Start(0, 0, HANG), Stop(1000))),
    Row("timeout_periodic_early", "time.timeout", "periodic call 0 was cancelled at 150ms, only 150ms after it started",
        replace(load_target("scenarios.review.round4.declared:heartbeat_declared"), timeout_ms=300),
        "scenarios.review.round4.declared:heartbeat_declared", S(Start(0, 0, HANG), Stop(1000))),
    Row("leaks_work", "leaks.work", "was in flight at stop() at 50ms and ended only at 150ms",
        "scenarios.review.round4.declared:heartbeat_stop_keeps_ping", "scenarios.review.round4.declared:heartbeat_declared",
        S(Start(0, 0, HANG), Stop(50))),
    Row("loop_died_jumped", "time.loop_died", "past the 440ms wait: two 100ms intervals, plus the 240ms the wall clock "
        "was set back", "scenarios.review.round4.mistakes:cron_stuck_logs_builtin_only", "scenarios.drift_ticker:drift_free_ticker",
        S(Start(0, 0, fail()), Jump(50, -300), Stop(1500))),
    Row("loop_died_logged", "time.loop_died", "an error was logged, but the loop kept setting timers of its own",
        "scenarios.review.round4.mistakes:cron_stuck_logs_builtin_only", "scenarios.review.round4.targets:cron",
        S(Start(0, 0, fail()), Stop(1000))),
    # a loop silent from its start(), or after a last call that succeeded (session 9)
    Row("loop_died_start", "time.loop_died", "the loop was started at 0ms and its function was never called",
        "scenarios.silent_loops:never_called_loop", "scenarios.silent_loops:rearming_loop",
        S(Start(0, 0, JobSpec("value")), Stop(1000))),
    Row("loop_died_success", "time.loop_died", "periodic call 0 succeeded at 100ms and the function was never called "
        "again", "scenarios.silent_loops:value_ends_loop", "scenarios.silent_loops:rearming_loop",
        S(Start(0, 0, JobSpec("value")), Stop(1000))),
    # a loop silent since an operation re-armed it (a restart: session 12)
    Row("loop_died_rearmed", "time.loop_died", "(200ms until stop() since restart() re-armed it at 250ms, past the "
        "200ms wait", keepalive_target(StuckAfterRestart), keepalive_target(Keepalive),
        S(Start(0, 0, ok()), Call(250, "restart"), Stop(450))),
    # a request for a call now (Operation(calls_now=True)) ignored while a call runs (session 9)
    Row("on_demand", "time.on_demand", "asked for a call of the work now at 510ms while call 0 ran",
        "scenarios.thirdparty.buildbot_utils:polled_forced_skipped_while_running",
        "scenarios.thirdparty.buildbot_utils:polled_forced", S(Start(0, 0, ok(50)), Call(510, "force"), Stop(2000))),
    # a loop that reports its own end (work.report_end; round-2 review F6)
    Row("after_end", "time.after_end", "after the loop reported its end at 210ms ('3 polls failed in a row'): a loop "
        "that reports its end must not call its work again", "scenarios.quota_poller:runaway_quota_poller",
        "scenarios.quota_poller:quota_poller", S(Start(0, 0, fail()))),
    # errors
    Row("propagate.submit_raised", "errors.propagate", "submitting job 2 raised PoolFull", _bounded_raising,
        _bounded_declared, THREE),
    Row("propagate.never_ran_result", "errors.propagate", "job 1 never ran, yet its Deferred delivered a result",
        Target(build=lambda clock: MisSharing(clock, "invent")), SEMAPHORE, S(Submit(0, 0, ok()), Submit(0, 1, ok()))),
    Row("own_result", "errors.own_result", "job 1's Deferred delivered 'job0.0' at 10ms, which is job 0's outcome",
        Target(build=CoalescingPool), SEMAPHORE, S(Submit(0, 0, ok()), Submit(0, 1, ok()))),
    Row("operation", "errors.operation", "operation flush raised IndexError", "scenarios.batching:empty_flush_queue",
        "scenarios.batching:batching_queue", S(Call(0, "flush"))),
    # keys and sharing
    Row("key_limit", "concurrency.key_limit", "2 jobs of key 0 running at 15ms but the key limit is 1",
        "scenarios.keyed_lock:early_drop_keyed_lock", "scenarios.keyed_lock:keyed_lock",
        S(Submit(0, 0, ok()), Submit(0, 1, ok()), Submit(15, 2, ok()))),
    Row("detaches", "cancellation.detaches", "job 0's caller was cancelled at 5ms and the job's own work was cancelled",
        "scenarios.single_flight:leader_holds_work_flight", _SINGLE_FLIGHT, S(Submit(0, 0, ok()), Submit(0, 1, ok()), Cancel(5, 0))),
    Row("detaches.dropped", "cancellation.detaches",
        "job 2's caller was cancelled at 10ms while the job waited, and it never started after that by the time the "
        'run drained at', "scenarios.at_least_once:lease_queue_unsends", "scenarios.at_least_once:lease_queue",
        S(Submit(0, 0, ok(50)), Submit(0, 1, ok(50)), Submit(0, 2, ok()), Cancel(10, 2))),
    Row("detaches.dropped_key", "cancellation.detaches",
        'no execution of its key 0 started after that by the time the run drained at 0ms; the target declares '
        'cancellable="detach_queued"', "scenarios.at_least_once:detached_writes_dropped",
        "scenarios.at_least_once:detached_writes", S(Submit(0, 0, ok()), Cancel(0, 0))),
    Row("isolated", "sharing.isolated", "job 1 (key 0) was never cancelled, yet its Deferred failed with CancelledError",
        "scenarios.single_flight:abandoning_flight", _SINGLE_FLIGHT, S(Submit(0, 0, ok()), Submit(0, 1, ok()), Cancel(5, 0))),
    Row("joined.stale", "sharing.joined", "which had finished 10ms earlier; no cache lifetime is declared",
        "scenarios.single_flight:caches_failures_flight", _SINGLE_FLIGHT, S(Submit(0, 0, fail()), Submit(20, 1, ok()))),
    Row("joined.cache_short", "sharing.joined", "which had finished 10ms earlier; the cache lifetime is 5ms",
        replace(load_target("scenarios.single_flight:caches_failures_flight"), cache_ms=5),
        replace(load_target(_SINGLE_FLIGHT), cache_ms=5), S(Submit(0, 0, fail()), Submit(20, 1, ok()))),
    Row("joined.cancelled", "sharing.joined", "job 1 (key 0) delivered None at 300ms, but the execution it joined "
        "(job 0), cancelled by the subject at 300ms, answered its own caller (job 0) otherwise: it failed with TimeoutError",
        "scenarios.timed_flight:fallback_flight", _TIMED_FLIGHT, S(Submit(0, 0, HANG), Submit(0, 1, ok()))),
    Row("joined.invented", "sharing.joined", "never ran, yet its Deferred delivered 'made up' at 0ms, and no execution of key 0",
        _mis_sharing("invent"), _SINGLE_FLIGHT, S(Submit(0, 0, ok()), Submit(0, 1, ok()))),
    Row("joined.other_key", "sharing.joined", "job 1 (key 1) received the outcome of job 0, which ran for key 0",
        _mis_sharing("cross"), _SINGLE_FLIGHT, S(Submit(0, 0, ok()), Submit(0, 1, ok(), key=1))),
    Row("joined.swallowed", "sharing.joined", "job 1 (key 0) received None but the execution it joined (job 0) failed",
        _mis_sharing("swallow"), _SINGLE_FLIGHT, S(Submit(0, 0, fail()), Submit(0, 1, ok()))),
    Row("joined.rewrapped", "sharing.joined",
        "failed with RuntimeError but the execution it joined (job 0) failed with InjectedError",
        _mis_sharing("rewrap"), _SINGLE_FLIGHT, S(Submit(0, 0, fail()), Submit(0, 1, ok()))),
    Row("joined.spoiled", "sharing.joined", "failed with RuntimeError but the execution it joined (job 0) succeeded",
        _mis_sharing("spoil"), _SINGLE_FLIGHT, S(Submit(0, 0, ok()), Submit(0, 1, ok()))),
    # review 4, finding 11: one Deferred handed to two callers, the cause appended to whatever broke first
    Row("joined.shared_deferred", "sharing.joined",
        "received None but the execution it joined (job 0) failed; the cause: submit returned the same Deferred for "
        "job 0 and job 1 (each caller needs its own Deferred", "scenarios.review.round4.targets:swr_shared_deferred",
        "scenarios.review.round4.targets:swr", S(Submit(0, 0, fail(5)), Submit(0, 1, ok(0)))),
    Row("propagate.swallowed", "errors.propagate", "the error was swallowed", "scenarios.error_paths:swallowing_pool",
        SEMAPHORE, S(Submit(0, 0, fail()))),
    Row("propagate.never_ran_failed", "errors.propagate", "job 2 never ran, yet its Deferred failed with PoolFull",
        _bounded_undeclared, _bounded_declared, THREE),
    Row("propagate.other_error", "errors.propagate", "failed with InjectedError but its Deferred failed with PoolError",
        Target(build=WrappingPool), SEMAPHORE, S(Submit(0, 0, fail()))),
    Row("propagate.success_failed", "errors.propagate", "succeeded but its Deferred failed with ValueError",
        Target(build=ValidatingPool), SEMAPHORE, S(Submit(0, 0, ok()))),
    # an error the subject logs that is not its jobs' own nor declared (Target(logs=...); session 9)
    Row("logged", "errors.logged", "the subject logged an error at 0ms: KeyError: 1", _own_logger, _job_logger,
        S(Submit(0, 0, fail()))),
    Row("escaped", "errors.escaped", "a real reactor would only log it", "scenarios.next_tick:next_tick_raises",
        SEMAPHORE, S(Submit(0, 0, RAISE))),
    Row("unhandled", "errors.unhandled", "a Deferred failed and nobody handled it", "scenarios.error_paths:tee_pool",
        SEMAPHORE, S(Submit(0, 0, fail()))),
    # rejects_only_while (round-2 review F5): a refusal when the target says none is legitimate
    Row("rejects", "errors.rejects", "job 2, submitted at 400ms, was refused at 400ms (GateShut: cooling down), but "
        "the target's rejects_only_while (within_cooldown) says no refusal is legitimate then",
        "scenarios.cooldown_gate:sticky_gate", "scenarios.cooldown_gate:cooldown_gate",
        S(Submit(0, 0, fail()), Submit(200, 1, fail()), Submit(400, 2, ok()))),
    Row("poison", "errors.poison", "the failure left the subject unable to run work",
        "scenarios.semaphore:failure_leak_pool", SEMAPHORE, S(Submit(0, 0, fail()), Submit(0, 1, fail()), Submit(0, 2, ok()))),
    # review 4, finding 10: the stranded job's own failure, with no other job failed
    Row("poison_own", "errors.poison", "never finished after its own attempt failed at 0ms, and no other job failed",
        "scenarios.review.round4.mistakes:swr_blind", "scenarios.review.round4.targets:swr", S(Submit(0, 0, JobSpec("raise")))),
    # review 6, finding 2: retries=math.inf, and the subject stopped retrying the job silently
    Row("poison_past_backoff", "errors.poison", "but the run waited past the declared retries' backoff_ms for them",
        Target(build=lambda clock: _RetryLater(clock, wait_ms=60_000), retries=2, backoff_ms=(30_000, 30_000)),
        Target(build=_RetryLater, retries=2, backoff_ms=(30_000, 30_000)), S(Submit(0, 0, fail(), then=(ok(),)))),
    Row("poison_gave_up", "errors.poison", "its attempt 2 failed at 250ms and the run drained at 350ms with nothing "
        "left scheduled, no retry to come", "tests.test_review6_fixes_a:flush_gives_up",
        "scenarios.review.round6.targets:flush_retry_forever", S(Submit(0, 0, JobSpec("raise")))),
    Row("poison_gave_up_ticking", "errors.poison", "its attempt 2 failed at 250ms and no retry came within the declared "
        "backoff (up to 6150ms)", "tests.test_review6_fixes_a:flush_gives_up_ticking",
        "scenarios.review.round6.targets:flush_retry_forever", S(Submit(0, 0, JobSpec("raise")))),
    # leaks
    Row("leaks.calls", "leaks.calls", "a DelayedCall is still pending", "scenarios.heartbeat:watchdog_heartbeat",
        "scenarios.heartbeat:heartbeat", S(Start(0, 0, ok()), Stop(250))),
    # stop_cancels_timers (round-2 review F1): a one-shot timer left by stop() with nothing in flight
    Row("leaks.calls_at_stop", "leaks.calls", "with no work in flight, yet left a DelayedCall of the subject pending",
        "scenarios.review.round2.targets:batcher_orphan_timer", "scenarios.review.round2.targets:batcher_ok",
        S(Submit(0, 0, ok(0)), Submit(0, 1, ok(0)), Submit(0, 2, ok(0)), Stop(10))),
    Row("leaks.loops", "leaks.loops", "a LoopingCall is still running", "scenarios.heartbeat:queued_heartbeat",
        "scenarios.heartbeat:heartbeat", S(Start(0, 0, ok()), Stop(250))),
)


@pytest.mark.parametrize("row", MESSAGES, ids=[row.id for row in MESSAGES])
def test_the_buggy_subject_breaks_the_promise_with_the_message(row: Row) -> None:
    violations = check(run_schedule(_target(row.buggy), row.schedule))
    assert violations, f"{row.buggy} kept every promise"
    assert violations[0].invariant == row.invariant, violations[0]
    assert row.fragment in violations[0].message
    # the shared-Deferred cause (harness.invariants.shared_note) is said of its own row's subject only
    assert ("submit returned the same Deferred" in violations[0].message) == (row.id == "joined.shared_deferred")


@pytest.mark.parametrize("row", MESSAGES, ids=[row.id for row in MESSAGES])
def test_the_correct_subject_keeps_the_promise_on_the_same_schedule(row: Row) -> None:
    assert check(run_schedule(_target(row.correct), row.schedule)) == []


def _templates() -> list[tuple[str, str]]:
    """Every message template in harness/invariants: (module, literal text before the first placeholder)."""
    found = []
    for path in sorted(Path(invariants_package.__file__).parent.glob("*.py")):
        for literal in re.findall(r'f"([^"]*)"', path.read_text()):
            found.append((path.stem, literal))
    return found


def test_every_message_has_a_row() -> None:
    # Each violation message is an f-string; every one that says what went wrong must appear, in part,
    # in some row's fragment or in the message a row produces.
    produced = []
    for row in MESSAGES:
        violations = check(run_schedule(_target(row.buggy), row.schedule))
        produced.append(violations[0].message)
    text = "\n".join(produced)
    missing = []
    for module, literal in _templates():
        words = [w for w in re.split(r"\{[^}]*\}", literal) if len(w.strip()) > 12]
        if module in ("base", "user", "facts", "__init__") or not words:
            continue
        if not all(word in text for word in words):
            missing.append(f"{module}: {literal}")
    assert missing == []


# -- options that switch a promise off or on ------------------------------------------------------------


def test_overlap_true_allows_overlap_and_nothing_else() -> None:
    from scenarios.poller import eager_retry_poller, overlapping_poller

    overlapping = S(Start(0, 0, ok(250)))
    assert check(run_schedule(replace(overlapping_poller, overlap=True), overlapping)) == []
    assert check(run_schedule(overlapping_poller, overlapping))[0].invariant == "time.overlap"
    eager = S(Start(0, 0, RAISE, then=(ok(),)))
    assert check(run_schedule(replace(eager_retry_poller, overlap=True), eager))[0].invariant == "time.early"


def test_rejects_excuses_only_the_declared_refusal() -> None:
    assert check(run_schedule(_bounded_declared, THREE)) == []
    assert check(run_schedule(_bounded_undeclared, THREE))[0].invariant == "errors.propagate"
