"""Review 5's findings 1, 4 and 5 (docs/reviews/outside-user-5.md), fixed: each relaxed rule lets the
correct component through (the strict xfails in tests/test_review_round5.py are plain tests now), and
a buggy subject keeping the bug the rule exists for (tests/specimens_relaxed5a.py) is still named."""

from __future__ import annotations

import pytest

from harness import Call, ClockPolicy, JobSpec, Schedule, Stop, Submit, Target, TargetError, check, run_schedule
from harness.run.calls import owed_before, timer_due_us
from harness.run.timers import set_due_us
from harness.run.facts import facts_of
from scenarios.review.round5.targets import FakeDB, pool_hang_connects, pool_ok_full, wb_flush_timeout
from tests.specimens_relaxed5a import (
    pool_idle_kept,
    pool_strands_waiter,
    pool_timeout_as_refusal,
    wb_reports_timeout,
)

from review_campaigns import campaign


def _invariants(target, *ops, clock: ClockPolicy = ClockPolicy()) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=tuple(ops), clock=clock)))]


# -- finding 1: a caller answered by a timer due before T, run late in T's wake-up --

_FULL_POOL = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=1000)),
              Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=1000)),
              Call(at_ms=0, operation="db", args=("hang",)),
              Submit(at_ms=0, job=2, spec=JobSpec(kind="succeed", after_ms=0)))


def test_f1_timer_due_before_t_answers_before_t():
    run = run_schedule(pool_ok_full, Schedule(ops=(Call(at_ms=0, operation="db", args=("hang",)),
                                                    Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed"))),
                                              clock=ClockPolicy(step_ms=5000)))
    facts = facts_of(run)
    fired = facts.jobs[0].fired
    assert fired is not None and facts.time(fired) == 5_000_000
    assert owed_before(facts, fired, 300_000)  # the connect's own timeout, due at 200ms
    assert not owed_before(facts, fired, 200_000)  # due at 200ms is not before 200ms
    fires = [i for i, e in enumerate(facts.events) if e[1] == "timer.fire"]
    assert timer_due_us(facts, fires[0]) == 200_000
    assert timer_due_us(facts, 0) is None  # not a timer's firing


def test_f1_due_times_read_back():
    assert [set_due_us(f"#3 f due {t}") for t in ("200ms", "304.910ms", "-5ms", "0ms")] == [200_000, 304_910, -5_000, 0]
    assert [set_due_us(t) for t in ("#3 f due 200", "#3 f due 1.5ms", "f due 2ms", "")] == [None, None, None, None]


def test_f1_checkout_timer_failing_with_a_reject_is_still_caught():
    """The checkout timer is due at T, not before: a waiter it fails with a declared reject instead of the
    timeout error is judged, punctual or on a stalled reactor."""
    for step in (0, 5000):
        assert _invariants(pool_ok_full, *_FULL_POOL, clock=ClockPolicy(step_ms=step)) == []
        assert _invariants(pool_timeout_as_refusal, *_FULL_POOL, clock=ClockPolicy(step_ms=step)) == ["time.timeout"]


def test_f1_reject_timer_set_by_a_late_call_is_owed_at_its_punctual_time():
    """The connect for job 2 starts in the late firing (300ms) of a timer due at 200ms: its 200ms timeout
    is due at 500ms, tied with job 2's checkout timer, and runs first; punctually it was due at 400ms."""
    ops = (Call(at_ms=0, operation="db", args=("hang",)),
           Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed")), Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed")),
           Submit(at_ms=200, job=2, spec=JobSpec(kind="succeed")), Submit(at_ms=401, job=3, spec=JobSpec(kind="succeed")))
    clock = ClockPolicy(tie_break="lifo", step_ms=100, jitter_ms=5, seed=24283)
    run = run_schedule(pool_hang_connects, Schedule(ops=ops, clock=clock))
    assert check(run) == []
    facts = facts_of(run)
    fired = facts.jobs[2].fired
    assert fired is not None and facts.time(fired) == 600_000  # its wait's timeout was due at 500ms
    assert owed_before(facts, fired, 500_000)


