"""Parallel campaigns: disjoint seeds, first failure wins, crash isolation, stopping, the shared database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from harness import CampaignConfig
from harness.cli.main import main
from harness.errors import HarnessError
from harness.search.shard import MAX_WORKERS, SEED_BITS, Shard, piece_seed, round_seed
from harness.search.workers import run_workers
from scenarios.pools import double_release_pool

BUGGY = "scenarios.pools:double_release_pool"
CORRECT = "scenarios.pools:semaphore_pool"
#: With --max-examples 2000 over two workers, worker 0 searches as a one-process campaign of seed 9
#: and 1000 examples does, which finds the double release in under a hundred.
SEED, EXAMPLES = "9", "2000"


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _summary(path: str | Path = "summary.json") -> dict:
    return json.loads(Path(path).read_text())


def _module(tmp_path: Path, body: str) -> str:
    """Write a module of targets into the working directory (workers import it from there)."""
    name = f"worker_targets_{uuid.uuid4().hex[:8]}"
    header = "import hashlib, os\nfrom harness import Target\nfrom scenarios.pools import DoubleReleasePool, SemaphorePool\n"
    (tmp_path / f"{name}.py").write_text(header + body)
    return name


# -- seeds ---------------------------------------------------------------------


def test_every_shard_worker_and_round_searches_with_a_seed_of_its_own() -> None:
    from random import Random

    base, rounds = 2, 50
    pieces = [(Shard(index, 3), worker) for index in (1, 2, 3) for worker in (0, 1, 2, MAX_WORKERS - 1)]
    seeds = [piece_seed(base, shard, worker) for shard, worker in pieces]
    assert piece_seed(base, Shard(), 0) == base  # one process, one shard: the plain campaign
    assert all(0 <= seed < 2**SEED_BITS for seed in seeds)
    assert seeds == [piece_seed(base, shard, worker) for shard, worker in pieces]  # deterministic
    # A campaign searches round r with round_seed(seed, r): no two pieces share a seed in any round ...
    assert len({round_seed(seed, r) for seed in seeds for r in range(rounds)}) == len(seeds) * rounds
    # ... nor a random stream (Random(2) and Random(2 + 2**32) are the same stream, so offsets will not do).
    streams = {Random(round_seed(seed, r)).random() for seed in seeds for r in range(rounds)}
    assert len(streams) == len(seeds) * rounds
    with pytest.raises(ValueError):
        piece_seed(base, Shard(), MAX_WORKERS)


def test_workers_search_different_schedules(tmp_path, monkeypatch) -> None:
    module = _module(
        tmp_path,
        "def _log(run):\n"
        "    digest = hashlib.sha256(repr(run.schedule).encode()).hexdigest()\n"
        "    with open('log.' + os.environ.get('HARNESS_WORKER', 'main'), 'a') as handle:\n"
        "        handle.write(digest + '\\n')\n"
        "logged = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2, invariants=(_log,))\n",
    )
    assert main(["fuzz", f"{module}:logged", "--seed", "3", "--workers", "2", "--max-examples", "400",
                 "--no-database", "--json", "summary.json"]) == 0
    first, second = (Path(f"log.{index}").read_text().split() for index in (0, 1))
    assert [w["examples"] for w in _summary()["workers"]] == [200, 200]  # the total, split evenly
    assert [w["seed"] for w in _summary()["workers"]] == [3, piece_seed(3, Shard(), 1)]
    shared = set(first) & set(second)
    assert len(shared) <= 0.25 * len(set(first))  # only the simplest schedules, which any search tries


# -- first failure wins ----------------------------------------------------------


def test_the_first_failure_wins_and_the_other_workers_stop_promptly(tmp_path) -> None:
    started = time.monotonic()
    config = CampaignConfig(seed=int(SEED), max_examples=int(EXAMPLES), report_dir="reports")
    result = run_workers(double_release_pool, BUGGY, config, workers=2)
    (finding,) = result.findings
    assert finding.violation.invariant == "concurrency.limit" and finding.shrunk
    assert result.stopped_by == "max-failures"
    # The winner's time to first failure crosses to the parent with the failure.
    assert 1 <= finding.examples_to_detect < 1000 and finding.detected_after_s >= 0 and finding.shrink_s > 0
    assert [p.name for p in Path("reports/failures").iterdir()] == [finding.path.name]  # no loser's file left
    winner, loser = sorted(result.workers, key=lambda w: w.stopped_by != "max-failures")
    assert winner.stopped_by == "max-failures" and loser.stopped_by == "interrupt"
    assert loser.examples < 1000  # stopped long before its share of the examples ran out
    assert result.examples == winner.examples + loser.examples
    assert time.monotonic() - started < 60


def test_several_failures_are_merged_once_per_invariant(tmp_path, capsys) -> None:
    assert main(["fuzz", BUGGY, "--seed", SEED, "--workers", "2", "--max-examples", "600", "--max-failures", "3",
                 "--no-database", "--json", "summary.json"]) == 1
    summary = _summary()
    invariants = [f["invariant"] for f in summary["failures"]]
    assert invariants and len(invariants) == len(set(invariants))
    assert summary["examples"] == 600 and summary["stopped_by"] == "max-examples"
    assert sorted(p.name for p in Path("reports/failures").iterdir()) == sorted(
        Path(f["file"]).name for f in summary["failures"]
    )


# -- crashes -------------------------------------------------------------------


CRASHING = (
    # Worker 1 dies as it loads the target, before it can be told that another worker won.
    "if os.environ.get('HARNESS_WORKER') == '1':\n"
    "    os._exit(3)\n"
    "buggy = Target(build=lambda clock: DoubleReleasePool(clock, 2), limit=2)\n"
    "correct = Target(build=lambda clock: SemaphorePool(clock, 2), limit=2)\n"
)


def test_a_crashed_worker_is_reported_and_the_others_findings_are_kept(tmp_path, capsys) -> None:
    module = _module(tmp_path, CRASHING)
    argv = ["fuzz", f"{module}:buggy", "--seed", SEED, "--workers", "2", "--max-examples", EXAMPLES]
    assert main([*argv, "--no-database", "--json", "summary.json", "--junit", "junit.xml"]) == 1
    summary = _summary()
    assert summary["outcome"] == "failed" and len(summary["failures"]) == 1
    assert Path(summary["failures"][0]["file"]).exists()
    workers = {w["index"]: w for w in summary["workers"]}
    assert workers[1]["crashed"] == "exit code 3" and workers[1]["stopped_by"] is None
    assert workers[0]["crashed"] is None and workers[0]["stopped_by"] == "max-failures"
    out = capsys.readouterr().out
    assert "harness: worker 1 crashed with exit code 3" in out
    error = ET.parse("junit.xml").getroot().find("testsuite/testcase[@name='worker 1']/error")
    assert error.get("message") == "worker 1 crashed with exit code 3"


def test_a_crash_with_nothing_found_is_an_error_not_a_clean_run(tmp_path, capsys) -> None:
    module = _module(tmp_path, CRASHING)
    argv = ["fuzz", f"{module}:correct", "--seed", "1", "--workers", "2", "--max-examples", "100"]
    assert main([*argv, "--no-database", "--json", "summary.json"]) == 2
    summary = _summary()
    assert summary["outcome"] == "error" and summary["exit_code"] == 2
    assert summary["examples"] == 50 and summary["stopped_by"] == "max-examples"  # worker 0 ran its share
    assert "worker 1 crashed with exit code 3" in capsys.readouterr().out


def test_a_failure_a_worker_cannot_save_is_still_printed(tmp_path, capsys) -> None:
    # In the workers, writing a failure file fails, as when the report directory turns unwritable mid-run.
    module = _module(
        tmp_path,
        "import harness.search.campaign\nfrom harness.errors import ReportError\n"
        "def _refuse(record, directory):\n"
        "    raise ReportError(f'cannot write {directory}: Permission denied; choose another path')\n"
        "if os.environ.get('HARNESS_WORKER'):\n"
        "    harness.search.campaign.failure_file.save = _refuse\n"
        "buggy = Target(build=lambda clock: DoubleReleasePool(clock, 2), limit=2)\n",
    )
    argv = ["fuzz", f"{module}:buggy", "--seed", SEED, "--workers", "2", "--max-examples", EXAMPLES]
    assert main([*argv, "--no-database", "--json", "summary.json"]) == 2
    out, err = capsys.readouterr()
    assert "FAIL concurrency.limit" in out and "1 failure;" in out and "no violations" not in out, out
    assert "Permission denied" in err
    assert len(_summary()["failures"]) == 1


def test_a_target_error_in_the_workers_is_one_line_and_exit_2(tmp_path, capsys) -> None:
    module = _module(tmp_path, "def _boom(clock):\n    raise RuntimeError('no pool today')\nbad = Target(build=_boom, limit=2)\n")
    assert main(["fuzz", f"{module}:bad", "--seed", "1", "--workers", "2", "--max-examples", "20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: the target's build(clock) raised RuntimeError: no pool today")
    assert err.count("\n") == 1


# -- the regression corpus and options ----------------------------------------------


def test_the_corpus_is_replayed_once_before_any_worker_starts(tmp_path, capsys) -> None:
    assert main(["fuzz", BUGGY, "--seed", SEED, "--save-regression", "--no-database", "--report-dir", "a"]) == 1
    capsys.readouterr()
    assert main(["fuzz", BUGGY, "--seed", "9", "--workers", "2", "--json", "summary.json"]) == 1
    summary = _summary()
    (failure,) = summary["failures"]
    assert failure["source"] == "regression" and summary["examples"] == 0
    assert summary["regressions"]["replayed"] == 1 and summary["stopped_by"] == "max-failures"


def test_workers_auto_is_one_per_core_and_fewer_examples_mean_fewer_workers(capsys) -> None:
    from harness.search.workers import cpu_count

    assert main(["fuzz", CORRECT, "--seed", "1", "--workers", "auto", "--max-examples", "1", "--json", "s.json"]) == 0
    assert len(_summary("s.json")["workers"]) == 1 and cpu_count() >= 1
    assert main(["fuzz", CORRECT, "--seed", "1", "--workers", "3", "--max-examples", "7", "--json", "t.json"]) == 0
    assert [w["examples"] for w in _summary("t.json")["workers"]] == [3, 2, 2]


@pytest.mark.parametrize("value", ["0", "-1", "two", str(MAX_WORKERS + 1)])
def test_bad_workers_is_one_line_and_exit_2(value, capsys) -> None:
    assert main(["fuzz", CORRECT, "--workers", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and "--workers" in err and err.count("\n") == 1


# -- stopping ------------------------------------------------------------------


def _two_searching_workers(tmp_path: Path, budget: str) -> subprocess.Popen[str]:
    """A correct campaign of two workers in a subprocess, returned once both run examples.

    Each worker writes its pid to ``pid.N`` when it builds the target: the test's signal comes when
    both search, however long starting them takes on a loaded machine.
    """
    module = _module(
        tmp_path,
        "def _build(clock):\n"
        "    name = 'pid.' + os.environ.get('HARNESS_WORKER', 'main')\n"
        "    open(name + '.tmp', 'w').write(str(os.getpid())); os.replace(name + '.tmp', name)\n"
        "    return SemaphorePool(clock, 2)\n"
        "correct = Target(build=_build, limit=2)\n",
    )
    argv = [sys.executable, "-m", "harness", "fuzz", f"{module}:correct", "--seed", "1", "--budget", budget]
    proc = subprocess.Popen(
        [*argv, "--workers", "2", "--no-database", "--json", "s.json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    waited = time.monotonic()
    while not all(Path(f"pid.{index}").exists() for index in (0, 1)) and time.monotonic() - waited < 60:
        time.sleep(0.1)
    time.sleep(0.5)
    return proc


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_the_parent_stops_every_worker_and_writes_the_summary(tmp_path) -> None:
    proc = _two_searching_workers(tmp_path, "120")
    try:
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert out.startswith("harness: fuzzing")
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130, err
    summary = _summary(tmp_path / "s.json")
    assert summary["stopped_by"] == "interrupt" and summary["outcome"] == "interrupted"
    assert [w["stopped_by"] for w in summary["workers"]] == ["interrupt", "interrupt"]
    assert all(w["examples"] > 0 for w in summary["workers"])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_to_one_worker_is_a_lost_worker_not_an_interrupted_campaign(tmp_path) -> None:
    proc = _two_searching_workers(tmp_path, "15")
    try:
        os.kill(int(Path("pid.1").read_text()), signal.SIGTERM)  # worker 1 alone
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 2, (out, err)  # a worker lost and nothing found: an error, as for a crash
    assert "worker 1 crashed with signal SIGTERM" in out and "interrupted" not in out, out
    summary = _summary(tmp_path / "s.json")
    assert summary["outcome"] == "error" and summary["stopped_by"] == "budget"
    workers = {w["index"]: w for w in summary["workers"]}
    assert workers[1]["crashed"] == "signal SIGTERM" and workers[1]["examples"] > 0
    assert workers[0]["crashed"] is None and workers[0]["stopped_by"] == "budget"


def test_save_regression_with_workers_adds_only_the_winning_failure(tmp_path) -> None:
    argv = ["fuzz", BUGGY, "--seed", SEED, "--workers", "2", "--max-examples", EXAMPLES, "--no-database"]
    assert main([*argv, "--save-regression", "--regressions", "corpus", "--json", "summary.json"]) == 1
    (failure,) = _summary()["failures"]
    saved = Path(failure["regression_file"])
    assert saved.parent == Path("corpus") and saved.read_bytes() == Path(failure["file"]).read_bytes()
    assert list(Path("corpus").iterdir()) == [saved]


# -- one code path with the one-process campaign (issue 15 item 10) -------------------


def test_workers_tally_what_their_examples_exercised(tmp_path) -> None:
    argv = ["fuzz", CORRECT, "--seed", "5", "--max-examples", "300", "--no-database", "--json"]
    assert main([*argv, "one.json"]) == 0
    assert main([*argv, "two.json", "--workers", "2"]) == 0
    one, two = (_summary(name) for name in ("one.json", "two.json"))
    assert two["exercised"]["examples"] == two["examples"] == 300
    assert set(two["exercised"]["invariants"]) == set(one["exercised"]["invariants"])
    assert two["exercised"]["invariants"]["concurrency.limit"] > 0
    assert sum(two["exercised"]["faults"].values()) > 0


def test_the_parallel_corpus_replay_keeps_the_example_timeout(tmp_path, monkeypatch, capsys) -> None:
    import robust_targets  # noqa: F401  (tests/ is on the path: the workers' parent imports it by name)

    limit = "0.3"
    argv = ["fuzz", "robust_targets:spinning", "--seed", "1", "--max-examples", "200", "--no-database"]
    assert main([*argv, "--example-timeout", limit, "--save-regression", "--report-dir", "a"]) == 1
    capsys.readouterr()
    started = time.monotonic()
    assert main([*argv, "--example-timeout", limit, "--workers", "2", "--report-dir", "b"]) == 1
    assert time.monotonic() - started < 5  # the default limit is 10 s
    assert "FAIL harness.hang (regression" in capsys.readouterr().out


def test_a_worker_target_error_with_unpicklable_runs_is_still_reported(tmp_path, capsys) -> None:
    # A lambda build that breaks after 1,500 builds: by then each worker has found (and shrunk) the
    # double release, so the error's result holds runs whose target cannot be pickled to the parent.
    module = _module(
        tmp_path,
        "builds = 0\n"
        "def _build(clock):\n"
        "    global builds\n"
        "    builds += 1\n"
        "    if builds > 1500:\n"
        "        raise RuntimeError('out of pools')\n"
        "    return DoubleReleasePool(clock, 2)\n"
        "tired = Target(build=lambda clock: _build(clock), limit=2)\n",
    )
    argv = ["fuzz", f"{module}:tired", "--seed", SEED, "--workers", "2", "--max-examples", "100000"]
    assert main([*argv, "--max-failures", "5", "--no-database", "--json", "summary.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: the target's build(clock) raised RuntimeError: out of pools"), err
    assert "crashed" not in err
    summary = _summary()
    assert summary["outcome"] == "error" and summary["stopped_by"] == "error"


def test_a_portable_error_drops_its_result_and_survives_pickling() -> None:
    import pickle

    from harness.errors import TargetError
    from harness.search.workers import portable_error

    error = TargetError("the target's build(clock) raised ValueError: no")
    error.result = lambda: None  # what a lambda build leaves in a result's runs
    sent = pickle.loads(pickle.dumps(portable_error(error)))
    assert type(sent) is TargetError and str(sent) == str(error) and sent.result is None

    class Odd(TargetError):
        def __init__(self, a, b):
            super().__init__(f"{a} {b}")

    assert type(portable_error(Odd(1, 2))) is HarnessError


def test_two_workers_failing_on_the_same_schedule_keep_their_one_file(tmp_path) -> None:
    """Both workers replay the example database's schedule first and save it unshrunk under one name:
    dropping the second copy must not delete the file the first (held) one still names."""
    from harness import load_target, run_campaign
    from harness.search.workers import _Parallel

    spec = "scenarios.pools:double_release_pool"
    target = load_target(spec)
    config = CampaignConfig(seed=1, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None)
    (finding,) = run_campaign(target, spec, config).findings
    parent = _Parallel(target, spec, config, 1, Shard(1, 1), [config, config], None, None, None)
    parent.wall_started -= 10  # the file counts as written by this campaign, so dropping it would delete it
    for index in (0, 1):
        parent.stops[index] = 1  # both were told to stop while the other shrank, so both sent it unshrunk
        message = {"path": str(finding.path), "invariant": finding.violation.invariant, "shrunk": False}
        parent._received(index, {**message, **dict.fromkeys(("detected_after_s", "examples_to_detect", "shrink_s"))})
    parent._settle_held()
    assert finding.path.exists()
    assert [kept.path for kept in parent.result.findings] == [finding.path]


def test_the_worker_left_to_shrink_stays_the_one_even_when_a_lower_index_starts_shrinking(tmp_path) -> None:
    """Worker 1 shrinks first, so worker 0 is told to stop; worker 0 then starts shrinking what it had
    just found. Choosing again by index would stop worker 1 too, and no worker would finish shrinking."""
    from harness import load_target
    from harness.search.workers import _Parallel

    spec = "scenarios.pools:double_release_pool"
    config = CampaignConfig(seed=1, max_examples=300, report_dir=str(tmp_path), database=None, regressions=None)
    parent = _Parallel(load_target(spec), spec, config, 1, Shard(1, 1), [config, config], None, None, None)
    parent.shrinking[1] = 1
    parent._stop_others_while_one_shrinks()
    assert (parent.stops[0], parent.stops[1]) == (1, 0)
    parent.shrinking[0] = 1
    parent._stop_others_while_one_shrinks()
    assert (parent.stops[0], parent.stops[1]) == (1, 0)
