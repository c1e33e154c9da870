"""Invariants are pure functions of the run record; re-running the target is a separate diagnosis step.

``harness.run.diagnosis.diagnose`` is the one place (besides the runner's
callers) that plays a schedule again, to find why stranded jobs never
finished; ``harness.check`` runs it first and stores it as ``run.diagnosis``.
Every built-in ``check`` returns its violation or None, and checking a run
again replays nothing and finds the same. Invariants written in the older
shape (a generator that yields) keep working.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness.run.diagnosis as diagnosis_module
import harness.run.runner as runner_module
from harness import Cancel, JobSpec, Schedule, Submit, check, load_target, run_schedule
from harness.invariants import INVARIANTS, Invariant, Violation, invariants_for
from harness.invariants.completion import Deadline
from harness.run.diagnosis import Cause, Diagnosis, Stranded, diagnose
from harness.run.runner import Run

INVARIANTS_DIR = Path(inspect.getfile(Deadline)).parent


def _ok(after_ms: int = 10) -> JobSpec:
    return JobSpec("succeed", after_ms)


#: A schedule per cause, on a subject that strands a job for that reason; the invariant that reports it;
#: the counterfactual schedules played (none for a deadlock without cancels or failures to take away).
CASES = {
    Cause.CANCEL: (
        "scenarios.semaphore:cancel_leak_pool",
        Schedule((Submit(0, 0, _ok()), Submit(0, 1, _ok()), Cancel(0, 1), Submit(0, 2, _ok()))),
        "cancellation.releases",
        1,
    ),
    Cause.FAILURE: (
        "scenarios.semaphore:failure_leak_pool",
        Schedule((Submit(0, 0, JobSpec("fail", 10)), Submit(0, 1, JobSpec("fail", 10)), Submit(0, 2, _ok()))),
        "errors.poison",
        1,
    ),
    Cause.NONE: (
        "scenarios.priority:idle_flag_scheduler",
        Schedule((Submit(0, 0, JobSpec("immediate"), 1), Submit(0, 1, _ok(), 0))),
        "completion.deadline",
        0,
    ),
}


@pytest.fixture
def replays(monkeypatch: pytest.MonkeyPatch) -> list[Schedule]:
    """Count the schedules the diagnosis step plays again."""
    played: list[Schedule] = []
    real = runner_module.run_schedule

    def counting(target, schedule, *args, **kwargs):  # type: ignore[no-untyped-def]
        played.append(schedule)
        return real(target, schedule, *args, **kwargs)

    monkeypatch.setattr(runner_module, "run_schedule", counting)
    return played


@pytest.mark.parametrize("cause", list(CASES))
def test_the_diagnosis_names_why_a_job_is_stranded_and_the_invariant_reads_it(cause: Cause, replays: list[Schedule]) -> None:
    spec, schedule, invariant, played = CASES[cause]
    run = run_schedule(load_target(spec), schedule)
    assert run.diagnosis is None
    found = diagnose(run)
    assert found.stranded and all(s.cause is cause for s in found.stranded)
    assert len(replays) == played
    violations = check(run)
    assert run.diagnosis is not None and run.diagnosis.stranded == found.stranded
    assert invariant in [v.invariant for v in violations]


def test_checking_a_diagnosed_run_again_replays_nothing_and_finds_the_same(
    replays: list[Schedule], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, schedule, _, _ = CASES[Cause.CANCEL]
    run = run_schedule(load_target(spec), schedule)
    first = check(run)
    assert replays

    def no_replay(*args: object, **kwargs: object) -> Run:
        raise AssertionError("an invariant ran the target")

    monkeypatch.setattr(runner_module, "run_schedule", no_replay)
    assert check(run) == first
    assert [v for inv in invariants_for(run.target) for v in inv.violations(run)] == first


def test_a_cancel_after_the_job_fired_is_never_blamed(replays: list[Schedule]) -> None:
    """Round 2's F3: cancelling job 0 after its Deferred fired is a no-op. Taking job 0 out of the
    schedule would let job 1 finish on this order-dependent subject, which once blamed the cancel
    (``cancellation.releases``); the stranding is the subject's own (``completion.deadline``)."""
    schedule = Schedule((Submit(0, 0, JobSpec("immediate"), 1), Submit(0, 1, _ok(), 0), Cancel(5, 0)))
    run = run_schedule(load_target("scenarios.priority:idle_flag_scheduler"), schedule)
    assert diagnose(run) == Diagnosis((Stranded(1, Cause.NONE),))
    assert replays == []  # no effective cancel, no failure: nothing to take away
    without_job_0 = run_schedule(load_target("scenarios.priority:idle_flag_scheduler"), Schedule((Submit(0, 1, _ok(), 0),)))
    assert check(without_job_0) == []  # what the old counterfactual saw
    assert [v.invariant for v in check(run)] == ["completion.deadline"]