def test_f1_reject_timer_winning_the_tie_at_t():
    """Job 2's connect starts at 200ms with a 200ms timeout: due at 400ms with job 2's checkout timer. Ties
    shuffled, the connect's timeout runs first, fails job 2 with the connect error and cancels the checkout
    timer: a tie a real reactor may break either way, not a reject instead of the timeout."""
    from harness import Cancel

    ops = (Call(at_ms=0, operation="db", args=("hang",)),
           Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed")), Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed")),
           Submit(at_ms=100, job=2, spec=JobSpec(kind="succeed")), Submit(at_ms=100, job=3, spec=JobSpec(kind="succeed")),
           Cancel(at_ms=401, job=3))
    run = run_schedule(pool_hang_connects, Schedule(ops=ops, clock=ClockPolicy(tie_break="shuffle", seed=42408)))
    assert check(run) == []
    facts = facts_of(run)
    fired = facts.jobs[2].fired
    assert fired is not None and facts.time(fired) == 400_000 and facts.error_name(fired) == "TimeoutError"
    assert owed_before(facts, fired, 400_000)


# -- finding 4: the execution a caller joined, among those that ended in its instant --

def test_f4_timeout_reported_for_a_failed_flush_is_still_caught():
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="fail", after_ms=10)))
    for step in (0, 1000):
        assert _invariants(wb_flush_timeout, *ops, clock=ClockPolicy(step_ms=step)) == []
        assert "sharing.joined" in _invariants(wb_reports_timeout, *ops, clock=ClockPolicy(step_ms=step))


def test_f4_same_instant_twin_is_caught():
    """Finding 4's schedule on the twin: the next batch's execution fails with InjectedError and its
    writer is told its flush timed out."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=640)),
           Submit(at_ms=1000, job=2, spec=JobSpec(kind="raise")))
    assert _invariants(wb_flush_timeout, *ops, clock=ClockPolicy(step_ms=1000)) == []
    assert "sharing.joined" in _invariants(wb_reports_timeout, *ops, clock=ClockPolicy(step_ms=1000))


# -- finding 5: slots held by connects in progress (Target.slot_timers) --

def test_f5_slot_timers_is_validated():
    with pytest.raises(TargetError, match=r"slot_timers must be a tuple .*: write slot_timers=\(YourPool._connect_done,\)"):
        Target(build=object, timeout_ms=300, timeout_from="wait", slot_timers=FakeDB._connect_done)
    with pytest.raises(TargetError, match=r'only the wait timeout reads it: declare timeout_ms=T and timeout_from="wait"'):
        Target(build=object, limit=2, timeout_ms=300, slot_timers=(FakeDB._connect_done,))
    with pytest.raises(TargetError, match="slot_timers must be a tuple"):
        Target(build=object, timeout_ms=300, timeout_from="wait", slot_timers=("FakeDB._connect_done",))
    assert Target(build=object, limit=2, timeout_ms=300, timeout_from="wait").slot_timers == ()


def test_f5_connects_held_early_excuse_no_stranded_waiter():
    """The blind pool's H1 bug, declared with slot_timers: two connects fill the pool at the start of job 2's
    wait, then fail; no connect is made for job 2, which times out on an empty pool."""
    ops = (Call(at_ms=0, operation="db", args=("fail",)),
           *(Submit(at_ms=0, job=j, spec=JobSpec(kind="succeed", after_ms=0)) for j in range(3)), Stop(at_ms=500))
    clock = ClockPolicy(jitter_ms=5, seed=0)
    assert _invariants(pool_hang_connects, *ops, clock=clock) == []
    run = run_schedule(pool_strands_waiter, Schedule(ops=ops, clock=clock))
    [violation] = check(run)
    assert violation.invariant == "time.timeout"
    assert "was not full (0 running, 0 slots held by pending FakeDB._connect_done timers)" in violation.message


def test_f5_idle_connection_kept_from_a_waiter_is_caught():
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=100)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=100)),
           Submit(at_ms=0, job=2, spec=JobSpec(kind="succeed", after_ms=0)))
    assert _invariants(pool_hang_connects, *ops) == []
    assert _invariants(pool_idle_kept, *ops) == ["time.timeout"]


@pytest.mark.parametrize("name", ["pool_strands_waiter", "pool_idle_kept", "pool_timeout_as_refusal"])
def test_twins_of_the_relaxed_rules_are_caught_by_a_campaign(name, tmp_path):
    result = campaign(f"tests.specimens_relaxed5a:{name}", 1, 1000, tmp_path)
    assert [f.violation.invariant for f in result.findings] == ["time.timeout"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["random", "swarm", "guided", "pct", "mixed"])
@pytest.mark.parametrize("spec", ["tests.specimens_relaxed5a:pool_full_ordered", "tests.specimens_relaxed5a:pool_hang_ordered",
                                  "scenarios.review.round5.targets:wb_flush_timeout"])
def test_correct_targets_of_findings_1_4_5_stay_clean(spec, strategy, tmp_path):
    result = campaign(spec, 7, 2000, tmp_path, strategy=strategy)
    assert result.findings == [], [f.violation.message for f in result.findings]
