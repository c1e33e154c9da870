"""Coverage feedback: the guided search keeps a schedule that took a new arc of the target's own code."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from harness import CampaignConfig, Target, load_target, run_campaign, run_schedule
from harness.run.lines import ArcTracer, target_source
from harness.search import coverage_feedback
from harness.search.coverage_feedback import QUIET, CoverageFeedback
from harness.search.generate import Examples, features
from harness.search.strategies import codec
from scenarios.pools import SemaphorePool

HERE = Path(__file__).resolve()


class ClockReadingPool(SemaphorePool):
    """A correct pool that notes, on a branch of its own, jobs finishing at an odd multiple of 10 ms."""

    odd = 0

    def submit(self, job: Any) -> defer.Deferred[Any]:
        def done(result: Any) -> Any:
            if int(round(self.clock.seconds() * 1000)) % 20:
                self.odd += 1  # only runs that finish at an odd multiple of 10 ms take this arc
            return result

        return super().submit(job).addBoth(done)


POOL = Target(build=lambda clock: ClockReadingPool(clock, 2), limit=2, order="fifo")


def _blob(duration_byte: int) -> bytes:
    """One ``succeed`` submission taking ``duration_byte`` grains of 10 ms."""
    width = codec(POOL.default_menu()).width
    return bytes(5) + bytes([0, duration_byte, 0, 0]).ljust(width, b"\0")


def _judged(examples: Examples, blob: bytes) -> Any:
    examples.last = (blob, True)
    with examples.watching():
        run = run_schedule(POOL, codec(POOL.default_menu()).decode_blob(blob))
    examples.feedback(run)
    return run


def test_the_tracer_records_only_the_targets_arcs_and_restores_no_tracer() -> None:
    tracer = ArcTracer([HERE])
    assert sys.gettrace() is None or pytest.skip("another tracer is installed (coverage run, a debugger)")
    with tracer.watching():
        run_schedule(POOL, codec(POOL.default_menu()).decode_blob(_blob(1)))
    assert tracer.active and sys.gettrace() is None
    assert tracer.arcs and {number for number, _, _ in tracer.arcs} == {0}  # this file only
    lines = {line for _, _, line in tracer.arcs}
    assert ClockReadingPool.submit.__code__.co_firstlineno + 2 in lines  # ``if`` inside ``done``
    with pytest.raises(ZeroDivisionError), tracer.watching():
        1 / 0
    assert sys.gettrace() is None


def test_the_tracer_stands_aside_for_a_tracer_already_installed() -> None:
    calls: list[str] = []

    def other(frame: Any, event: str, arg: Any) -> None:
        calls.append(event)

    before = sys.gettrace()
    sys.settrace(other)
    try:
        tracer = ArcTracer([HERE])
        with tracer.watching():
            run_schedule(POOL, codec(POOL.default_menu()).decode_blob(_blob(1)))
        assert sys.gettrace() is other
    finally:
        sys.settrace(before)
    assert not tracer.active and tracer.arcs == set() and calls  # the other tracer saw the run


def test_watching_does_not_change_the_trace() -> None:
    tracer = ArcTracer([HERE, *target_source("scenarios.pools:x")[1]])
    schedule = codec(POOL.default_menu()).decode_blob(bytes(range(5, 5 + 5 + 12 * 6)))
    plain = run_schedule(POOL, schedule).trace.digest()
    with tracer.watching():
        watched = run_schedule(POOL, schedule).trace.digest()
    assert watched == plain and len(tracer.arcs) > 3


def test_a_schedule_that_takes_a_new_arc_is_kept_even_without_a_new_trace_feature() -> None:
    with_coverage = Examples(POOL.default_menu(), 1, "guided", tracer=ArcTracer([HERE]))
    without = Examples(POOL.default_menu(), 1, "guided")
    for examples in (with_coverage, without):
        first = _judged(examples, _blob(2))  # finishes at 20 ms: the even path
        second = _judged(examples, _blob(3))  # finishes at 30 ms: the odd branch, the same trace features
        assert features(first) == features(second)
    assert with_coverage.pool == [_blob(2), _blob(3)]
    assert without.pool == [_blob(2)]
    assert with_coverage.coverage is not None and with_coverage.coverage.quiet == 0
    _judged(with_coverage, _blob(5))  # the odd branch again: nothing new
    assert len(with_coverage.pool) == 2 and with_coverage.coverage.quiet == 1


def test_the_feedback_watches_one_example_in_every_few_once_nothing_new_comes() -> None:
    feedback = CoverageFeedback(ArcTracer([HERE]))
    watched = []
    for _ in range(QUIET + 64):
        with feedback.watching():
            pass
        watched.append(feedback.watched)
        feedback.reached_new()
    assert all(watched[:QUIET]) and 0 < sum(watched[QUIET:]) <= 64 // coverage_feedback.EVERY + 1


def test_only_the_guided_strategies_get_a_tracer() -> None:
    assert coverage_feedback.tracer_for("scenarios.pools:semaphore_pool", "random") is None
    assert coverage_feedback.tracer_for("scenarios.pools:semaphore_pool", "guided") is not None
    assert coverage_feedback.tracer_for("no_such_module_anywhere:x", "mixed") is None


@pytest.mark.parametrize("strategy", ["guided", "mixed"])
def test_a_search_with_coverage_feedback_is_a_function_of_its_seed(strategy, tmp_path) -> None:
    spec = "scenarios.slow_lane:forgotten_slow_lane_client"

    def first_failure(feedback: bool) -> tuple[int | None, Any]:
        config = CampaignConfig(
            seed=1, max_examples=5_000, report_dir=str(tmp_path), strategy=strategy, coverage_feedback=feedback
        )
        (finding,) = run_campaign(load_target(spec), spec, config).findings
        return finding.examples_to_detect, finding.record.schedule

    on = first_failure(True)
    assert first_failure(True) == on
    if strategy == "guided":
        assert first_failure(False) != on  # the feedback changed what the search kept (seed 1: 68 vs 859 examples)


def _branch(flag: bool) -> int:
    if flag:
        return 1
    return 0


def test_only_the_first_calls_of_each_function_are_traced_in_a_run() -> None:
    first = _branch.__code__.co_firstlineno
    for cap, expected in ((1, {first + 1, first + 3}), (2, {first + 1, first + 2, first + 3})):
        tracer = ArcTracer([HERE], calls_per_function=cap)
        with tracer.watching():
            _branch(False)
            _branch(True)
        assert {line for _, _, line in tracer.arcs if line > 0} == expected


def test_a_long_run_stops_being_traced_after_so_many_calls_of_the_target() -> None:
    tracer = ArcTracer([HERE], calls_per_run=3)
    with tracer.watching():
        for _ in range(3):
            _branch(False)
        assert sys.gettrace() is not None
        _branch(True)  # the 4th call: tracing stops, this arc goes unseen
        assert sys.gettrace() is None
    first = _branch.__code__.co_firstlineno
    assert first + 2 not in {line for _, _, line in tracer.arcs} and sys.gettrace() is None


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["guided", "mixed"])
def test_the_hard_zoos_correct_twins_stay_clean_with_coverage_feedback(strategy, tmp_path) -> None:
    from test_scenarios_hard import CORRECT as TWINS  # the hard zoo is the one that test file checks

    assert len(TWINS) >= 7
    for twin in TWINS:
        config = CampaignConfig(
            seed=11, max_examples=1_500, report_dir=str(tmp_path), strategy=strategy, coverage_feedback=True
        )
        result = run_campaign(load_target(twin.target), twin.target, config)
        assert [f.record.message for f in result.findings] == [] and result.examples == 1_500, twin.target


def test_the_cli_turns_coverage_feedback_on_only_when_asked() -> None:
    from harness.cli.fuzz import fuzz_config
    from harness.cli.parser import build_parser

    parser = build_parser()
    base = ["fuzz", "scenarios.pools:semaphore_pool", "--seed", "1"]
    assert fuzz_config(parser.parse_args([*base, "--coverage-feedback"])).coverage_feedback is True
    assert fuzz_config(parser.parse_args(base)).coverage_feedback is False
