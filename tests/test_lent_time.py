"""``Target(global_reactor="lend")`` lends the ``time`` module's clocks to the run's clock.

Shown both ways with ``scenarios.global_time``: a breaker timing its cooldown with ``time.monotonic()``
(bound at import) is clean and replays byte-identically, and its twin timing it with ``time.time()`` is
caught by a wall-clock jump. Then, call by call: what each clock reads in a lending run, under every
name it is bound to in the target's code (the module's attribute, a module global, a class attribute);
that the harness, the standard library and a run that does not lend keep the real clocks (the watchdog
still ends a run spinning on ``time.monotonic()``); and that nothing is left patched after the session.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from time import monotonic as monotonic_at_import
from typing import Any

import pytest
from twisted.internet import defer

import harness.guard.clocks
from harness import Target, run_schedule
from harness.errors import TargetError
from harness.model.schedule import ClockPolicy, Jump, Schedule
from harness.guard import lent_time
from harness.run.session import RunSession
from harness.search.generate import Examples
from scenarios.breaker import THRESHOLD
from scenarios.global_time import monotonic_breaker
from tests.review_campaigns import campaign

CORRECT = "scenarios.global_time:monotonic_breaker"
TWIN = "scenarios.global_time:wall_clock_breaker"


class _Timed:
    """Bound before any guard was installed (this module is imported first)."""

    now = time.monotonic
    wall = staticmethod(time.time)


def _schedules(target: Target, count: int, seed: int = 3) -> list[Any]:
    menu = replace(target.default_menu(), jumps=True)
    examples = Examples(menu, seed)
    return [next(examples) for _ in range(count)]


def _read_in_build(read: Any, lend: bool = True) -> Any:
    """What ``read()`` gave inside the build of a one-schedule run (lending the run's clock, or not)."""
    got: list[Any] = []

    class Subject:
        def __init__(self, clock: Any) -> None:
            got.append(read())

        def submit(self, job: Any) -> Any:
            return defer.maybeDeferred(job)

    target = Target(build=Subject, global_reactor="lend" if lend else "refuse")
    run_schedule(target, _schedules(target, 1)[0])
    return got[0]


def _read_late(read: Any, expect: Any) -> tuple[Any, Any]:
    """``read()`` and ``expect(clock)`` in a call 1.2345s into a lending run whose wall clock jumped back 3s at 10ms
    and wakes its calls up to 7ms late: both readings taken at the same instant."""
    got: list[tuple[Any, Any]] = []

    class Subject:
        def __init__(self, clock: Any) -> None:
            clock.callLater(1.2345, lambda: got.append((read(), expect(clock))))

    target = Target(build=Subject, global_reactor="lend")
    run_schedule(target, Schedule(ops=(Jump(at_ms=10, delta_ms=-3000),), clock=ClockPolicy(seed=1, jitter_ms=7)))
    return got[0]


def _trial_started(run: Any) -> bool:
    """Whether a job started after ``THRESHOLD`` failures in a row: a trial call, once the cooldown ran out."""
    streak = 0
    for step in run.view.steps():
        if step.kind == "call" and step.call.operation == "reset" and step.call.raised is None:
            streak = 0
        elif step.kind == "start" and streak >= THRESHOLD:
            return True
        elif step.kind == "end" and step.attempt.outcome in ("failed", "finished"):
            streak = streak + 1 if step.attempt.outcome == "failed" else 0
    return False


def test_a_breaker_timing_with_monotonic_is_clean_and_replays_byte_identically(tmp_path) -> None:
    trials = 0
    for schedule in _schedules(monotonic_breaker, 60):
        run = run_schedule(monotonic_breaker, schedule)
        assert run_schedule(monotonic_breaker, schedule).trace.digest() == run.trace.digest()
        trials += _trial_started(run)
    assert trials  # the cooldown ran out: the breaker read the run's clock (the real one hardly moves in a run)
    result = campaign(CORRECT, seed=1, examples=400, tmp_path=tmp_path, all_faults=True)
    assert result.error is None and result.findings == [], [f.violation.message for f in result.findings]


def test_its_twin_timing_with_time_time_is_caught_by_a_jump(tmp_path) -> None:
    result = campaign(TWIN, seed=1, examples=1000, tmp_path=tmp_path)
    assert result.error is None, result.error
    [finding] = result.findings
    assert finding.violation.invariant == "user.one_trial_at_a_time"
    assert any(op.name == "jump" and op.delta_ms > 0 for op in finding.record.schedule.ops), finding.record.schedule


@pytest.mark.parametrize(("read", "expect"), [
    (lambda: time.monotonic(), lambda clock: clock.monotonic()),
    (lambda: time.perf_counter(), lambda clock: clock.monotonic()),
    (lambda: time.monotonic_ns(), lambda clock: clock.now_us * 1000),
    (lambda: time.perf_counter_ns(), lambda clock: clock.now_us * 1000),
    (lambda: time.time(), lambda clock: clock.seconds()),
    (lambda: time.time_ns() // 1000, lambda clock: clock.now_us + clock.skew_us),
    (lambda: monotonic_at_import(), lambda clock: clock.monotonic()),
    (lambda: _Timed().now(), lambda clock: clock.monotonic()),
    (lambda: _Timed.wall(), lambda clock: clock.seconds()),
], ids=["monotonic", "perf_counter", "monotonic_ns", "perf_counter_ns", "time", "time_ns", "global bound at import",
        "class attribute", "class staticmethod"])
def test_each_clock_reads_the_runs_clock_under_every_name(read: Any, expect: Any) -> None:
    got, expected = _read_late(read, expect)
    assert got == expected and 1 < abs(got) < 10**10, (got, expected)  # (not 0: the run's clock had moved)


def test_the_harness_the_standard_library_and_a_run_that_does_not_lend_keep_the_real_clocks() -> None:
    real = time.monotonic()
    got = _read_in_build(lambda: (harness.guard.clocks.monotonic(), threading._time(), lent_time.ORIGINALS["time"]()))  # type: ignore[attr-defined]
    assert all(reading > 1 for reading in got)  # (the run's clock reads a few virtual seconds at most)
    assert harness.guard.clocks.monotonic is lent_time.ORIGINALS["monotonic"]
    got = _read_in_build(lambda: time.monotonic(), lend=False)
    assert got >= real


def test_the_watchdog_keeps_the_real_clock_and_ends_a_run_spinning_on_monotonic() -> None:
    def spin() -> None:
        ends = time.monotonic() + 1
        while time.monotonic() < ends:
            pass

    with pytest.raises(TargetError, match="never returned"):  # (the watchdog's verdict on a build that hangs)
        run_schedule(Target(build=lambda clock: spin(), global_reactor="lend"), Schedule(), timeout_s=0.3)


def test_nothing_is_left_patched_after_the_session() -> None:
    with RunSession():
        _read_in_build(lambda: time.monotonic())
        assert isinstance(time.monotonic, lent_time.LentClock)
        assert time.monotonic() > 1  # between runs: the real one
    assert time.monotonic is lent_time.ORIGINALS["monotonic"] and time.time is lent_time.ORIGINALS["time"]
    assert monotonic_at_import is lent_time.ORIGINALS["monotonic"]
    assert vars(_Timed)["now"] is lent_time.ORIGINALS["monotonic"]
    assert vars(_Timed)["wall"].__func__ is lent_time.ORIGINALS["time"]


@pytest.mark.slow
def test_the_breaker_timing_with_monotonic_stays_clean_over_a_long_campaign(tmp_path) -> None:
    """3,000 examples with every clock fault on (jumps, every tie-break, stride and jitter)."""
    result = campaign(CORRECT, seed=11, examples=3000, tmp_path=tmp_path, all_faults=True, max_failures=None)
    assert result.error is None, result.error
    assert result.findings == [], [f.violation.message for f in result.findings]
    assert result.examples == 3000


def test_a_module_imported_inside_a_lending_session_is_lent_then_put_back_and_lent_again(tmp_path, monkeypatch) -> None:
    """A module imported while the clocks are patched binds the stand-ins (``from time import monotonic``, a
    class attribute ``now = time.monotonic``, called on an instance without ``self`` as the builtin is); the
    guard puts the real clocks back there when it goes, and the next lending session finds and lends them."""
    import importlib
    import os
    import sys

    name = f"lazy_timer_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(
        "import time\nfrom time import monotonic\n\n\nclass Timer:\n    now = time.monotonic\n\n\n"
        "def read():\n    return monotonic(), Timer().now()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        for _ in range(2):
            with RunSession():
                got, expected = _read_late(lambda: importlib.import_module(name).read(), lambda c: (c.monotonic(),) * 2)
                assert got == expected
            module = sys.modules[name]
            assert module.monotonic is time.monotonic and vars(module.Timer)["now"] is time.monotonic
            assert time.monotonic is lent_time.ORIGINALS["monotonic"]
    finally:
        sys.modules.pop(name, None)
