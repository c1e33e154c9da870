"""buildbot's Twisted utilities (``scenarios.thirdparty.buildbot_utils``), both ways.

Each correct target (buildbot's ``debounce.method``, ``poll.method`` and ``AsyncLRUCache`` with a
user's glue, declaring what buildbot's developer docs promise) stays clean over a bounded
campaign, a longer one in the slow tier (``benchmarks/soak.py --only buildbot_utils`` runs them
with every clock fault on); each twin is caught with the invariant named in ``EXPECTED``, shrunk
and replayed exactly. One twin is a real bug from buildbot's history: the ``Debouncer`` before
buildbot PR #6853, whose ``stop()`` dropped a call queued behind the running invocation; it is
shown here in plain Twisted too (``task.Clock``, no harness). The tests skip without buildbot
(``pip install -e '.[thirdparty]'``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import Call, ClockPolicy, JobSpec, Schedule, Start, Stop, Submit, check, load_target, run_schedule
from review_campaigns import assert_listed_needing, assert_listed_without, assert_tabled, assert_twin_caught
from review_campaigns import campaign, needs_extra, spec_id
from scenarios.thirdparty import BUILDBOT, KNOWN_FALSE_ALARMS, SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
CORRECT = tuple(s.target for s in SCENARIOS if s.target.startswith(BUILDBOT + ":"))

#: The twins and the invariant that must catch each.
EXPECTED = {
    f"{BUILDBOT}:debounce_stop_drops_queued": "user.invoked_within_wait",
    f"{BUILDBOT}:poll_forced_skipped_while_running": "user.forced_poll_at_once",
    f"{BUILDBOT}:async_lru_no_inflight": "concurrency.key_limit",
}

needs_buildbot = needs_extra("buildbot", CORRECT)


# --- the catalogue (no buildbot needed) ------------------------------------------------------------


def test_the_correct_targets_are_listed_as_passing_scenarios_needing_buildbot() -> None:
    assert_listed_needing(CORRECT, [
        "debounced", "polled", "polled_now", "poll_forced", "repeated_action", "repeated_action_restarted",
        "repeated_action_after_completion", "async_lru",
    ], "buildbot")


def test_the_scenarios_page_tables_every_target_and_twin() -> None:
    assert_tabled(CORRECT, EXPECTED)


def test_without_buildbot_list_works_and_loading_says_what_to_install() -> None:
    assert_listed_without("buildbot", BUILDBOT, f"{BUILDBOT}:debounced")


# --- both ways, fast tier --------------------------------------------------------------------------


def _params(specs: tuple[str, ...]) -> list:  # type: ignore[type-arg]
    """The specs, a known false alarm of the harness marked ``xfail`` naming it."""
    return [pytest.param(spec, id=spec_id(spec), marks=[pytest.mark.xfail(strict=False, reason=KNOWN_FALSE_ALARMS[spec])]
                         if spec in KNOWN_FALSE_ALARMS else []) for spec in specs]


@needs_buildbot
@pytest.mark.parametrize("spec", _params(CORRECT))
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=11, examples=400, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 400


@needs_buildbot
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_twin_is_caught_shrunk_and_replayed_exactly(spec: str, tmp_path) -> None:
    assert_twin_caught(spec, EXPECTED[spec], tmp_path)


# --- buildbot PR #6853, by hand ----------------------------------------------------------------------

#: The schedule the campaign shrinks the pre-#6853 Debouncer to: an invocation runs (job 0, 710 ms),
#: a call comes during it (job 1, queued behind it), and stop() right after.
PR6853 = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=710)),
    Submit(at_ms=100, job=1, spec=JobSpec(kind="succeed", after_ms=0)),
    Stop(at_ms=100),
))


@needs_buildbot
def test_stop_invokes_the_call_queued_behind_the_running_invocation() -> None:
    run = run_schedule(load_target(f"{BUILDBOT}:debounced"), PR6853)
    assert check(run) == []
    assert [a.start_us for a in run.view.attempts()] == [100_000, 810_000]  # job 1 invoked at once after job 0


@needs_buildbot
def test_the_debouncer_before_pr6853_drops_it() -> None:
    run = run_schedule(load_target(f"{BUILDBOT}:debounce_stop_drops_queued"), PR6853)
    [violation] = check(run)
    assert violation.invariant == "user.invoked_within_wait"
    assert "job 1 called the debounced method at 100ms, but no invocation served it" in violation.message


@needs_buildbot
def test_pr6853_in_plain_twisted() -> None:
    """The bug outside the harness: ``task.Clock``, a debounced method that takes 0.7 s, a call
    while it runs, then ``stop()``: the fixed Debouncer runs the method again, the old one does not."""
    from twisted.internet import task

    from buildbot.util import debounce
    from scenarios.thirdparty.buildbot_utils import DebouncerBeforePR6853

    for cls, expected in ((debounce.Debouncer, 2), (DebouncerBeforePR6853, 1)):
        clock, calls = task.Clock(), []

        def method() -> object:
            calls.append(clock.seconds())
            return task.deferLater(clock, 0.7, lambda: None)

        debouncer = cls(0.1, method, lambda: clock, False)  # wait, function, get_reactor, until_idle
        debouncer()              # a call: invoked at 0.1
        clock.advance(0.1)
        debouncer()              # a call while it runs: queued
        stopped = debouncer.stop()
        clock.advance(0.7)
        clock.advance(0.7)
        assert stopped.called and len(calls) == expected, cls.__name__


# --- a bug in buildbot 4.3.0: RepeatedActionHandler restarted while its action runs --------------------

RESTARTED = f"{BUILDBOT}:repeated_action_after_completion_restarted"
#: Each names the bug: two timer chains (calls too close: time.early; one while the other runs:
#: time.overlap) and the orphaned chain's call after stop() (time.after_stop).
RESTARTED_CAUGHT_BY = {"time.early", "time.overlap", "time.after_stop"}
#: The keepalive's action takes 60 ms; it is detached and re-attached (stop(), start()) while it runs.
RESTART_WHILE_RUNNING = Schedule(ops=(
    Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=60)),
    Call(at_ms=100, operation="restart"),
    Stop(at_ms=200),
))


@needs_buildbot
def test_a_restart_while_the_action_runs_starts_a_second_timer_chain() -> None:
    run = run_schedule(load_target(RESTARTED), RESTART_WHILE_RUNNING)
    starts = [a.start_us // 1000 for a in run.view.attempts()]
    assert starts == [100, 200, 260]  # 200: the timer start() armed; 260: the one the finished action armed
    violations = check(run)
    assert violations[0].invariant == "time.early"
    assert {v.invariant for v in violations} <= RESTARTED_CAUGHT_BY
    # The same schedule on the default mode (timer armed before the action) is clean.
    assert check(run_schedule(load_target(f"{BUILDBOT}:repeated_action_restarted"), RESTART_WHILE_RUNNING)) == []


#: A failed action at 100 ms, then the keepalive re-attached at 150, 240 and 330 ms (each restart
#: re-arms the timer 100 ms on), stopped at 420 ms: no action after the failed one, on purpose.
RESTARTS_AFTER_A_FAILURE = Schedule(ops=(
    Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=0)),
    Call(at_ms=150, operation="restart"),
    Call(at_ms=240, operation="restart"),
    Call(at_ms=330, operation="restart"),
    Stop(at_ms=420),
))


@needs_buildbot
def test_restarts_after_a_failed_action_are_no_dead_loop() -> None:
    """The false alarm of the harness ``repeated_action_restarted`` hit (the soak: 1 in 20,000
    examples): ``time.loop_died`` expected a call within two intervals of the failed one, but each
    declared ``restart`` re-armed the timer. The failed action is logged, and the timers the
    restarts set are no timers of the loop's own (set by an operation, none has called the action
    yet: ``harness.run.chains.loop_timers``): the loop went quiet with its report, no alarm."""
    run = run_schedule(load_target(f"{BUILDBOT}:repeated_action_restarted"), RESTARTS_AFTER_A_FAILURE)
    assert [a.start_us // 1000 for a in run.view.attempts()] == [100]
    assert check(run) == []


#: The second false alarm (session 12; the soak, seed 13: 1 in 1,070,000 examples), as the campaign shrank
#: it: under 100 ms strides each restart cancelled the pending timer before it could fire, 400 ms from the
#: start() to the stop(), the wait then; and on a punctual clock, restarts 90 ms apart: never called.
RESTARTS_BEFORE_ANY_ACTION = (
    Schedule(ops=(Start(at_ms=11, job=0, spec=JobSpec(kind="succeed", after_ms=0)), Call(at_ms=161, operation="restart"),
                  Call(at_ms=201, operation="restart"), Call(at_ms=341, operation="restart"), Stop(at_ms=411)),
             clock=ClockPolicy(step_ms=100)),
    Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
                  *(Call(at_ms=at, operation="restart") for at in (90, 180, 270, 360)), Stop(at_ms=450))),
)


@needs_buildbot
@pytest.mark.parametrize("schedule", RESTARTS_BEFORE_ANY_ACTION)
def test_restarts_that_put_the_first_action_off_are_no_dead_loop(schedule: Schedule) -> None:
    """``start()`` arms the keepalive an interval on, and so does each restart (``stop(); start()``): a
    keepalive restarted more often than its interval is put off by design. ``time.loop_died`` judged the
    silence from the first ``start()``; it now judges it from the latest restart that re-armed the loop
    (``harness.run.chains.last_rearm``; ``tests/test_loop_restarts.py`` shows the rule both ways)."""
    run = run_schedule(load_target(f"{BUILDBOT}:repeated_action_restarted"), schedule)
    assert list(run.view.attempts()) == []
    assert check(run) == []


@needs_buildbot
def test_the_restart_bug_is_found_by_a_campaign_shrunk_and_replayed_exactly(tmp_path) -> None:
    result = campaign(RESTARTED, seed=11, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    assert finding.record.invariant in RESTARTED_CAUGHT_BY and finding.shrunk
    ops = json.loads(Path(finding.path).read_text())["schedule"]["ops"]
    assert [op["op"] for op in ops if op["op"] == "call"] == ["call"] and len(ops) <= 4
    proc = subprocess.run([sys.executable, "-m", "harness.cli.main", "replay", str(finding.path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert "reproduced exactly" in proc.stdout, proc.stdout + proc.stderr


#: The minimal failure a seed-11 campaign saves: the action hangs, a restart at 100 ms while it runs,
#: and start()'s new timer starts a second action beside it at 200 ms (time.overlap).
RESTART_FAILURE_FILE = ROOT / "tests" / "fixtures" / "failure_files" / "buildbot_repeated_action_restart.json"


@needs_buildbot
def test_the_saved_minimal_failure_of_the_restart_bug_replays_exactly() -> None:
    record = json.loads(RESTART_FAILURE_FILE.read_text())
    assert record["target"] == RESTARTED and record["invariant"] == "time.overlap"
    assert [op["op"] for op in record["schedule"]["ops"]] == ["start", "call"]
    proc = subprocess.run([sys.executable, "-m", "harness.cli.main", "replay", str(RESTART_FAILURE_FILE)],
                          capture_output=True, text=True, cwd=ROOT)
    assert "reproduced exactly" in proc.stdout, proc.stdout + proc.stderr


@needs_buildbot
def test_the_restart_bug_in_plain_twisted() -> None:
    """Outside the harness: ``task.Clock``, a keepalive taking 0.5 s every 1 s after the last one
    ended; ``stop(); start()`` while one runs. ``start()`` arms a timer, and the running action,
    ending, arms another over it: two chains, the keepalive twice as often, and after ``stop()``
    the orphaned timer (which ``stop()`` cannot reach) still runs the action once."""
    from twisted.internet import task

    from buildbot.util.deferwaiter import DeferWaiter, RepeatedActionHandler

    clock, calls = task.Clock(), []

    def keepalive() -> object:
        calls.append(clock.seconds())
        return task.deferLater(clock, 0.5, lambda: None)

    handler = RepeatedActionHandler(clock, DeferWaiter(), 1.0, keepalive, start_timer_after_action_completes=True)
    handler.start()
    clock.advance(1.0)           # a keepalive at 1.0, until 1.5
    handler.stop()
    handler.start()              # re-attached while it runs
    clock.pump([0.25] * 20)      # to 6.0
    assert calls == [1.0, 2.0, 2.5, 3.5, 4.0, 5.0, 5.5]  # two chains, 0.5 s apart
    handler.stop()
    clock.pump([0.25] * 20)
    assert calls[7:] == [6.5]    # a keepalive after stop()


# --- long campaigns, slow tier ----------------------------------------------------------------------


@pytest.mark.slow
@needs_buildbot
@pytest.mark.parametrize("spec", _params(CORRECT))
def test_correct_target_stays_clean_over_a_long_campaign(spec: str, tmp_path) -> None:
    result = campaign(spec, seed=3, examples=4000, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
