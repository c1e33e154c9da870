"""Review 4's findings 1, 5 and 6 (docs/reviews/outside-user-4.md), three false alarms on correct
components, each fixed in the rule, shown both ways: the correct component is clean (the flipped
xfails in tests/test_review_round4.py, and the long campaigns below under slow), and the bugs the
relaxed rules exist for are still caught by the same invariant (tests/specimens_relaxed.py).

1. ``capacity``: an adaptive limiter declares its maximum as ``limit`` and its smallest window as
   ``capacity``, how many never-ending jobs fill it (``completion.deadline``'s excuse).
5. ``time.timeout`` with ``shared``: a caller that joined an execution times out with it; a caller
   answered before its own job's execution timed out is not held to that timeout.
6. ``cancellation.detaches``: work cancelled in the instant of a caller's cancel by a timer of the
   subject set before that cancel (its own timeout, firing late) is not the cancel's doing.
"""
from __future__ import annotations

import pytest

from harness import Cancel, ClockPolicy, JobSpec, Schedule, Submit, Target, TargetError, check, load_target, run_schedule

from review_campaigns import campaign

SPECIMENS = "tests.specimens_relaxed"
MISTAKES = "scenarios.review.round4.mistakes"


def _invariants(spec: str, *ops, clock: ClockPolicy | None = None) -> list[str]:
    schedule = Schedule(ops=tuple(ops), clock=clock) if clock is not None else Schedule(ops=tuple(ops))
    return [v.invariant for v in check(run_schedule(load_target(spec), schedule))]


HANG = JobSpec(kind="hang")


