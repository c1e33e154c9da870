"""Writes are atomic: readers and concurrent campaigns never see half a file, and lose nothing."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import harness.store.files
from harness import JobSpec, Schedule, Submit
from harness.cli.main import main
from harness.errors import ReportError
from harness.store.failure_file import FailureRecord, load, save
from harness.store.files import write_atomic

BUGGY = "scenarios.pools:double_release_pool"


def _record(n: int) -> FailureRecord:
    schedule = Schedule((Submit(n, n, JobSpec("succeed", n)),))
    return FailureRecord(target=BUGGY, schedule=schedule, invariant="concurrency.limit", message=f"m{n}", trace_hash=
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def test_threads_saving_into_one_directory_lose_nothing_and_readers_never_see_half_a_file(tmp_path) -> None:
    folder = tmp_path / "failures"
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(offset: int) -> None:
        try:
            for n in range(offset, offset + 25):
                save(_record(n), folder)
                save(_record(n), folder)  # the same failure twice: one whole file
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        while not done.is_set():
            for path in folder.glob("*.json") if folder.exists() else ():
                try:
                    load(path)
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 25,)) for k in range(8)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    assert errors == []
    assert sorted(path.name for path in folder.iterdir()) == sorted(f"{_record(n).id}.json" for n in range(200))


def test_a_write_that_fails_half_way_leaves_the_old_file_whole_and_no_litter(tmp_path, monkeypatch) -> None:
    path = write_atomic(tmp_path / "summary.json", "old\n")

    def broken(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.store.files.os, "fsync", broken)
    with pytest.raises(ReportError, match=r"cannot write .*summary.json.*No space left on device"):
        write_atomic(path, "new and longer\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_an_interrupt_half_way_leaves_the_old_file_whole(tmp_path, monkeypatch) -> None:
    path = write_atomic(tmp_path / "junit.xml", "<old/>\n")

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.store.files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "<new/>\n")
    assert path.read_text() == "<old/>\n" and len(list(tmp_path.iterdir())) == 1


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process's umask for the test; the one the test started with is put back."""
    kept = os.umask(0o022)
    os.umask(kept)
    try:
        yield os.umask
    finally:
        os.umask(kept)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)], ids=["022", "077", "002"])
def test_new_files_get_the_permissions_the_umask_gives(tmp_path, umask, mask, mode) -> None:
    # A plain open() gives 0o666 less the umask: readable by others under the usual 022, private under 077
    # (a fixed 0o644 made every failure file and report world-readable there).
    umask(mask)
    path = save(_record(1), tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_the_umask_is_read_without_proc_too(umask, monkeypatch) -> None:
    umask(0o027)
    monkeypatch.setattr(harness.store.files, "open", lambda *a, **k: (_ for _ in ()).throw(OSError("no /proc")), raising=False)
    assert harness.store.files._umask() == 0o027 and os.umask(0o027) == 0o027


def test_a_rewritten_file_keeps_its_permissions(tmp_path, umask) -> None:
    # The user made the summary private (or group-writable): a rewrite neither widens nor narrows it.
    umask(0o022)
    for mode in (0o600, 0o664):
        path = tmp_path / f"summary-{mode:o}.json"
        path.write_text("{}")
        path.chmod(mode)
        write_atomic(path, "[]")
        assert path.read_text() == "[]" and stat.S_IMODE(path.stat().st_mode) == mode


def test_two_campaigns_writing_into_the_same_directories_at_once_lose_nothing(tmp_path) -> None:
    def campaign(seed: str) -> subprocess.Popen[str]:
        argv = ["fuzz", BUGGY, "--seed", seed, "--report-dir", "reports", "--save-regression", "--regressions",
                "corpus", "--json", f"reports/summary-{seed}.json", "--junit", "reports/junit.xml"]
        return subprocess.Popen(
            [sys.executable, "-m", "harness", *argv], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )

    procs = [campaign("4"), campaign("7")]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 1, err
    # Each campaign reports its own files (two seeds may shrink to the same failure: one file, whole).
    saved = [tmp_path / m for out, _ in outputs for m in re.findall(r"^saved: (.+)$", out, flags=re.MULTILINE)]
    added = [tmp_path / m for out, _ in outputs for m in re.findall(r"^added to the regression corpus: (.+)$", out, flags=re.MULTILINE)]
    # A campaign that starts after the other added its failure to the corpus finds it there instead.
    replayed = sum(len(re.findall(r"^FAIL concurrency.limit \(regression", out, flags=re.MULTILINE)) for out, _ in outputs)
    assert len(saved) == len(added) and len(saved) + replayed == 2 and saved
    for path in saved + added:
        assert load(path).invariant == "concurrency.limit"
    assert {p.name for p in (tmp_path / "reports" / "failures").iterdir()} == {p.name for p in saved}
    assert {p.name for p in (tmp_path / "corpus").iterdir()} == {p.name for p in added}
    for seed in ("4", "7"):
        assert json.loads((tmp_path / "reports" / f"summary-{seed}.json").read_text())["outcome"] == "failed"
    assert (tmp_path / "reports" / "junit.xml").read_text().rstrip().endswith("</testsuites>")
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("option", ["--report-dir", "--regressions", "--database"])
def test_a_directory_option_naming_a_file_fails_before_the_campaign(option, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("a file, not a directory\n")
    extra = ["--save-regression"] if option == "--regressions" else []
    assert main(["fuzz", BUGGY, "--seed", "4", option, "taken", *extra]) == 2
    captured = capsys.readouterr()
    assert "is not a directory" in captured.err and captured.err.count("\n") == 1
    assert "fuzzing" not in captured.out  # refused before the campaign started
