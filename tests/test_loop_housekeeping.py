"""``time.loop_died`` beside housekeeping timers: a logged error is the loop's report of its end unless the loop's
own timers tick on (``harness.run.chains.loop_timers``).

The false alarm fixed here: a loop that ends at an error and logs it (``TimerService``) was called stuck when any
other timer of the subject was set after the failure (a stats ``LoopingCall``, a cache sweeper), or when its report
was a one-shot ``callLater(0, ...)``. Both ways: the correct subjects of ``scenarios.housekeeping`` (and Twisted's
``TimerService``) clean, every twin caught by ``time.loop_died``, the catalog's logging-and-stuck twins too.
"""

from __future__ import annotations

import pytest

from harness import ClockPolicy, JobSpec, Schedule, Start, Stop, check, load_target, run_schedule
from harness.model.trace import EventKind
from harness.run.chains import loop_timers, timer_number

from fault_campaigns import STRATEGIES
from review_campaigns import campaign

HOUSEKEEPING = "scenarios.housekeeping"
CORRECT = ["service_with_stats", "caching_poller", "reporting_poller"]
TWINS = ["swallowing_service_with_stats", "stuck_caching_poller"]
#: Catalog and review twins that log each failure (or die silently) while timers of the subject run on.
OTHER_TWINS = [
    "scenarios.review.round4.mistakes:cron_stuck_logs_builtin_only",
    "scenarios.poller:silent_poller",
]
FAILURES = [
    (Start(0, 0, JobSpec("fail", 10)), Stop(1000)),
    (Start(0, 0, JobSpec("raise")), Stop(1000)),
    (Start(0, 0, JobSpec("immediate"), then=(JobSpec("fail", 10),)), Stop(1000)),
    (Start(0, 0, JobSpec("value"), then=(JobSpec("value"), JobSpec("raise"))), Stop(1000)),
    (Start(0, 0, JobSpec("succeed", 30), then=(JobSpec("fail", 30),)), Stop(1500)),
]


def _verdicts(spec: str, ops, clock: ClockPolicy | None = None) -> list[tuple[str, str]]:
    run = run_schedule(load_target(spec), Schedule(tuple(ops), clock or ClockPolicy()))
    return [(v.invariant, v.message) for v in check(run)]


# -- loop_timers: which timers are the loop's ------------------------------------------------------------

def _trace(*events: tuple[int, str, int, int, str]) -> list[tuple[int, str, int, int, str]]:
    """Events as the trace records them (times in ms here, for reading)."""
    return [(t_ms * 1000, EventKind(kind), job, attempt, detail) for t_ms, kind, job, attempt, detail in events]


def test_the_loop_timers_are_those_that_call_the_work_and_their_line():
    events = _trace(
        (0, "start", 0, 0, ""),
        (0, "timer.set", -1, 0, "#1 Runner._tick due 100ms"),  # set in start(): the loop's once it calls the work
        (0, "timer.set", -1, 0, "#2 LoopingCall due 250ms"),  # a stats loop set in start(): never calls the work
        (100, "timer.fire", -1, 0, "#1 Runner._tick"),
        (100, "job.start", 0, 0, "fail"),
        (100, "timer.set", -1, 0, "#3 Runner._tick due 200ms"),  # set by the loop's firing
        (110, "job.fail", 0, 0, "InjectedError"),  # the harness settling the call: the loop's chain
        (110, "timer.set", -1, 0, "#4 Runner._report due 110ms"),
        (200, "timer.fire", -1, 0, "#3 Runner._tick"),
        (200, "timer.set", -1, 0, "#5 Runner._tick due 300ms"),
        (250, "timer.fire", -1, 0, "#2 LoopingCall"),
        (250, "timer.set", -1, 0, "#6 LoopingCall due 500ms"),  # the stats loop's line
    )
    assert loop_timers(events, 0) == {1: None, 3: 1, 4: None, 5: 3}


