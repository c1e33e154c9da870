"""The run's fast paths give exactly what the full paths they skip would.

Each shortcut of the runner's hot path is compared here with the full path
it stands in for, over many random schedules and targets, and each
comparison is shown to catch a wrong shortcut (a mutant).
"""

from __future__ import annotations

from collections.abc import Callable
from random import Random
from typing import Any

import pytest
from twisted.internet.defer import Deferred

from harness import Target
from harness.errors import TargetError
from harness.model.schedule import Call, Cancel, JobSpec, Jump, Schedule, Start, Stop, Submit
from harness.run import checks
from scenarios.pools import SemaphorePool


class _OddSubmit(Submit):
    """An operation of a subclass whose specs are not its fields': the fast check must leave it to the full one."""

    __slots__ = ()

    @property
    def specs(self) -> tuple[JobSpec, ...]:
        return (self.spec, *self.then, JobSpec(error="NoSuchError"))


_ERRORS = ("InjectedError", "ValueError", "Mine", "NoSuchError", "KeyError")
_OPERATIONS = ("flush", "resize", "undeclared")


class Mine(Exception):
    pass


def _targets() -> list[Target]:
    build = lambda clock: SemaphorePool(clock, 2)  # noqa: E731
    return [
        Target(build=build, limit=2),
        Target(build=build, limit=2, errors=(Mine,), operations={"flush": lambda subject: None}),
        Target(build=build, limit=2, operations={"flush": lambda subject: None, "resize": lambda subject, n: None}),
    ]


def _spec(rng: Random) -> JobSpec:
    return JobSpec(rng.choice(("succeed", "fail", "raise", "hang")), rng.randrange(20), rng.choice(_ERRORS))


def _schedule(rng: Random) -> Schedule:
    ops: list[Any] = []
    for at in range(rng.randrange(12)):
        kind = rng.randrange(8)
        if kind < 3:
            then = tuple(_spec(rng) for _ in range(rng.choice((0, 0, 1, 2))))
            op_type = _OddSubmit if rng.random() < 0.05 else Submit
            ops.append(op_type(at, at, _spec(rng), 0, then))
        elif kind == 3:
            ops.append(Start(at, at, _spec(rng), tuple(_spec(rng) for _ in range(rng.choice((0, 1))))))
        elif kind == 4:
            ops.append(Cancel(at, rng.randrange(at + 1)))
        elif kind == 5:
            ops.append(Jump(at, rng.randrange(-50, 50)))
        elif kind == 6:
            ops.append(Call(at, rng.choice(_OPERATIONS)))
        else:
            ops.append(Stop(at))
    return Schedule(tuple(ops))


def _outcome(check: Callable[[Target, Schedule], None], target: Target, schedule: Schedule) -> str | None:
    try:
        check(target, schedule)
    except TargetError as exc:
        return str(exc)
    return None


def _full_check(target: Target, schedule: Schedule) -> None:
    checks._check_error_names(target, schedule)
    checks._check_operations(target, schedule)


def _disagreements(fits: Callable[[Target, Schedule], bool], count: int = 3_000) -> int:
    """Schedules where ``fits`` says "nothing to refuse" but the full checks refuse, or where
    ``check_schedule`` (through ``fits``) says otherwise than the full checks."""
    rng = Random(18)
    targets = _targets()
    wrong = 0
    for _ in range(count):
        target, schedule = rng.choice(targets), _schedule(rng)
        full = _outcome(_full_check, target, schedule)
        if fits(target, schedule) and full is not None:
            wrong += 1
        original = checks.fits
        checks.fits = fits
        try:
            if _outcome(checks.check_schedule, target, schedule) != full:
                wrong += 1
        finally:
            checks.fits = original
    return wrong


def test_the_one_pass_schedule_check_agrees_with_the_full_checks() -> None:
    assert _disagreements(checks.fits) == 0
    # Both answers occur: the comparison is not vacuous.
    rng = Random(18)
    targets = _targets()
    verdicts = {checks.fits(rng.choice(targets), _schedule(rng)) for _ in range(200)}
    assert verdicts == {True, False}


@pytest.mark.parametrize("mutant", ["ignores_then", "ignores_calls", "trusts_subclasses"])
def test_the_schedule_check_comparison_catches_a_wrong_shortcut(mutant) -> None:
    def wrong(target: Target, schedule: Schedule) -> bool:
        for op in schedule.ops:
            if isinstance(op, (Submit, Start)):
                if type(op) is not Submit and type(op) is not Start and mutant != "trusts_subclasses":
                    return False
                if op.spec.error not in target.error_types:
                    return False
                if mutant != "ignores_then" and not all(s.error in target.error_types for s in op.then):
                    return False
            elif isinstance(op, Call) and mutant != "ignores_calls" and op.operation not in target.operations:
                return False
        return True

    assert _disagreements(wrong) > 0


