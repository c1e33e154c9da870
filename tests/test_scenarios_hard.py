"""The hard zoo: bugs that need a rare window; each reference twin passes, each buggy subject is caught."""

from __future__ import annotations

import pytest

from harness import CampaignConfig, load_target, run_campaign
from scenarios import HARD_MODULES, zoo

from zoo_checks import Zoo, assert_caught, campaign

#: Rare windows that a stalled reactor (a stride) opens wide: the default search finds them in under 50 examples.
#: Kept for the window they model; the rarity assertions skip them.
EASY = ("scenarios.timeout_tie:double_fire_timeouts", "scenarios.drift_ticker:skip_one_ticker")
ZOO = Zoo.of(zoo(*HARD_MODULES))
CORRECT, BUGGY = ZOO.correct, ZOO.buggy

test_reference_twin_passes_a_campaign = ZOO.clean(seed=300, examples=1_000)
test_reference_twin_passes_long_campaigns_with_every_strategy = ZOO.clean(
    seed=301, examples=1_200, strategies=["mixed", "random", "swarm", "guided", "pct"], slow=True, counted=False)
# One seed can be lucky (seed 2 hits two windows within 3 examples): rarity is judged over
# the other seeds by the slow test below, and over ten per strategy by benchmarks/bench.py.
test_buggy_subject_is_caught_by_its_invariant = ZOO.caught(seeds=2, examples=30_000, only=True, shrunk=True)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", BUGGY, ids=[ZOO.ids(s) for s in BUGGY])
def test_buggy_subject_is_caught_with_every_seed_and_rarely_at_once(scenario, tmp_path) -> None:
    # Seeds 1 to 5, seed 2 being the test above: the same campaign (its budget is only a cap: a
    # campaign stops at its first finding), so it is not run twice. Rarely at once: three of the
    # four others need more than 20 examples (so three of all five do, whatever seed 2 needed).
    found = []
    for seed in (1, 3, 4, 5):
        result = campaign(scenario.target, seed, 60_000, tmp_path)
        assert_caught(scenario, result, only=True, shrunk=True)
        found.append(result.findings[0].examples_to_detect)
    assert scenario.target in EASY or sorted(found)[1] > 20, found


def test_the_handoff_window_needs_a_late_timer(tmp_path) -> None:
    # On a punctual reactor the callLater(0) handoff runs before any cancel can land, unless the cancel
    # is I/O handled between two passes of the reactor (after_rounds): without those, never found.
    from dataclasses import replace

    lost = load_target("scenarios.handoff:lost_handoff_pool")
    punctual = replace(lost, menu=replace(lost.default_menu(), jitters_ms=(0,), steps_ms=(0,), landings=False))
    config = CampaignConfig(seed=1, max_examples=2_000, report_dir=str(tmp_path), strategy="random")
    assert run_campaign(punctual, "scenarios.handoff:lost_handoff_pool", config).findings == []
    # With landings, a cancel between the handoff's rounds finds it on a punctual reactor too.
    between = replace(lost, menu=replace(lost.default_menu(), jitters_ms=(0,), steps_ms=(0,)))
    [finding] = run_campaign(between, "scenarios.handoff:lost_handoff_pool", config).findings
    assert any(op.after_rounds is not None for op in finding.record.schedule.ops)


def test_the_shed_throttle_needs_one_order_of_three_tied_calls(tmp_path) -> None:
    # Creation order and its reverse never run "later shed, permit, earlier shed": only a shuffled tie does.
    from dataclasses import replace

    spec = "scenarios.shed_throttle:head_dropping_throttle"
    throttle = load_target(spec)
    ordered = replace(throttle, menu=replace(throttle.default_menu(), tie_breaks=("fifo", "lifo")))
    config = CampaignConfig(seed=1, max_examples=3_000, report_dir=str(tmp_path), strategy="random")
    assert run_campaign(ordered, spec, config).findings == []


def test_the_polled_lanes_window_needs_a_late_wake_or_a_jump(tmp_path) -> None:
    # A punctual reactor with a steady wall clock never runs the urgent poll and the bulk poll in one turn.
    from dataclasses import replace

    spec = "scenarios.polled_lanes:late_count_scheduler"
    lanes = load_target(spec)
    punctual = replace(lanes, menu=replace(lanes.default_menu(), jitters_ms=(0,), steps_ms=(0,), jumps=False))
    config = CampaignConfig(seed=1, max_examples=1_000, report_dir=str(tmp_path), strategy="random")
    assert run_campaign(punctual, spec, config).findings == []


def test_the_retry_sweep_window_needs_a_wall_clock_jump(tmp_path) -> None:
    # The sweep is due 40 ms after the poll that scheduled it and the next poll 100 ms after: without a jump
    # moving the poll's wall-clock due times, no late wake or stall runs a poll ahead of a pending sweep.
    from dataclasses import replace

    spec = "scenarios.retry_sweep:late_claim_runner"
    runner = load_target(spec)
    steady = replace(runner, menu=replace(runner.default_menu(), jumps=False))
    config = CampaignConfig(seed=1, max_examples=1_500, report_dir=str(tmp_path), strategy="random")
    assert run_campaign(steady, spec, config).findings == []
