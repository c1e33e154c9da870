"""``time.loop_died`` and a loop that an operation restarts (``stop(); start()``), or whose call it cancels.

buildbot's ``RepeatedActionHandler`` (the keepalive of its worker protocols)
arms its timer an interval after ``start()``, and a restart (``stop()`` then
``start()``, a detach and re-attach) cancels the pending timer and arms it
anew: restarts less than an interval apart put the next call off, by design.
``time.loop_died`` measured the loop's wait from the first ``start()`` (or the
last call) and called such a loop dead (the soak, 1 alarm in 1,070,000
examples, under 100 ms strides; here on a punctual clock too). The wait now
runs from the latest operation call that re-armed the loop
(``harness.run.chains.last_rearm``: it cancelled a pending timer of the loop's
and set one of the same function). A restart that forgets to start again, one
that re-arms a loop whose ticks no longer call the work, or one that re-arms it
too far out are still caught, from the restart on.

A periodic call cancelled by an operation declared ``cancels_work`` is no
excuse for ``time.loop_died`` (the declaration is ``time.timeout``'s): the
loop still owes its next call, so an operation that kills the loop is caught,
declared or not, and one that only ends the call in flight is not.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import Call, ClockPolicy, JobSpec, Schedule, Start, Stop, Target, check, run_schedule
from specimens import ArmsTheWrongTimer, ForgetsToStart, Keepalive, KillsOnSkip, ResetsOnRestart, ResetsTooFar, Silent
from specimens import SlowRestart, StuckAfterRestart
from specimens import keepalive_target

OK = JobSpec("succeed", 0)
STRIDES = ClockPolicy(step_ms=100)


def _target(cls: type[Keepalive]) -> Target:
    return keepalive_target(cls)


def _restarts(*at_ms: int, stop_ms: int, start_ms: int = 0) -> tuple[Any, ...]:
    return (Start(start_ms, 0, OK), *(Call(at, "restart") for at in at_ms), Stop(stop_ms))


def _names(cls: type[Keepalive], ops: tuple[Any, ...], clock: ClockPolicy = ClockPolicy()) -> list[str]:
    return [v.invariant for v in check(run_schedule(_target(cls), Schedule(ops=ops, clock=clock)))]


#: The soak's alarm, shrunk (buildbot's RepeatedActionHandler, seed 13): each restart cancelled the pending
#: timer before the 100 ms strides let it fire, 400 ms from the start() to the stop(), the old wait exactly.
SOAK = _restarts(161, 201, 341, stop_ms=411, start_ms=11)


@pytest.mark.parametrize("ops, clock", [
    (SOAK, STRIDES),
    (_restarts(90, 180, 270, 360, stop_ms=450), ClockPolicy()),  # never called: each restart came first
    (_restarts(150, 240, 330, stop_ms=420), ClockPolicy()),  # one call at 100 ms, then put off
    (_restarts(150, 240, 330, 420, 510, stop_ms=600), STRIDES),
])
def test_a_restarted_loop_owes_its_next_call_from_the_restart(ops: tuple[Any, ...], clock: ClockPolicy) -> None:
    """Restarts put the next call off by design: no dead loop (before: ``time.loop_died``)."""
    assert _names(Keepalive, ops, clock) == []


@pytest.mark.parametrize("cls", [ForgetsToStart, ArmsTheWrongTimer])
@pytest.mark.parametrize("clock, stop_ms", [(ClockPolicy(), 400), (STRIDES, 500)])
def test_a_restart_that_does_not_rearm_the_loop_restarts_no_wait(cls: type[Keepalive], clock: ClockPolicy, stop_ms: int) -> None:
    """A restart that cancels the loop's timer and sets none, or one of another function, re-arms nothing:
    the wait still runs from the call at 100 ms (from the last restart at 240 ms, it would be too short)."""
    assert _names(cls, _restarts(150, 240, stop_ms=stop_ms), clock) == ["time.loop_died"]
    assert _names(Keepalive, _restarts(150, 240, stop_ms=stop_ms), clock) == []


@pytest.mark.parametrize("clock", [ClockPolicy(), STRIDES])
def test_an_operation_that_rearms_nothing_does_not_put_the_judgement_off(clock: ClockPolicy) -> None:
    """A loop dead from its ``start()`` is judged from it whatever other operations come meanwhile."""
    ops = (Start(0, 0, OK), *(Call(at, "skip") for at in (150, 300, 450, 600)), Stop(700))
    assert _names(Silent, ops, clock) == ["time.loop_died"]


@pytest.mark.parametrize("cls", [StuckAfterRestart, SlowRestart])
@pytest.mark.parametrize("clock", [ClockPolicy(), STRIDES])
def test_a_restart_that_rearms_a_broken_loop_is_still_caught(cls: type[Keepalive], clock: ClockPolicy) -> None:
    """From the last restart on, each is silent past the wait before the stop (the slow one's timer is due
    at 1240 ms)."""
    assert _names(cls, _restarts(150, 240, stop_ms=1000), clock) == ["time.loop_died"]
    assert _names(Keepalive, _restarts(150, 240, stop_ms=1000), clock) == []


@pytest.mark.parametrize("clock, wait_ms", [(ClockPolicy(), 200), (STRIDES, 400)])
def test_the_wait_after_a_restart_ends_where_the_wait_after_a_start_does(clock: ClockPolicy, wait_ms: int) -> None:
    """At the boundary: a loop silent since its last restart is dead exactly one wait after it (two
    intervals, each as late as the clock may fire), not a millisecond sooner, as after a ``start()``; the
    message says where the wait was measured from."""
    restart = 250
    assert _names(Silent, _restarts(stop_ms=wait_ms), clock) == ["time.loop_died"]
    assert _names(Silent, _restarts(stop_ms=wait_ms - 1), clock) == []
    assert _names(StuckAfterRestart, _restarts(restart, stop_ms=restart + wait_ms - 1), clock) == []
    [violation] = check(run_schedule(_target(StuckAfterRestart), Schedule(
        ops=_restarts(restart, stop_ms=restart + wait_ms), clock=clock)))
    assert violation.invariant == "time.loop_died"
    assert f"({wait_ms}ms until stop() since restart() re-armed it at {restart}ms, past the {wait_ms}ms wait" in violation.message


def test_an_operation_cancelling_the_call_in_flight_excuses_no_dead_loop() -> None:
    """``cancels_work`` says a call ended on purpose (``time.timeout``'s excuse), not the loop: the loop
    still owes its next call. One that goes on is clean; one that ends with the call is caught."""
    ops = (Start(0, 0, JobSpec("hang")), Call(150, "skip"), Stop(1000))
    assert _names(Keepalive, ops) == []
    assert _names(KillsOnSkip, ops) == ["time.loop_died"]
    assert _names(KillsOnSkip, ops, STRIDES) == ["time.loop_died"]


@pytest.mark.parametrize("clock", [ClockPolicy(), STRIDES])
def test_a_restart_by_reset_puts_the_next_call_off_too(clock: ClockPolicy) -> None:
    """The same restarts as ``Keepalive``'s, made by ``DelayedCall.reset`` (``TimeoutMixin``'s way; session 12):
    the loop was called dead from its ``start()``, because the trace held no event for a reset. A reset is
    now recorded (``timer.reset``) and re-arms the loop as a cancel and a new timer do; a reset that puts
    the tick off too far is caught from the reset on."""
    ops = _restarts(90, 180, 270, 360, stop_ms=450)
    assert _names(Keepalive, ops, clock) == []
    assert _names(ResetsOnRestart, ops, clock) == []
    assert _names(ResetsTooFar, _restarts(150, 240, stop_ms=1000), clock) == ["time.loop_died"]
    assert _names(ResetsOnRestart, _restarts(150, 240, stop_ms=1000), clock) == []
