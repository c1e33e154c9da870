"""A cancelled job taken out of the counterfactual also takes out its failure: which of the two stranded a job.

docs/reviews/outside-user.md F13: the diagnosis blamed a cancel (``cancellation.releases``) for a job the
cancelled job's own escaped raise had stranded before the cancel.
"""

from __future__ import annotations

from harness import Cancel, JobSpec, Schedule, Submit, check, load_target, run_schedule
from harness.run.diagnosis import Cause, diagnose
from scenarios.review import repros


def test_a_raise_before_the_cancel_is_the_failure_not_the_cancel() -> None:
    run = run_schedule(load_target("scenarios.review.targets:debouncer_sync_raise"), repros.CANCEL_BLAMED_SCHEDULE)
    assert [s.cause for s in diagnose(run).stranded] == [Cause.FAILURE]


def test_a_slot_leaked_by_cancelling_a_job_that_would_fail_is_still_the_cancel() -> None:
    # Job 1 would fail at 10 ms but is cancelled at 0 ms; the pool never gives its slot back.
    schedule = Schedule((
        Submit(0, 0, JobSpec("succeed", 10)), Submit(0, 1, JobSpec("fail", 10)), Cancel(0, 1),
        Submit(0, 2, JobSpec("succeed", 10)),
    ))
    run = run_schedule(load_target("scenarios.semaphore:cancel_leak_pool"), schedule)
    assert [s.cause for s in diagnose(run).stranded] == [Cause.CANCEL]
    assert [v.invariant for v in check(run)][:1] == ["cancellation.releases"]
