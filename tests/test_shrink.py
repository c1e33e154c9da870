"""Shrinking: operations move earlier in time, and the invariant found first is the one kept."""

from __future__ import annotations

from harness import CampaignConfig, JobSpec, Menu, Schedule, Submit, Target, run_campaign
from harness.model.schedule import Cancel, Stop
from harness.search.shrink import PASSES, shrink_schedule
from scenarios.pools import SemaphorePool
from scenarios.rate_limit import fixed_window_limiter

WINDOW = "scenarios.rate_limit:fixed_window_limiter"


def test_the_fixed_window_limiter_shrinks_to_three_submissions_at_the_start(tmp_path) -> None:
    # Three submissions in one instant suffice: two start, the third starts at the next window
    # boundary. Closing whole gaps could not move them earlier than that boundary allows.
    for seed in range(3):
        result = run_campaign(fixed_window_limiter, WINDOW, CampaignConfig(seed=seed, report_dir=str(tmp_path)))
        (finding,) = result.findings
        ops = finding.record.schedule.ops
        assert finding.violation.invariant == "time.early" and finding.shrunk
        # The teardown pass may add the earliest stop that keeps the failure (its trace then reads shorter).
        submits = [op for op in ops if isinstance(op, Submit)]
        assert len(submits) == 3 and all(isinstance(op, (Submit, Stop)) for op in ops) and len(ops) <= 4
        assert all(op.at_ms < 10 for op in submits), ops


def test_one_operation_moves_into_the_instant_of_the_one_before() -> None:
    # Fails while two submissions share an instant and a third comes 120 ms or more after them:
    # only moving one submission alone, not the ones after it, reaches the smallest such schedule.
    start = Schedule((Submit(0, 0, JobSpec()), Submit(30, 1, JobSpec()), Submit(125, 2, JobSpec())))

    def fails(schedule: Schedule) -> bool:
        times = [op.at_ms for op in schedule.ops]
        pairs = [t for t in set(times) if times.count(t) >= 2]
        return len(times) == 3 and any(later - t >= 120 for t in pairs for later in times)

    shrunk = shrink_schedule(start, fails)
    assert [op.at_ms for op in shrunk.ops] == [0, 0, 120]


def test_every_pass_proposes_only_smaller_schedules() -> None:
    # The measure every pass must lower, so shrinking always ends.
    def measure(schedule: Schedule) -> tuple[int, int]:
        return len(schedule.ops), sum(op.at_ms for op in schedule.ops)

    schedule = Schedule(
        (Submit(0, 0, JobSpec("fail", 20)), Submit(40, 1, JobSpec("hang")), Cancel(40, 1), Submit(90, 2, JobSpec()))
    )
    for shrink_pass in PASSES:
        for candidate in shrink_pass(schedule):
            assert measure(candidate) <= measure(schedule)
            assert candidate != schedule


def test_shrinking_never_trades_the_invariant_found_first_for_another(tmp_path) -> None:
    # `crowded_cancel` (three submissions and a cancel) is checked first; `crowded` (two submissions)
    # breaks on schedules half that size. Long schedules break both, so `crowded_cancel` is found
    # first; shrinking must keep its three submissions and cancel, though two submissions still fail.
    def crowded_cancel(run) -> None:
        submits = sum(1 for e in run.trace if e.kind == "submit")
        assert not (submits >= 3 and any(e.kind == "cancel" for e in run.trace)), "three submissions and a cancel"

    def crowded(run) -> None:
        assert sum(1 for e in run.trace if e.kind == "submit") < 2, "two submissions"

    target = Target(
        build=lambda clock: SemaphorePool(clock, 2),
        limit=2,
        invariants=(crowded_cancel, crowded),
        menu=Menu(min_ops=14, max_ops=16, jumps=False),
    )
    result = run_campaign(target, "tests:two", CampaignConfig(seed=1, max_examples=500, report_dir=str(tmp_path)))
    (finding,) = result.findings
    assert finding.violation.invariant == "user.crowded_cancel"
    ops = finding.record.schedule.ops
    assert sum(isinstance(op, Cancel) for op in ops) == 1 and sum(isinstance(op, Submit) for op in ops) == 3
