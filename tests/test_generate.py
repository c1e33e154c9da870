"""The search without Hypothesis: seeded byte strings decoded into schedules, and its strategies."""

from __future__ import annotations

from random import Random

import pytest

from harness import CampaignConfig, JobSpec, Menu, run_campaign, run_schedule
from harness.cli.main import main
from harness.search.generate import POOL_SIZE, STRATEGIES, Examples, features, mutate, swarm_menu
from harness.model.schedule import Cancel, Jump, Stop, Submit
from harness.search.strategies import codec
from scenarios.pools import double_release_pool, semaphore_pool

CORRECT = "scenarios.pools:semaphore_pool"
BUGGY = "scenarios.pools:double_release_pool"


def _played(tmp_path, strategy: str, seed: int = 4, examples: int = 150) -> list[str]:
    played: list[str] = []
    config = CampaignConfig(seed=seed, max_examples=examples, report_dir=str(tmp_path), strategy=strategy)
    run_campaign(semaphore_pool, CORRECT, config, on_run=lambda schedule, run: played.append(repr(schedule)))
    return played


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_is_a_function_of_its_seed(strategy, tmp_path) -> None:
    first = _played(tmp_path, strategy)
    assert len(first) == 150 and len(set(first)) > 100
    assert _played(tmp_path, strategy) == first
    assert _played(tmp_path, strategy, seed=5) != first


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_finds_the_double_release(strategy, tmp_path) -> None:
    config = CampaignConfig(seed=1, max_examples=2_000, report_dir=str(tmp_path), strategy=strategy)
    (finding,) = run_campaign(double_release_pool, BUGGY, config).findings
    assert finding.violation.invariant == "concurrency.limit" and finding.examples_to_detect < 200


def test_every_byte_string_decodes_within_the_menu() -> None:
    menu = Menu(max_ops=12, jumps=False, stops=True, job_kinds=("succeed", "hang"))
    random = Random(3)
    for size in range(0, 80):
        schedule = codec(menu).decode_blob(random.randbytes(size))
        assert len(schedule.ops) <= 12 and not any(isinstance(op, Jump) for op in schedule.ops)
        assert {op.spec.kind for op in schedule.ops if isinstance(op, Submit)} <= {"succeed", "hang"}
        assert sum(isinstance(op, Stop) for op in schedule.ops) <= 1


def test_swarm_examples_each_use_a_random_part_of_the_menu() -> None:
    menu = semaphore_pool.default_menu()
    random = Random(1)
    parts = [swarm_menu(menu, random) for _ in range(200)]
    for part in parts:
        assert set(part.job_kinds) <= set(menu.job_kinds) and part.job_kinds
        assert set(part.tie_breaks) <= set(menu.tie_breaks) and set(part.errors) <= set(menu.errors)
        assert part.jumps <= menu.jumps and part.cancels <= menu.cancels and part.stops <= menu.stops
    assert {part.cancels for part in parts} == {True, False}
    assert len({part.job_kinds for part in parts}) > 20
    # A swarm example with cancels switched off has none.
    examples = Examples(menu, 2, "swarm")
    schedules = [next(examples) for _ in range(200)]
    assert any(not any(isinstance(op, Cancel) for op in s.ops) and len(s.ops) > 8 for s in schedules)


def test_guided_keeps_what_reached_new_features_and_stays_bounded() -> None:
    examples = Examples(semaphore_pool.default_menu(), 3, "guided")
    grown = []
    for _ in range(600):
        schedule = next(examples)
        examples.feedback(run_schedule(semaphore_pool, schedule))
        grown.append(len(examples.pool))
    assert 0 < grown[50] <= grown[-1] <= POOL_SIZE
    assert grown[-1] < 600  # only examples that reached something new are kept
    assert all(kind for kind, running, waiting in examples.features)
    # A run's features say how many jobs ran and waited when each event happened.
    menu = semaphore_pool.default_menu()
    record = bytes([0, 10, 0, 0]).ljust(codec(menu).width, b"\0")  # a succeed taking 100 ms, no gap
    run = run_schedule(semaphore_pool, codec(menu).decode_blob(bytes(5) + record * 4))
    assert ("submit", 2, 2) in features(run)  # four submits in one instant, two slots: the last sees 2 and 2


def test_mutations_keep_whole_records_within_the_menus_bounds() -> None:
    menu = Menu(max_ops=6, min_ops=2)
    width = codec(menu).width
    random = Random(5)
    blob = bytes(5 + 3 * width)
    for _ in range(500):
        changed = mutate(blob, width, menu, random)
        assert (len(changed) - 5) % width == 0 and 2 * width <= len(changed) - 5 <= 6 * width
        blob = changed


def test_fuzz_takes_a_strategy_and_refuses_an_unknown_one(tmp_path, capsys) -> None:
    argv = ["fuzz", BUGGY, "--seed", "1", "--no-database", "--report-dir", str(tmp_path)]
    assert main([*argv, "--strategy", "swarm"]) == 1
    capsys.readouterr()
    assert main([*argv, "--strategy", "telepathy"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'telepathy'" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="unknown search strategy"):
        run_campaign(double_release_pool, BUGGY, CampaignConfig(strategy="telepathy"))


def test_pct_runs_its_change_point_calls_last_in_their_instant() -> None:
    from harness.run.clock import FaultClock

    for seed in range(100):
        clock = FaultClock("pct", seed, depth=3)
        order: list[int] = []
        for index in range(1, 65):  # creation numbers 1..64: every change point falls among them
            clock.callLater(1, order.append, index)
        clock.advance(1)
        lowered = sorted(clock._changes, key=clock._changes.get)
        assert len(lowered) == 2 and order[-2:] == lowered
        again = FaultClock("pct", seed, depth=3)
        repeat: list[int] = []
        for index in range(1, 65):
            again.callLater(1, repeat.append, index)
        again.advance(1)
        assert repeat == order  # seeded
    depth_one = FaultClock("pct", 1, depth=1)
    assert depth_one._changes == {}


def test_pct_schedules_carry_their_depth_through_json() -> None:
    from harness.model.schedule import ClockPolicy, Schedule

    pct = Schedule((Submit(0, 0, JobSpec()),), ClockPolicy("pct", seed=4, depth=5))
    assert Schedule.from_json(pct.to_json()) == pct
    plain = Schedule((Submit(0, 0, JobSpec()),), ClockPolicy("shuffle", seed=4))
    assert "depth" not in plain.to_json()["clock"]  # every other schedule's JSON is as before
    examples = Examples(semaphore_pool.default_menu(), 1, "pct", depth=4)
    assert all(s.clock.tie_break == "pct" and s.clock.depth == 4 for s in (next(examples) for _ in range(20)))


def test_mixed_draws_each_part_in_its_share() -> None:
    from harness.search.generate import MIXED

    assert {name for name, _ in MIXED} == set(STRATEGIES) - {"mixed"}
    assert abs(sum(share for _, share in MIXED) - 1) < 1e-9
    examples = Examples(semaphore_pool.default_menu(), seed=11, strategy="mixed")
    drawn = [next(examples).clock.tie_break == "pct" for _ in range(4_000)]
    assert abs(sum(drawn) / len(drawn) - dict(MIXED)["pct"]) < 0.03  # only pct's examples run under the pct order
