"""``timeout_from="wait"`` (docs/reviews/outside-user.md F6): a timeout that covers only the wait in the queue.

A job not started T after its submission fails with ``timeout_error`` at T and never starts; a
timeout error is legitimate only for a job that never started, T after its submission, and only
if the declared ``limit`` was full at some moment of its wait. Both ways: a semaphore whose
acquire times out and the review's pool stay clean; a queue that never times out its waiters, one
that times out the whole call, and the review's ``CountingPool`` (a phantom count: every acquire
times out on an empty pool) are caught by ``time.timeout``, without a user invariant.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, TargetError, check, run_schedule
from review_campaigns import campaign
from specimens import WaitTimeout

T_MS = 300
LIMIT = 2


def _target(**kwargs: Any) -> Target:
    return Target(build=lambda clock: WaitTimeout(clock, **kwargs), limit=LIMIT, order="fifo", timeout_ms=T_MS, timeout_from="wait")


class Forgetful(WaitTimeout):
    """BUG: one slot where two are promised."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock, slots=1)


def _run(target: Target, *specs: tuple[int, JobSpec]) -> list[str]:
    ops = tuple(Submit(at, job, spec) for job, (at, spec) in enumerate(specs))
    return [v.invariant + ": " + v.message for v in check(run_schedule(target, Schedule(ops, ClockPolicy())))]


def test_wait_is_a_timeout_origin_and_bad_ones_name_it() -> None:
    assert _target().timeout_from == "wait"
    with pytest.raises(TargetError, match="timeout_from must be one of start, submit, wait, glue, got 'queue'"):
        Target(build=object, timeout_ms=1, timeout_from="queue")


def test_a_waiter_behind_a_full_queue_times_out_at_t_and_a_running_job_never() -> None:
    hang, long = JobSpec("hang"), JobSpec("succeed", 1000)
    # Jobs 0 and 1 hold both slots (job 1 runs 1s, far past T: no timeout for a running job);
    # job 2 waits T and fails then.
    assert _run(_target(), (0, hang), (0, long), (10, JobSpec("succeed", 10))) == []


def test_a_queue_that_never_times_out_its_waiters_is_caught() -> None:
    violations = _run(_target(timeout_ms=None), (0, JobSpec("succeed", 500)), (0, JobSpec("succeed", 500)), (10, JobSpec("succeed", 10)))
    assert len(violations) == 1 and violations[0].startswith("time.timeout: job 2 started at 500ms, after its wait timed out at 310ms")


def test_a_timeout_over_the_whole_call_is_caught() -> None:
    violations = _run(_target(whole=True), (0, JobSpec("succeed", 500)))
    assert len(violations) == 1 and "times out only the wait, not the job" in violations[0]


def test_a_timeout_with_a_free_slot_is_caught() -> None:
    target = Target(build=Forgetful, limit=LIMIT, timeout_ms=T_MS, timeout_from="wait")
    violations = _run(target, (0, JobSpec("hang")), (10, JobSpec("succeed", 10)))
    assert len(violations) == 1 and "the declared limit of 2 was never full while it waited (at most 1 running" in violations[0]


# --- both ways over campaigns --------------------------------------------------------------------


def test_a_wait_timeout_semaphore_stays_clean(tmp_path) -> None:
    result = campaign("tests:wait_timeout", seed=3, examples=300, tmp_path=tmp_path, target=_target())
    assert [f.record.message for f in result.findings] == []


def test_the_review_pool_stays_clean(tmp_path) -> None:
    result = campaign("scenarios.review.targets:pool_ok", seed=3, examples=150, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


def test_the_counting_pool_is_caught_by_time_timeout(tmp_path) -> None:
    result = campaign("scenarios.review.targets:pool_counting", seed=3, examples=1000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == ["time.timeout"]
    assert "was never full while it waited" in result.findings[0].record.message


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_wait_timeout_semaphore_stays_clean_over_a_long_campaign(seed: int, tmp_path) -> None:
    result = campaign("tests:wait_timeout", seed=seed, examples=2500, tmp_path=tmp_path, target=_target())
    assert [f.record.message for f in result.findings] == []