def test_a_call_that_returns_at_once_leaves_its_callers_chain_open():
    # TimerService's first call raises inside start(): the stats loop set next in start() is not the loop's.
    events = _trace(
        (0, "start", 0, 0, ""),
        (0, "job.start", 0, 0, "raise"),
        (0, "job.fail", 0, 0, "InjectedError"),
        (0, "log.error", -1, 0, "InjectedError: injected by job 0 attempt 0"),
        (0, "timer.set", -1, 0, "#1 LoopingCall due 250ms"),
        (250, "timer.fire", -1, 0, "#1 LoopingCall"),
        (250, "timer.set", -1, 0, "#2 LoopingCall due 500ms"),
    )
    assert loop_timers(events, 0) == {}


def test_a_timer_number_is_read_from_its_label():
    assert timer_number("#12 Poller._poll due 100ms") == 12
    assert timer_number("#3 LoopingCall") == 3
    assert timer_number("no label") is None and timer_number("#x y") is None


# -- both ways, on given schedules -------------------------------------------------------------------------

@pytest.mark.parametrize("ops", FAILURES, ids=range(len(FAILURES)))
@pytest.mark.parametrize("name", CORRECT)
def test_a_loop_that_logs_its_end_beside_housekeeping_is_clean(name, ops):
    assert _verdicts(f"{HOUSEKEEPING}:{name}", ops) == []


@pytest.mark.parametrize("ops", FAILURES, ids=range(len(FAILURES)))
def test_timer_service_stays_clean(ops):
    assert _verdicts("scenarios.thirdparty.twisted_extra:timer_service", ops) == []


@pytest.mark.parametrize("ops", FAILURES, ids=range(len(FAILURES)))
@pytest.mark.parametrize("name", TWINS)
def test_a_loop_dead_beside_housekeeping_is_caught(name, ops):
    [(invariant, message)] = _verdicts(f"{HOUSEKEEPING}:{name}", ops)
    assert invariant == "time.loop_died"
    if name == "stuck_caching_poller":
        assert "the loop kept setting timers of its own (#" in message and "StuckCachingPoller._tick" in message
    else:
        assert "the error was not reported" in message


def test_the_stuck_message_names_the_loops_own_timer():
    [(invariant, message)] = _verdicts(OTHER_TWINS[0], (Start(0, 0, JobSpec("fail", 10)), Stop(1000)))
    assert invariant == "time.loop_died"
    assert message.endswith(
        "yet the loop did not report its end: an error was logged, but the loop kept setting timers of its own "
        "(#5 CronRunner._tick, set at 200ms) without calling its work (stuck, not ended; a loop that ends on purpose "
        "calls report_end)")


def test_main_called_the_housekeeping_subjects_dead():
    # What the fix changes, on the schedule that showed it: the failure logged at 10ms, the stats loop ticking on.
    assert _verdicts(f"{HOUSEKEEPING}:service_with_stats", FAILURES[0]) == []
    assert [v for v, _ in _verdicts(f"{HOUSEKEEPING}:swallowing_service_with_stats", FAILURES[0])] == ["time.loop_died"]


# -- campaigns -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", CORRECT)
def test_correct_subjects_pass_a_short_campaign(name, tmp_path):
    result = campaign(f"{HOUSEKEEPING}:{name}", seed=3, examples=300, tmp_path=tmp_path, max_failures=None, all_faults=True)
    assert [f.record.message for f in result.findings] == [] and result.examples == 300


@pytest.mark.parametrize("spec", [f"{HOUSEKEEPING}:{n}" for n in TWINS] + OTHER_TWINS)
def test_twins_are_caught_by_loop_died(spec, tmp_path):
    result = campaign(spec, seed=1, examples=500, tmp_path=tmp_path, max_failures=None)
    assert result.findings, f"{spec} not caught in {result.examples} examples"
    assert result.findings[0].record.invariant == "time.loop_died", result.findings[0].record.message


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("spec", [f"{HOUSEKEEPING}:{n}" for n in CORRECT] + ["scenarios.thirdparty.twisted_extra:timer_service"])
def test_correct_subjects_pass_long_campaigns_with_every_clock_fault(spec, strategy, tmp_path):
    result = campaign(spec, seed=21, examples=2_000, tmp_path=tmp_path, max_failures=None, strategy=strategy, all_faults=True)
    assert [f.record.message for f in result.findings] == [] and result.examples == 2_000
