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

import pickle
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import strategies as st

from harness import CampaignConfig, Call, ClockPolicy, JobSpec, Schedule, Start, Stop, check, load_target, run_schedule
from harness import run_workers
from harness.model.menu import Menu
from harness.search.portable_menu import portable
from specimens import Keepalive, ResetsOnRestart, ResetsTooFar, SlowRestart, StuckAfterReset, keepalive_target
from tests.test_operation_arguments import BUGGY, DEFAULT

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


# --- run_workers's portable menu: an operation the target's menu narrows, drawn as declared -------------------

#: The resizable pool whose resize(3) resets it (``test_operation_arguments.BUGGY``), its menu narrowing resize to
#: 1 or 2 (never the reset); a user's menu may draw the operation as declared, 1 to 3.
NARROWED = replace(BUGGY, menu=BUGGY.default_menu().with_(operations=(("resize", (st.integers(1, 2),)),)))
NARROWED_SPEC = "tests.test_audit13:NARROWED"


def _as_declared() -> Menu:
    return NARROWED.default_menu().with_(operations=(("resize", BUGGY.operations["resize"].args),), max_ops=10)


def test_a_menu_drawing_an_operation_as_declared_where_the_target_menu_narrows_it_crosses_to_workers() -> None:
    """Before: refused ("draws its arguments from other strategies than the target's own ... declare it in the
    target's operations"), though it is declared there; each name now crosses with which strategies it drew."""
    menu = _as_declared()
    sent = pickle.loads(pickle.dumps(portable(menu, NARROWED)))
    assert sent.rebuilt(load_target(NARROWED_SPEC)) == menu
    narrowed = NARROWED.default_menu()
    assert pickle.loads(pickle.dumps(portable(narrowed, NARROWED))).rebuilt(NARROWED) == narrowed


@pytest.mark.slow  # two spawned workers: ~10 s
def test_the_workers_draw_the_declared_strategies_and_find_what_only_they_reach(tmp_path: Any) -> None:
    config = CampaignConfig(seed=3, max_examples=400, report_dir=str(tmp_path), menu=_as_declared(), max_failures=5)
    result = run_workers(NARROWED, NARROWED_SPEC, config, 2)
    assert len(result.workers) == 2 and not result.crashed
    (finding,) = result.findings
    assert finding.violation.invariant == "concurrency.limit"
    assert {call.args for call in finding.record.schedule.ops if isinstance(call, Call)} == {(DEFAULT,)}