def test_a_run_without_stranded_jobs_replays_nothing(replays: list[Schedule]) -> None:
    run = run_schedule(load_target("scenarios.pools:semaphore_pool"), Schedule((Submit(0, 0, _ok()), Cancel(5, 0))))
    assert check(run) == [] and run.diagnosis == Diagnosis() and replays == []


def test_an_invariant_that_reads_the_diagnosis_says_so_when_it_is_missing() -> None:
    spec, schedule, _, _ = CASES[Cause.NONE]
    run = run_schedule(load_target(spec), schedule)
    with pytest.raises(RuntimeError, match=r"run.diagnosis is None: check runs with harness.check\(run\), or set"):
        Deadline().check(run)
    run.diagnosis = Diagnosis((Stranded(1, Cause.NONE),))
    violation = Deadline().check(run)
    assert violation is not None and violation.invariant == "completion.deadline"


def test_every_built_in_invariant_returns_its_violation_or_none() -> None:
    for invariant in INVARIANTS:
        assert not inspect.isgeneratorfunction(type(invariant).check), f"{invariant.name}.check yields"
    spec, schedule, name, _ = CASES[Cause.FAILURE]
    run = run_schedule(load_target(spec), schedule)
    run.diagnosis = diagnose(run)
    results = {inv.name: inv.check(run) for inv in invariants_for(run.target)}
    assert all(r is None or isinstance(r, Violation) for r in results.values())
    assert results[name] is not None and results[name].invariant == name


def _calls(path: Path) -> set[str]:
    """The names of the functions a module calls (``f(...)`` or ``module.f(...)``)."""
    tree = ast.parse(path.read_text())
    return {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
    }


def test_only_the_diagnosis_step_runs_the_target_again() -> None:
    for path in INVARIANTS_DIR.glob("*.py"):
        calls = _calls(path)
        assert "run_schedule" not in calls, f"{path.name} runs the target: that is harness.run.diagnosis's job"
        if path.name != "__init__.py":
            assert "diagnose" not in calls, f"{path.name} diagnoses the run itself: harness.check does, first"
    facts = Path(inspect.getfile(diagnosis_module)).with_name("facts.py")
    assert "run_schedule" not in _calls(facts), "the facts are a pure function of the trace"
    assert "run_schedule" in _calls(Path(inspect.getfile(diagnosis_module)))


# -- invariants written in the older shape -------------------------------------------------------


class YieldingEveryFailure(Invariant):
    """The shape invariants had before: ``check`` yields (here, every job failure)."""

    name = "errors.test_yielding"

    def check(self, run: Run) -> Iterator[Violation]:  # type: ignore[override]
        for index, event in enumerate(run.trace):
            if event.kind == "job.fail":
                yield self.violation(run, f"job {event.job} failed", [index])


class ReturningFirstFailure(Invariant):
    """The shape invariants have now."""

    name = "errors.test_returning"

    def check(self, run: Run) -> Violation | None:
        failed = run.view.of_kind("job.fail")
        index, event = next(failed, (None, None))
        return None if index is None else self.violation(run, f"job {event.job} failed", [index])


def test_an_invariant_in_the_older_yielding_shape_still_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.invariants

    spec, schedule, _, _ = CASES[Cause.FAILURE]
    monkeypatch.setattr(harness.invariants, "INVARIANTS", (YieldingEveryFailure(), ReturningFirstFailure()))
    found = check(run_schedule(load_target(spec), schedule))
    assert [(v.invariant, v.message) for v in found] == [
        ("errors.test_yielding", "job 0 failed"),
        ("errors.test_yielding", "job 1 failed"),
        ("errors.test_returning", "job 0 failed"),
    ]


