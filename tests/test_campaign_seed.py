"""A seed decides a campaign's schedules by itself: whatever else is loaded, whatever the example cap, and no
other seed searches the same schedules."""

from __future__ import annotations

import importlib
import time

from dataclasses import replace

from harness import CampaignConfig, Target, run_campaign
from harness.search.shard import round_seed
from scenarios.pools import DoubleReleasePool, SemaphorePool, double_release_pool, semaphore_pool

CORRECT = "scenarios.pools:semaphore_pool"
BUGGY = "scenarios.pools:double_release_pool"


def test_a_seed_generates_the_same_schedules_whatever_else_is_loaded(tmp_path, monkeypatch) -> None:
    # Hypothesis mixes literals from loaded local modules into what it generates; a campaign
    # must not: importing a module with a few numbers in it (another scenario, the CLI, the
    # user's own code) used to change what a seed generated, and so what it found.
    played: list[str] = []

    def schedules() -> list[str]:
        played.clear()
        run_campaign(
            semaphore_pool,
            CORRECT,
            CampaignConfig(seed=5, max_examples=200, report_dir=str(tmp_path)),
            on_run=lambda schedule, run: played.append(repr(schedule)),
        )
        return list(played)

    before = schedules()
    (tmp_path / "some_numbers.py").write_text("NUMBERS = (123, 257, 311, 489, 4099, 31337, 65001)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("some_numbers")
    assert schedules() == before


def _played(tmp_path, seed: int, examples: int, target=semaphore_pool, spec=CORRECT) -> list[str]:
    played: list[str] = []
    run_campaign(
        target,
        spec,
        CampaignConfig(seed=seed, max_examples=examples, report_dir=str(tmp_path)),
        on_run=lambda schedule, run: played.append(repr(schedule)),
    )
    return played


def test_consecutive_seeds_never_share_a_round(tmp_path) -> None:
    # Rounds used to search with seed + r, so seed 1's second round was seed 2's first.
    def no_second_submit(run) -> None:  # breaks almost at once: every campaign goes through many rounds
        assert sum(1 for e in run.trace if e.kind == "submit") < 2, "a second submit"

    target = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(no_second_submit,))
    config = CampaignConfig(max_examples=200, max_failures=2, report_dir=str(tmp_path))
    one, two = [], []
    for seed, played in ((1, one), (2, two)):
        run_campaign(
            target, "tests:rounds", replace(config, seed=seed), on_run=lambda s, run: s.ops and played.append(repr(s))
        )
    assert len(one) > 100 and len(two) > 100
    assert not set(one) & set(two)
    assert len({round_seed(seed, r) for seed in range(1, 200) for r in range(50)}) == 199 * 50
    assert round_seed(7, 0) == 7  # round 0 is the campaign's own seed


def test_the_search_order_does_not_depend_on_the_example_cap(tmp_path) -> None:
    full = _played(tmp_path, 3, 300)
    assert _played(tmp_path, 3, 37) == full[:37]
    assert _played(tmp_path, 3, 150) == full[:150]


def test_same_seed_same_first_failure_whatever_the_cap(tmp_path) -> None:
    def first(examples: int):
        result = run_campaign(
            double_release_pool, BUGGY, CampaignConfig(seed=11, max_examples=examples, report_dir=str(tmp_path))
        )
        return [(f.examples_to_detect, f.violation.invariant, f.record.schedule) for f in result.findings]

    (found,) = first(1_000)
    at = found[0]
    assert first(at) == [found] and first(at + 3) == [found] and first(5_000) == [found]
    assert first(at - 1) == []


def test_time_to_first_failure_excludes_shrinking_earlier_failures(tmp_path) -> None:
    # Two failures: the second's search time leaves out the time spent shrinking the first.
    def no_third_job(run) -> None:  # a user invariant that breaks later than the double release
        assert sum(1 for e in run.trace if e.kind == "result") < 3, "three jobs ended well"

    target = Target(build=lambda clock: DoubleReleasePool(clock, 2), limit=2, invariants=(no_third_job,))
    config = CampaignConfig(seed=11, max_examples=3_000, max_failures=2, report_dir=str(tmp_path))
    started = time.monotonic()
    result = run_campaign(target, "tests:two_bugs", config)
    wall = time.monotonic() - started
    assert len(result.findings) == 2
    first, second = result.findings
    assert first.examples_to_detect < second.examples_to_detect <= result.examples
    assert first.detected_after_s < second.detected_after_s
    assert second.detected_after_s + first.shrink_s <= wall
    assert first.shrink_s > 0 and second.shrink_s > 0
    assert second.detected_after_s + first.shrink_s + second.shrink_s <= result.elapsed_s + 0.01


def test_shrinking_stops_at_the_budget_plus_its_grace_and_keeps_the_smallest_so_far(tmp_path, monkeypatch) -> None:
    # Issue 15 item 7: the final shrink pass used to have no deadline. Every run here costs 30 ms.
    from harness.search import campaign

    def slow_build(clock):
        spin = time.perf_counter() + 0.03
        while time.perf_counter() < spin:
            pass
        return DoubleReleasePool(clock, 2)

    monkeypatch.setattr(campaign, "SHRINK_GRACE_S", 0.3)
    target = Target(build=slow_build, limit=2, menu=semaphore_pool.default_menu())
    started = time.monotonic()
    result = run_campaign(target, "tests:slow", CampaignConfig(seed=2, budget_s=0.2, report_dir=str(tmp_path)))
    assert time.monotonic() - started < 0.2 + 0.3 + 1.5  # budget, grace, and the final replays
    (finding,) = result.findings
    assert not finding.shrunk and result.stopped_by == "budget"
    assert finding.violation.invariant == "concurrency.limit" and finding.path.exists()
