"""Third outside-user review (docs/reviews/outside-user-3.md): four components written without
the harness in mind, with their targets written from the user docs alone.  Each correct target
stays clean over a bounded campaign; each buggy twin is caught, naming the invariant its bug
breaks.  The long campaigns (20,000+ examples per correct target) are in the review page."""
from __future__ import annotations

import pytest

from harness import load_target
from harness.pytest import fuzz

from review_campaigns import assert_caught_alone, assert_stays_clean, campaign

PACKAGE = "scenarios.review.round3.targets"

CORRECT = ("hedged", "bulkhead", "deadline", "aging")

# twin -> the invariant its bug breaks (first reported, seed 1)
BUGGY = {
    # a copy started after the caller had its answer: built in since finding 2 (before: user.no_copy_after_answer)
    "hedged_timer_leak": "time.retries",
    "hedged_cancels_primary_only": "cancellation.propagates",
    "bulkhead_off_by_one": "concurrency.key_limit",
    "bulkhead_leaks_on_error": "cancellation.releases",
    "deadline_full_budget": "time.timeout",
    "deadline_wall_clock": "time.timeout",
    "deadline_lazy_wait": "time.timeout",  # finding 1: a caller still waiting at its deadline
    "aging_lifo_ties": "user.older_not_overtaken",
    "aging_ticker_leak": "leaks.calls",
}


@pytest.mark.parametrize("name", CORRECT)
def test_correct_component_is_clean(name, tmp_path):
    assert_stays_clean(f"{PACKAGE}:{name}", tmp_path, examples=400)


@pytest.mark.parametrize("name, invariant", sorted(BUGGY.items()))
def test_buggy_twin_is_caught(name, invariant, tmp_path):
    assert_caught_alone(f"{PACKAGE}:{name}", invariant, tmp_path)


@pytest.mark.parametrize("name", CORRECT)
def test_buggy_twins_stay_apart_from_correct(name):
    """The twins are other subjects, not the same one under another name."""
    correct = load_target(f"{PACKAGE}:{name}")
    for twin in (t for t in BUGGY if t.startswith(name)):
        assert load_target(f"{PACKAGE}:{twin}") is not correct


@fuzz("scenarios.review.round3.targets:bulkhead")
def test_bulkhead_keeps_its_promises_under_pytest():
    """The plugin route: 2 per tenant, 3 in all, FIFO per tenant, whatever the schedule."""


@pytest.mark.slow
@pytest.mark.parametrize("name", CORRECT)
def test_correct_component_long_campaign(name, tmp_path):
    result = campaign(f"{PACKAGE}:{name}", seed=21, examples=4_000, tmp_path=tmp_path)
    assert result.findings == [], [f.violation.message for f in result.findings]


def test_lazy_wait_deadline_is_caught():
    """The lazy-wait twin notices an expired deadline only when a connection comes: behind two
    requests whose cancel does not work it never fails its caller, though it promised a
    TimeoutError 300 ms after the call (the correct client fails it then)."""
    from harness import JobSpec, Schedule, Submit, check, run_schedule

    schedule = Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="hang", canceller_raises=True)),
        Submit(at_ms=0, job=1, spec=JobSpec(kind="hang", canceller_raises=True)),
        Submit(at_ms=0, job=2, spec=JobSpec(kind="succeed", after_ms=10)),
    ))
    correct = run_schedule(load_target(f"{PACKAGE}:deadline"), schedule)
    assert correct.view.jobs[2].received is not None and correct.view.jobs[2].received.t_us == 300_000
    assert check(correct) == []
    lazy = run_schedule(load_target(f"{PACKAGE}:deadline_lazy_wait"), schedule)
    assert lazy.view.jobs[2].received is None
    [violation] = check(lazy)
    assert violation.invariant == "time.timeout"
    assert violation.message.startswith("job 2 was still waiting for a slot at 300ms, 300ms after it was submitted, "
                                        "but its Deferred never fired")


@pytest.mark.parametrize("name", ["runs_twice", "runs_twice_declared"])
def test_a_job_run_twice_is_caught_without_declaring_retries(name, tmp_path):
    """Finding 2: a pool that calls each job again once it ended is caught whether or not ``retries`` is
    declared: a success is final (undeclared, the count is not judged, so hedged copies stay legal)."""
    spec = f"scenarios.review.round3.mistakes:{name}"
    result = campaign(spec, seed=1, examples=500, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant == "time.retries"
    expected = "although attempt 0 succeeded; a success is final" if name == "runs_twice" else "at most 1 (1 + 0 retries)"
    assert expected in finding.violation.message