# -- the per-run submitter: what is the same for every job, worked out once ---------------------------------


class _SwapsSubmit(SemaphorePool):
    """Replaces its own ``submit`` after two jobs by one that takes other arguments: the per-run
    submitter must check the new method as the per-job path does (a remembered check would be wrong)."""

    def __init__(self, clock: Any, swap_to: str) -> None:
        super().__init__(clock, 2)
        self.submitted = 0
        self.swap_to = swap_to

    def submit(self, job: Any, **extra: Any) -> Any:
        self.submitted += 1
        if self.submitted == 2:
            self.submit = getattr(self, self.swap_to)  # type: ignore[method-assign]
        return super().submit(job)

    def needs_two(self, job: Any, other: Any) -> Any:
        return super().submit(job)

    def takes_no_keywords(self, job: Any) -> Any:
        return super().submit(job)

    def plain(self, job: Any, **extra: Any) -> Any:
        return super().submit(job)


def _submitter_targets() -> list[Target]:
    from harness import load_target

    swapping = [
        Target(build=lambda clock, to=to: _SwapsSubmit(clock, to), limit=2, **promises)  # type: ignore[misc]
        for to in ("needs_two", "takes_no_keywords", "plain")
        for promises in ({}, {"keys": 2}, {"order": "priority"})
    ]
    named = (
        "scenarios.pools:semaphore_pool", "scenarios.keyed_lock:keyed_lock", "scenarios.priority:priority_pool",
        "scenarios.fifo_priority:fifo_priority_pool", "scenarios.thirdparty.twisted_prims:add_timeout",
        "scenarios.error_paths:tee_pool", "scenarios.single_flight:single_flight", "scenarios.cancel:ticket_pool",
        "scenarios.heartbeat:heartbeat",
    )
    return swapping + [load_target(name) for name in named]


def _runs(per_target: int) -> list[tuple[str, Any]]:
    """What each run of each target gave: its trace's events, or the target error's message."""
    return traces(_submitter_targets(), per_target)


def traces(targets: list[Target], per_target: int, seed: int = 5) -> list[tuple[str, Any]]:
    """What each run of each target gave (``per_target`` schedules each, drawn with ``seed``): its trace's
    events, or the target error's message. (Also ``tests/test_run_hot_paths.py``'s.)"""
    from harness import run_schedule
    from harness.search.generate import Examples

    out: list[tuple[str, Any]] = []
    for target in targets:
        examples = Examples(target.default_menu(), seed)
        for _ in range(per_target):
            try:
                out.append(("trace", list(run_schedule(target, next(examples)).trace)))
            except TargetError as exc:
                out.append(("error", str(exc)))
    return out


def _step_by_step(run: Any, errors: Any) -> Callable[[Submit], None]:
    """The full path: each submit applied alone, everything worked out again for its job."""
    from harness.run.steps import apply

    return lambda op: apply(run, op, errors)


def test_the_per_run_submitter_records_what_submitting_step_by_step_does(monkeypatch) -> None:
    from harness.run import runner

    fast = _runs(25)
    monkeypatch.setattr(runner, "submitter", _step_by_step)
    assert _runs(25) == fast
    kinds = {kind for kind, _ in fast}
    assert kinds == {"trace", "error"}  # the swapped submits are refused; the others run
    assert any("does not accept that" in text for kind, text in fast if kind == "error")


def test_the_submitter_comparison_catches_a_check_remembered_too_broadly(monkeypatch) -> None:
    from harness.model import target as target_module
    from harness.run import runner

    with monkeypatch.context() as patched:
        patched.setattr(runner, "submitter", _step_by_step)
        slow = _runs(6)
    original = target_module.Target.job_submitter

    def checks_the_first_job_only(self: Target, subject: Any) -> Callable[[Any, int], Any]:  # a mutant
        submit = original(self, subject)
        checked: list[bool] = []

        def mutant(job: Any, priority: int) -> Any:
            if checked:
                method = getattr(subject, "submit")
                return method(job, **target_module._keywords(self.order == "priority", self.keys is not None, priority, job))
            checked.append(True)
            return submit(job, priority)

        return mutant if self.submit is None else submit

    monkeypatch.setattr(target_module.Target, "job_submitter", checks_the_first_job_only)
    assert _runs(6) != slow


