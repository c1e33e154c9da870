"""Inside a session the watchdog's timer is set once a run and left running between runs (it lingers).

Each run's limit is exactly as without lingering: a shot of the previous run's timer is never taken
for this run's limit passing, someone else's timer set between runs is left alone (and the run is
not limited, as before), a lingering timer that goes off between runs is cleared without touching the
campaign, another watchdog may install between runs, and a timer that went off (a hang) is cleared at
once. Each test names the shortcut it would catch going wrong.
"""

from __future__ import annotations

import signal
import time

import pytest

import robust_targets
from harness import JobSpec, Schedule, Submit, run_schedule
from harness.guard.watchdog import REPEAT_S, Expired, Watchdog
from harness.run.runner import TargetHung
from harness.run.session import RunSession

ONE = Schedule((Submit(0, 0, JobSpec("succeed", 10)),))
THREE = Schedule(tuple(Submit(0, job, JobSpec("succeed", 10)) for job in range(3)))
OFF = (0.0, 0.0)


@pytest.fixture(autouse=True)
def _no_timer_left() -> object:
    yield
    assert signal.getitimer(signal.ITIMER_REAL) == OFF


def test_a_run_leaves_its_timer_lingering_and_the_next_sets_it_again() -> None:
    with RunSession() as session:
        run_schedule(robust_targets.counting, ONE, timeout_s=30)
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        assert session.dog._lingering and interval == REPEAT_S and 29 < remaining <= 30
        run_schedule(robust_targets.counting, ONE, timeout_s=20)  # set again, not taken for someone else's
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        assert session.dog._lingering and interval == REPEAT_S and 19 < remaining <= 20


def test_a_shot_of_the_previous_run_s_timer_handled_in_the_next_run_is_not_its_hang() -> None:
    # A lingering timer going off just as the next run starts: Python may run the handler only after that
    # run's start() returned. The shot must not count (mutant: no elapsed-time check in the handler).
    with RunSession() as session:
        dog = session.dog
        dog.start(30)
        try:
            dog._handle(signal.SIGALRM, None)
            assert not dog.expired
            dog.check()  # does not raise
        finally:
            dog.stop()


def test_a_shot_once_the_limit_passed_still_counts() -> None:
    with RunSession() as session:
        dog = session.dog
        dog.start(0.05)
        try:
            time.sleep(0.01)  # (not yet: the handler ignores a shot before the limit)
            dog._handle(signal.SIGALRM, None)
            assert not dog.expired
            deadline = time.monotonic() + 5
            with pytest.raises(Expired):  # the real shot, raised here (not the runner's code)
                while time.monotonic() < deadline:
                    pass
            assert dog.expired
        finally:
            dog.stop()
        assert signal.getitimer(signal.ITIMER_REAL) == OFF  # one that went off is cleared at once


def test_a_lingering_timer_going_off_between_runs_is_cleared_and_harms_nothing() -> None:
    with RunSession() as session:
        run_schedule(robust_targets.counting, ONE, timeout_s=0.05)
        deadline = time.monotonic() + 5
        while signal.getitimer(signal.ITIMER_REAL) != OFF and time.monotonic() < deadline:
            pass  # the campaign's own code: the shot lands here and must not raise
        assert signal.getitimer(signal.ITIMER_REAL) == OFF and not session.dog._lingering
        assert not session.dog.expired
        run = run_schedule(robust_targets.counting, THREE, timeout_s=30)
        assert run.trace[-1].kind == "end"


def test_someone_else_s_timer_set_between_runs_is_left_alone() -> None:
    # As before lingering: a run that finds another ITIMER_REAL running is not limited, and that timer
    # stays as it was (mutant: any running timer taken for the watchdog's own lingering one).
    with RunSession() as session:
        run_schedule(robust_targets.counting, ONE, timeout_s=30)
        signal.setitimer(signal.ITIMER_REAL, 40)  # the campaign's own code, between runs
        try:
            run_schedule(robust_targets.counting, ONE, timeout_s=30)
            assert not session.dog.active
            remaining, interval = signal.getitimer(signal.ITIMER_REAL)
            assert 39 < remaining <= 40 and interval == 0.0
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        run_schedule(robust_targets.counting, ONE, timeout_s=30)  # and limited again once it is gone
        assert signal.getitimer(signal.ITIMER_REAL)[1] == REPEAT_S


def test_a_session_s_end_puts_back_someone_else_s_timer_that_replaced_the_lingering_one() -> None:
    with RunSession():
        run_schedule(robust_targets.counting, ONE, timeout_s=30)
        signal.setitimer(signal.ITIMER_REAL, 40)
    try:
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        assert 39 < remaining <= 40 and interval == 0.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def test_another_watchdog_may_install_between_runs() -> None:
    # The lingering timer is no one else's (mutant: _can_arm refusing any running timer).
    with RunSession() as session:
        run_schedule(robust_targets.counting, ONE, timeout_s=30)
        with Watchdog(5) as dog:
            assert dog.active and signal.getitimer(signal.ITIMER_REAL)[0] <= 5
        assert signal.getitimer(signal.ITIMER_REAL) == OFF  # the other one's, gone with it
        run_schedule(robust_targets.counting, ONE, timeout_s=30)  # the session's own is set again
        assert session.dog._lingering and signal.getitimer(signal.ITIMER_REAL)[1] == REPEAT_S


def test_a_hang_after_lingering_runs_is_caught_within_the_limit_and_leaves_no_timer() -> None:
    with RunSession():
        for _ in range(3):
            run_schedule(robust_targets.counting, ONE, timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(TargetHung, match="target hung in step 2"):
            run_schedule(robust_targets.spinning, THREE, timeout_s=0.3)
        assert 0.3 <= time.monotonic() - started < 0.3 + REPEAT_S + 5  # (load: generous)
        assert signal.getitimer(signal.ITIMER_REAL) == OFF  # went off: cleared, not lingering


def test_a_run_without_a_limit_clears_the_lingering_timer() -> None:
    with RunSession() as session:
        run_schedule(robust_targets.counting, ONE, timeout_s=30)
        run_schedule(robust_targets.counting, ONE, timeout_s=None)
        assert signal.getitimer(signal.ITIMER_REAL) == OFF and not session.dog._lingering
