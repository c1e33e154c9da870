"""Issue 15: what an adversarial review broke, each attack a regression test.

Files: only regular files are replaced, devices and FIFOs are written as
streams; inputs must be bounded regular files. Hostile targets: whatever a
target does (exit, fork, chdir, odd exceptions, a broken clock), the
campaign ends with a target error (exit 2), never exit 0 unless it finished,
never the harness blamed (exit 3).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import hostile_targets
from harness import JobSpec, Schedule, Submit, TargetError, run_schedule
from harness.cli import main
from harness.errors import FailureFileError, ReportError
from harness.files import read_bounded, write_atomic

TESTS = Path(__file__).parent
THREE = Schedule(tuple(Submit(0, job, JobSpec("succeed", 10)) for job in range(3)))


def _harness(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _fuzz_argv(target: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        "fuzz", f"hostile_targets:{target}", "--seed", "1", "--max-examples", "30", "--no-regressions",
        "--report-dir", str(tmp_path / "reports"), "--json", str(tmp_path / "summary.json"), *extra,
    ]


# -- 1: writing never replaces what is not a regular file ---------------------------------


def test_a_character_device_is_written_to_not_replaced(tmp_path) -> None:
    write_atomic("/dev/null", "{}\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_fifo_is_written_as_a_stream_and_one_nobody_reads_is_refused(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ReportError, match="FIFO that no process reads"):
        write_atomic(fifo, "x")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    for _ in range(200):  # until the reader has opened its end
        try:
            write_atomic(fifo, "hello\n")
            break
        except ReportError:
            threading.Event().wait(0.01)
    reader.join(10)
    assert got == [b"hello\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_link_to_a_file_is_followed_and_stays_a_link(tmp_path) -> None:
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize("option", ["--json", "--junit"])
def test_fuzz_refuses_a_directory_or_socket_before_the_campaign(option, tmp_path, capsys) -> None:
    argv = ["fuzz", "scenarios.pools:semaphore_pool", "--seed", "1", "--max-examples", "5", option, str(tmp_path)]
    assert main(argv) == 2
    assert "is a directory" in capsys.readouterr().err


def test_json_to_dev_stdout_prints_the_summary(tmp_path) -> None:
    argv = ["fuzz", "scenarios.pools:semaphore_pool", "--seed", "1", "--max-examples", "5", "--no-regressions",
            "--report-dir", str(tmp_path), "--json", "/dev/stdout"]
    done = _harness(argv, tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout[done.stdout.index("{\n"):]
    assert json.loads(text[: text.rindex("}") + 1])["format"] == "harness-summary"


def test_report_and_merge_outputs_go_through_the_safe_writer(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    summary = tmp_path / "s.json"
    assert main(["fuzz", "scenarios.pools:semaphore_pool", "--seed", "1", "--max-examples", "5", "--no-regressions",
                 "--report-dir", str(tmp_path), "--json", str(summary)]) == 0
    assert main(["merge", str(summary), "--json", str(fifo)]) == 2  # nobody reads: refused, not replaced
    assert main(["report", str(summary), "-o", str(fifo)]) == 2
    assert main(["report", str(summary), "-o", "/dev/null"]) == 0
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and stat.S_ISCHR(os.stat("/dev/null").st_mode)


# -- 5: inputs are bounded regular files ----------------------------------------------------


def test_reading_refuses_fifos_devices_and_oversized_files(tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for path, why in ((fifo, "not a regular file"), ("/dev/zero", "not a regular file"), (tmp_path, "not a regular file")):
        with pytest.raises(FailureFileError, match=why):
            read_bounded(path, 100, "summary", FailureFileError)
    big = tmp_path / "big.json"
    big.write_text("x" * 101)
    with pytest.raises(FailureFileError, match="101 bytes, more than the 100"):
        read_bounded(big, 100, "summary", FailureFileError)


@pytest.mark.parametrize("command", ["report", "merge"])
def test_report_and_merge_refuse_a_fifo_or_dev_zero_at_once(command, tmp_path, capsys) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    for path in (fifo, link):
        assert main([command, str(path), *(["-o", str(tmp_path / "r.html")] if command == "report" else [])]) == 2
        err = capsys.readouterr().err
        assert "not a regular file" in err and err.count("\n") == 1


# -- 17: an unwritable report directory is found before the campaign -----------------------


def test_an_unwritable_report_dir_is_refused_up_front(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    for directory in (str(blocker / "reports"), "/sys/kernel"):
        if directory == "/sys/kernel" and (not os.path.isdir(directory) or os.access(directory, os.W_OK) and os.geteuid() != 0):
            continue
        argv = ["fuzz", "scenarios.pools:double_release_pool", "--seed", "1", "--report-dir", directory]
        assert main(argv) == 2
        err = capsys.readouterr()
        assert "--report-dir" in err.err and "harness: fuzzing" not in err.out


# -- 3: a campaign never exits 0 unless it finished -------------------------------------------


def test_os_exit_in_a_run_is_a_target_error_and_the_summary_is_written(tmp_path) -> None:
    done = _harness(_fuzz_argv("exit0", tmp_path), tmp_path)
    assert done.returncode == 2, done.stderr
    assert "the target called os._exit in step 3" in done.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["outcome"] == "error"


@pytest.mark.parametrize("target", ["c_exit0", "exit_from_thread"])
def test_an_exit_no_guard_sees_still_never_exits_0(target, tmp_path) -> None:
    done = _harness(_fuzz_argv(target, tmp_path), tmp_path)
    assert done.returncode == 2
    assert "exited with code 0 before it finished" in done.stderr and "Traceback" not in done.stderr


def test_a_replay_whose_target_exits_is_not_reported_fixed(tmp_path) -> None:
    import hostile_targets as ht
    from harness.failure_file import FailureRecord, save

    run = run_schedule(ht.huge_result, Schedule((Submit(0, 0, JobSpec("succeed", 10)),)))
    del run
    record = FailureRecord(target="hostile_targets:c_exit0", schedule=THREE, invariant="concurrency.limit",
                           message="m", trace_hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    path = save(record, tmp_path)
    done = _harness(["replay", str(path)], tmp_path)
    assert done.returncode == 2 and "before it finished" in done.stderr


def test_signals_reach_the_supervised_campaign_once(tmp_path) -> None:
    argv = ["fuzz", "scenarios.pools:semaphore_pool", "--budget", "60", "--no-database", "--no-regressions",
            "--report-dir", str(tmp_path), "--json", str(tmp_path / "s.json")]
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the campaign has started
    os.killpg(os.getpgid(proc.pid), signal.SIGTERM) if os.getpgid(proc.pid) != os.getpgid(0) else proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; no violations" in out  # one signal: a graceful stop, the summary written
    assert json.loads((tmp_path / "s.json").read_text())["stopped_by"] == "interrupt"


# -- 8, 12, 13: hostile targets are target errors (exit 2), never the harness's (3) ----------


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("raises_base", "the target raised Mine: mine in step 3"),
        ("raises_generator_exit", "the target raised GeneratorExit"),
        ("raises_keyboard_interrupt", "the target raised KeyboardInterrupt"),
        ("clears_calls", "out of the clock or a Deferred the harness drives"),
        ("replaces_next_due", "next_due replaced"),
        ("bad_deferred", "addCallbacks refuses"),
        ("closes_stdout", "the target called sys.stdout.close"),
    ],
)
def test_hostile_targets_are_target_errors(target, said, tmp_path, capsys) -> None:
    assert main(_fuzz_argv(target, tmp_path)) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_base_exception_is_a_target_error_with_workers_too(workers, tmp_path) -> None:
    done = _harness(_fuzz_argv("raises_base", tmp_path, "--workers", workers), tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Mine: mine" in done.stderr and "Traceback" not in done.stderr


def test_a_lone_surrogate_in_a_name_is_a_target_error(tmp_path) -> None:
    run = run_schedule(hostile_targets.surrogate_name, THREE)
    with pytest.raises(TargetError, match="not valid Unicode"):
        run.trace.digest()


def test_a_real_second_ctrl_c_is_still_an_interrupt() -> None:
    from harness.signals import StopSignals

    class Interrupts(hostile_targets._Hostile):
        def act(self) -> None:
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # the second one raises KeyboardInterrupt

    with StopSignals(), pytest.raises(KeyboardInterrupt):
        run_schedule(hostile_targets.Target(build=lambda clock: Interrupts(clock, limit=2), limit=2), THREE)


# -- 9, 18: aliases, forks, cwd and signal handlers ---------------------------------------------


def test_sleep_imported_by_name_is_still_refused() -> None:
    with pytest.raises(TargetError, match="the target called time.sleep in step 3"):
        run_schedule(hostile_targets.aliased_sleep, THREE)
    assert hostile_targets.sleep is __import__("time").sleep  # put back


def test_fork_is_refused_and_no_child_is_left() -> None:
    with pytest.raises(TargetError, match="the target called os.fork"):
        run_schedule(hostile_targets.forks, THREE)


def test_cwd_and_signal_handlers_are_restored_after_every_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_schedule(hostile_targets.chdir, THREE)
    assert Path.cwd() == tmp_path
    before = signal.getsignal(signal.SIGINT)
    run_schedule(hostile_targets.ignores_sigint, THREE)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_target_that_chdirs_does_not_move_the_outputs(tmp_path) -> None:
    done = _harness(["fuzz", "hostile_targets:chdir", "--seed", "1", "--max-examples", "20", "--no-regressions",
                     "--report-dir", "reports", "--json", "summary.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "summary.json").is_file()


# -- 22: every repr the harness makes is bounded --------------------------------------------------


def test_a_huge_result_is_rendered_at_bounded_cost() -> None:
    import time

    started = time.monotonic()
    run = run_schedule(hostile_targets.huge_result, Schedule((Submit(0, 0, JobSpec("succeed", 10)),)), timeout_s=5)
    assert time.monotonic() - started < 5
    (result,) = [event for event in run.trace if event.kind == "result"]
    assert len(result.detail) <= 80 and result.detail.startswith("'xxx")
