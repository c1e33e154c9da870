"""The sweep of frozen garbage: as rare as the garbage it finds allows, outside every run, and memory stays bounded.

Inside a session the heap stays frozen between runs, so cyclic garbage among
frozen objects (alive when a run froze them, dropped later) waits for the
sweep (``harness.run.garbage``). Sweeps that find next to nothing stretch the
gap to the next one; one that finds much brings it back; a frozen heap that
has more than doubled since the last sweep is swept at the next count.
"""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
from twisted.internet import defer
from twisted.logger import globalLogPublisher

import robust_targets
from harness import JobSpec, Schedule, Submit, run_schedule
from harness.model.trace import EventKind
from harness.run import garbage
from harness.run.garbage import MAX_STRETCH, GarbagePolicy
from harness.run.session import RunSession

ONE = Schedule((Submit(0, 0, JobSpec("succeed", 10)),))


class _Cyclic:
    """Refers to itself: only a collection frees it."""

    def __init__(self, payload: object = None) -> None:
        self.me = self
        self.payload = payload


def _sweeps_at(policy: GarbagePolicy, runs: int, freed: list[int], monkeypatch) -> list[int]:
    """The runs (1-based) at which ``policy`` swept over ``runs`` runs, each sweep freeing the next of ``freed``
    memory blocks from a heap of 1,000 (``gc.collect`` and ``sys.getallocatedblocks`` stood in for)."""
    frees = iter(freed)
    heap = {"garbage": next(frees), "swept": False}
    swept: list[int] = []
    run = [0]

    def collect(*generation: int) -> int:
        if not generation:  # a full collection: the sweep
            swept.append(run[0])
            heap["swept"] = True
        return 0

    def blocks() -> int:
        if heap["swept"]:  # just after the sweep: the live heap; the garbage of the next sweep starts piling up
            heap["swept"], heap["garbage"] = False, next(frees, 0)
            return 1_000
        return 1_000 + heap["garbage"]

    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(sys, "getallocatedblocks", blocks)
    for run[0] in range(1, runs + 1):
        policy.release(policy.isolate())
    return swept


def test_sweeps_that_find_little_stretch_the_gap_up_to_a_bound(monkeypatch) -> None:
    policy = GarbagePolicy(sweep_every=3)
    swept = _sweeps_at(policy, 3 * (1 + 2 + 4 + 8 + 16 + 32 + 32 + 32), [0, 125, 0, 0, 0, 0, 0, 0, 0], monkeypatch)
    gaps = [later - earlier for earlier, later in zip([0] + swept, swept)]
    # 125 blocks of 1,000 is an eighth: still little. The gap doubles each time, and stops at MAX_STRETCH times.
    assert gaps == [3, 6, 12, 24, 48, 96, 96, 96], gaps
    assert MAX_STRETCH == 32
    assert policy.gap == 3 * MAX_STRETCH


def test_a_sweep_that_finds_much_brings_the_gap_back_and_one_in_between_keeps_it(monkeypatch) -> None:
    policy = GarbagePolicy(sweep_every=3)
    # 0 (stretch to 6), 0 (12), 251 (more than a quarter: back to 3), 0 (6), 200 (between: keep 6), 0 (12)
    swept = _sweeps_at(policy, 3 + 6 + 12 + 3 + 6 + 6 + 12, [0, 0, 251, 0, 200, 0, 0], monkeypatch)
    gaps = [later - earlier for earlier, later in zip([0] + swept, swept)]
    assert gaps == [3, 6, 12, 3, 6, 6, 12], gaps


def test_a_heap_that_more_than_doubled_is_swept_at_the_next_measure(monkeypatch) -> None:
    policy = GarbagePolicy(sweep_every=3)
    policy.gap, policy.swept_heap = 3 * MAX_STRETCH, 1_000
    swept: list[int] = []
    heap = [2_000]
    monkeypatch.setattr(gc, "collect", lambda *generation: 0 if generation else swept.append(1) or 0)
    monkeypatch.setattr(sys, "getallocatedblocks", lambda: heap[0])
    for _ in range(12):
        policy.release(policy.isolate())
    assert swept == []  # twice the last sweep's heap is still within bounds
    heap[0] = 2_001
    for _ in range(3):
        policy.release(policy.isolate())
    assert swept == [1]


def test_no_sweep_in_a_run_inside_a_run(monkeypatch) -> None:
    policy = GarbagePolicy(sweep_every=2)
    swept: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *generation: 0 if generation else swept.append(1) or 10**9)
    outer = policy.isolate()
    try:
        for _ in range(4):
            policy.release(policy.isolate())  # the outer run's garbage is collected at its own end, not here
    finally:
        policy.release(outer)
    assert swept == []
    policy.release(policy.isolate())  # the 6th run, a multiple of 2 with no run going on
    assert swept == [1]


@pytest.fixture
def short_sweeps(monkeypatch):
    """The process's policy sweeping every 4 runs from now (its state put back after the test)."""
    policy = garbage.POLICY
    for name, value in (("sweep_every", 4), ("gap", 4), ("runs_since_sweep", 0), ("swept_heap", 0)):
        monkeypatch.setattr(policy, name, value)
    return policy


def test_frozen_garbage_is_swept_between_runs_and_its_errors_logged_in_no_run(short_sweeps) -> None:
    logged: list[str] = []

    def observe(event: dict) -> None:
        failure = event.get("log_failure")
        if failure is not None and "frozen garbage" in str(failure.value):
            logged.append(event.get("log_namespace", ""))

    globalLogPublisher.addObserver(observe)
    try:
        with RunSession():
            failed = defer.fail(ValueError("frozen garbage"))  # "Unhandled error in Deferred" once collected
            kept = _Cyclic(failed)
            gone = weakref.ref(kept)
            traces = [run_schedule(robust_targets.counting, ONE).trace]  # alive as that run ended: frozen
            del failed, kept  # now cyclic garbage, frozen: no run's young collection sees it
            seen = []
            for _ in range(3):
                traces.append(run_schedule(robust_targets.counting, ONE).trace)
                seen.append((gone() is None, len(logged)))
    finally:
        globalLogPublisher.removeObserver(observe)
    # Runs 2 and 3 leave it frozen; the 4th sweeps it as it begins, before its log capture: logged, in no trace.
    assert seen == [(False, 0), (False, 0), (True, 1)], seen
    assert logged == ["twisted.internet.defer"]
    assert all(EventKind.UNHANDLED not in [event.kind for event in trace] for trace in traces)


def test_memory_stays_bounded_while_every_run_leaves_frozen_garbage(short_sweeps) -> None:
    # Every run keeps a batch of cyclic objects alive through its end (frozen) and the next drops them:
    # garbage piles up frozen at a steady rate, and the sweeps must keep the frozen heap bounded.
    with RunSession():
        run_schedule(robust_targets.counting, ONE)
        heap = gc.get_freeze_count()
        batch = max(heap // 12, 1_000)  # (4 batches a sweep: a third of the heap, each time)
        kept: list[_Cyclic] = []
        frozen = []
        for _ in range(16):
            kept = [_Cyclic() for _ in range(batch)]  # the previous batch: cyclic garbage, frozen
            run_schedule(robust_targets.counting, ONE)
            frozen.append(gc.get_freeze_count())
        del kept
    # Without sweeps the frozen heap would grow by a batch a run (16 in all); each sweep frees about 4
    # batches, not little (the gap stays at 4 runs), and the heap stays within 5.
    assert max(frozen) < heap + 8 * batch, (heap, batch, frozen)
