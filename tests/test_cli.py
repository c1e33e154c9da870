"""The command line as a user runs it: exit codes, output, saved files, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"


def _fuzz_buggy(tmp_path: Path, capsys) -> tuple[int, str, Path]:
    code = main(["fuzz", BUGGY, "--seed", "4", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    (saved,) = (tmp_path / "failures").glob("*.json")
    return code, out, saved


def test_fuzz_buggy_exits_1_names_invariant_and_prints_replay(tmp_path, capsys) -> None:
    code, out, saved = _fuzz_buggy(tmp_path, capsys)
    assert code == 1
    assert "FAIL concurrency.limit" in out
    assert "minimal schedule: " in out
    assert f"replay: harness replay {saved}" in out
    data = json.loads(saved.read_text())
    assert data["invariant"] == "concurrency.limit"
    assert data["target"] == BUGGY
    assert data["seed"] == 4
    for key in ("harness", "twisted", "trace_hash", "schedule", "version"):
        assert key in data


def test_replay_reproduces_exactly_and_exits_1(tmp_path, capsys) -> None:
    _, _, saved = _fuzz_buggy(tmp_path, capsys)
    assert main(["replay", str(saved)]) == 1
    out = capsys.readouterr().out
    assert "reproduced exactly" in out
    assert "FAIL concurrency.limit" in out


def test_replay_against_fixed_code_exits_0(tmp_path, capsys) -> None:
    _, _, saved = _fuzz_buggy(tmp_path, capsys)
    data = json.loads(saved.read_text())
    data["target"] = CORRECT  # the same schedule against the fixed pool
    saved.write_text(json.dumps(data))
    assert main(["replay", str(saved)]) == 0
    assert "no longer fails" in capsys.readouterr().out


def test_show_prints_timeline_without_running(tmp_path, capsys) -> None:
    _, _, saved = _fuzz_buggy(tmp_path, capsys)
    data = json.loads(saved.read_text())
    data["target"] = "not_a_module_anyone_has:thing"  # show must not import it
    saved.write_text(json.dumps(data))
    assert main(["show", str(saved)]) == 0
    out = capsys.readouterr().out
    assert ">>" in out and "job.start" in out


def test_fuzz_correct_pool_exits_0(tmp_path, capsys) -> None:
    assert main(["fuzz", CORRECT, "--max-examples", "200", "--seed", "1", "--report-dir", str(tmp_path)]) == 0
    assert "no violations; 200 examples" in capsys.readouterr().out
    assert not (tmp_path / "failures").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fuzz", "no_such_module_xyz:target"], "cannot import module 'no_such_module_xyz'"),
        (["fuzz", "scenarios.pools:nothing"], "has no attribute 'nothing'"),
        (["fuzz", "scenarios.pools"], "must look like 'package.module:attribute'"),
        (["fuzz", "scenarios.pools:SemaphorePool"], "not a harness.Target"),
        (["fuzz", CORRECT, "--max-examples", "0"], "must be at least 1"),
        (["fuzz", CORRECT, "--budget", "soon"], "expected seconds"),
        (["fuzz", CORRECT, "--seed", "-4"], "must be zero or more"),
        (["frobnicate"], "invalid choice"),
        (["replay", "/nonexistent/failure.json"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content",
    [
        "{\"format\": \"harness-failure\", ",
        "[1, 2, 3]",
        json.dumps({"format": "something-else"}),
        json.dumps({"format": "harness-failure", "version": 99}),
        "\x00\x01binary",
    ],
)
def test_corrupt_or_foreign_failure_file_exits_2(tmp_path, content, capsys) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1


def test_altered_trace_is_detected(tmp_path, capsys) -> None:
    _, _, saved = _fuzz_buggy(tmp_path, capsys)
    data = json.loads(saved.read_text())
    data["trace"][0][1] = "edited"
    saved.write_text(json.dumps(data))
    assert main(["show", str(saved)]) == 2
    assert "does not match its trace_hash" in capsys.readouterr().err


def test_list_json_has_target_expect_description(capsys) -> None:
    assert main(["list", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {"target": BUGGY, "expect": "concurrency.limit"}.items() <= next(
        e for e in entries if e["target"] == BUGGY
    ).items()
    assert all(set(e) == {"target", "expect", "description"} for e in entries)
    assert any(e["expect"] == "pass" for e in entries)


def test_console_script_runs_as_installed(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "fuzz", BUGGY, "--seed", "2", "--report-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "FAIL concurrency.limit" in proc.stdout


@pytest.mark.parametrize("closed", [1, 2], ids=["stdout", "stderr"])
def test_a_closed_stdout_or_stderr_still_saves_the_failure_and_exits_1(tmp_path, closed) -> None:
    # `harness fuzz ... >&-` (or 2>&-): Python gives sys.stdout None, and the command died on its first
    # flush with a traceback (stderr closed: silently, before anything was saved). The other stream is read.
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "harness", "fuzz", BUGGY, "--seed", "2", "--report-dir", str(tmp_path), "--no-regressions"],
        capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.close(closed),
    )
    assert proc.returncode == 1, (proc.stdout + proc.stderr)[-2000:]
    (saved,) = (tmp_path / "failures").glob("*.json")
    if closed == 1:
        assert proc.stderr == ""  # no traceback
    else:
        assert f"saved: {saved}" in proc.stdout
    replay = subprocess.run(
        [sys.executable, "-m", "harness", "replay", str(saved)],
        capture_output=True, text=True, timeout=120, preexec_fn=lambda: os.close(closed),
    )
    assert replay.returncode == 1, (replay.stdout + replay.stderr)[-2000:]


@pytest.mark.parametrize(
    "env",
    [{"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}, {"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "ascii"}],
    ids=["c-locale-uncoerced", "ascii-stdout"],
)
def test_a_non_ascii_report_dir_under_a_non_utf8_locale_is_printed_and_written(tmp_path, env) -> None:
    # The path is not UTF-8 to the harness under the C locale (surrogate escapes) and not printable under
    # an ASCII stdout: the HTML report's write and the "saved:" line failed with an internal error (exit 3).
    import os

    report_dir = tmp_path / "rép ort"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "fuzz", BUGGY, "--seed", "2", "--report-dir", str(report_dir),
         "--no-regressions", "--html", "--no-coverage"],
        capture_output=True, timeout=120, env={**os.environ, **env},
    )
    assert proc.returncode == 1, proc.stderr.decode("utf-8", "replace")[-2000:]
    (saved,) = (report_dir / "failures").glob("*.json")
    assert b"saved: " in proc.stdout and (report_dir / "report.html").is_file()
    replay = subprocess.run([sys.executable, "-m", "harness", "replay", str(saved)], capture_output=True,
                            timeout=120, env={**os.environ, **env})
    assert replay.returncode == 1 and b"reproduced exactly" in replay.stdout, replay.stderr[-2000:]
