"""Hedged requests (``hedge_ms``, ``hedges``) and retries after the answer (``retries_after_answer``), both ways.

The zoo (``scenarios.hedge``, ``scenarios.background_retry``) is campaigned
by ``tests/test_scenarios_time.py``; here: the declarations' validation, the
exact semantics on hand-made schedules (what excuses a copy, what does not),
the round-3 hedger declared, the example of docs/reference/target.md, and
that a target declaring neither pays nothing for them.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest
from twisted.internet import defer

from harness import (
    Cancel,
    ClockPolicy,
    JobSpec,
    Jump,
    Schedule,
    Stop,
    Submit,
    Target,
    check,
    load_target,
    run_schedule,
)
from harness.invariants import invariants_for
from scenarios.hedge import HEDGE_MS
from scenarios.review.round3.hedge import HedgedCaller, HedgedCallerCancelsPrimaryOnly, HedgedCallerTimerLeak
from review_campaigns import campaign
from specimens import RetryAfterAnswer
from zoo_checks import Zoo, assert_refused

HEDGE = "scenarios.hedge"
WARM = "scenarios.background_retry"
HEDGE_NAMES = {"time.hedge_count", "time.hedge_early", "time.hedge_late", "time.hedge_losers"}
ROOT = Path(__file__).resolve().parents[1]


def ok(after_ms: int) -> JobSpec:
    return JobSpec("succeed", after_ms)


def fail(after_ms: int) -> JobSpec:
    return JobSpec("fail", after_ms)


def S(*ops: Any, clock: ClockPolicy | None = None) -> Schedule:  # noqa: N802 - reads as a constructor
    return Schedule(tuple(ops), clock or ClockPolicy())


def names(target: str | Target, schedule: Schedule) -> list[str]:
    target = load_target(target) if isinstance(target, str) else target
    return [v.invariant for v in check(run_schedule(target, schedule))]


def round3(cls: type, hedge_after: float = HEDGE_MS / 1000, **promises: Any) -> Target:
    return Target(build=lambda clock: cls(clock, hedge_after=hedge_after), hedge_ms=HEDGE_MS,
                  submit=lambda subject, job, priority: subject.call(job), **promises)


# -- declarations ---------------------------------------------------------------------------------------


def _build(clock: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"hedge_ms": "100"}, "Target hedge_ms must be a positive integer or None, got '100'"),
        ({"hedge_ms": 0}, "Target hedge_ms must be a positive integer or None, got 0"),
        ({"hedge_ms": 12.5}, "Target hedge_ms must be a positive integer or None, got 12.5"),
        ({"hedge_ms": True}, "Target hedge_ms must be a positive integer or None, got True"),
        ({"hedge_ms": 100, "hedges": 0}, "Target hedges must be a positive integer or None, got 0"),
        ({"hedge_ms": 100, "hedges": "2"}, "Target hedges must be a positive integer or None, got '2'"),
        ({"hedges": 2}, "Target hedges is how many copies of a job a hedging subject may add: declare hedge_ms"),
        ({"hedge_ms": 100, "retries": 1}, "Target hedge_ms and retries are two policies for running a job again"),
        ({"hedge_ms": 100, "retries_after_answer": True}, "declare one of them"),
        ({"kind": "periodic", "interval_ms": 100, "hedge_ms": 100}, "Target hedge_ms is a promise about the attempts of submitted jobs"),
        ({"kind": "periodic", "interval_ms": 100, "retries_after_answer": True},
         "Target retries_after_answer is a promise about the attempts of submitted jobs"),
        ({"retries_after_answer": 1}, "Target retries_after_answer must be True or False, got 1"),
        ({"retries_after_answer": "yes"}, "Target retries_after_answer must be True or False, got 'yes'"),
    ],
)
def test_a_wrong_declaration_is_a_one_line_error_naming_the_field(fields: dict[str, Any], fragment: str) -> None:
    assert_refused(fields, fragment)


def test_the_declarations_and_their_defaults() -> None:
    plain = Target(build=_build)
    assert (plain.hedge_ms, plain.hedges, plain.hedge_limit, plain.retries_after_answer) == (None, None, 0, False)
    assert Target(build=_build, hedge_ms=100).hedge_limit == 2
    assert Target(build=_build, hedge_ms=100, hedges=3).hedge_limit == 4
    # A hedger's copies may behave otherwise than the first call: the menu draws later-attempt behaviours.
    assert Target(build=_build, hedge_ms=100).default_menu().max_then == 3
    assert plain.default_menu().max_then == 0


def test_a_target_declaring_neither_runs_none_of_these_checks() -> None:
    # Cost nothing: the hedging invariants do not apply, so a campaign's runs never call them.
    for spec in ("scenarios.pools:semaphore_pool", "scenarios.retry:backoff_retry", "scenarios.timeout:timeout_pool"):
        assert not HEDGE_NAMES & {inv.name for inv in invariants_for(load_target(spec))}
    assert HEDGE_NAMES <= {inv.name for inv in invariants_for(load_target(f"{HEDGE}:hedged_call"))}


# -- hedging: what each invariant judges ----------------------------------------------------------------


def test_the_correct_hedgers_keep_the_promise_on_the_twins_schedules() -> None:
    schedules = [
        S(Submit(0, 0, ok(250))),
        S(Submit(0, 0, JobSpec("hang"))),
        S(Submit(0, 0, fail(30), then=(ok(250),))),
        S(Submit(0, 0, ok(150), then=(ok(10),))),
        S(Submit(0, 0, ok(250)), Cancel(150, 0)),
        S(Submit(0, 0, JobSpec("raise"))),
    ]
    for spec in ("hedged_call", "hedged_request"):
        for schedule in schedules:
            assert names(f"{HEDGE}:{spec}", schedule) == [], (spec, schedule)


@pytest.mark.parametrize(
    ("twin", "schedule", "expected"),
    [
        ("hedged_call_units", S(Submit(0, 0, ok(250))), "time.hedge_late"),
        ("hedged_call_units", S(Submit(0, 0, JobSpec("hang"))), "time.hedge_late"),  # its copy would come at 100 s
        ("hedged_call_keeps_losers", S(Submit(0, 0, ok(250))), "time.hedge_losers"),
        ("hedged_call_keeps_losers", S(Submit(0, 0, ok(150), then=(ok(10),))), "time.hedge_losers"),  # the first copy left
        ("hedged_request_stale_timer", S(Submit(0, 0, fail(30), then=(ok(250),))), "time.hedge_early"),
        ("hedged_request_one_too_many", S(Submit(0, 0, JobSpec("hang"))), "time.hedge_count"),
    ],
)
def test_each_twin_is_caught_by_its_invariant(twin: str, schedule: Schedule, expected: str) -> None:
    assert names(f"{HEDGE}:{twin}", schedule)[:1] == [expected]


def test_a_copy_is_owed_only_while_the_caller_waits() -> None:
    units = f"{HEDGE}:hedged_call_units"
    assert names(units, S(Submit(0, 0, ok(50)))) == []  # answered before the hedge was due
    assert names(units, S(Submit(0, 0, ok(250)), Cancel(50, 0))) == []  # cancelled before it was due
    assert names(units, S(Submit(0, 0, ok(250)), Cancel(150, 0)))[:1] == ["time.hedge_late"]
    stoppable = replace(load_target(units), stop=lambda subject: None)
    assert names(stoppable, S(Submit(0, 0, ok(250)), Stop(50))) == []  # stopped before it was due
    assert names(stoppable, S(Submit(0, 0, ok(250)), Stop(150)))[:1] == ["time.hedge_late"]
    # The harness's own stop at teardown, after the run drained, excuses nothing.
    assert names(stoppable, S(Submit(0, 0, JobSpec("hang"))))[:1] == ["time.hedge_late"]


def test_a_full_limit_excuses_a_copy_that_waits_for_a_slot() -> None:
    units = load_target(f"{HEDGE}:hedged_call_units")
    assert names(units, S(Submit(0, 0, JobSpec("hang"))))[:1] == ["time.hedge_late"]
    assert "time.hedge_late" not in names(replace(units, limit=1), S(Submit(0, 0, JobSpec("hang"))))


def test_a_copy_may_be_late_by_the_clocks_lateness_and_no_more() -> None:
    late = round3(HedgedCaller, hedge_after=0.12)  # the copy 20 ms late
    schedule = S(Submit(0, 0, ok(500)))
    assert names(late, schedule)[:1] == ["time.hedge_late"]
    assert names(late, replace(schedule, clock=ClockPolicy(step_ms=50))) == []  # a strided clock: 50 ms late allowed
    assert names(round3(HedgedCaller), replace(schedule, clock=ClockPolicy(step_ms=50, jitter_ms=7))) == []


class WallClockHedger(HedgedCaller):
    """Polls every 10 ms and hedges once ``seconds()`` says 100 ms went by: a wall-clock jump makes it early."""

    def call(self, send: Callable[[], Any]) -> defer.Deferred:
        copies: list[defer.Deferred] = []
        due = self.clock.seconds() + self.hedge_after
        caller = defer.Deferred(lambda _: [c.cancel() for c in list(copies)] and None)

        def settle(outcome: Any, copy: defer.Deferred) -> None:
            copies.remove(copy)
            if not caller.called:
                caller.callback(outcome)
                for loser in list(copies):
                    loser.cancel()
            return None

        def launch() -> None:
            copy = defer.maybeDeferred(send)
            copies.append(copy)
            copy.addBoth(settle, copy)

        def poll() -> None:
            if caller.called:
                return
            if self.clock.seconds() >= due:
                launch()
            else:
                self.clock.callLater(0.01, poll)

        launch()
        self.clock.callLater(0.01, poll)
        return caller


def test_a_wall_clock_jump_excuses_no_early_copy() -> None:
    hedger = round3(WallClockHedger)
    assert names(hedger, S(Submit(0, 0, ok(250)))) == []
    assert names(hedger, S(Submit(0, 0, ok(250)), Jump(20, 80)))[:1] == ["time.hedge_early"]


def test_the_round3_hedger_declared() -> None:
    # Finding 3 of the third outside review: the correct hedger now has a promise to declare...
    assert names(round3(HedgedCaller), S(Submit(0, 0, ok(250)))) == []
    # ...and declaring it hides none of its twins: a copy after the answer is still time.retries',
    assert names(round3(HedgedCallerTimerLeak), S(Submit(0, 0, ok(50))))[:1] == ["time.retries"]
    # the caller's cancel that misses the hedge copy still cancellation.propagates'.
    cancelled = S(Submit(0, 0, ok(250)), Cancel(150, 0))
    assert names(round3(HedgedCallerCancelsPrimaryOnly), cancelled)[:1] == ["cancellation.propagates"]
    assert names(round3(HedgedCaller), cancelled) == []


def _doc_block(heading: str) -> str:
    text = (ROOT / "docs" / "reference" / "target.md").read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_docs_hedger_keeps_its_promise_and_an_early_one_is_caught(tmp_path: Path) -> None:
    code = _doc_block("## Hedged requests")
    namespace: dict[str, Any] = {}
    exec(compile(code, "target.md", "exec"), namespace)
    clean = campaign("doc:hedged", 3, 300, tmp_path, namespace["hedged"])
    assert [f.record.invariant for f in clean.findings] == []
    early: dict[str, Any] = {}
    exec(compile(code.replace("callLater(0.1,", "callLater(0.05,"), "target.md", "exec"), early)
    caught = campaign("doc:hedged", 3, 300, tmp_path, early["hedged"])
    assert [f.record.invariant for f in caught.findings] == ["time.hedge_early"]


# -- retries after the answer ---------------------------------------------------------------------------


def test_the_opt_out_lifts_only_the_answer_rule() -> None:
    first_fails = S(Submit(0, 0, fail(10), then=(fail(10), ok(10))))
    assert names(f"{WARM}:background_retry", first_fails) == []
    # The default is unchanged: the same subject undeclared is caught, as RetryAfterAnswer always was.
    assert names(f"{WARM}:background_retry_undeclared", first_fails) == ["time.retries"]
    assert names(Target(build=RetryAfterAnswer), S(Submit(0, 0, fail(10)))) == ["time.retries"]
    assert names(Target(build=RetryAfterAnswer, retries_after_answer=True), S(Submit(0, 0, fail(10)))) == []
    # A declared count still holds: one retry after the answer is one too many for retries=0.
    bounded = Target(build=RetryAfterAnswer, retries=0, retries_after_answer=True)
    violations = check(run_schedule(bounded, S(Submit(0, 0, fail(10)))))
    assert [v.invariant for v in violations] == ["time.retries"]
    assert "attempted 2 times; at most 1 (1 + 0 retries)" in violations[0].message


def test_a_run_after_a_success_is_caught_with_or_without_the_opt_out() -> None:
    runs_twice = load_target("scenarios.review.round3.mistakes:runs_twice")
    for target in (runs_twice, replace(runs_twice, retries_after_answer=True)):
        violations = check(run_schedule(target, S(Submit(0, 0, ok(10)))))
        assert [v.invariant for v in violations][:1] == ["time.retries"]
        assert "although attempt 0 succeeded" in violations[0].message
    refresh = check(run_schedule(load_target(f"{WARM}:background_refresh"), S(Submit(0, 0, fail(10), then=(ok(10),)))))
    assert [v.invariant for v in refresh][:1] == ["time.retries"]
    assert "job 0 was retried (attempt 2) although attempt 1 succeeded" in refresh[0].message


def test_the_background_retries_still_end_at_stop_and_cancel() -> None:
    # stop() cancels the background retries: no attempt after it, nothing pending (leaks.calls stays quiet).
    run = run_schedule(load_target(f"{WARM}:background_retry"), S(Submit(0, 0, fail(10)), Stop(50)))
    assert check(run) == []
    assert [e.t_us for e in run.trace if e.kind == "job.start"] == [0]
    # A cancel before the answer cancels the attempt, and no retry follows.
    run = run_schedule(load_target(f"{WARM}:background_retry"), S(Submit(0, 0, ok(100)), Cancel(50, 0)))
    assert check(run) == []
    assert [e.t_us for e in run.trace if e.kind == "job.start"] == [0]


# -- long campaigns (figures in docs/reference/target.md and the report) ----------------------------------


#: The correct hedgers and the correct background retry.
CLEAN = Zoo((f"{HEDGE}:hedged_call", f"{HEDGE}:hedged_request", f"{WARM}:background_retry"), ())
test_the_correct_subjects_stay_clean_over_2500_examples = CLEAN.clean(seed=5, examples=2500, slow=True)
