"""Cancellation modes: ``cancellable=True`` cancels the work, ``"detach"`` fails the caller and lets the work run on."""

from __future__ import annotations

from harness import CampaignConfig, JobSpec, Schedule, Submit, Target, check, run_campaign, run_schedule
from harness.invariants import invariants_for
from harness.schedule import Cancel
from scenarios.cancel import DetachingPool
from scenarios.pools import SemaphorePool

DETACHED = Target(build=lambda clock: DetachingPool(clock, limit=2), limit=2, order="fifo", cancellable="detach")
#: A pool that cancels the running work, declared as one that detaches: the wrong promise.
CANCELLING = Target(build=lambda clock: SemaphorePool(clock, limit=2), limit=2, cancellable="detach")
CANCEL_RUNNING = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Cancel(5, 0)))


def _names(target: Target) -> set[str]:
    return {inv.name for inv in invariants_for(target)}


def test_each_mode_switches_on_its_own_invariants() -> None:
    detach, cancel = _names(DETACHED), _names(Target(build=SemaphorePool))
    assert "cancellation.detaches" in detach and "cancellation.propagates" not in detach
    assert "cancellation.propagates" in cancel and "cancellation.detaches" not in cancel
    assert not {n for n in _names(Target(build=SemaphorePool, cancellable=False)) if n.startswith("cancellation.")}
    assert DETACHED.default_menu().cancels and not Target(build=SemaphorePool, cancellable=False).default_menu().cancels


def test_a_detached_caller_fails_at_once_while_its_job_runs_on() -> None:
    run = run_schedule(DETACHED, CANCEL_RUNNING)
    kinds = [(e.t_us // 1000, e.kind) for e in run.trace if e.job == 0]
    assert (5, "failure") in kinds and (10, "job.finish") in kinds
    assert check(run) == []


def test_work_cancelled_under_a_detach_promise_is_caught() -> None:
    [violation] = check(run_schedule(CANCELLING, CANCEL_RUNNING))
    assert violation.invariant == "cancellation.detaches"
    assert "job 0's caller was cancelled at 5ms" in violation.message


def test_a_detaching_pool_declared_as_such_passes_a_campaign(tmp_path) -> None:
    config = CampaignConfig(seed=4, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None)
    result = run_campaign(DETACHED, "tests.test_cancel_modes:DETACHED", config)
    assert [f.record.message for f in result.findings] == []
