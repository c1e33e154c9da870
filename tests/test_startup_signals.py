"""A stop signal while ``harness fuzz`` starts up (review 8, finding 6): one line or the usual summary, never a traceback.

Importing the harness takes seconds on a loaded machine; a Ctrl-C then printed a 25-line ``KeyboardInterrupt``
traceback from an import, a SIGTERM ended the command with nothing said, and neither wrote the ``--json`` /
``--junit`` summary. The entry point (``harness_console``) now records the signal first thing and the campaign
takes it as its stop: no example runs, the summary says so, exit 130.

The windows are made deterministic, not raced: an import hook that sleeps when the ``harness`` package is first
imported (after the entry point began), and a target module that sleeps when loaded (``slow_start_targets``).
Each waits for a marker file before the signal is sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.guard import supervise

TESTS = Path(__file__).parent
ROOT = TESTS.parent

#: ``harness ARGV`` through the console entry point, the import of the harness package slowed by SLOW_IMPORT_S
#: seconds (MARKER written when the sleep begins).
SLOW_IMPORT = """
import os, sys, time
class SlowHarness:
    def find_spec(self, name, path=None, target=None):
        if name == "harness":
            open(os.environ["MARKER"], "w").close()
            time.sleep(float(os.environ["SLOW_IMPORT_S"]))
        return None
sys.meta_path.insert(0, SlowHarness())
import harness_console
harness_console.console()
"""

pytestmark = pytest.mark.skipif(not supervise.available(), reason="POSIX signals and fork")


def _start(tmp_path: Path, command: list[str], **env: str) -> tuple[subprocess.Popen[str], Path]:
    marker = tmp_path / "marker"
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]),
                "MARKER": str(marker), "SLOW_START_MARKER": str(marker), **env}
    process = subprocess.Popen([sys.executable, "-c", SLOW_IMPORT, *command], cwd=tmp_path, env=full_env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, marker


def _signal_when_started(process: subprocess.Popen[str], marker: Path, signum: int, within: float = 60) -> None:
    """Send ``signum`` to ``process`` once ``marker`` exists (the slow import or load has begun)."""
    deadline = time.monotonic() + within
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the slow start never began", process.communicate())
        time.sleep(0.05)
    process.send_signal(signum)


def _signal_when(process: subprocess.Popen[str], marker: Path, signum: int) -> tuple[int, str, str]:
    """Send ``signum`` once the slow start has begun; the exit code, stdout and stderr."""
    _signal_when_started(process, marker, signum)
    try:
        out, err = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the command did not end after the signal", process.communicate()) from None
    return process.returncode, out, err


def _fuzz(tmp_path: Path) -> list[str]:
    return ["fuzz", "slow_start_targets:pool", "--max-examples", "200", "--seed", "1", "--no-regressions",
            "--no-database", "--report-dir", str(tmp_path / "reports"), "--json", str(tmp_path / "summary.json"),
            "--junit", str(tmp_path / "junit.xml")]


def _assert_stopped_before_any_example(tmp_path: Path, code: int, out: str, err: str) -> None:
    assert code == 130, (out, err)
    assert "Traceback" not in err and err.strip() == "", err
    assert "interrupted; no violations; 0 examples" in out and "stopped by interrupt" in out, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["outcome"], summary["examples"], summary["exit_code"]) == ("interrupted", 0, 130)
    assert "<testsuite" in (tmp_path / "junit.xml").read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)])
def test_a_stop_while_the_harness_is_imported_writes_the_summary(signum, tmp_path) -> None:
    process, marker = _start(tmp_path, _fuzz(tmp_path), SLOW_IMPORT_S="1")
    _assert_stopped_before_any_example(tmp_path, *_signal_when(process, marker, signum))


@pytest.mark.slow
def test_a_stop_while_the_target_is_loaded_writes_the_summary(tmp_path) -> None:
    """The supervising parent forwards the signal to the child, which is loading the target (a slow module)."""
    process, marker = _start(tmp_path, _fuzz(tmp_path), SLOW_IMPORT_S="0", SLOW_START_EVERYWHERE="1",
                             SLOW_START_S="2")
    _assert_stopped_before_any_example(tmp_path, *_signal_when(process, marker, signal.SIGINT))


def test_another_command_stopped_while_the_harness_is_imported_says_one_line(tmp_path) -> None:
    process, marker = _start(tmp_path, ["list"], SLOW_IMPORT_S="1")
    code, out, err = _signal_when(process, marker, signal.SIGINT)
    assert (code, out, err) == (130, "", "harness: interrupted\n")


@pytest.mark.slow
def test_a_second_signal_while_the_harness_is_imported_stops_at_once_with_one_line(tmp_path) -> None:
    process, marker = _start(tmp_path, _fuzz(tmp_path), SLOW_IMPORT_S="30")
    _signal_when_started(process, marker, signal.SIGTERM)
    time.sleep(0.2)
    code, out, err = _signal_when(process, marker, signal.SIGINT)
    assert (code, err) == (128 + signal.SIGTERM, "harness: interrupted\n"), (out, err)
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.slow
def test_a_target_whose_import_hangs_is_stopped_by_one_signal(tmp_path) -> None:
    """One SIGTERM (a CI cancel) while the target's module hangs at import: the stop is repeated after the grace,
    as a campaign's is, and the command ends with one line instead of being killed 15 s later."""
    from harness.guard.signals import STOP_GRACE_S

    process, marker = _start(tmp_path, _fuzz(tmp_path), SLOW_IMPORT_S="0", SLOW_START_EVERYWHERE="1",
                             SLOW_START_S="60")
    sent = time.monotonic()
    code, out, err = _signal_when(process, marker, signal.SIGTERM)
    assert code == 130 and time.monotonic() - sent < STOP_GRACE_S + 8, (out, err)
    assert err == (f"harness: note: the campaign had not begun within {STOP_GRACE_S:g}s of SIGTERM (loading the "
                   "target?); stopping at once\nharness: interrupted\n"), err
