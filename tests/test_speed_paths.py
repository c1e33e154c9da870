"""The shortcuts of the per-example path give the answers of the long way (docs/benchmarks.md, "Where a run's time goes")."""

from __future__ import annotations

import gc

import pytest
from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Target, TargetError, run_schedule
from harness.model.target import _check_binds
from harness.run.describe import describe, describe_error
from harness.run.garbage import GarbagePolicy


class _Plain:
    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job):
        return defer.maybeDeferred(job)


class _Prioritised(_Plain):
    def submit(self, job, priority):  # type: ignore[override]
        return defer.maybeDeferred(job)


def _schedule(jobs: int) -> Schedule:
    return Schedule(ops=tuple(Submit(at_ms=i, job=i, spec=JobSpec("succeed", after_ms=5)) for i in range(jobs)))


def test_a_submit_signature_checked_once_still_refuses_another_function_or_call_shape() -> None:
    # Accepted shapes are remembered per function: a plain submit seen first must not let a
    # differently shaped one through, in either order, nor one shape vouch for another.
    run_schedule(Target(build=_Plain), _schedule(3))
    with pytest.raises(TargetError, match=r"subject.submit\(job, priority=...\)"):
        run_schedule(Target(build=_Plain, order="priority"), _schedule(3))
    run_schedule(Target(build=_Prioritised, order="priority"), _schedule(3))
    with pytest.raises(TargetError, match=r"does not accept that"):
        run_schedule(Target(build=_Prioritised), _schedule(3))


def test_the_bind_check_raises_what_inspect_raises_for_every_kind_of_callable() -> None:
    def one(job):
        return job

    for method in (one, _Plain(None).submit, lambda job: job):
        _check_binds(method, "job", {})
        _check_binds(method, "job", {})  # remembered: still fine
        with pytest.raises(TypeError):
            _check_binds(method, "job", {"key": 1})
    with pytest.raises(TypeError):
        _check_binds(print, "job", {"nope": 1})  # a builtin: checked through inspect every time


def test_cached_descriptions_equal_the_uncached_ones() -> None:
    long = "x" * 5000
    for value in ("job3.0", "a\nb", "<obj at 0x7f00deadbeef>", long, "", 42, None):
        assert describe(value) == describe(value)
    assert describe("<obj at 0x7f00deadbeef>") == "'<obj at 0x?>'"
    assert describe("a\nb") == "'a\\nb'"
    assert describe_error(ValueError("at 0x1234\nthere")) == "ValueError: at 0x?\\nthere"
    assert describe_error(ValueError("at 0x1234\nthere")) == "ValueError: at 0x?\\nthere"


def test_the_garbage_policy_sweeps_every_n_runs_and_freezes_before_each(monkeypatch) -> None:
    sweeps: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: sweeps.append(1) or 0)
    policy = GarbagePolicy(sweep_every=3)
    try:
        for _ in range(7):
            policy.isolate()
        assert len(sweeps) == 2 and gc.get_freeze_count() > 0
    finally:
        policy.release()
    assert gc.get_freeze_count() == 0


def test_collect_repeats_while_collecting_logs_more_failures(monkeypatch) -> None:
    logged = iter([0, 1, 1, 2, 2, 2, 2])
    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(1) or 0)
    GarbagePolicy.collect(lambda: next(logged))
    assert len(calls) == 3  # 0 -> 1, 1 -> 2, 2 -> 2: stops once a collection logs nothing new
