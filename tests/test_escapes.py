"""Escapes from virtual time: the global reactor and real sleeps are detected, explained and undone."""

from __future__ import annotations

import threading
import time

import pytest

import robust_targets
from harness import JobSpec, Schedule, Submit, Target, TargetError, run_schedule
from harness.cli.main import main
from harness.model.schedule import Start, Stop

ONE = Schedule((Submit(0, 0, JobSpec("succeed", 10)),))
INJECT = "pass the clock given to build(clock) to your code instead of using the global reactor"


@pytest.mark.parametrize(
    ("name", "schedule", "called", "fix"),
    [
        ("global_call_later", ONE, "reactor.callLater", INJECT),
        ("defer_later", ONE, "reactor.callLater", INJECT),
        ("hiding", ONE, "reactor.callLater", INJECT),  # swallows what the call raised: still caught
        ("sleeping", ONE, "time.sleep", "wait with clock.callLater or deferLater(clock, seconds)"),
        (
            "default_clock_loop",
            Schedule((Start(0, 0, JobSpec("succeed")), Stop(500))),
            "reactor.seconds",
            "read the time from the clock given to build(clock)",
        ),
    ],
)
def test_a_target_that_escapes_virtual_time_is_a_target_error_that_says_how_to_inject_the_clock(
    name, schedule, called, fix
) -> None:
    with pytest.raises(TargetError) as caught:
        run_schedule(getattr(robust_targets, name), schedule)
    message = str(caught.value)
    assert message.startswith(f"the target called {called} in step 1 ")
    assert "escaping virtual time" in message and fix in message
    assert "\n" not in message


def test_everything_patched_is_restored_after_a_run_however_it_ends() -> None:
    from twisted.internet import reactor

    before = (reactor.callLater, reactor.seconds, time.sleep)
    assert "callLater" not in vars(reactor)
    with pytest.raises(TargetError):
        run_schedule(robust_targets.global_call_later, ONE)
    run_schedule(robust_targets.counting, ONE)
    assert (reactor.callLater, reactor.seconds, time.sleep) == before
    assert "callLater" not in vars(reactor)  # the class's method again, not an instance attribute


def test_other_threads_may_sleep_while_a_run_goes_on() -> None:
    slept = threading.Event()
    release = threading.Event()

    def sleeper() -> None:
        release.wait(10)
        time.sleep(0.001)
        slept.set()

    class Waits(robust_targets._Pool):
        def submit(self, job):
            release.set()
            slept.wait(10)  # the other thread sleeps while this run is going on
            return super().submit(job)

    thread = threading.Thread(target=sleeper)
    thread.start()
    run_schedule(robust_targets.Target(build=lambda clock: Waits(clock), limit=2), ONE)
    thread.join(10)
    assert slept.is_set()


def test_harness_fuzz_reports_the_global_reactor_in_one_line_and_exits_2(tmp_path, capsys) -> None:
    argv = ["fuzz", "robust_targets:defer_later", "--seed", "1", "--max-examples", "50", "--report-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: the target called reactor.callLater ")
    assert INJECT in err and err.count("\n") == 1 and "Traceback" not in err


class _Napper:
    """A process function kept in a class attribute at import (a builtin: called without ``self``)."""

    nap = time.sleep


def test_a_process_function_kept_in_a_class_attribute_is_refused_and_put_back() -> None:
    class Subject:
        def __init__(self, clock: object) -> None:
            _Napper().nap(0)

    with pytest.raises(TargetError, match="the target called time.sleep"):
        run_schedule(Target(build=Subject), ONE)
    assert vars(_Napper)["nap"] is time.sleep
    _Napper().nap(0)  # outside a run: the real one, called as before
