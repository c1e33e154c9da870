"""``Target(global_reactor="lend")``: code written on the global reactor runs on the run's clock.

Shown both ways: the pool of ``scenarios.global_reactor`` (``reactor.callLater``,
``deferLater(reactor, ...)``, a ``LoopingCall`` on its default clock) is clean and its twins are
caught by the right invariant; its traces are byte-identical to those of the same code re-pointed at
the clock by hand (the glue the option replaces); without the option the run is still refused, the
refusal naming the option; the reactor's other methods stay refused; a method taken from the reactor
before the guard was installed (``callLater = reactor.callLater`` at import) is lent or refused too;
and nothing of a lending run is left to the next one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
import twisted.internet
from twisted.internet import reactor, task

import scenarios.global_reactor as module
from harness import CampaignConfig, Menu, Target, run_schedule
from harness.errors import TargetError
from harness.pytest import fuzz
from harness.run.session import RunSession
from harness.search.generate import STRATEGIES, Examples
from harness.search.workers import run_workers
from scenarios.global_reactor import ReactorPool, reactor_pool
from tests.review_campaigns import campaign

#: Taken before any guard was installed (the test module is imported first): a plain bound method.
CAPTURED_CALL_LATER = reactor.callLater


class _Scheduler:
    """Reactor methods kept in class attributes before any guard was installed (bound methods, bare or static)."""

    later = reactor.callLater
    static_later = staticmethod(reactor.callLater)

    def __init__(self) -> None:
        self.own_later = reactor.callLater  # (an instance attribute: made in a run, the lent one)


#: Made at import, before any guard: its attribute holds the real reactor's bound method, which no guard reaches.
MADE_AT_IMPORT = _Scheduler()

CORRECT = "scenarios.global_reactor:reactor_pool"
TWINS = {
    "scenarios.global_reactor:reactor_pool_loop_left": {"leaks.loops", "leaks.calls"},
    "scenarios.global_reactor:reactor_pool_early_release": {"concurrency.limit"},
}


def _all_faults(target: Target) -> Menu:
    full = Menu()
    return replace(target.default_menu(), jumps=True, tie_breaks=full.tie_breaks, steps_ms=full.steps_ms,
                   jitters_ms=full.jitters_ms)


def _schedules(target: Target, count: int, seed: int = 3) -> list[Any]:
    examples = Examples(_all_faults(target), seed)
    return [next(examples) for _ in range(count)]


class _Glued:
    """The glue the option replaces: the pool's module global ``reactor`` and the one ``LoopingCall``
    reads at construction, re-pointed at the run's clock for the run (put back by ``glued_runs``)."""

    def __init__(self, clock: Any) -> None:
        module.reactor = clock  # type: ignore[attr-defined]
        twisted.internet.reactor = clock  # type: ignore[attr-defined]
        self.pool = ReactorPool()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


def test_a_lent_run_records_the_same_trace_as_the_clock_passed_in_and_the_same_twice() -> None:
    glued = Target(build=_Glued, limit=reactor_pool.limit, order="fifo", rejects=reactor_pool.rejects)
    real = twisted.internet.reactor  # type: ignore[attr-defined]
    for schedule in _schedules(reactor_pool, 40):
        lent = run_schedule(reactor_pool, schedule)
        again = run_schedule(reactor_pool, schedule)
        try:
            by_hand = run_schedule(glued, schedule)
        finally:
            module.reactor = real  # type: ignore[attr-defined]
            twisted.internet.reactor = real  # type: ignore[attr-defined]
        assert lent.trace.digest() == again.trace.digest() == by_hand.trace.digest()
        assert any(e.kind.value == "timer.set" and "LoopingCall" in e.detail for e in lent.trace)


def test_without_the_option_the_run_is_refused_and_the_error_names_it() -> None:
    refused = replace(reactor_pool, global_reactor="refuse")
    with pytest.raises(TargetError) as caught:
        run_schedule(refused, _schedules(refused, 1)[0])
    message = str(caught.value)
    assert "\n" not in message and "reactor.seconds" in message and "Target(global_reactor='lend')" in message


