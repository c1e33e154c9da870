"""The end-of-run collections choose their generation from what the policy itself did, as ``_covering`` would.

``GarbagePolicy.collect`` used to ask ``_covering()`` which generation
covers every object not frozen, listing generation 1 (``gc.get_objects(1)``:
before a run's second collection, the ~500 survivors of its first). It now
answers from what its own freeze and collections left (``_covering_known``)
while the collector counted no collection it did not make. These tests hold
that answer to ``_covering``'s over real runs of many targets, and to the
generations actually holding objects for targets that collect, unfreeze or
turn automatic collection on in the middle of a run; a mutant that trusts
its own record without the count is caught.
"""

from __future__ import annotations

import gc
import types
from typing import Any

import pytest
from twisted.internet import defer

from harness import Target, load_target, run_schedule
from harness.run import garbage
from harness.run.session import RunSession
from harness.search.generate import Examples
from scenarios.pools import SemaphorePool
from test_features_from_facts import _TARGETS  # catalog targets of different kinds


def _highest_young() -> int:
    """The oldest generation holding an object (0 when none does): what a collection must cover."""
    return max((generation for generation in (1, 2) if gc.get_objects(generation)), default=0)


@pytest.fixture
def answers(monkeypatch) -> list[tuple[int, int, int]]:
    """Every end-of-run collection's (answer, ``_covering()``'s answer, oldest generation holding objects)."""
    seen: list[tuple[int, int, int]] = []
    policy = garbage.POLICY
    known = type(policy)._covering_known

    def watched(self: garbage.GarbagePolicy) -> int:
        expected, highest = garbage._covering(), _highest_young()
        answer = known(self)
        seen.append((answer, expected, highest))
        return answer

    monkeypatch.setattr(policy, "_covering_known", types.MethodType(watched, policy))
    monkeypatch.setattr(policy, "runs_since_sweep", 1)  # no sweep (a full collection by design) in these runs
    return seen


@pytest.mark.parametrize("spec", _TARGETS)
def test_the_known_generation_is_covering_s_over_real_runs(spec: str, answers) -> None:
    target = load_target(spec)
    examples = Examples(target.default_menu(), seed=7)
    with RunSession():
        for _ in range(40):
            run_schedule(target, next(examples))
    assert len(answers) >= 40
    assert all(answer == expected for answer, expected, _ in answers), answers
    assert {answer for answer, _, _ in answers} >= {0, 1}  # both of a run's collections were seen


class _MeddlingPool(SemaphorePool):
    """A correct pool that, at its second submission, does something to the collector itself."""

    def __init__(self, clock: Any, meddle: Any) -> None:
        super().__init__(clock, 2)
        self.meddle = meddle
        self.submitted = 0

    def submit(self, job: Any) -> defer.Deferred[Any]:
        self.submitted += 1
        if self.submitted == 2:
            self.meddle()
        return super().submit(job)


def _collect_young_twice() -> None:
    gc.collect(0)
    gc.collect(0)


def _collect_one_then_young() -> None:
    gc.collect(1)
    gc.collect(0)


def _enable_and_churn() -> None:
    gc.enable()  # automatic collections from here to the run's end (the run turns it off at its next start)
    junk = []
    for index in range(3_000):
        junk.append([index])
        if len(junk) > 50:
            del junk[:40]


_MEDDLING = {
    "collects generation 0": lambda: gc.collect(0),
    "collects generation 0 twice": _collect_young_twice,
    "collects generation 1": lambda: gc.collect(1),
    "collects generation 1 then 0": _collect_one_then_young,
    "collects everything": gc.collect,
    "unfreezes the heap": gc.unfreeze,
    "turns automatic collection on": _enable_and_churn,
}


def _meddling_runs(meddle: Any) -> list[Any]:
    target = Target(build=lambda clock: _MeddlingPool(clock, meddle), limit=2)
    examples = Examples(target.default_menu(), seed=3)
    automatic = gc.isenabled()
    try:
        with RunSession():
            return [run_schedule(target, next(examples)).trace.lines() for _ in range(15)]
    finally:
        (gc.enable if automatic else gc.disable)()


@pytest.mark.parametrize("name", sorted(_MEDDLING))
def test_a_target_that_meddles_with_the_collector_is_still_covered(name: str, answers) -> None:
    _meddling_runs(_MEDDLING[name])
    assert answers
    for answer, expected, highest in answers:
        assert answer >= highest, (name, answers)
        # The same collection as ``_covering``'s, or one a generation older that holds nothing more.
        assert answer == expected or (answer > expected and answer > highest), (name, answers)


def test_the_traces_are_those_covering_gives(monkeypatch) -> None:
    """The runs of a meddling target give the traces they gave when every collection asked ``_covering``."""
    now = {name: _meddling_runs(meddle) for name, meddle in _MEDDLING.items()}
    monkeypatch.setattr(garbage.POLICY, "_covering_known", lambda: garbage._covering())
    before = {name: _meddling_runs(meddle) for name, meddle in _MEDDLING.items()}
    assert now == before


def test_a_record_trusted_without_the_count_is_caught(monkeypatch) -> None:
    """The mutant: generation 2 tested, but the policy's own record taken whatever the collector did since."""
    policy = garbage.POLICY

    def trusting(self: garbage.GarbagePolicy) -> int:
        return 2 if gc.get_objects(2) else self.young

    seen: list[tuple[int, int]] = []

    def watched(self: garbage.GarbagePolicy) -> int:
        highest = _highest_young()
        answer = trusting(self)
        seen.append((answer, highest))
        return answer

    monkeypatch.setattr(policy, "_covering_known", types.MethodType(watched, policy))
    monkeypatch.setattr(policy, "runs_since_sweep", 1)
    _meddling_runs(_MEDDLING["collects generation 0"])
    assert any(answer < highest for answer, highest in seen), seen
