"""A target's real timer (``signal.alarm``, ``signal.setitimer``) is an escape from virtual time.

Left pending, it fired after the run: inside a later run or the campaign's
own code, killing a long campaign with SIGALRM (exit 142, blamed on "the
target ended the process"). It is refused in the run like ``time.sleep``,
named in one line; nothing is left pending, and the watchdog, whose timer and
``SIGALRM`` handler the run shares, still stops a hang afterwards.
"""

from __future__ import annotations

import signal

import pytest

import hostile_targets
import robust_targets
from harness import JobSpec, Schedule, Submit, TargetError, TargetHung, run_schedule
from harness.cli.main import main
from harness.guard.watchdog import Watchdog
from harness.run.session import RunSession

THREE = Schedule(tuple(Submit(0, job, JobSpec("succeed", 10)) for job in range(3)))
SPIN = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10))))
LIMIT = 0.3
ORIGINALS = (signal.alarm, signal.setitimer)


def _nothing_pending() -> None:
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.alarm(0) == 0  # no alarm was pending (and none is now)


@pytest.mark.parametrize(
    ("target", "called"), [("sets_alarm", "signal.alarm"), ("sets_timer", "signal.setitimer")]
)
def test_a_real_timer_is_refused_named_and_never_left_pending(target, called) -> None:
    with pytest.raises(TargetError) as caught:
        run_schedule(getattr(hostile_targets, target), THREE)
    assert str(caught.value).startswith(
        f"the target called {called} in step 3 (submit job 2) at virtual time 0ms, escaping virtual time; "
        "a real timer fires in wall-clock time"
    )
    assert "clock.callLater(seconds, f)" in str(caught.value)
    _nothing_pending()
    assert (signal.alarm, signal.setitimer) == ORIGINALS  # put back, and so is the alias taken at import
    assert hostile_targets.setitimer is signal.setitimer


@pytest.mark.parametrize("target", ["sets_alarm", "sets_timer", "ignores_sigalrm"])
def test_the_watchdog_still_stops_a_hang_after_a_target_touched_its_timer_or_signal(target) -> None:
    before = signal.getsignal(signal.SIGALRM)
    with RunSession():
        with pytest.raises(TargetError):  # each refused (SIGALRM's handler too, since it disarms the watchdog)
            run_schedule(getattr(hostile_targets, target), THREE, timeout_s=LIMIT)
        with pytest.raises(TargetHung):
            run_schedule(robust_targets.spinning, SPIN, timeout_s=LIMIT)
    assert signal.getsignal(signal.SIGALRM) is before
    _nothing_pending()


def test_between_runs_and_on_its_own_the_timer_functions_work() -> None:
    # Only a run is refused a timer: the campaign's own code (and pytest-timeout, the user's alarm) are not.
    with RunSession():
        assert signal.setitimer is not ORIGINALS[1]  # installed for the session
        signal.setitimer(signal.ITIMER_REAL, 30)
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert signal.alarm(0) == 0
        with Watchdog(LIMIT) as dog:  # the watchdog arms its timer through the guard's patches
            assert dog.active and signal.getitimer(signal.ITIMER_REAL)[0] > 0
    _nothing_pending()


@pytest.mark.parametrize(
    ("target", "called"), [("sets_alarm", "signal.alarm"), ("sets_timer", "signal.setitimer")]
)
def test_the_cli_says_it_in_one_line_and_exits_2(target, called, tmp_path, capsys) -> None:
    argv = ["fuzz", f"hostile_targets:{target}", "--seed", "1", "--max-examples", "30", "--no-regressions",
            "--report-dir", str(tmp_path / "reports"), "--json", str(tmp_path / "summary.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"the target called {called} in step " in err and "Traceback" not in err and err.count("\n") == 1, err
    _nothing_pending()


def test_an_alarm_set_at_import_that_kills_the_campaign_is_named(tmp_path) -> None:
    # Outside any run nothing is refused: the timer fires mid-campaign, and the supervisor says what it was.
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "harness", "fuzz", "alarm_at_import:target", "--seed", "1", "--budget", "60",
         "--no-regressions", "--no-database", "--report-dir", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 128 + signal.SIGALRM, (done.stdout, done.stderr)
    assert "was killed by SIGALRM (a real alarm fired: signal.alarm or setitimer" in done.stderr
    assert "Traceback" not in done.stderr