def test_a_bad_value_is_one_line_naming_the_option_and_the_values() -> None:
    with pytest.raises(TargetError) as caught:
        Target(build=ReactorPool, global_reactor=True)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and message.startswith("Target global_reactor must be 'refuse'") and "'lend'" in message


class _Calls:
    """A subject whose build calls ``call(clock)`` and keeps what it returned."""

    def __init__(self, call: Any, clock: Any) -> None:
        self.got = call(clock)

    def submit(self, job: Any) -> Any:
        return task.deferLater(reactor, 0, job)


def _build_calling(call: Any, lend: bool = True) -> Any:
    """What ``call(clock)`` returned in the build of a one-schedule run (lending the reactor, or not)."""
    got: list[Any] = []
    target = Target(build=lambda clock: _Calls(call, clock), global_reactor="lend" if lend else "refuse",
                    invariants=(lambda run: got.append(run.subject.got),))
    run_schedule(target, _schedules(target, 1)[0])
    return got[0]


def test_the_lent_methods_act_on_the_runs_clock() -> None:
    assert _build_calling(lambda clock: reactor.seconds() == clock.seconds())
    assert _build_calling(lambda clock: reactor.callLater(5, lambda: None) in clock.getDelayedCalls())
    assert _build_calling(lambda clock: (reactor.callLater(1, lambda: None), reactor.getDelayedCalls() == clock.getDelayedCalls())[1])
    ran: list[int] = []
    assert _build_calling(lambda clock: reactor.callWhenRunning(ran.append, 1)) is None and ran == [1]


@pytest.mark.parametrize("call", [
    lambda: reactor.callFromThread(lambda: None), lambda: reactor.stop(), lambda: reactor.run(),
    lambda: reactor.callInThread(lambda: None), lambda: reactor.listenTCP(0, None),
], ids=["callFromThread", "stop", "run", "callInThread", "listenTCP"])
def test_the_reactors_other_methods_stay_refused_when_it_is_lent(call: Any) -> None:
    with pytest.raises(TargetError) as caught:
        _build_calling(lambda clock: call())
    assert "the target called reactor." in str(caught.value) and "global_reactor" not in str(caught.value)


def test_a_method_taken_from_the_reactor_before_the_guard_is_lent_or_refused() -> None:
    assert _build_calling(lambda clock: CAPTURED_CALL_LATER(5, lambda: None) in clock.getDelayedCalls())
    with pytest.raises(TargetError, match="reactor.callLater"):
        _build_calling(lambda clock: CAPTURED_CALL_LATER(5, lambda: None), lend=False)
    assert CAPTURED_CALL_LATER.__self__ is reactor  # put back once the session ended


def test_nothing_of_a_lending_run_is_left_to_the_next_run_or_after_the_session() -> None:
    refuse = Target(build=lambda clock: _Calls(lambda c: reactor.callLater(1, lambda: None), clock))
    with RunSession() as session:
        run_schedule(reactor_pool, _schedules(reactor_pool, 1)[0])
        assert session.guard.lent is None
        with pytest.raises(TargetError, match="reactor.callLater"):
            run_schedule(refuse, _schedules(refuse, 1)[0])
    assert abs(reactor.seconds() - time.time()) < 60  # the real reactor's again


def test_twins_are_caught_by_the_right_invariant(tmp_path) -> None:
    for spec, accepted in TWINS.items():
        result = campaign(spec, seed=1, examples=1000, tmp_path=tmp_path)
        assert result.error is None, result.error
        [finding] = result.findings
        assert finding.violation.invariant in accepted, (spec, finding.violation.message)


