"""Issue 13, items 4 to 10: false alarms the invariants must not raise, blind spots they must not have.

Each false alarm is a correct subject that stays clean on the case that
used to be flagged, and over a campaign (a few thousand examples, marked
slow). Each blind spot is a buggy scenario caught by the named built-in
invariant on the hand-written schedule that shows it, and by a campaign on
seeds 1 to 5 (seed 1 in the fast suite, the others slow).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness import (
    Cancel,
    ClockPolicy,
    JobSpec,
    Jump,
    Schedule,
    Stop,
    Submit,
    Target,
    TargetError,
    check,
    load_target,
    run_schedule,
)
from harness.model.schedule import Start
from scenarios import Scenario
from scenarios.priority import idle_flag_scheduler

from zoo_checks import Zoo, spec_of

#: Examples a buggy scenario must be caught within, on every seed 1 to 5.
DETECT_WITHIN = 2_000
#: Examples a correct subject runs clean: a short campaign in the fast suite, a long one in the slow one.
CLEAN_FAST = 200
CLEAN_SLOW = 3_000

#: The correct subjects of these items, and the scenario each false alarm was seen on.
CORRECT = (
    "scenarios.ticker:counting_ticker",
    "scenarios.lock:lock_without_limit",
    "scenarios.abort:where_pool",
    "scenarios.abort:abort_pool",
    "scenarios.shedding:queue_deadline_pool",
    "scenarios.caller_timeout:caller_timeout_pool",
    "scenarios.submit_timeout:submit_timeout_pool",
)

#: Each buggy scenario with the invariant that must catch it.
BUGGY = {
    "scenarios.ticker:catch_up_ticker": "time.early",
    "scenarios.fifo_priority:fifo_priority_pool": "concurrency.priority",
    "scenarios.shedding:timeout_shedding_pool": "time.timeout",
    "scenarios.shedding:cold_start_shedder": "time.timeout",
    "scenarios.wall_rate:seconds_log_limiter": "time.early",
    "scenarios.caller_timeout:add_timeout_pool": "time.timeout",
    "scenarios.abort:half_abort_pool": "cancellation.fires",
    "scenarios.submit_timeout:slipped_submit_timeout": "time.timeout",
    "scenarios.submit_timeout:start_timed_deadline": "completion.deadline",
}


def _run(spec: str | Target, schedule: Schedule):
    target = load_target(spec) if isinstance(spec, str) else spec
    return run_schedule(target, schedule)


def _violations(spec: str | Target, schedule: Schedule) -> list:
    return check(_run(spec, schedule))


def _first(spec: str | Target, schedule: Schedule):
    violations = _violations(spec, schedule)
    assert violations, f"{spec} kept every promise"
    return violations[0]


def _succeed(after_ms: int = 10, **kw) -> JobSpec:
    return JobSpec("succeed", after_ms, **kw)


# -- item 4: time.loop_died after stop() ---------------------------------------------------------------


#: A tick in flight at stop(): call 1 starts at 100ms, stop() comes at 120ms, the call fails at 250ms.
IN_FLIGHT_AT_STOP = Schedule((Start(0, 0, _succeed(), then=(JobSpec("fail", 150),)), Stop(120)))


def test_a_tick_failing_after_stop_is_not_a_dead_loop() -> None:
    run = _run("scenarios.ticker:counting_ticker", IN_FLIGHT_AT_STOP)
    kinds = [(e.kind, e.t_us // 1000) for e in run.trace if e.kind in ("stop", "job.fail")]
    assert kinds == [("stop", 120), ("job.fail", 250)]
    assert check(run) == []


def test_a_loop_that_dies_silently_before_stop_is_still_caught() -> None:
    schedule = Schedule((Start(0, 0, _succeed(), then=(JobSpec("fail", 10),)), Stop(600)))
    violation = _first("scenarios.poller:silent_poller", schedule)
    assert violation.invariant == "time.loop_died"


def test_the_catch_up_ticker_is_caught_for_its_burst() -> None:
    # With the false alarm gone, what the buggy ticker really does shows: 50 ticks replayed after a +5s jump.
    run = _run("scenarios.ticker:catch_up_ticker", Schedule((Start(0, 0, JobSpec("immediate")), Jump(150, 5000))))
    starts = [e.t_us // 1000 for e in run.trace if e.kind == "job.start"]
    assert starts[:3] == [0, 100, 200] and starts.count(200) == 51
    violation = check(run)[0]
    assert violation.invariant == "time.early"
    assert violation.message.startswith("periodic call 4 came at 200ms, earlier than the 100ms interval allows")
    assert "(call 3 was at 200ms, so no sooner than 300ms)" in violation.message


# -- item 5: completion.deadline without a declared limit ----------------------------------------------


def test_a_lock_declared_without_its_limit_is_not_deadlocked_behind_a_hanging_job() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("hang")), Submit(0, 1, _succeed()), Submit(5, 2, _succeed())))
    assert _violations("scenarios.lock:lock_without_limit", schedule) == []


def test_a_job_stuck_while_nothing_runs_is_still_flagged_without_a_limit() -> None:
    target = replace(idle_flag_scheduler, limit=None)
    schedule = Schedule((Submit(0, 0, JobSpec("immediate"), 1), Submit(0, 1, _succeed(), 0)))
    violation = _first(target, schedule)
    assert violation.invariant == "completion.deadline"
    assert "deadlock or starvation" in violation.message


# -- item 6: declared cancellation errors and their subclasses -----------------------------------------

#: Job 0 runs when it is cancelled, job 2 waits for a slot (limit 2).
CANCELS = Schedule(
    (Submit(0, 0, _succeed(50)), Submit(0, 1, _succeed(50)), Submit(0, 2, _succeed(50)), Cancel(10, 0), Cancel(10, 2))
)


@pytest.mark.parametrize("spec", ["scenarios.abort:where_pool", "scenarios.abort:abort_pool"])
def test_a_subclass_of_the_cancel_error_is_the_cancel_error(spec: str) -> None:
    run = _run(spec, CANCELS)
    failures = [e.detail.split(":")[0] for e in run.trace if e.kind == "failure"]
    assert len(failures) == 2 and all(name.endswith(("WhileRunning", "WhileQueued")) for name in failures)
    assert [e.detail for e in run.trace if e.kind == "error.is"] == [run.target.cancel_error.__name__] * 2
    assert check(run) == []


def test_a_cancel_error_outside_the_declared_type_is_flagged() -> None:
    violation = _first("scenarios.abort:half_abort_pool", CANCELS)
    assert violation.invariant == "cancellation.fires"
    assert "failed with CancelledError: job cancelled, not Aborted (or a subclass)" in violation.message


def test_an_exception_named_like_the_declared_one_is_not_it() -> None:
    # Python's builtin TimeoutError is not twisted.internet.defer.TimeoutError, whatever the name says.
    from specimens import CancelAtTimeout

    target = Target(build=lambda clock: CancelAtTimeout(clock, error=TimeoutError), timeout_ms=300)
    run = _run(target, Schedule((Submit(0, 0, JobSpec("hang")),)))
    assert [e.detail for e in run.trace if e.kind == "error.is"] == [""]
    violation = check(run)[0]
    assert violation.invariant == "time.timeout"
    assert "fired with TimeoutError: job timed out, not TimeoutError" in violation.message


# -- item 7: concurrency.priority, the whole promise ---------------------------------------------------


def test_a_fifo_pool_declared_priority_is_caught() -> None:
    # Job 2 (priority 1) waits behind jobs 0 and 1 (priority 0); when job 0 ends, job 1 starts ahead of it.
    schedule = Schedule((Submit(0, 0, _succeed(), 0), Submit(0, 1, _succeed(), 0), Submit(0, 2, _succeed(), 1)))
    violation = _first("scenarios.fifo_priority:fifo_priority_pool", schedule)
    assert violation.invariant == "concurrency.priority"
    assert "job 1 (priority 0) started at 10ms while job 2 (priority 1" in violation.message
    assert _violations("scenarios.priority:priority_pool", schedule) == []


# -- item 8: a timeout error only for a job that ran (or waited) the timeout ---------------------------


def test_a_job_shed_from_the_queue_with_the_timeout_error_is_caught() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("hang")), Submit(0, 1, JobSpec("hang")), Submit(0, 2, _succeed())))
    violation = _first("scenarios.shedding:timeout_shedding_pool", schedule)
    assert violation.invariant == "time.timeout"
    assert violation.message.startswith("job 2 never started, yet its Deferred failed with TimeoutError")
    assert _violations("scenarios.shedding:queue_deadline_pool", schedule) == []


def test_a_pool_failing_every_job_at_once_with_the_timeout_error_is_caught() -> None:
    violation = _first("scenarios.shedding:cold_start_shedder", Schedule((Submit(0, 0, _succeed()),)))
    assert violation.invariant == "time.timeout"
    assert "job 0 never started" in violation.message


def test_a_job_that_raised_the_timeout_error_itself_is_not_a_masked_failure() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("fail", 10, "TimeoutError")),))
    assert _violations("scenarios.timeout:timeout_pool", schedule) == []


# -- item 9: time.early in monotonic time across wall-clock jumps --------------------------------------


def test_a_rate_limiter_reading_seconds_bursts_after_a_jump() -> None:
    jobs = tuple(Submit(at, job, _succeed()) for at, job in ((0, 0), (0, 1), (10, 2), (10, 3)))
    schedule = Schedule(jobs[:2] + (Jump(5, 5000),) + jobs[2:])
    violation = _first("scenarios.wall_rate:seconds_log_limiter", schedule)
    assert violation.invariant == "time.early"
    assert "3 jobs started between 0ms and 10ms" in violation.message and "excuses nothing" in violation.message
    assert _violations("scenarios.rate_limit:token_bucket", schedule) == []


@pytest.mark.parametrize("delta_ms", [-90, -10, 10, 5_000, -5_000])
@pytest.mark.parametrize("spec", ["scenarios.poller:looping_poller", "scenarios.ticker:counting_ticker"])
def test_a_looping_call_stays_clean_across_a_jump(spec: str, delta_ms: int) -> None:
    # A LoopingCall times its next call from one seconds() reading: after a jump one gap may be short.
    schedule = Schedule((Start(0, 0, _succeed()), Jump(150, delta_ms), Jump(430, delta_ms)))
    run = _run(spec, schedule)
    starts = [e.t_us // 1000 for e in run.trace if e.kind == "job.start"]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert sum(1 for gap in gaps if gap < 100) <= 2
    assert check(run) == []


# -- item 10: timeout_fires, the caller fails by T whatever the job does -------------------------------

HOSTILE = Schedule((Submit(0, 0, JobSpec("hang", canceller_raises=True)), Submit(0, 1, _succeed())))


def test_add_timeout_with_a_raising_canceller_breaks_timeout_fires() -> None:
    violation = _first("scenarios.caller_timeout:add_timeout_pool", HOSTILE)
    assert violation.invariant == "time.timeout"
    assert "job 0 timed out at 300ms but its Deferred did not fail then (the job's own canceller raised" in violation.message


def test_add_timeout_keeps_its_weaker_promise() -> None:
    assert _violations("scenarios.timeout:timeout_pool", HOSTILE) == []


def test_a_caller_side_timeout_keeps_timeout_fires() -> None:
    run = _run("scenarios.caller_timeout:caller_timeout_pool", HOSTILE)
    assert [(e.kind, e.job, e.t_us // 1000) for e in run.trace if e.kind == "failure"] == [("failure", 0, 300)]
    assert check(run) == []


def test_synapse_timeout_deferred_keeps_timeout_fires() -> None:
    """Synapse's ``timeout_deferred`` is written for this promise; checked when Synapse is installed."""
    async_helpers = pytest.importorskip("synapse.util.async_helpers")
    from synapse.util.clock import Clock
    from twisted.internet import defer

    class SynapseTimeoutPool:
        """Two jobs at once, each under Synapse's timeout_deferred (its caller cannot cancel the job)."""

        def __init__(self, clock) -> None:
            self.clock = Clock(clock, server_name="harness")
            self._sem = defer.DeferredSemaphore(2)

        def submit(self, job):
            return self._sem.run(
                lambda: async_helpers.timeout_deferred(deferred=defer.maybeDeferred(job), timeout=0.3, clock=self.clock)
            )

    target = Target(build=SynapseTimeoutPool, limit=2, timeout_ms=300, timeout_fires=True, cancellable=False)
    run = _run(target, HOSTILE)
    assert [(e.kind, e.job, e.t_us // 1000) for e in run.trace if e.kind == "failure"] == [("failure", 0, 300)]
    assert check(run) == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timeout_fires": True}, "declare timeout_ms too"),
        ({"timeout_ms": 100, "timeout_fires": "yes"}, "timeout_fires must be True or False, got 'yes'"),
        ({"cancel_error": "CancelledError"}, "cancel_error must be an exception class"),
        ({"timeout_error": 3}, "timeout_error must be an exception class"),
        ({"rejects": (ValueError, "KeyError")}, "rejects must be a tuple of exception classes"),
    ],
)
def test_bad_timeout_and_error_options_are_refused_at_the_boundary(fields: dict, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        Target(build=lambda clock: None, **fields)


# -- campaigns -------------------------------------------------------------------------------------------


ZOO = Zoo(CORRECT, tuple(Scenario(spec, expect, "") for spec, expect in BUGGY.items()), ids=spec_of)

test_correct_subject_passes_a_campaign = ZOO.clean(seed=13, examples=CLEAN_FAST)
test_correct_subject_passes_a_long_campaign = ZOO.clean(
    seed=4_000, examples=CLEAN_SLOW, slow=True,
    subjects=CORRECT + ("scenarios.poller:looping_poller", "scenarios.rate_limit:token_bucket"))
#: The first finding names the expected invariant exactly.
test_buggy_scenario_is_caught_by_its_invariant = ZOO.caught(seeds=1, examples=DETECT_WITHIN, also=False)
test_buggy_scenario_is_caught_whatever_the_seed = ZOO.caught(
    seeds=[2, 3, 4, 5], examples=DETECT_WITHIN, slow=True, also=False)
