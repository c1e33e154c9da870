"""``hedge_ms`` with ``timeout_ms``: a hedged request's timeout is the request's, from its first copy's start.

Before, ``time.timeout`` held each copy to T from its own start, and judged a loser cancelled at the answer
as cancelled early: every correct hedger with a deadline was a false alarm. Both ways here: the correct
hedgers of ``scenarios.hedge_deadline`` clean, every twin caught by its invariant (the hedging ones keep
their names with a deadline declared); long campaigns under ``slow``.
"""

from __future__ import annotations

from harness import ClockPolicy, JobSpec, Schedule, Submit, check, load_target, run_schedule

from fault_campaigns import STRATEGIES
from scenarios import CATALOG
from zoo_checks import Zoo, name_id

HEDGE = "scenarios.hedge_deadline"
HANG = JobSpec("hang")
TWINS = [s for s in CATALOG if s.target.startswith(f"{HEDGE}:") and s.expect != "pass"]
CORRECT = [s.target for s in CATALOG if s.target.startswith(f"{HEDGE}:") and s.expect == "pass"]
#: Every campaign searches on after a finding, so that every distinct alarm is counted.
ZOO = Zoo(tuple(CORRECT), tuple(TWINS), ids=name_id, search_on=True)


def _names(spec: str, *ops, clock: ClockPolicy | None = None) -> list[str]:
    run = run_schedule(load_target(spec), Schedule(tuple(ops), clock or ClockPolicy()))
    return [v.invariant for v in check(run)]


def test_copies_cancelled_at_the_requests_deadline_are_timed_out_not_cancelled_early():
    # copies at 0, 100 and 200ms, all hanging: all cancelled at 300ms, the caller fails with TimeoutError then
    assert _names(f"{HEDGE}:deadline_hedged_request", Submit(0, 0, HANG)) == []
    assert _names(f"{HEDGE}:deadline_hedged_call", Submit(0, 0, HANG)) == []


def test_losers_cancelled_at_the_answer_owe_no_timeout():
    # the second copy answers at 110ms; the first, hanging, is cancelled then
    assert _names(f"{HEDGE}:deadline_hedged_request", Submit(0, 0, HANG, then=(JobSpec("succeed", 10),))) == []
    assert _names(f"{HEDGE}:deadline_hedged_call", Submit(0, 0, HANG, then=(JobSpec("succeed", 10),))) == []


def test_on_a_stalled_reactor_a_copys_answer_may_beat_an_overdue_deadline():
    # The reactor wakes every second: the hedge (due 100ms) and the deadline (due 300ms) run at 1000ms in due
    # order, the new copy answers at once, before the deadline's timer.
    stalled = ClockPolicy(step_ms=1000)
    assert _names(f"{HEDGE}:deadline_hedged_request", Submit(0, 0, HANG, then=(JobSpec("value"),)), clock=stalled) == []


def test_what_main_called_a_false_alarm():
    # The message time.timeout gave on main: "job 0 was cancelled at 300ms, only 200ms after it started".
    from harness.invariants.time import Timeout

    run = run_schedule(load_target(f"{HEDGE}:deadline_hedged_request"), Schedule((Submit(0, 0, HANG),), ClockPolicy()))
    assert Timeout().check(run) is None


def test_twins_on_one_schedule():
    assert _names(f"{HEDGE}:no_deadline_hedged_request", Submit(0, 0, HANG))[0] == "time.timeout"
    assert _names(f"{HEDGE}:orphaning_deadline_hedged_request", Submit(0, 0, HANG))[0] == "time.timeout"
    assert _names(f"{HEDGE}:per_copy_deadline_hedged_request", Submit(0, 0, HANG))[0] == "time.timeout"
    assert _names(f"{HEDGE}:superseding_hedged_request", Submit(0, 0, HANG))[0] == "time.timeout"
    assert _names(f"{HEDGE}:deadline_keeps_losers", Submit(0, 0, JobSpec("succeed", 250),
                                                            then=(JobSpec("succeed", 250),))) == ["time.hedge_losers"]


test_correct_hedgers_pass_a_short_campaign = ZOO.clean(seed=7, examples=300, all_faults=True)
test_twins_are_caught_by_their_invariant = ZOO.caught(seeds=1, examples=1000)
test_correct_hedgers_pass_long_campaigns_with_every_clock_fault = ZOO.clean(
    seed=41, examples=1_500, strategies=STRATEGIES, all_faults=True, slow=True)
test_twins_are_caught_whatever_the_seed = ZOO.caught(seeds=[2, 3, 4], examples=2000, slow=True)
