"""Audit 13: round 12's changes attacked (docs/reviews/audit-13.md). Small reproductions only; the long
campaigns ran outside the suite.

``time.loop_died``'s wait runs from the latest operation call that re-armed the loop (``last_rearm``). Two
dead loops hid behind it when restarts came more often than the wait: a loop whose ticks fire on, put off
by ``reset``, and call nothing (each reset counted as a re-arm, though the loop had its ticks and let them
pass), and a restart that arms the loop ten intervals out (each counted, though no call could come within
the wait from it). Both were caught on a run that went on long enough after the last restart, never under
restarts every 150 ms on a 100 ms-stride clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import Call, ClockPolicy, JobSpec, Schedule, Start, Stop, check, run_schedule
from specimens import Keepalive, ResetsOnRestart, ResetsTooFar, SlowRestart, StuckAfterReset, keepalive_target

OK = JobSpec("succeed", 0)
STRIDES = ClockPolicy(step_ms=100)


def _names(cls: type[Keepalive], ops: tuple[Any, ...], clock: ClockPolicy) -> list[str]:
    return [v.invariant for v in check(run_schedule(keepalive_target(cls), Schedule(ops=ops, clock=clock)))]


def _restarted_every(gap_ms: int, stop_ms: int = 1500) -> tuple[Any, ...]:
    return (Start(0, 0, OK), *(Call(at, "restart") for at in range(gap_ms, stop_ms, gap_ms)), Stop(stop_ms))


@pytest.mark.parametrize("clock", [ClockPolicy(), STRIDES], ids=["punctual", "strides"])
@pytest.mark.parametrize("gap_ms", [150, 190])
def test_a_loop_whose_ticks_stop_calling_is_not_hidden_by_resets_more_often_than_its_wait(
        clock: ClockPolicy, gap_ms: int) -> None:
    """Each restart resets the pending tick, which then fires and calls nothing: from the second such tick
    (more than ``skips``) no later reset puts the owed call off (before: clean on the strides clock, a
    restart less than the 400 ms wait before each stop)."""
    ops = _restarted_every(gap_ms)
    assert _names(StuckAfterReset, ops, clock) == ["time.loop_died"]
    assert _names(ResetsOnRestart, ops, clock) == []


@pytest.mark.parametrize("clock", [ClockPolicy(), STRIDES], ids=["punctual", "strides"])
@pytest.mark.parametrize("cls", [SlowRestart, ResetsTooFar])
@pytest.mark.parametrize("gap_ms", [150, 190])
def test_a_restart_arming_the_loop_past_its_wait_puts_nothing_off(
        cls: type[Keepalive], clock: ClockPolicy, gap_ms: int) -> None:
    """A restart (a cancel and a new timer, or a reset) arming the loop ten intervals out, restarted more
    often than its wait, never calls: judged from the last call (before: clean, each restart counted)."""
    ops = _restarted_every(gap_ms)
    assert _names(cls, ops, clock) == ["time.loop_died"]
    assert _names(Keepalive, ops, clock) == []
