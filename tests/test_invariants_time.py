"""The time and leaks invariants on hand-built schedules: what they catch, and false alarms they must not raise."""

from __future__ import annotations

from harness import ClockPolicy, JobSpec, Schedule, Submit, check, run_schedule
from scenarios.pools import semaphore_pool
from scenarios.retry import backoff_retry, off_by_one_retry


def test_a_stalled_reactor_does_not_strand_a_queue_of_jobs() -> None:
    # Ten 10ms jobs through a pool of two under a reactor that advances in 5s strides:
    # every round of jobs finishes a stride later, 25s in all. The drain must wait for
    # that lateness rather than call the last jobs stranded (completion.deadline).
    schedule = Schedule(tuple(Submit(0, i, JobSpec("succeed", 10)) for i in range(10)), ClockPolicy(step_ms=5000))
    run = run_schedule(semaphore_pool, schedule)
    assert check(run) == []
    assert sum(1 for event in run.trace if event.kind == "result") == 10


def test_retries_accepts_a_job_within_its_bound() -> None:
    # A job that fails twice and then succeeds, well within three retries: no violation
    # (the check used to crash on any job that stayed within the bound).
    schedule = Schedule((Submit(0, 0, JobSpec("fail", 10), then=(JobSpec("raise"), JobSpec("succeed", 10))),))
    assert check(run_schedule(backoff_retry, schedule)) == []


def test_retries_flags_one_attempt_too_many() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("raise")),))
    violations = check(run_schedule(off_by_one_retry, schedule))
    assert [v.invariant for v in violations] == ["time.retries"]
    assert "attempted 5 times; at most 4 (1 + 3 retries)" in violations[0].message
