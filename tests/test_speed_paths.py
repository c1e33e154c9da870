"""The shortcuts of the per-example path give the answers of the long way (docs/benchmarks.md, "Where a run's time goes")."""

from __future__ import annotations

import gc
import itertools
import sys

import pytest
from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Target, TargetError, run_schedule
from harness.model.target import _check_binds
from harness.run.describe import describe, describe_error
from harness.run.garbage import MAX_COLLECTIONS, GarbagePolicy


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
    # (each sweep frees most of the heap: the policy keeps sweeping every n runs; tests/test_garbage_sweep.py has the rest)
    monkeypatch.setattr(sys, "getallocatedblocks", itertools.cycle([10**6, 1]).__next__)
    policy = GarbagePolicy(sweep_every=3)
    for _ in range(6):
        policy.release(policy.isolate())
    enabled = policy.isolate()
    try:
        assert len(sweeps) == 2 and gc.get_freeze_count() > 0
    finally:
        policy.release(enabled)
    assert gc.get_freeze_count() == 0


def test_collect_repeats_while_collecting_logs_more_failures(monkeypatch) -> None:
    logged = iter([0, 1, 1, 2, 2, 2, 2])
    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(1) or 0)
    monkeypatch.setattr(gc, "get_objects", lambda *args: [])  # (no finalizer made anything: see below)
    GarbagePolicy().collect(lambda: next(logged))
    assert len(calls) == 3  # 0 -> 1, 1 -> 2, 2 -> 2: stops once a collection logs nothing new


def test_collect_repeats_while_its_finalizers_made_objects(monkeypatch) -> None:
    # Generation 0 not empty after a collection: its finalizers made objects, which may refer into the
    # garbage and have made the collector keep all of it; it is collected again, at most MAX_COLLECTIONS times.
    young = iter([["made by a finalizer"], [], ["again"], ["again"], ["again"], ["again"]])
    calls: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: calls.append(1) or 0)
    monkeypatch.setattr(gc, "get_objects", lambda generation=None: next(young) if generation == 0 else [])
    GarbagePolicy().collect(lambda: 0)
    assert len(calls) == 2
    GarbagePolicy().collect(lambda: 0)
    assert len(calls) == 2 + MAX_COLLECTIONS


def _pair_walk(check, run):
    """The start-order check as it was, a walk over every (started, waiting) pair: the reference."""
    from harness.invariants.concurrency import _waiting
    from harness.run.facts import facts_of

    facts = facts_of(run)
    starters = sorted((j for j in facts.jobs.values() if j.first_start is not None), key=lambda j: j.first_start)
    for started in starters:
        index = started.first_start
        for other in facts.jobs.values():
            if run.target.keys is not None and other.key != started.key:
                continue
            if other.id != started.id and _waiting(facts, other, index) and check.skipped(other, started):
                return check.violation(run, check.describe(other, started, facts), [other.submit, index])
    return None


@pytest.mark.parametrize(
    "spec",
    [
        "scenarios.priority:priority_pool",
        "scenarios.priority:min_heap_priority_pool",
        "scenarios.fifo_priority:fifo_priority_pool",
        "scenarios.next_tick:next_tick_fifo",
        "scenarios.keyed_lock:keyed_lock",
        "scenarios.keyed_lock:queue_keyed_lock",
        "scenarios.pools:semaphore_pool",
    ],
)
def test_the_start_order_sweep_finds_what_the_walk_over_every_pair_finds(spec: str) -> None:
    # The sweep (a heap of waiting jobs per key) must name the same job at the same start as the
    # quadratic walk it replaced, on clean runs and buggy ones alike.
    from harness import load_target
    from harness.invariants.concurrency import Fifo, Priority
    from harness.search.generate import Examples

    target = load_target(spec)
    check = Fifo() if target.order == "fifo" else Priority()
    assert check.applies(target)
    examples = Examples(target.default_menu(), 5)
    found = 0
    for _ in range(150):
        run = run_schedule(target, next(examples))
        expected = _pair_walk(check, run)
        assert check.check(run) == expected
        found += expected is not None
    from scenarios import CATALOG

    if next(s.expect for s in CATALOG if s.target == spec) in ("concurrency.fifo", "concurrency.priority"):
        assert found, f"{spec}: no out-of-order start in 150 schedules; the comparison saw only clean runs"