# -- the drain horizon's job costs, in one pass ---------------------------------------------------------------


def _costs_as_written(schedule: Schedule, lateness: int) -> int:
    costs = [spec.after_ms + lateness for op in schedule.submits for spec in op.specs]
    return sum(costs) + max(costs, default=0)


def _cost_disagreements(costs: Callable[[Schedule, int], int]) -> int:
    rng = Random(7)
    wrong = 0
    for _ in range(2_000):
        schedule, lateness = _schedule(rng), rng.choice((0, 0, 1, 7, 250))
        wrong += costs(schedule, lateness) != _costs_as_written(schedule, lateness)
    return wrong


def test_the_one_pass_job_costs_are_the_costs_as_written() -> None:
    from harness.run.runner import _job_costs

    assert _cost_disagreements(_job_costs) == 0


def test_the_job_costs_comparison_catches_a_wrong_shortcut() -> None:
    def first_specs_only(schedule: Schedule, lateness: int) -> int:  # a mutant: retries' specs forgotten
        costs = [op.spec.after_ms + lateness for op in schedule.ops if isinstance(op, (Submit, Start))]
        return sum(costs) + max(costs, default=0)

    assert _cost_disagreements(first_specs_only) > 0


# -- one addBoth callback for a plain Deferred, Twisted's addCallbacks for a subclass -------------------------


class _Subclassed(Deferred):  # type: ignore[type-arg]
    """A Deferred subclass: the runner watches it through its own ``addCallbacks``, as before."""


class _SubclassPool(SemaphorePool):
    """The same pool, whose callers get a ``_Subclassed`` carrying the very same outcome."""

    def submit(self, job: Any) -> Any:
        outer = _Subclassed()
        super().submit(job).chainDeferred(outer)
        return outer


class _ChainedPool(SemaphorePool):
    """The same pool and chain, with a plain Deferred: the only difference is how the runner watches it."""

    def submit(self, job: Any) -> Any:
        outer: Deferred[Any] = Deferred()
        super().submit(job).chainDeferred(outer)
        return outer


def _watch_disagreements(count: int = 60) -> int:
    from harness import run_schedule
    from harness.search.generate import Examples

    plain = Target(build=lambda clock: _ChainedPool(clock, 2), limit=2)
    subclassed = Target(build=lambda clock: _SubclassPool(clock, 2), limit=2)
    examples = Examples(plain.default_menu(), 3)
    wrong = 0
    for _ in range(count):
        schedule = next(examples)
        wrong += list(run_schedule(plain, schedule).trace) != list(run_schedule(subclassed, schedule).trace)
    return wrong


def test_one_callback_for_both_outcomes_records_what_two_do() -> None:
    assert _watch_disagreements() == 0


def test_the_watch_comparison_catches_a_callback_that_tells_outcomes_apart_wrongly(monkeypatch) -> None:
    from harness.run import steps

    monkeypatch.setattr(steps, "Failure", KeyError)  # a mutant: every failure taken for a result
    assert _watch_disagreements(20) > 0


# -- a session's runs: young collections only ------------------------------------------------------------------


def test_a_sessions_runs_collect_young_garbage_only_never_the_whole_heap(monkeypatch) -> None:
    """What a run leaves alive is frozen as it ends, so the next run's collection of what was made
    between runs is a young one, not a full one that also empties the interpreter's free lists."""
    import gc

    from harness import run_schedule
    from harness.run import garbage
    from harness.run.session import RunSession
    from harness.search.generate import Examples
    from scenarios.pools import semaphore_pool

    monkeypatch.setattr(garbage.POLICY, "runs_since_sweep", 0)  # no sweep (a full collection by design) here
    examples = Examples(semaphore_pool.default_menu(), 5)
    schedules = [next(examples) for _ in range(30)]
    generations: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generations.append(info["generation"])

    was = gc.isenabled()
    gc.disable()  # (no automatic collection between the runs: only the runner's own)
    gc.callbacks.append(seen)
    try:
        with RunSession():
            kept = [run_schedule(semaphore_pool, schedule) for schedule in schedules]  # the campaign may keep them
            del kept
            for schedule in schedules:
                run_schedule(semaphore_pool, schedule)
    finally:
        gc.callbacks.remove(seen)
        if was:
            gc.enable()
    assert len(generations) >= 2 * len(schedules)
    assert 2 not in generations, generations
