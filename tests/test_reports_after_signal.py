"""Reports after a stop signal: the summary is written before the large HTML report, and a kill loses only that.

The supervising parent kills a child still running ``KILL_GRACE_S`` after the first SIGINT or
SIGTERM. A child writing a very large HTML report then (it replays every failure) used to be
reported as having lost its summary. Now the failure files and the summary (``--json``,
``--junit``, each fsync'd and renamed into place) come first, the child tells the parent
before the HTML report, and the parent's one line says the HTML report alone is missing. A
second signal while the summary is written waits for it.

Each test runs ``harness fuzz`` through a small driver in a subprocess (the supervised child is
its fork, so the driver's patches hold there: a slow report, a short grace), bounded in time.
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

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not supervise.available() or not hasattr(signal, "SIGKILL"), reason="POSIX fork")

_DRIVER = """
import os, sys, time
from harness.guard import supervise
import harness.cli.fuzz as fuzz

supervise.KILL_GRACE_S = float(os.environ["GRACE"])
marker = os.environ["MARKER"]

def endless_report(path, summary, views, notes=None):
    # A report so large that writing it outlasts the grace period, deaf to the stop.
    open(marker, "w").close()
    while True:
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            pass

real_write_json = fuzz.write_json

def slow_write_json(summary, path):
    # A slow disk: the summary takes a while to write.
    open(marker, "w").close()
    time.sleep(2.0)
    return real_write_json(summary, path)

if os.environ["SLOW"] == "html":
    fuzz.write_report = endless_report
else:
    fuzz.write_json = slow_write_json
sys.argv = ["harness", *sys.argv[1:]]
from harness.cli.main import console
console()
"""


def _start(tmp_path: Path, slow: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", _DRIVER, "fuzz", "scenarios.pools:double_release_pool", "--seed", "1",
            "--max-examples", "300", "--no-regressions", "--no-database", "--report-dir", str(tmp_path / "reports"),
            "--json", str(tmp_path / "summary.json"), "--junit", str(tmp_path / "junit.xml"), "--html"]
    # The kill grace is short where the kill is the point (an endless HTML report), and well above the slow
    # summary's 2 s where the point is that the summary gets written: a loaded machine must not turn it into a kill.
    env = {**os.environ, "MARKER": str(tmp_path / "marker"), "SLOW": slow, "GRACE": "2.0" if slow == "html" else "10.0",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(path: Path, process: subprocess.Popen[str], within: float) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the campaign never reached its reports"
        time.sleep(0.05)


def _finish(process: subprocess.Popen[str], within: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError("the harness had not exited", out, err) from None
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the child and its workers, if anything is left
        except OSError:
            pass
    return process.returncode, out, err


def _summary_and_failures(tmp_path: Path) -> tuple[dict, list[Path]]:
    summary = json.loads((tmp_path / "summary.json").read_text())
    return summary, sorted((tmp_path / "reports" / "failures").glob("*.json"))


def test_a_child_killed_while_writing_the_html_report_kept_its_summary_and_says_so(tmp_path) -> None:
    process = _start(tmp_path, "html")
    _wait_for(tmp_path / "marker", process, 90)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code, out, err = _finish(process, 30)
    assert code == 128 + signal.SIGTERM, (out, err)
    assert time.monotonic() - sent < 15
    lines = [line for line in err.splitlines() if line.startswith("harness: error:")]
    assert lines == [
        "harness: error: the process running 'harness fuzz' had not stopped 2s after SIGTERM: it was writing the "
        "HTML report; killed it: the failures it saved and its summary (printed, --json, --junit) are complete, "
        "the HTML report is missing"
    ], err
    summary, failures = _summary_and_failures(tmp_path)
    assert summary["failures"] and len(failures) == len(summary["failures"])
    assert (tmp_path / "junit.xml").read_text().startswith("<?xml")
    assert not (tmp_path / "reports" / "report.html").exists()
    assert "summary: " in out and "html: " not in out


def test_a_second_signal_while_the_summary_is_written_waits_for_it(tmp_path) -> None:
    process = _start(tmp_path, "json")
    _wait_for(tmp_path / "marker", process, 90)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)  # "stop at once": after the summary, before the HTML report
    code, out, err = _finish(process, 30)
    assert code != 0 and "Traceback" not in err, (code, out, err)
    summary, failures = _summary_and_failures(tmp_path)
    assert summary["failures"] and len(failures) == len(summary["failures"])
    assert not (tmp_path / "reports" / "report.html").exists()


def test_without_a_parent_telling_nothing_happens() -> None:
    """``summary_written`` outside a supervised child (a library call, the pytest plugin) is a no-op."""
    assert supervise._report_fd is None
    supervise.summary_written()


def test_the_troubleshooting_page_quotes_the_line() -> None:
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    assert (
        f"had not stopped {supervise.KILL_GRACE_S:g}s after SIGTERM: it was writing the HTML report; killed it: the failures "
        "it saved and its summary (printed, --json, --junit) are complete, the HTML report is missing" in page
    )
