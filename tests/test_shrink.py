"""Shrinking: operations move earlier in time, and the invariant found first is the one kept."""

from __future__ import annotations

from harness import CampaignConfig, JobSpec, Menu, Schedule, Submit, Target, run_campaign
from harness.model.schedule import Cancel, Jump, Start, Stop
from harness.search.shrink import PASSES, _merge_jumps, _shorten_chains, _simpler_specs, shrink_schedule
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


# -- behaviour chains (review 4, finding 12) ---------------------------------------------------------------


def test_a_chain_loses_its_leading_behaviours_and_keeps_the_one_that_breaks() -> None:
    # Fails while some job has a failure lasting 100 ms or more among its behaviours: the two before
    # it go (dropping the later ones alone never reached that), and its error becomes the default one.
    chain = (JobSpec("hang"), JobSpec("fail", 500, "ConnectionError"), JobSpec("succeed", 20))
    start = Schedule((Submit(0, 0, JobSpec("succeed", 30), then=chain),))

    def fails(schedule: Schedule) -> bool:
        return any(spec.kind == "fail" and spec.after_ms >= 100 for op in schedule.ops for spec in op.specs)

    assert shrink_schedule(start, fails).ops == (Submit(0, 0, JobSpec("fail", 500)),)


def test_the_later_behaviours_of_a_chain_are_simplified_too() -> None:
    # Fails while a job's second behaviour fails: it stays, with no duration and the default error.
    start = Schedule((Submit(0, 0, JobSpec("fail", 10), then=(JobSpec("fail", 300, "ConnectionError"),)),))

    def fails(schedule: Schedule) -> bool:
        return any(len(op.specs) == 2 and op.specs[1].fails for op in schedule.ops)

    assert shrink_schedule(start, fails).ops == (Submit(0, 0, JobSpec(), then=(JobSpec("fail"),)),)


def test_a_chain_keeps_its_lead_when_dropping_it_breaks_something_else() -> None:
    # The verdict a chain without its lead gets is another invariant's ("B"): shrinking keeps to "A".
    start = Schedule((Start(0, 0, JobSpec("succeed", 40), then=(JobSpec("fail", 920, "ConnectionError"),)), Stop(500)))
    tried: list[Schedule] = []

    def verdict(schedule: Schedule) -> str | None:
        starts = [op for op in schedule.ops if isinstance(op, Start)]
        if not starts or not any(spec.fails for spec in starts[0].specs):
            return None
        return "A" if starts[0].then else "B"

    def fails(schedule: Schedule) -> bool:
        tried.append(schedule)
        return verdict(schedule) == "A"

    shrunk = shrink_schedule(start, fails)
    [start_op] = [op for op in shrunk.ops if isinstance(op, Start)]
    assert len(start_op.specs) == 2 and start_op.then == (JobSpec("fail"),)
    assert any(verdict(candidate) == "B" for candidate in tried)  # proposed, and refused
    assert shrink_schedule(start, fails) == shrunk  # deterministic


def test_the_chain_pass_proposes_only_smaller_schedules() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec("fail", 20), then=(JobSpec("raise", 5, "ValueError", True), JobSpec("hang"))),))
    [op] = schedule.ops
    for candidate in _shorten_chains(schedule):
        [shorter] = candidate.ops
        if len(shorter.specs) < len(op.specs):
            assert shorter.specs == op.specs[1:]
            continue
        changed = [i for i in range(len(op.specs)) if shorter.specs[i] != op.specs[i]]
        assert len(changed) == 1 and changed[0] > 0 and shorter.specs[changed[0]] in set(_simpler_specs(op.specs[changed[0]]))


# -- wall-clock jumps in a row (review 7, finding 4) -------------------------------------------------------


def _jumped_back(schedule: Schedule) -> bool:
    """Fails while the wall clock went back 4.5 s or more in all, with a submission before."""
    return bool(schedule.ops) and isinstance(schedule.ops[0], Submit) and sum(op.delta_ms for op in schedule.ops if isinstance(op, Jump)) <= -4500


def test_jumps_in_a_row_shrink_to_one_jump_of_their_sum() -> None:
    # No jump alone goes back far enough, so no deletion helps; merged, one jump of the sum remains.
    start = Schedule((Submit(0, 0, JobSpec()), Jump(40, -470), Jump(60, -2240), Jump(90, -2250)))
    shrunk = shrink_schedule(start, _jumped_back, max_jump_ms=5_000)
    assert shrunk.ops == (Submit(0, 0, JobSpec()), Jump(0, -4960))
    assert shrink_schedule(start, _jumped_back, max_jump_ms=5_000) == shrunk  # deterministic
    # Without the menu's bound the jumps stay apart (as before): the pass needs the bound.
    assert sum(isinstance(op, Jump) for op in shrink_schedule(start, _jumped_back).ops) == 3


def test_jumps_merge_only_within_the_menus_bound_and_only_while_the_same_failure_holds() -> None:
    start = Schedule((Submit(0, 0, JobSpec()), Jump(0, -2450), Jump(0, -2410)))
    # A sum past max_jump_ms is a schedule the menu could not have drawn: never proposed.
    assert list(_merge_jumps(start, 4_000)) == []
    assert [c.ops[1:] for c in _merge_jumps(start, 5_000)] == [(Jump(0, -4860),), (Jump(0, -4860),)]
    # A failure that needs two jumps (say, two readings of seconds() going back) keeps both.
    def two_jumps(schedule: Schedule) -> bool:
        return _jumped_back(schedule) and sum(isinstance(op, Jump) for op in schedule.ops) == 2
    assert shrink_schedule(start, two_jumps, max_jump_ms=5_000) == start
    # Jumps with another operation between them are not "in a row"; a zero sum is left to deletion.
    apart = Schedule((Jump(0, -2450), Submit(0, 0, JobSpec()), Jump(0, -2410), Jump(0, 2410)))
    assert [c.ops for c in _merge_jumps(apart, 5_000)] == []


def test_the_jump_merge_proposes_only_smaller_schedules() -> None:
    schedule = Schedule((Submit(0, 0, JobSpec()), Jump(10, -300, after_rounds=1), Jump(30, 200), Jump(50, -100)))
    candidates = list(_merge_jumps(schedule, 5_000))
    assert len(candidates) == 4
    for candidate in candidates:
        assert len(candidate.ops) == len(schedule.ops) - 1
        assert sum(op.at_ms for op in candidate.ops) < sum(op.at_ms for op in schedule.ops)
    # The merged jump keeps the time and landing of the first jump, then of the second.
    assert candidates[0].ops[1] == Jump(10, -100, after_rounds=1) and candidates[1].ops[1] == Jump(30, -100)
