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
import time
from pathlib import Path

import pytest

import hostile_targets
from harness import JobSpec, Schedule, Submit, TargetError, run_schedule
from harness.cli.main import main
from harness.errors import FailureFileError, ReportError
from harness.store.files import read_bounded, write_atomic

TESTS = Path(__file__).parent
THREE = Schedule(tuple(Submit(0, job, JobSpec("succeed", 10)) for job in range(3)))


def _harness(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
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


@pytest.mark.parametrize("breaks", ["save", "shrink"])
def test_a_failure_that_cannot_be_saved_or_shrunk_is_still_printed(breaks, tmp_path, monkeypatch, capsys) -> None:
    # The directory becomes unwritable after the up-front check, or the target errs while shrinking.
    import harness.search.campaign as campaign

    def refuse(*args: object, **kwargs: object) -> None:
        if breaks == "save":
            raise ReportError(f"cannot write {tmp_path}/failures/x.json: Permission denied; choose another path")
        raise TargetError("the target raised Mine: mine in step 2")

    monkeypatch.setattr(campaign.failure_file if breaks == "save" else campaign, "save" if breaks == "save" else "shrink_schedule", refuse)
    argv = ["fuzz", "scenarios.pools:double_release_pool", "--seed", "1", "--no-regressions",
            "--report-dir", str(tmp_path), "--json", str(tmp_path / "s.json")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "FAIL concurrency.limit" in out and "\ntrace (>> marks" in out, out
    assert "1 failure;" in out and "no violations" not in out
    assert ("Permission denied" if breaks == "save" else "Mine: mine") in err
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["outcome"] == "error" and len(summary["failures"]) == 1


# -- 3: a campaign never exits 0 unless it finished -------------------------------------------


def test_os_exit_in_a_run_is_a_target_error_and_the_summary_is_written(tmp_path) -> None:
    done = _harness(_fuzz_argv("exit0", tmp_path), tmp_path)
    assert done.returncode == 2, done.stderr
    assert "the target called os._exit in step " in done.stderr
    assert json.loads((tmp_path / "summary.json").read_text())["outcome"] == "error"


@pytest.mark.parametrize("target", ["c_exit0", "exit_from_thread"])
def test_an_exit_no_guard_sees_still_never_exits_0(target, tmp_path) -> None:
    done = _harness(_fuzz_argv(target, tmp_path), tmp_path)
    assert done.returncode == 2
    assert "exited with code 0 before it finished" in done.stderr and "Traceback" not in done.stderr


def test_a_replay_whose_target_exits_is_not_reported_fixed(tmp_path) -> None:
    import hostile_targets as ht
    from harness.store.failure_file import FailureRecord, save

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
    proc = subprocess.Popen([sys.executable, "-m", "harness", *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # the campaign has started
    time.sleep(3)  # and handles signals (a SIGTERM before that kills it, supervised or not)
    os.killpg(os.getpgid(proc.pid), signal.SIGTERM) if os.getpgid(proc.pid) != os.getpgid(0) else proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; no violations" in out  # one signal: a graceful stop, the summary written
    assert json.loads((tmp_path / "s.json").read_text())["stopped_by"] == "interrupt"


# -- 8, 12, 13: hostile targets are target errors (exit 2), never the harness's (3) ----------


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("raises_base", "the target raised Mine: mine in step "),
        ("raises_generator_exit", "the target raised GeneratorExit"),
        ("raises_keyboard_interrupt", "the target raised KeyboardInterrupt"),
        ("clears_calls", "out of the clock or a Deferred the harness drives"),
        ("bad_deferred", "addCallbacks refuses"),
    ],
)
def test_hostile_targets_are_target_errors(target, said, tmp_path, capsys) -> None:
    assert main(_fuzz_argv(target, tmp_path)) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err and err.count("\n") == 1, err


def test_a_target_that_replaces_clock_methods_is_never_an_internal_error(tmp_path, capsys) -> None:
    # The runner may or may not call the replaced method; either way the harness is not to blame.
    assert main(_fuzz_argv("replaces_next_due", tmp_path)) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err


def test_a_target_that_closes_stdout_is_a_target_error_and_the_summary_still_prints(tmp_path) -> None:
    done = _harness(_fuzz_argv("closes_stdout", tmp_path), tmp_path)
    assert done.returncode == 2, done.stderr
    assert "the target called sys.stdout.close" in done.stderr and "Traceback" not in done.stderr
    assert "stopped by error" in done.stdout  # printed after the target closed it


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_base_exception_is_a_target_error_with_workers_too(workers, tmp_path) -> None:
    done = _harness(_fuzz_argv("raises_base", tmp_path, "--workers", workers), tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Mine: mine" in done.stderr and "Traceback" not in done.stderr


def test_a_lone_surrogate_in_a_name_is_a_target_error(tmp_path, capsys) -> None:
    run = run_schedule(hostile_targets.surrogate_name, THREE)
    with pytest.raises(TargetError, match="not valid Unicode"):
        run.trace.digest()
    assert main(_fuzz_argv("surrogate_name", tmp_path)) == 2
    assert "not valid Unicode" in capsys.readouterr().err


def test_a_real_second_ctrl_c_is_still_an_interrupt() -> None:
    from harness.guard.signals import StopSignals

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


@pytest.mark.parametrize(("target", "code"), [("forks", 2), ("c_fork", 0)])
def test_a_worker_whose_target_forks_ends_with_one_summary_and_no_orphans(target, code, tmp_path) -> None:
    # os.fork is refused (a target error); a fork through C goes unseen, and its child leaves at the run's end.
    done = _harness(_fuzz_argv(target, tmp_path, "--workers", "2"), tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stdout.count("stopped by") == 1 and done.stdout.count("harness: fuzzing") == 1, done.stdout
    assert "Traceback" not in done.stderr
    pids = [int(line) for line in (tmp_path / "forked.pids").read_text().split()] if target == "c_fork" else []
    assert len(pids) >= (2 if target == "c_fork" else 0)
    time.sleep(0.5)
    for pid in pids:  # every child forked out of a run has exited (and, reparented, been reaped)
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "zombie" in status.read_text(), pid


def test_cwd_and_signal_handlers_are_restored_after_every_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_schedule(hostile_targets.chdir, THREE)
    assert Path.cwd() == tmp_path
    before = signal.getsignal(signal.SIGINT)
    run_schedule(hostile_targets.ignores_sigint, THREE)
    assert signal.getsignal(signal.SIGINT) is before


def test_umask_and_recursion_limit_are_restored_after_every_run() -> None:
    # A umask of 0o777 left behind makes reports/failures/ unwritable for the failure the run found;
    # a lowered recursion limit makes later runs differ (reported as nondeterminism).
    import os
    import sys

    mask = os.umask(0o022)
    os.umask(mask)
    limit = sys.getrecursionlimit()
    run_schedule(hostile_targets.umask, THREE)
    now = os.umask(mask)
    assert now == mask
    run_schedule(hostile_targets.lowers_recursion_limit, THREE)
    assert sys.getrecursionlimit() == limit


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


# -- 2, 6: summaries are checked against the schema; the page escapes and forbids scripts -------------


@pytest.fixture(scope="module")
def real_summary(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("summary")
    out = folder / "s.json"
    argv = ["fuzz", "scenarios.pools:double_release_pool", "--seed", "4", "--no-regressions", "--report-dir",
            str(folder), "--json", str(out), "--coverage"]
    assert main(argv) == 1
    return json.loads(out.read_text())


SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize(
    "path",
    [
        ("coverage", "lines", "percent"),
        ("coverage", "files", 0, "percent"),
        ("coverage", "files", 0, "statements"),
        ("coverage", "files", 0, "covered_lines"),
        ("examples",),
        ("failures",),
        ("regressions",),
        ("seed",),
        ("limits",),
    ],
)
def test_a_summary_with_a_script_or_a_wrong_type_is_refused_in_one_line(path, real_summary, tmp_path, capsys) -> None:
    summary = json.loads(json.dumps(real_summary))
    node = summary
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = SCRIPT
    source = tmp_path / "s.json"
    source.write_text(json.dumps(summary))
    for argv in (["report", str(source), "-o", str(tmp_path / "r.html")], ["merge", str(source)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "is not a valid harness summary" in err and ".".join(map(str, path[:1])) in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_the_page_forbids_scripts_and_escapes_every_value(real_summary, tmp_path) -> None:
    from harness.output.report import render_report

    summary = json.loads(json.dumps(real_summary))
    summary["target"] = summary["coverage"]["scope"] = SCRIPT
    summary["coverage"]["files"][0]["file"] = '"><script>x</script>'
    summary["coverage"]["files"][0]["percent"] = "50%;}</style><script>x</script>"  # past the schema, say
    page = render_report(summary, [])
    assert "<script" not in page.lower()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page and "script-src" not in page


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda s: s.__setitem__("failures", 7), "failures must be array"),
        (lambda s: s.__setitem__("regressions", None), "regressions must be object"),
        (lambda s: s.__setitem__("seed", [1]), "seed must be integer"),
        (lambda s: s.__setitem__("examples", "12"), "examples must be integer"),
        (lambda s: s["failures"][0].pop("invariant"), "lacks 'invariant'"),
        (lambda s: s.__setitem__("limits", None), "limits must be object"),
    ],
)
def test_summaries_with_wrong_types_are_one_line_errors(change, said, real_summary, tmp_path, capsys) -> None:
    summary = json.loads(json.dumps(real_summary))
    change(summary)
    source = tmp_path / "s.json"
    source.write_text(json.dumps(summary))
    for argv in (["report", str(source), "-o", str(tmp_path / "r.html")], ["merge", str(source)]):
        assert main(argv) == 2
        assert said in capsys.readouterr().err


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"format": "harness-summary", "seed": 1' + "0" * 5000 + "}",
                                  '{"format": "harness-summary", "version": 1, "seed": NaN}'])
def test_deep_nesting_long_integers_and_nan_are_one_line_errors(text, tmp_path, capsys) -> None:
    source = tmp_path / "s.json"
    source.write_text(text)
    for argv in (["report", str(source), "-o", str(tmp_path / "r.html")], ["merge", str(source)], ["show", str(source)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("harness: error: ") and err.count("\n") == 1


def test_trace_times_going_backwards_or_huge_are_drawn_or_refused(tmp_path, capsys) -> None:
    from harness.store.failure_file import FailureRecord, save
    from harness.model.trace import Event, digest_lines

    for times in ([5_000, 1_000, 0], [0, 10**18 + 1]):
        trace = tuple(Event(t, "submit", 0, 0, "") for t in times)
        record = FailureRecord(target="scenarios.pools:semaphore_pool", schedule=THREE, invariant="x.y", message="m",
                               trace_hash=digest_lines([e.line() for e in trace]), trace=trace, marked=(1,))
        path = save(record, tmp_path)
        assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 0
        assert main(["show", str(path)]) == 0
    data = json.loads(path.read_text())
    data["trace"][1][0] = 10**400 + 1
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["show", str(path)]) == 2 and "beyond 64 bits" in capsys.readouterr().err


def test_a_page_draws_at_most_a_window_of_a_huge_trace_and_says_so() -> None:
    from harness.output.report import FailureView, render_report
    from harness.output.report.page import MAX_DRAWN
    from harness.model.trace import Event

    events = tuple(Event(i, "submit", 0, 0, "") for i in range(MAX_DRAWN * 50))
    view = FailureView(invariant="x.y", message="m", target="a.b:c", events=events, marked=(len(events) - 10,),
                       schedule=THREE)
    page = render_report(None, [view])
    assert f"draws {MAX_DRAWN:,} of them" in page and len(page) < 3_000_000


# -- 4, 16: Redis URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["redis://:topSECRET#tail@127.0.0.1:1/0", "redis://u:top?SECRET@127.0.0.1:1/0",
                                 "redis://:top/SECRET@127.0.0.1:1/0", "redis://:top SECRET@127.0.0.1:1/0"])
def test_a_redis_password_is_never_printed(url, capsys) -> None:
    assert main(["fuzz", "scenarios.pools:semaphore_pool", "--database", url, "--max-examples", "3"]) == 2
    captured = capsys.readouterr()
    assert "SECRET" not in captured.err + captured.out and captured.err.count("\n") == 1


def test_an_unparsable_redis_url_is_a_usage_error(capsys) -> None:
    assert main(["fuzz", "scenarios.pools:semaphore_pool", "--database", "redis://[::1", "--max-examples", "3"]) == 2
    assert "not a usable Redis URL" in capsys.readouterr().err


# -- 14, 15, 21: pipes, infinite budgets, impossible shards ------------------------------------------


@pytest.mark.parametrize("argv", [["list"], ["list", "--json"]])
def test_a_closed_stdout_pipe_is_not_an_internal_error(argv) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    done = subprocess.run([sys.executable, "-m", "harness", *argv], stdout=write_end, stderr=subprocess.PIPE, text=True)
    os.close(write_end)
    assert done.returncode == 141 and "Traceback" not in done.stderr


@pytest.mark.parametrize("budget", ["inf", "1e400", "nan"])
def test_an_infinite_budget_is_refused(budget, capsys) -> None:
    assert main(["fuzz", "scenarios.pools:semaphore_pool", "--budget", budget]) == 2
    assert "--budget" in capsys.readouterr().err


@pytest.mark.parametrize(("index", "count"), [(7, 2), (-1, 2), (0, 2)])
def test_merge_refuses_impossible_shard_labels(index, count, real_summary, tmp_path, capsys) -> None:
    summary = {**real_summary, "shard": {"index": index, "count": count, "max_examples": None}}
    source = tmp_path / "s.json"
    source.write_text(json.dumps(summary))
    assert main(["merge", str(source)]) == 2
    err = capsys.readouterr().err
    assert ("cannot be" in err or "shard.index must be at least 1" in err) and err.count("\n") == 1


def test_merge_names_a_few_missing_shards_of_a_huge_count(real_summary, tmp_path, capsys) -> None:
    summary = {**real_summary, "shard": {"index": 1, "count": 10**12, "max_examples": None}}
    source = tmp_path / "s.json"
    source.write_text(json.dumps(summary))
    assert main(["merge", str(source)]) == 1
    assert "and 999,999,999,989 more missing" in capsys.readouterr().err


def test_merge_refuses_the_same_summary_twice(real_summary, tmp_path, capsys) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(real_summary))
    second.write_text(json.dumps(real_summary))
    assert main(["merge", str(first), str(second)]) == 2
    assert "are the same summary" in capsys.readouterr().err


