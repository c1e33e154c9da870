"""``harness fuzz`` as a CI job runs it: budgets, seeds, several failures, the corpus, the database, exit codes."""

from __future__ import annotations

import json
import signal
import sys
import uuid
from pathlib import Path

import pytest

import harness.search.campaign
import harness.cli.fuzz
import harness.invariants
from harness.cli.main import main
from harness.invariants import Invariant
from harness.output.progress import Progress

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"
SEED = "7"  # finds the double release within a few examples, not at the first


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch) -> Path:
    """Every campaign runs in its own directory: default corpus, database and reports land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _summary(path: str | Path = "summary.json") -> dict:
    return json.loads(Path(path).read_text())


def _fuzz(*argv: str) -> int:
    return main(["fuzz", *argv])


def _target_module(tmp_path: Path, body: str) -> str:
    """Write a module of targets into the working directory; return its (unique) name."""
    name = f"ci_targets_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("from harness import Target\nfrom scenarios.pools import SemaphorePool\n" + body)
    return name


# -- budgets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "stopped_by"),
    [
        (["--max-examples", "40"], "max-examples"),
        (["--budget", "0.5"], "budget"),
        (["--budget", "60", "--max-examples", "30"], "max-examples"),
        (["--budget", "0.5s", "--max-examples", "1000000"], "budget"),
    ],
)
def test_campaign_stops_at_the_first_budget_reached_and_says_how_far_it_got(argv, stopped_by, capsys) -> None:
    assert _fuzz(CORRECT, "--seed", "1", *argv, "--json", "summary.json") == 0
    summary = _summary()
    assert summary["stopped_by"] == stopped_by
    assert summary["outcome"] == "clean" and summary["failures"] == []
    if stopped_by == "max-examples":
        assert summary["examples"] == int(argv[argv.index("--max-examples") + 1])
    else:
        assert 0 < summary["examples"] and 0.5 <= summary["elapsed_seconds"] < 5
    out = capsys.readouterr().out
    assert f"no violations; {summary['examples']} examples in" in out
    assert f"stopped by {stopped_by}; seed 1" in out


def test_without_a_budget_a_campaign_runs_the_default_examples(monkeypatch, capsys) -> None:
    monkeypatch.setattr(harness.search.campaign, "DEFAULT_MAX_EXAMPLES", 30)
    assert _fuzz(CORRECT, "--seed", "1", "--json", "summary.json") == 0
    assert _summary()["examples"] == 30
    assert "budget 30 examples" in capsys.readouterr().out


# -- seeds -------------------------------------------------------------------


def test_seed_is_chosen_and_printed_and_reproduces_the_first_failure_byte_for_byte(monkeypatch, capsys) -> None:
    monkeypatch.setattr(harness.cli.fuzz, "new_seed", lambda: int(SEED))  # a chosen seed known to find the bug quickly
    assert _fuzz(BUGGY, "--report-dir", "a", "--json", "a.json") == 1
    out = capsys.readouterr().out
    seed = _summary("a.json")["seed"]
    assert out.startswith(f"harness: fuzzing {BUGGY} with seed {seed};")
    assert _fuzz(BUGGY, "--seed", str(seed), "--report-dir", "b", "--json", "b.json") == 1
    (first,), (second,) = (list(Path(run, "failures").glob("*.json")) for run in ("a", "b"))
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    assert _summary("a.json")["examples"] == _summary("b.json")["examples"]


# -- several failures --------------------------------------------------------


class AnyJobFails(Invariant):
    """A test-only invariant in another family, so one target can break two invariants."""

    name = "errors.test_no_job_fails"

    def check(self, run):
        for index, event in enumerate(run.trace):
            if event.kind == "job.fail":
                yield self.violation(run, f"job {event.job} failed", [index])
                return


@pytest.fixture
def two_invariants(monkeypatch) -> None:
    monkeypatch.setattr(harness.invariants, "INVARIANTS", harness.invariants.INVARIANTS + (AnyJobFails(),))


def test_max_failures_reports_each_distinct_invariant(two_invariants, capsys) -> None:
    assert _fuzz(BUGGY, "--seed", SEED, "--max-failures", "3", "--max-examples", "1000", "--json", "summary.json") == 1
    summary = _summary()
    assert sorted(f["invariant"] for f in summary["failures"]) == ["concurrency.limit", "errors.test_no_job_fails"]
    assert summary["stopped_by"] == "max-examples"  # there is no third invariant to find
    assert summary["examples"] == 1000
    assert capsys.readouterr().out.count("\nFAIL ") == 2


def test_default_max_failures_stops_at_the_first(two_invariants) -> None:
    assert _fuzz(BUGGY, "--seed", SEED, "--json", "summary.json") == 1
    summary = _summary()
    assert len(summary["failures"]) == 1 and summary["stopped_by"] == "max-failures"


# -- regression corpus -------------------------------------------------------


@pytest.fixture(scope="module")
def minimal_failure(tmp_path_factory) -> dict:
    """A minimal failure file for the buggy pool, found once for the whole module."""
    folder = tmp_path_factory.mktemp("found")
    code = main(["fuzz", BUGGY, "--seed", SEED, "--report-dir", str(folder), "--no-regressions"])
    assert code == 1
    (path,) = (folder / "failures").glob("*.json")
    return json.loads(path.read_text())


def _corpus_file(directory: str, data: dict, name: str | None = None) -> Path:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{data['id']}.json")
    path.write_text(json.dumps(data))
    return path


def test_regression_corpus_is_replayed_first_and_a_still_failing_file_fails_the_campaign(
    minimal_failure, capsys
) -> None:
    saved = _corpus_file("harness-regressions", minimal_failure)
    assert _fuzz(BUGGY, "--seed", "9", "--json", "summary.json") == 1
    summary = _summary()
    (failure,) = summary["failures"]
    assert failure["source"] == "regression" and failure["file"] == str(Path("harness-regressions") / saved.name)
    assert summary["examples"] == 0  # found in the corpus before any search
    assert summary["regressions"]["files"] == [
        {"file": failure["file"], "invariant": "concurrency.limit", "status": "fails", "exact": True}
    ]
    out = capsys.readouterr().out
    assert f"FAIL concurrency.limit (regression {failure['file']} still fails)" in out
    assert out.index("FAIL concurrency.limit") < out.index("1 failure; 0 examples")


def test_fixed_regression_passes_and_is_reported_fixed(minimal_failure, capsys) -> None:
    fixed = dict(minimal_failure, target=CORRECT)  # the same schedule against the correct pool
    _corpus_file("corpus", fixed)
    _corpus_file("corpus", minimal_failure, name="for-another-target.json")
    assert _fuzz(CORRECT, "--seed", "1", "--max-examples", "20", "--regressions", "corpus", "--json", "s.json") == 0
    regressions = _summary("s.json")["regressions"]
    assert regressions["replayed"] == 1 and regressions["fixed"] == 1 and regressions["failing"] == 0
    assert regressions["files"][0]["status"] == "fixed"
    assert "regressions: replayed 1 from corpus: 0 still fail, 1 fixed" in capsys.readouterr().out


def test_corrupt_corpus_file_is_a_one_line_error_naming_it(capsys) -> None:
    Path("harness-regressions").mkdir()
    Path("harness-regressions/broken.json").write_text('{"format": "harness-failure", ')
    assert _fuzz(CORRECT, "--seed", "1", "--max-examples", "5") == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: regression corpus: ") and err.count("\n") == 1
    assert "broken.json" in err and "fix or delete" in err


def test_no_regressions_skips_the_corpus(capsys) -> None:
    Path("harness-regressions").mkdir()
    Path("harness-regressions/broken.json").write_text("not json")
    assert _fuzz(CORRECT, "--seed", "1", "--max-examples", "5", "--no-regressions", "--json", "s.json") == 0
    assert _summary("s.json")["regressions"]["directory"] is None


def test_save_regression_adds_the_minimal_failure_which_the_next_run_replays(capsys) -> None:
    assert _fuzz(BUGGY, "--seed", SEED, "--save-regression", "--regressions", "corpus", "--json", "s.json") == 1
    (failure,) = _summary("s.json")["failures"]
    saved = Path(failure["regression_file"])
    assert saved.parent == Path("corpus") and saved.read_bytes() == Path(failure["file"]).read_bytes()
    capsys.readouterr()
    assert _fuzz(BUGGY, "--regressions", "corpus", "--no-database", "--json", "t.json") == 1
    (again,) = _summary("t.json")["failures"]
    assert again["source"] == "regression" and again["file"] == str(saved)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--save-regression", "--no-regressions"], "drop --no-regressions"),
        (["--database", "db", "--no-database"], "not allowed with argument"),
        (["--regressions", "afile"], "is not a directory"),
        (["--max-failures", "0"], "must be at least 1"),
        (["--json", "."], "is a directory"),
    ],
)
def test_bad_fuzz_options_exit_2_with_one_line(argv, message, capsys) -> None:
    Path("afile").write_text("")
    assert _fuzz(CORRECT, "--seed", "1", "--max-examples", "5", *argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and message in err and err.count("\n") == 1


# -- example database --------------------------------------------------------


def test_database_is_on_by_default_and_off_with_seed_or_no_database(capsys) -> None:
    assert _fuzz(CORRECT, "--max-examples", "5", "--seed", "1", "--json", "a.json") == 0
    assert _summary("a.json")["database"] is None
    assert _fuzz(CORRECT, "--max-examples", "5", "--no-database", "--json", "b.json") == 0
    assert _summary("b.json")["database"] is None
    assert _fuzz(CORRECT, "--max-examples", "5", "--json", "c.json") == 0
    assert _summary("c.json")["database"] == ".hypothesis/harness"
    assert "database .hypothesis/harness" in capsys.readouterr().out


def test_database_retries_a_failure_found_once_first(capsys) -> None:
    assert _fuzz(BUGGY, "--seed", SEED, "--database", "db", "--report-dir", "a", "--json", "a.json") == 1
    first = _summary("a.json")
    assert first["database"] == "db" and first["examples"] > 1 and any(Path("db").rglob("*"))
    assert _fuzz(BUGGY, "--seed", "77", "--database", "db", "--report-dir", "b", "--json", "b.json") == 1
    second = _summary("b.json")
    assert second["examples"] == 1  # the saved failure is the first schedule tried
    assert second["failures"][0]["file"].endswith(Path(first["failures"][0]["file"]).name)


# -- exit codes --------------------------------------------------------------


def test_target_that_cannot_be_built_exits_2(tmp_path, capsys) -> None:
    module = _target_module(tmp_path, "def _boom(clock):\n    raise RuntimeError('no pool today')\n\nbad = Target(build=_boom, limit=2)\n")
    assert _fuzz(f"{module}:bad", "--seed", "1", "--max-examples", "5") == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: the target's build(clock) raised RuntimeError: no pool today")
    assert err.count("\n") == 1


def test_internal_error_exits_3_with_the_traceback(monkeypatch, capsys) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("the harness tripped over itself")

    monkeypatch.setattr(harness.cli.fuzz, "run_workers", broken)
    assert _fuzz(CORRECT, "--seed", "1") == 3
    err = capsys.readouterr().err
    assert err.startswith("harness: internal error")
    assert "Traceback" in err and "the harness tripped over itself" in err


class _SignalOnce(Progress):
    """A progress line that sends the process a signal when ``when(result)`` first holds."""

    signum = signal.SIGINT
    when = staticmethod(lambda result: result.examples >= 5)

    def __init__(self) -> None:
        super().__init__(live=False)
        self.sent = False

    def __call__(self, result) -> None:
        if not self.sent and self.when(result):
            self.sent = True
            signal.raise_signal(self.signum)


def test_interrupt_before_anything_is_found_exits_130_with_the_summary(monkeypatch, capsys) -> None:
    monkeypatch.setattr(harness.cli.fuzz, "Progress", _SignalOnce)
    before = signal.getsignal(signal.SIGINT)
    assert _fuzz(CORRECT, "--seed", "1", "--budget", "60", "--json", "s.json", "--junit", "j.xml") == 130
    summary = _summary("s.json")
    assert summary["outcome"] == "interrupted" and summary["exit_code"] == 130
    assert summary["stopped_by"] == "interrupt" and summary["examples"] == 5
    assert "interrupted; no violations; 5 examples" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_sigterm_while_shrinking_keeps_the_failure_unshrunk_and_exits_1(monkeypatch, capsys) -> None:
    class TermWhileShrinking(_SignalOnce):
        signum = signal.SIGTERM
        when = staticmethod(lambda result: result.shrinking)

    monkeypatch.setattr(harness.cli.fuzz, "Progress", TermWhileShrinking)
    before = signal.getsignal(signal.SIGTERM)
    argv = ["--seed", SEED, "--save-regression", "--json", "s.json", "--junit", "j.xml"]
    assert _fuzz(BUGGY, *argv) == 1
    summary = _summary("s.json")
    (failure,) = summary["failures"]
    assert summary["stopped_by"] == "interrupt" and summary["outcome"] == "failed"
    assert failure["shrunk"] is False and failure["regression_file"] is None
    assert Path(failure["file"]).exists()
    assert main(["replay", failure["file"]]) == 1  # it does fail
    out = capsys.readouterr().out
    assert "shrinking was cut short" in out
    assert "not added to the regression corpus" in out
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_show_still_prints_a_saved_failure(minimal_failure, capsys) -> None:
    path = _corpus_file("x", minimal_failure)
    assert main(["show", str(path)]) == 0
    assert "FAIL concurrency.limit" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_a_running_campaign_saves_the_failure_and_exits_promptly(tmp_path) -> None:
    import subprocess
    import time

    argv = [sys.executable, "-m", "harness", "fuzz", BUGGY, "--seed", SEED, "--budget", "60"]
    argv += ["--max-failures", "2", "--no-database", "--json", "s.json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        lines = []
        for line in proc.stdout:  # the failure is printed as soon as it is saved
            lines.append(line)
            if line.startswith("replay: "):
                break
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert time.monotonic() - sent < 10
    assert proc.returncode == 1, err
    out = "".join(lines) + rest
    assert "interrupted; 1 failure;" in out and "stopped by interrupt" in out
    summary = _summary(tmp_path / "s.json")
    assert summary["stopped_by"] == "interrupt" and len(summary["failures"]) == 1
    assert (tmp_path / summary["failures"][0]["file"]).exists()
