"""Hangs: a target that never returns is stopped by the per-run watchdog, reported, saved and replayed."""

from __future__ import annotations

import signal
import threading
import time

import pytest

import robust_targets
from harness import JobSpec, Schedule, Submit, TargetError, run_schedule
from harness.runner import TargetHung
from harness.watchdog import Watchdog

LIMIT = 0.3
#: Three submits 10ms apart: the second one is where the hanging pools hang.
THREE = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10)), Submit(20, 2)))


@pytest.mark.parametrize(
    ("name", "where", "at"),
    [
        ("spinning", "in step 2 (submit job 1)", "10ms"),
        ("blocking", "in step 2 (submit job 1)", "10ms"),  # blocked in C, not spinning in Python
        ("stubborn", "in step 2 (submit job 1)", "10ms"),  # swallows the first shots with except BaseException
        ("callback_spinning", "on the way to step 3 (submit job 2 at 20ms)", "20ms"),  # inside a Deferred callback
    ],
)
def test_a_run_that_hangs_is_stopped_and_says_where(name, where, at) -> None:
    started = time.monotonic()
    with pytest.raises(TargetHung) as caught:
        run_schedule(getattr(robust_targets, name), THREE, timeout_s=LIMIT)
    assert time.monotonic() - started < LIMIT + 5
    hung = caught.value
    assert str(hung) == (
        f"target hung {where} at virtual time {at}: it did not return within the {LIMIT:g}s "
        "wall-clock limit of a run (--example-timeout)"
    )
    assert hung.kind == "hang" and hung.run.trace[hung.event].kind == "target.hang"
    assert hung.run.subject is None  # dropped


def test_the_watchdog_leaves_signals_as_it_found_them() -> None:
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(TargetHung):
        run_schedule(robust_targets.spinning, THREE, timeout_s=LIMIT)
    run_schedule(robust_targets.spinning, Schedule(THREE.ops[:1]), timeout_s=LIMIT)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_watchdog_keeps_out_of_a_timer_someone_else_armed() -> None:
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        with Watchdog(LIMIT) as dog:
            assert not dog.active
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0  # the other timer is still armed
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_off_the_main_thread_there_is_no_watchdog_and_runs_still_work() -> None:
    seen = {}

    def work() -> None:
        with Watchdog(LIMIT) as dog:
            seen["active"] = dog.active
        seen["run"] = run_schedule(robust_targets.spinning, Schedule(THREE.ops[:1]), timeout_s=LIMIT)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen["active"] is False and len(seen["run"].trace) > 0


def test_a_build_that_never_returns_is_a_target_error() -> None:
    with pytest.raises(TargetError, match=r"build\(clock\) never returned"):
        run_schedule(robust_targets.spinning_build, THREE, timeout_s=LIMIT)


def test_a_livelock_is_reported_with_its_step_and_time() -> None:
    with pytest.raises(TargetHung, match=r"target livelocked on the way to step 3 .* at virtual time 10ms") as caught:
        run_schedule(robust_targets.livelock, THREE, timeout_s=LIMIT)
    assert caught.value.kind == "livelock"