# -- 1. capacity -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, words", [
    ({"capacity": 2}, "declare limit=N as well"),
    ({"limit": 2, "capacity": 3}, "at most limit (2)"),
    ({"limit": 2, "capacity": 0}, "positive integer"),
    ({"limit": 2, "capacity": True}, "positive integer"),
    ({"kind": "periodic", "interval_ms": 10, "limit": 2, "capacity": 1}, "a periodic Target has none of: drop it"),
])
def test_capacity_is_refused_unless_a_positive_integer_up_to_limit(fields, words):
    with pytest.raises(TargetError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Target(build=lambda clock: None, **fields)


def test_capacity_defaults_to_limit():
    assert Target(build=lambda clock: None).fill == 1
    assert Target(build=lambda clock: None, limit=3).fill == 3
    assert Target(build=lambda clock: None, limit=3, capacity=1).fill == 1


def test_finding_1_schedule_behind_one_hanging_job_is_clean_with_capacity():
    """The shrunk schedule of the review: job 0 times out (the window halves to 1), job 1's canceller
    raises (it never ends and keeps the one slot), job 2 waits for ever: correct for a window of 1."""
    ops = (Submit(0, 0, HANG), Submit(0, 1, JobSpec(kind="hang", canceller_raises=True)), Submit(0, 2))
    assert _invariants(f"{MISTAKES}:aimd_declared_limit", *ops) == []


def test_capacity_is_what_a_wait_timeout_needs_full():
    """timeout_from="wait": a caller timed out while fewer than `limit` ran is a free slot kept from it,
    unless the subject declares it runs only `capacity` at the least (one semaphore slot of two)."""
    from tests.specimens import WaitTimeout

    ops = (Submit(0, 0, HANG), Submit(10, 1))
    schedule = Schedule(ops=ops)
    fields = dict(limit=2, timeout_ms=300, timeout_from="wait")
    pool = Target(build=lambda clock: WaitTimeout(clock, slots=1), **fields)
    assert [v.invariant for v in check(run_schedule(pool, schedule))] == ["time.timeout"]
    pool = Target(build=lambda clock: WaitTimeout(clock, slots=1), capacity=1, **fields)
    assert check(run_schedule(pool, schedule)) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relaxed_deadline_still_catches_a_limiter_that_loses_slots(seed, tmp_path):
    """`limit=4, capacity=1` excuses a job waiting behind one job that never ends, not one stranded
    with nothing running: the limiter whose timed-out calls keep their slot is still caught."""
    result = campaign(f"{SPECIMENS}:aimd_leak_declared_capacity", seed=seed, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant in {"completion.deadline", "errors.poison"}  # as the undeclared twin


def test_declared_limit_still_bounds_the_adaptive_limiter(tmp_path):
    result = campaign(f"{SPECIMENS}:aimd_off_by_one_declared", seed=1, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant in {"user.aimd_window_respected", "concurrency.limit"}


# -- 5. time.timeout with shared --------------------------------------------------------------------

def test_finding_5_joined_caller_times_out_with_the_execution():
    """Job 1 joins job 0's fetch; the fetch times out at 300ms and both callers fail with TimeoutError."""
    assert _invariants(f"{MISTAKES}:swr_timeout_declared", Submit(0, 0, HANG), Submit(100, 1, HANG)) == []


def test_finding_5_stale_served_caller_is_not_held_to_its_refresh_timeout():
    """Job 1 comes while the entry is stale: answered at once, its own job refreshes the entry in the
    background and times out at 450ms. Its caller had its answer; nobody waits for that timeout."""
    ops = (Submit(0, 0, JobSpec(kind="succeed", after_ms=10)), Submit(150, 1, HANG))
    assert _invariants(f"{MISTAKES}:swr_timeout_declared", *ops) == []


def test_relaxed_timeout_still_catches_a_joined_caller_timed_out_early():
    """The joining caller's wait is bounded by 30ms: it fails with TimeoutError long before the fetch
    it joined ran the 300ms timeout."""
    assert _invariants(f"{SPECIMENS}:swr_short_join_timeout", Submit(0, 0, HANG), Submit(100, 1, HANG)) == [
        "time.timeout"]


def test_relaxed_timeout_still_catches_a_waiter_answered_without_the_timeout_error():
    """Job 0's fetch times out; its caller gets None (the timeout error turned into a value, which
    errors.propagate names too)."""
    assert _invariants(f"{SPECIMENS}:swr_timeout_serves_none", Submit(0, 0, HANG), Submit(100, 1, HANG))[:1] == [
        "time.timeout"]


@pytest.mark.parametrize("name", ["swr_short_join_timeout", "swr_timeout_serves_none"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relaxed_timeout_twins_are_caught_by_campaigns(name, seed, tmp_path):
    result = campaign(f"{SPECIMENS}:{name}", seed=seed, examples=3000, tmp_path=tmp_path)
    assert [f.violation.invariant for f in result.findings] == ["time.timeout"]


# -- 6. cancellation.detaches beside the subject's own timeout -----------------------------------------

def test_finding_6_timeout_firing_late_beside_a_cancel_is_not_blamed_on_it():
    """The review's file, rebuilt: the fetch's timeout (due 300ms) fires at 310ms on a late clock, just
    after job 0's cancel landed in that instant; job 1 still waits, so the cache kept the fetch, and its
    own timer cancelled it."""
    ops = (Submit(0, 0, JobSpec(kind="succeed", after_ms=390)), Submit(0, 1, JobSpec(kind="succeed")),
           Cancel(310, 0, after_rounds=0))
    clock = ClockPolicy(step_ms=10, jitter_ms=50, seed=11405)
    assert _invariants("scenarios.review.round4.targets:swr", *ops, clock=clock) == []


def test_relaxed_detaches_still_blames_work_cancelled_by_a_timer_the_cancel_set():
    """The first caller's cancel cancels the shared work through callLater(0): a later reactor call of
    the same instant, made by the cancel (the timer was set in it)."""
    ops = (Submit(0, 0, JobSpec(kind="succeed", after_ms=680)), Submit(0, 1, JobSpec(kind="succeed")),
           Cancel(0, 0))
    assert _invariants(f"{SPECIMENS}:owner_cancels_later", *ops)[:1] == ["cancellation.detaches"]


def test_relaxed_detaches_still_blames_the_catalog_twin():
    """The direct twin (the canceller cancels the work itself), behind a timer of the subject's set
    before: the last call opened before the work's cancel is the cancel, not the timer."""
    ops = (Submit(0, 0, JobSpec(kind="succeed", after_ms=680)), Submit(0, 1, JobSpec(kind="succeed")),
           Cancel(0, 0))
    assert _invariants("scenarios.single_flight:owner_cancels_flight", *ops)[:1] == ["cancellation.detaches"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relaxed_detaches_twin_is_caught_by_campaigns(seed, tmp_path):
    """On a late clock the callLater(0) may fire in a later instant: then the other callers' CancelledError
    (sharing.isolated) names the same bug."""
    result = campaign(f"{SPECIMENS}:owner_cancels_later", seed=seed, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant in {"cancellation.detaches", "sharing.isolated"}


# -- the correct components, long --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("spec", [f"{MISTAKES}:aimd_declared_limit", f"{MISTAKES}:swr_timeout_declared",
                                  "scenarios.review.round4.targets:swr"])
@pytest.mark.parametrize("strategy", ["mixed", "swarm", "pct"])
def test_fixed_findings_correct_components_long_campaign(spec, strategy, tmp_path):
    result = campaign(spec, seed=41, examples=2_000, tmp_path=tmp_path, strategy=strategy)
    assert result.findings == [], [f.violation.message for f in result.findings]