# -- 11: terminal escapes from files and targets are printed escaped -------------------------------


def test_merge_and_the_corpus_listing_escape_what_files_say(real_summary, tmp_path, capsys) -> None:
    from harness.store.failure_file import FailureRecord, save

    summary = json.loads(json.dumps(real_summary))
    summary["failures"][0]["message"] = "boom\x1b[2J\rgone"
    summary["failures"][0]["invariant"] = "x\x1b]0;title\x07"
    source = tmp_path / "s.json"
    source.write_text(json.dumps(summary))
    assert main(["merge", str(source)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2J" in out
    record = FailureRecord(target="scenarios.pools:semaphore_pool", schedule=THREE, invariant="evil\x1b[31m",
                           message="m", trace_hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    corpus = tmp_path / "corpus"
    save(record, corpus)
    main(["fuzz", "scenarios.pools:semaphore_pool", "--seed", "1", "--max-examples", "3", "--regressions",
          str(corpus), "--report-dir", str(tmp_path)])
    assert "\x1b" not in capsys.readouterr().out


def test_pytest_item_names_from_files_are_one_line_and_never_split_a_node_id() -> None:
    from harness.pytest.regressions import item_name

    name = item_name("a::b\x1b[2J\nc")
    assert "::" not in name and "\n" not in name and "\x1b" not in name


# -- 7: the final shrink pass keeps to the budget ----------------------------------------------------


def test_the_final_shrink_pass_stops_once_budget_and_grace_are_spent(monkeypatch, tmp_path) -> None:
    """Deterministic whatever the machine's load: with the grace already spent, shrinking runs nothing more."""
    import time as clock

    from harness import CampaignConfig, CampaignResult, run_campaign
    from harness.search import campaign
    from scenarios.pools import double_release_pool

    spec = "scenarios.pools:double_release_pool"
    (found,) = run_campaign(double_release_pool, spec, CampaignConfig(seed=4, report_dir=str(tmp_path))).findings
    bigger = Schedule(found.record.schedule.ops + tuple(Submit(0, 90 + i, JobSpec("succeed", 5)) for i in range(4)))
    monkeypatch.setattr(campaign, "SHRINK_GRACE_S", 0.0)
    config = CampaignConfig(budget_s=0.001, seed=4, report_dir=str(tmp_path), database=None, regressions=None)
    result = CampaignResult(target=spec, seed=4)
    search = campaign._Search(double_release_pool, spec, config, result, None, None, lambda: False)
    clock.sleep(0.01)
    finding, cut_short_by = search._confirm(bigger, found.violation)
    assert result.shrink_runs == 0 and not finding.shrunk and cut_short_by == "budget"
    assert len(finding.record.schedule.ops) == len(bigger.ops)


def test_shrinking_a_slow_target_keeps_to_budget_plus_grace(monkeypatch, tmp_path) -> None:
    import time as clock

    from harness import CampaignConfig, run_campaign
    from harness.search import campaign

    monkeypatch.setattr(campaign, "SHRINK_GRACE_S", 1.0)
    config = CampaignConfig(budget_s=4.0, seed=3, report_dir=str(tmp_path), database=None, regressions=None)
    started = clock.monotonic()
    result = run_campaign(hostile_targets.slow_buggy, "hostile_targets:slow_buggy", config)
    elapsed = clock.monotonic() - started
    assert not result.interrupted  # the budget, not an interrupt, ended it
    assert result.findings  # the smallest schedule reached is kept
    # Budget + grace, plus the runs already under way and the final replay and determinism check. The
    # margin is wide because those runs cost 60 ms of CPU per submission and take several times that on
    # a loaded machine; a shrink that ignored the budget runs hundreds of them (minutes), so it still fails.
    assert elapsed < 4.0 + 1.0 + 40.0, elapsed


def test_a_start_for_a_subject_without_start_is_the_schedules_fault_not_the_subjects() -> None:
    # A hand-edited or foreign failure file starting a plain pool: say the schedule does not fit the
    # target, rather than "the subject's start() raised AttributeError" (the hostile-inputs review).
    from harness.model.schedule import Start
    from scenarios.pools import semaphore_pool

    with pytest.raises(TargetError) as raised:
        run_schedule(semaphore_pool, Schedule((Start(0, 0, JobSpec("succeed", 10)),)))
    message = str(raised.value)
    assert "has no start() method" in message and "a schedule made for this target" in message
    assert "raised AttributeError" not in message
