"""Review 4's periodic findings, fixed (docs/reviews/outside-user-4.md, findings 2, 3, 4, 7, 8).

``time.loop_died`` judges a call the subject cancelled (its own timeout) as a failed one, takes a
logged error as the loop's report only when the loop went quiet (no timer of the subject set after
the call), and waits two late ticks; ``timeout_ms`` on a periodic target holds each call to it
(``time.timeout``); ``stop_cancels_work`` holds ``stop()`` to cancelling the call in flight
(``leaks.work``). Each both ways: the correct subjects clean, the twins caught, naming the invariant.
The long campaigns are under ``slow``.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from harness import ClockPolicy, JobSpec, Schedule, Start, Stop, Target, TargetError, check, load_target, run_schedule

from review_campaigns import campaign

ROUND4 = "scenarios.review.round4"
DECLARED = f"{ROUND4}.declared"
TIMER_SERVICE = "scenarios.thirdparty.twisted_extra:timer_service"


def _names(spec: str | Target, *ops, clock: ClockPolicy | None = None) -> list[str]:
    target = load_target(spec) if isinstance(spec, str) else spec
    return [v.invariant for v in check(run_schedule(target, Schedule(tuple(ops), clock or ClockPolicy())))]


# -- finding 2: a call cancelled by the subject's own timeout ---------------------------------------

def test_a_loop_dead_after_its_own_timeout_names_the_cancel_and_the_wait():
    [violation] = check(run_schedule(load_target(f"{ROUND4}.mistakes:cron_stuck_builtin_only"),
                                     Schedule((Start(0, 0, JobSpec("hang")), Stop(1000)))))
    assert violation.invariant == "time.loop_died"
    assert violation.message.startswith(
        "periodic call 0 was cancelled by the subject (before any stop()) at 180ms and the function was never called "
        "again (820ms until stop(), past the 200ms wait: two 100ms intervals)")


def test_a_call_cancelled_by_stop_owes_nothing():
    # The correct runner cancels the run in flight at stop(): no more calls are owed.
    assert _names(f"{ROUND4}.targets:cron", Start(0, 0, JobSpec("hang")), Stop(150)) == []


# -- finding 3: a logged error is the loop's report only when the loop went quiet --------------------

def test_a_loop_that_logs_each_failure_and_ticks_on_is_dead():
    names = _names(f"{ROUND4}.mistakes:cron_stuck_logs_builtin_only", Start(0, 0, JobSpec("fail", 10)), Stop(1000))
    assert names == ["time.loop_died"]


def test_timer_service_logging_the_failure_that_ended_it_is_a_report():
    # TimerService logs the failure and its LoopingCall stops: no timer set after it, a reported end.
    assert _names(TIMER_SERVICE, Start(0, 0, JobSpec("fail", 10)), Stop(1000)) == []
    assert _names(TIMER_SERVICE, Start(0, 0, JobSpec("raise"))) == []


# -- finding 7: a misfire policy under a stalled reactor ---------------------------------------------

def test_the_wait_scales_with_the_clock_lateness():
    # The reactor wakes every 100ms (+5ms jitter): a failure at 400ms, the tick due 500 fires late and is
    # skipped by design, the next due 700 fires at 800. A stop at 705 (305ms of silence) is within 2 * 205ms.
    stalled = ClockPolicy(step_ms=100, jitter_ms=5, seed=0)
    assert _names(f"{ROUND4}.mistakes:cron_tight_grace", Start(0, 0, JobSpec("raise")), Stop(705), clock=stalled) == []
    # The runner that stops for good is still caught, later: two late ticks (410ms) of silence and more.
    assert _names(f"{ROUND4}.mistakes:cron_stuck_builtin_only", Start(0, 0, JobSpec("raise")), Stop(1000),
                  clock=stalled) == ["time.loop_died"]


def test_a_loop_that_sets_no_timer_after_the_failure_keeps_the_short_wait():
    # A dead LoopingCall sets nothing after the failed call: the next call could only come from a timer already
    # pending, so the wait stays two intervals plus one late firing (2 * 100 + 60 = 260ms here, not 320ms): the
    # call fails at 60ms (its own settling fires late too), the stop comes 290ms later.
    names = _names("scenarios.poller:silent_poller", Start(0, 0, JobSpec("fail", 10)), Stop(350),
                   clock=ClockPolicy(step_ms=10, jitter_ms=50, seed=0))
    assert names == ["time.loop_died"]


def test_a_wall_clock_set_back_lengthens_the_wait_of_a_ticking_loop():
    # The equivalence run's schedule: a ticker aiming at wall-clock due times logs a failure at 494ms, after the
    # wall clock went back 1,440ms; its next tick is due at 1,740ms and the stop comes at 740ms. No dead loop.
    from harness import Jump

    ops = (Start(0, 0, JobSpec("immediate"), then=(JobSpec("value"), JobSpec("fail", 290, "TimeoutError"))),
           Jump(360, -1440), Stop(740, after_rounds=2), Jump(990, -600))
    clock = ClockPolicy(tie_break="fifo", seed=24321, step_ms=0, jitter_ms=5, depth=3)
    assert _names("scenarios.drift_ticker:drift_free_ticker", *ops, clock=clock) == []
    # The stuck runner, set back 300ms, is caught once that much more has passed in silence.
    stuck = f"{ROUND4}.mistakes:cron_stuck_logs_builtin_only"
    assert _names(stuck, Start(0, 0, JobSpec("fail", 10)), Jump(50, -300), Stop(500)) == []
    assert _names(stuck, Start(0, 0, JobSpec("fail", 10)), Jump(50, -300), Stop(600)) == ["time.loop_died"]


# -- finding 8: timeout_ms on a periodic target ------------------------------------------------------

def test_a_periodic_timeout_is_checked():
    assert _names(f"{DECLARED}:heartbeat_no_timeout", Start(0, 0, JobSpec("hang")), Stop(1000)) == ["time.timeout"]
    assert _names(f"{DECLARED}:heartbeat_declared", Start(0, 0, JobSpec("hang")), Stop(1000)) == []
    assert _names(f"{DECLARED}:cron_declared", Start(0, 0, JobSpec("hang")), Stop(1000)) == []


def test_a_periodic_call_cancelled_before_its_timeout_breaks_it():
    # The heartbeat's ping timeout is 150ms; declared as 300ms, its 150ms cancel comes too soon.
    target = replace(load_target(f"{DECLARED}:heartbeat_declared"), timeout_ms=300)
    violations = check(run_schedule(target, Schedule((Start(0, 0, JobSpec("hang")), Stop(1000)))))
    assert violations[0].invariant == "time.timeout"
    assert violations[0].message == ("periodic call 0 was cancelled at 150ms, only 150ms after it started; "
                                     "the timeout is 300ms (cancelled by the subject's timer #1 timeItOut, set "
                                     "at 0ms, due 150ms)")


@pytest.mark.parametrize("promise", [{"timeout_from": "submit"}, {"timeout_from": "wait"}, {"timeout_fires": True}])
def test_caller_timeout_promises_are_refused_on_a_periodic_target(promise):
    with pytest.raises(TargetError, match="a periodic Target has none of"):
        replace(load_target(f"{DECLARED}:heartbeat_declared"), **promise)


# -- finding 4: stop() leaving the call in flight ---------------------------------------------------

def test_stop_leaving_the_call_in_flight_breaks_leaks_work():
    violations = check(run_schedule(load_target(f"{DECLARED}:heartbeat_stop_keeps_ping"),
                                    Schedule((Start(0, 0, JobSpec("hang")), Stop(50)))))
    assert [v.invariant for v in violations] == ["leaks.work"]
    assert violations[0].message == ("periodic call 0 (started 0ms) was in flight at stop() at 50ms and ended only "
                                     "at 150ms; stop_cancels_work promises stop() cancels it then")
    # Undeclared, the same run breaks nothing built in (the review's finding).
    assert _names(replace(load_target(f"{DECLARED}:heartbeat_stop_keeps_ping"), stop_cancels_work=False),
                  Start(0, 0, JobSpec("hang")), Stop(50)) == []


def test_stop_cancels_work_is_refused_on_a_submit_target():
    with pytest.raises(TargetError, match="stop_cancels_work is a promise about a periodic subject"):
        Target(build=lambda clock: None, stop_cancels_work=True)


# -- campaigns ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["heartbeat_declared", "cron_declared"])
def test_correct_components_declaring_the_new_promises_are_clean(name, tmp_path):
    result = campaign(f"{DECLARED}:{name}", seed=1, examples=400, tmp_path=tmp_path)
    assert result.findings == [], [f.violation.message for f in result.findings]


@pytest.mark.parametrize("name, invariants", [
    ("heartbeat_no_timeout", {"time.timeout"}),
    ("heartbeat_stop_keeps_ping", {"leaks.work"}),
    ("cron_overlap_on_timeout", {"time.timeout", "time.overlap", "leaks.work"}),
])
def test_twins_are_caught_by_the_built_in_invariants(name, invariants, tmp_path):
    result = campaign(f"{DECLARED}:{name}", seed=1, examples=500, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant in invariants


@pytest.mark.slow
@pytest.mark.parametrize("spec", [f"{DECLARED}:heartbeat_declared", f"{DECLARED}:cron_declared",
                                  f"{ROUND4}.mistakes:cron_tight_grace", TIMER_SERVICE])
@pytest.mark.parametrize("strategy", ["mixed", "pct"])
def test_correct_periodic_targets_long_campaign(spec, strategy, tmp_path):
    result = campaign(spec, seed=41, examples=3_000, tmp_path=tmp_path, strategy=strategy)
    assert result.findings == [], [f.violation.message for f in result.findings]