def test_the_invariant_class_example_in_the_run_api_reference_runs() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "run-api.md").read_text()
    section = text.split("## Writing an `Invariant` class", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/run-api.md", "exec"), namespace)
    invariant = namespace["NoJobFails"]()  # type: ignore[operator]
    spec, schedule, _, _ = CASES[Cause.FAILURE]
    violation = invariant.check(run_schedule(load_target(spec), schedule))
    assert violation is not None and violation.message == "job 0 failed" and violation.jobs == (0,)
    clean = run_schedule(load_target("scenarios.pools:semaphore_pool"), Schedule((Submit(0, 0, _ok()),)))
    assert invariant.check(clean) is None


class _KeepsCancelledSlot:
    """One slot; the slot of a running job that was cancelled is never given back (its errback returns early
    on ``CancelledError``), while a failed job's is: a cancel strands the next job, a failure does not."""

    def __init__(self, clock: object) -> None:
        from twisted.internet import defer

        self.sem = defer.DeferredSemaphore(1)

    def submit(self, job):  # type: ignore[no-untyped-def]
        from twisted.internet import defer

        def done(result):  # type: ignore[no-untyped-def]
            if not (hasattr(result, "check") and result.check(defer.CancelledError)):
                self.sem.release()
            return result

        return self.sem.acquire().addCallback(lambda _: defer.maybeDeferred(job).addBoth(done))


def test_a_cancel_that_strands_through_the_error_path_says_a_failure_does_too(replays: list[Schedule]) -> None:
    """Review 3, finding 5: a cancel of running work ends it in an error; when the subject's error path is
    what keeps the slot, a failure in the cancel's place strands the job as well, and the message of
    ``cancellation.releases`` points at ``errors.poison``. A subject that leaks only on a cancel gets no such
    note, and a cancel of a waiting job (nothing ended in an error) plays no extra replay."""
    from harness import Target

    leaky = load_target("scenarios.review.round3.targets:bulkhead_leaks_on_error")
    schedule = Schedule((Submit(0, 0, _ok(900)), Cancel(0, 0), Submit(0, 1, JobSpec("fail", 0)), Submit(0, 2, _ok(0))))
    run = run_schedule(leaky, schedule)
    assert diagnose(run) == Diagnosis((Stranded(2, Cause.CANCEL, failure_too=True),))
    failing = replays[-1]  # job 0 fails where it was cancelled, its cancel gone
    assert [op for op in failing.ops if isinstance(op, Cancel)] == []
    assert failing.ops[0] == Submit(0, 0, JobSpec("fail", 0))
    [violation] = [v for v in check(run) if v.invariant == "cancellation.releases"]
    assert violation.message.endswith("a failure strands it too, see errors.poison)")

    only_cancel = Target(build=_KeepsCancelledSlot, limit=1)
    run = run_schedule(only_cancel, Schedule((Submit(0, 0, _ok(50)), Submit(0, 1, _ok()), Cancel(10, 0))))
    assert diagnose(run) == Diagnosis((Stranded(1, Cause.CANCEL),))
    [violation] = check(run)
    assert violation.invariant == "cancellation.releases" and violation.message.endswith("was not released")

    replays.clear()
    spec, waiting, _, played = CASES[Cause.CANCEL]  # the cancel hits a waiting job
    assert diagnose(run_schedule(load_target(spec), waiting)).stranded[0].failure_too is False
    assert len(replays) == played  # the one counterfactual, no replay with failures


class _LosesSyncErrors:
    """A subject that swallows a job's synchronous exception and never answers that job's caller."""

    def __init__(self, clock: object) -> None:
        self.clock = clock

    def submit(self, job: object) -> object:
        from twisted.internet import defer

        answer: defer.Deferred[object] = defer.Deferred()
        try:
            result = job()  # type: ignore[operator]
        except Exception:
            return answer  # lost: nobody will ever fire it
        defer.maybeDeferred(lambda: result).chainDeferred(answer)
        return answer


def test_poison_of_a_jobs_own_failure_says_so_and_an_earlier_jobs_failure_keeps_its_words() -> None:
    """Review 4, finding 10: with one job, whose own failure was lost, the message said "after an earlier
    job failed"; it now names the job's own failure, and a later job stranded by an earlier failure still reads as before."""
    from harness import Target

    target = Target(build=_LosesSyncErrors, cancellable=False)
    own = check(run_schedule(target, Schedule((Submit(0, 0, JobSpec("raise")),))))
    assert [v.invariant for v in own] == ["errors.poison"]
    assert "never finished after its own attempt failed at 0ms, and no other job failed" in own[0].message
    assert "earlier job" not in own[0].message

    path, schedule, invariant, _ = CASES[Cause.FAILURE]
    earlier = [v for v in check(run_schedule(load_target(path), schedule)) if v.invariant == invariant]
    assert earlier and "never finished after an earlier job failed" in earlier[0].message
