"""Invariant machinery beyond the scenarios: user invariants, log capture, hostile jobs, reports."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from harness import CampaignConfig, JobSpec, Schedule, Submit, Target, TargetError, check, run_campaign, run_schedule
from harness.model.schedule import Cancel, Start, Stop
from harness.output.timeline import render_schedule
from scenarios.pools import SemaphorePool


class Counter:
    """Counts finished jobs; ``broken`` makes it count a failure as two."""

    def __init__(self, clock, broken: bool = False) -> None:
        self.clock = clock
        self.done = 0
        self.broken = broken
        self._sem = defer.DeferredSemaphore(2)

    def submit(self, job):
        d = self._sem.run(job)
        d.addCallbacks(self._ok, self._bad)
        return d

    def _ok(self, result):
        self.done += 1
        return result

    def _bad(self, failure):
        self.done += 2 if self.broken else 1
        return failure


def count_matches_jobs(run) -> None:
    ended = sum(1 for e in run.trace if e.kind in ("result", "failure"))
    assert run.subject.done == ended, f"subject counted {run.subject.done} jobs but {ended} ended"


def test_user_invariant_passes_a_campaign_on_a_correct_subject(tmp_path) -> None:
    target = Target(build=Counter, limit=2, invariants=(count_matches_jobs,))
    result = run_campaign(target, "x:y", CampaignConfig(seed=5, max_examples=200, report_dir=str(tmp_path), regressions=None))
    assert result.findings == []


def test_user_invariant_is_reported_under_its_own_name(tmp_path) -> None:
    target = Target(build=lambda clock: Counter(clock, broken=True), limit=2, invariants=(count_matches_jobs,))
    result = run_campaign(target, "x:y", CampaignConfig(seed=5, max_examples=500, report_dir=str(tmp_path), regressions=None))
    (finding,) = result.findings
    assert finding.record.invariant == "user.count_matches_jobs"
    assert "subject counted 2 jobs but 1 ended" in finding.record.message
    assert len(finding.record.schedule.ops) <= 2  # one failing job, or one job and its cancel


def test_user_invariant_raising_something_else_is_a_target_error() -> None:
    def broken(run) -> None:
        raise KeyError("oops")

    target = Target(build=Counter, invariants=(broken,))
    with pytest.raises(TargetError, match="invariant broken raised KeyError"):
        run_schedule(target, Schedule((Submit(0, 0, JobSpec()),)))


def test_unhandled_error_in_subject_deferred_is_recorded_after_collection() -> None:
    class Leaky:
        def __init__(self, clock) -> None:
            self.kept = []

        def submit(self, job):
            d = defer.maybeDeferred(job)
            side = defer.Deferred()
            side.errback(RuntimeError("nobody listens"))
            self.kept.append(side)  # alive until the subject is dropped
            return d

    run = run_schedule(Target(build=Leaky, cancellable=False), Schedule((Submit(0, 0, JobSpec("immediate")),)))
    (violation,) = check(run)
    assert violation.invariant == "errors.unhandled"
    assert "RuntimeError: nobody listens" in violation.message


def test_hostile_canceller_is_blamed_on_the_job_not_the_subject() -> None:
    schedule = Schedule(
        (
            Submit(0, 0, JobSpec("hang", canceller_raises=True)),
            Submit(0, 1, JobSpec("succeed", 10)),
            Cancel(5, 0),
            Submit(6, 2, JobSpec("succeed", 10)),
        )
    )
    target = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2)
    run = run_schedule(target, schedule)
    assert any(e.kind == "cancel.raised" and e.detail.startswith("CancellerError") for e in run.trace)
    assert check(run) == []


def test_double_fire_is_completion_once() -> None:
    class Racy:
        """Its canceller fails the caller at once; the job's result then fires the caller again."""

        def __init__(self, clock) -> None:
            self.clock = clock

        def submit(self, job):
            caller = defer.Deferred(lambda d: d.errback(defer.CancelledError()))
            defer.maybeDeferred(job).addBoth(caller.callback)
            return caller

    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Cancel(5, 0)))
    violations = check(run_schedule(Target(build=Racy), schedule))
    assert violations[0].invariant == "completion.once"
    assert "AlreadyCalledError" in violations[0].message


def test_render_schedule_describes_every_operation() -> None:
    text = render_schedule(
        Schedule(
            (
                Start(0, 0, JobSpec("fail", 5, "ValueError"), (JobSpec("succeed", 1),)),
                Stop(10),
            )
        )
    )
    assert "start periodic work as job 0 (fail after 5ms with ValueError; then succeed after 1ms)" in text
    assert "stop the subject" in text
    assert text.startswith("schedule: 2 operations")


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ("scenarios.semaphore:failure_leak_pool", "errors.poison"),
        ("scenarios.semaphore:cancel_leak_pool", "cancellation.releases"),
    ],
)
def test_stranded_jobs_are_blamed_on_the_cause_a_replay_confirms(tmp_path, spec, expect) -> None:
    """With cancels and failures both in the menu, the counterfactual replay names the real cause."""
    from dataclasses import replace

    from harness import load_target

    target = replace(load_target(spec), menu=None)
    for seed in (1, 2):
        result = run_campaign(target, spec, CampaignConfig(seed=seed, max_examples=1500, report_dir=str(tmp_path), regressions=None))
        assert result.findings[0].record.invariant == expect
