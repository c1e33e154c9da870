"""A target that leaves threads running or patches the process's clocks cannot hang or corrupt a campaign."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_hardening import _harness


def _fuzz_argv(target: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "fuzz", f"stray_targets:{target}", "--seed", "1", "--no-regressions", "--no-database",
        "--report-dir", str(tmp_path / "reports"), "--json", str(tmp_path / "summary.json"), *extra,
    ]


def test_a_thread_left_running_by_the_target_does_not_hang_the_cli(tmp_path) -> None:
    done = _harness(_fuzz_argv("leaves_thread", tmp_path, "--max-examples", "30"), tmp_path, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "the target left" in done.stderr and "left-by-target" in done.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["outcome"] == "clean"


def test_the_parent_kills_a_child_that_reported_but_does_not_end() -> None:
    import signal
    import time

    from harness.guard import supervise

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.setpgid(0, 0)
        time.sleep(60)
        os._exit(0)
    started = time.monotonic()
    _, status = supervise._wait(pid, grace=0.5)
    assert time.monotonic() - started < 10
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_a_signal_the_parent_forwarded_is_an_interrupt_not_blamed_on_the_target() -> None:
    import signal
    import time

    script = (
        "import sys, time\n"
        "from harness.guard import supervise\n"
        "print('started', flush=True)\n"
        "sys.exit(supervise.supervise(lambda: time.sleep(60) or 0, \"'harness replay'\"))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(1)  # the child is sleeping in its own process group
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.strip() == "harness: interrupted by SIGTERM"


def test_clocks_a_run_replaced_are_put_back() -> None:
    import time

    import stray_targets
    from harness import JobSpec, Schedule, Submit, run_schedule

    before = (time.monotonic, time.perf_counter, time.time)
    try:
        run_schedule(stray_targets.freezes_clocks, Schedule(tuple(Submit(0, j, JobSpec("succeed", 10)) for j in range(3))))
        assert (time.monotonic, time.perf_counter, time.time) == before
    finally:  # without the fix, keep the rest of the session's clocks working
        time.monotonic, time.perf_counter, time.time = before


def test_a_target_that_freezes_the_clocks_does_not_break_the_budget_or_the_summary(tmp_path) -> None:
    done = _harness(_fuzz_argv("freezes_clocks", tmp_path, "--budget", "2"), tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 1.5 < summary["elapsed_seconds"] < 30
    merged = _harness(["merge", str(tmp_path / "summary.json"), "--json", str(tmp_path / "merged.json")], tmp_path)
    assert merged.returncode == 0, merged.stderr


def test_clocks_frozen_when_the_target_is_imported_do_not_break_the_budget(tmp_path) -> None:
    argv = _fuzz_argv("freezes_clocks", tmp_path, "--budget", "2")
    argv[1] = "stray_clock_at_import:target"
    done = _harness(argv, tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 1.5 < json.loads((tmp_path / "summary.json").read_text())["elapsed_seconds"] < 30