def test_parallel_workers_lend_the_clock_in_each_process(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = CampaignConfig(seed=5, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None)
    clean = run_workers(reactor_pool, CORRECT, config, workers=2)
    assert clean.error is None and clean.findings == [] and clean.examples == 300, (clean.error, clean.findings)
    spec = "scenarios.global_reactor:reactor_pool_early_release"
    caught = run_workers(module.reactor_pool_early_release, spec, replace(config, max_examples=2000), workers=2)
    assert [f.violation.invariant for f in caught.findings] == ["concurrency.limit"]


@fuzz(CORRECT, max_examples=200)
def test_the_pytest_plugin_runs_a_lending_target() -> None:
    "The pool on the global reactor keeps its limit and order, whatever the schedule."


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_pool_on_the_global_reactor_stays_clean_over_a_long_campaign(strategy: str, tmp_path) -> None:
    """1,200 examples under each of the five strategies, every clock fault on: 6,000 in all (the branch that
    built it ran 10,000 clean; CI's slow tier keeps the cost down)."""
    result = campaign(CORRECT, seed=7, examples=1200, tmp_path=tmp_path, strategy=strategy, all_faults=True,
                      max_failures=None)
    assert result.error is None, result.error
    assert result.findings == [], [f.violation.message for f in result.findings]
    assert result.examples == 1200


def test_a_reactor_method_taken_at_import_stays_guarded_after_a_scan_made_while_it_was_patched() -> None:
    """A scan of the bindings made while the guard's patch is bound in place of a reactor method taken at
    import (a run imported a module, the next arm scans again) still counts that site: cached without it,
    every later session with nothing imported would leave the method unguarded (the fault
    ``_bound_wrappers`` keeps from the process functions' sites too)."""
    import os
    import sys
    import types

    taken = types.ModuleType(f"taken_at_import_{os.getpid()}")
    taken.call_later = reactor.callLater  # type: ignore[attr-defined]
    sys.modules[taken.__name__] = taken
    later = types.ModuleType(taken.__name__ + "_later")
    refuse = Target(build=lambda clock: _Calls(lambda c: taken.call_later(1, lambda: None), clock))  # type: ignore[attr-defined]
    try:
        with RunSession() as session:
            sys.modules[later.__name__] = later  # imported between runs: the next arm scans again, patch bound
            run_schedule(reactor_pool, _schedules(reactor_pool, 1)[0])
            assert session.guard.lent is None
        for _ in range(2):  # nothing imported since: the cached scan
            with RunSession(), pytest.raises(TargetError, match="the target called reactor.callLater"):
                run_schedule(refuse, _schedules(refuse, 1)[0])
        assert type(taken.call_later) is type(reactor.callLater)  # type: ignore[attr-defined]
    finally:
        sys.modules.pop(taken.__name__, None)
        sys.modules.pop(later.__name__, None)


def test_a_method_kept_in_a_class_attribute_before_the_guard_is_lent_or_refused() -> None:
    assert _build_calling(lambda clock: _Scheduler().later(5, lambda: None) in clock.getDelayedCalls())
    assert _build_calling(lambda clock: _Scheduler.static_later(5, lambda: None) in clock.getDelayedCalls())
    assert _build_calling(lambda clock: _Scheduler().own_later(5, lambda: None) in clock.getDelayedCalls())
    for call in (lambda c: _Scheduler().later(5, lambda: None), lambda c: _Scheduler.static_later(5, lambda: None)):
        with pytest.raises(TargetError, match="the target called reactor.callLater"):
            _build_calling(call, lend=False)
    later, static_later = vars(_Scheduler)["later"], vars(_Scheduler)["static_later"]  # put back once the session ended
    assert type(later) is type(reactor.callLater) and later.__self__ is reactor
    assert type(static_later) is staticmethod and static_later.__func__.__self__ is reactor


def test_a_method_kept_by_an_object_made_before_the_guard_is_not_reached() -> None:
    """What docs/reference/target.md says of instance attributes: the real reactor's method, not lent (a
    ``callLater`` through it is set on the real reactor, never on the run's clock; cancelled here, so nothing
    is left there)."""
    def call(clock: Any) -> bool:
        escaped = MADE_AT_IMPORT.own_later(5, lambda: None)
        escaped.cancel()
        return escaped not in clock.getDelayedCalls() and escaped not in reactor.getDelayedCalls()

    assert _build_calling(call)
