"""Nondeterministic targets are reported as such, with the first two trace lines that differ."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

import robust_targets
from harness import CampaignConfig, NondeterministicTarget, Target, run_campaign
from harness.cli.main import main
from harness.model.trace import digest_lines
from harness.search.nondeterminism import Twice
from harness.search.verdict import NONDETERMINISTIC, judge
from harness.store import failure_file
from scenarios.pools import DoubleReleasePool, double_release_pool

pytest_plugins = ["pytester"]

BUGGY = "scenarios.pools:double_release_pool"
BOTH_LINES = re.compile(r"first differing at event \d+: (['\"]).+\1 then (['\"]).+\2")


def test_a_target_with_global_state_is_caught_even_when_no_invariant_breaks(tmp_path) -> None:
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget) as caught:
        run_campaign(robust_targets.counting, "robust_targets:counting", config)
    message = str(caught.value)
    assert message.startswith("target 'robust_targets:counting' is nondeterministic: the same schedule gave two")
    assert BOTH_LINES.search(message), message
    assert "#" in message  # the counter shows in the lines that differ
    # docs/reviews/outside-user.md F9: set order (Synapse's AwakenableSleeper wakes a set of Deferreds) is named too.
    assert "reads time, randomness or global state the harness does not control, " in message
    assert "or iterates a set or dict of objects hashed by identity (memory addresses)" in message
    assert caught.value.result.stopped_by == "error"


def test_a_failing_nondeterministic_target_is_not_reported_as_a_flaky_invariant(tmp_path) -> None:
    config = CampaignConfig(seed=1, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget, match=BOTH_LINES):
        run_campaign(robust_targets.counting_buggy, "robust_targets:counting_buggy", config)
    assert not (tmp_path / "failures").exists()


def test_unseeded_randomness_is_reported_as_nondeterminism(tmp_path) -> None:
    config = CampaignConfig(seed=1, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget, match="is nondeterministic"):
        run_campaign(robust_targets.coin_flip, "robust_targets:coin_flip", config)


def test_harness_fuzz_says_nondeterministic_in_one_line_and_exits_2(tmp_path, capsys) -> None:
    argv = ["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--report-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: target 'robust_targets:counting' is nondeterministic")
    assert err.count("\n") == 1


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("reports")
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(folder))).findings
    return json.loads(finding.path.read_text())


def test_replay_of_a_nondeterministic_target_exits_2_showing_where_two_replays_differ(saved, tmp_path, capsys) -> None:
    path = tmp_path / "f.json"
    path.write_text(json.dumps({**saved, "target": "robust_targets:counting_buggy"}))
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is nondeterministic: replaying" in err and BOTH_LINES.search(err) and err.count("\n") == 1


def test_replay_of_a_changed_but_deterministic_target_shows_the_saved_and_the_new_line(saved, tmp_path, capsys) -> None:
    data = json.loads(json.dumps(saved))
    data["trace"][1][4] = "as it was when saved"
    data["trace_hash"] = digest_lines([f"{t} {k} {j}.{a} {d}" for t, k, j, a, d in data["trace"]])
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data))
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"reproduced, but the trace diverged from the saved one at event 1: '[^']*as it was when saved' then '", out)


# -- docs/reviews/outside-user-2.md F11: the schedule behind the error is saved, and replays twice --------------


def _saved_schedule(report_dir) -> Path:
    (path,) = (report_dir / "nondeterministic").glob("*.json")
    return path


def test_the_schedule_that_showed_nondeterminism_is_saved_and_named_in_the_error(tmp_path) -> None:
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget) as caught:
        run_campaign(robust_targets.counting, "robust_targets:counting", config)
    path = _saved_schedule(tmp_path)
    assert caught.value.path == str(path) and caught.value.run is None  # the run is not kept: it may hold anything
    message = str(caught.value)
    assert message.endswith(f"the schedule is saved: watch the two runs part with harness replay {path}")
    assert "\n" not in message and caught.value.result.error == message  # the summary's error names it too
    record = failure_file.load(path)  # a failure file: JSON, versioned, loaded by the one loader
    assert (record.target, record.invariant, record.seed) == ("robust_targets:counting", NONDETERMINISTIC, 1)
    assert "the schedule is saved" not in record.message and BOTH_LINES.search(record.message)
    (marked,) = record.marked
    assert f"at event {marked}: " in record.message  # the event where the second run parted
    assert "#" in record.trace[marked].detail


def test_the_schedule_is_saved_when_a_failing_target_turns_out_nondeterministic(tmp_path) -> None:
    config = CampaignConfig(seed=1, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget):
        run_campaign(robust_targets.counting_buggy, "robust_targets:counting_buggy", config)
    record = failure_file.load(_saved_schedule(tmp_path))
    assert len(record.schedule.ops) > 1  # the schedule as found (checked before shrinking)


def test_a_schedule_that_cannot_be_saved_is_said_in_the_error(tmp_path) -> None:
    (tmp_path / "nondeterministic").write_text("a file where the folder should be")
    config = CampaignConfig(seed=1, max_examples=200, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget, match="the schedule that showed it could not be saved: cannot write"):
        run_campaign(robust_targets.counting, "robust_targets:counting", config)


def test_harness_fuzz_prints_the_replay_command_and_no_violation_found_before_the_error(tmp_path, capsys) -> None:
    argv = ["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--report-dir", str(tmp_path),
            "--json", str(tmp_path / "s.json"), "--html"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    path = _saved_schedule(tmp_path)
    assert err.count("\n") == 1 and err.rstrip().endswith(f"harness replay {path}")
    assert "\nno violation found before the error; " in out and "no violations" not in out
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["outcome"] == "error" and summary["error"].endswith(f"harness replay {path}")
    page = (tmp_path / "report.html").read_text()
    assert '<span class="badge error">error</span>' in page  # it said "clean" before
    assert f"harness replay {path}" in page and "No invariant was violated before the error" in page


def test_replay_of_the_saved_schedule_runs_it_twice_and_shows_where_the_runs_part(tmp_path, capsys) -> None:
    main(["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--report-dir", str(tmp_path)])
    path = str(_saved_schedule(tmp_path))
    capsys.readouterr()
    assert main(["replay", path]) == 1
    out = capsys.readouterr().out
    first, second = out.split("\nfirst run (>> marks where the two runs part):\n")[1].split(
        "\nsecond run (>> marks where the two runs part):\n"
    )
    assert re.search(r">> .* result +0 +'job0\.0 #\d+'", first) and re.search(r">> .* result +0 +'job0\.0 #\d+'", second)
    assert first.split(">>")[1].splitlines()[0] != second.split(">>")[1].splitlines()[0]
    assert "\nstill nondeterministic: the same schedule gave two different traces, first differing at event" in out
    assert main(["show", path]) == 0
    assert "FAIL harness.nondeterministic: target 'robust_targets:counting' is nondeterministic" in capsys.readouterr().out


def test_replay_of_the_saved_schedule_once_the_target_is_fixed_exits_0(tmp_path, capsys) -> None:
    main(["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--report-dir", str(tmp_path)])
    path = _saved_schedule(tmp_path)
    data = json.loads(path.read_text())
    data["target"] = "scenarios.pools:semaphore_pool"  # the same pool without the global counter
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\nno longer nondeterministic: the same schedule gave the same trace and verdict twice (when it was saved: " in out
    assert ">>" not in out


def test_two_runs_with_one_trace_and_two_verdicts_are_told_apart(saved) -> None:
    run, violations = judge(double_release_pool, failure_file.FailureRecord.from_json(saved).schedule)
    assert violations
    assert Twice(run, run, violations, violations).difference() is None
    assert Twice(run, run, violations, []).difference() == (
        "the same schedule gave the same trace twice but the invariants judged it differently: "
        f"{violations[0].invariant} broke in the first run, nothing in the second"
    )


def test_a_parallel_campaign_saves_the_schedule_too(tmp_path, capsys) -> None:
    argv = ["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--workers", "2",
            "--report-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    path = re.search(r"harness replay (\S+)$", err.strip()).group(1)
    assert failure_file.load(path).invariant == NONDETERMINISTIC


def test_the_pytest_plugin_names_the_saved_schedule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_counting="""
from harness.pytest import fuzz

@fuzz("robust_targets:counting")
def test_counting_pool():
    "Tags results with a module-level counter."
""")
    result = pytester.runpytest("-p", "no:twisted", "--harness-seed", "1", "--harness-max-examples", "200")
    result.assert_outcomes(failed=1)
    (path,) = (pytester.path / "reports" / "nondeterministic").glob("*.json")
    assert "watch the two runs part with harness replay " in result.stdout.str()
    assert failure_file.load(path).invariant == NONDETERMINISTIC


class _TurnsFlaky(DoubleReleasePool):
    """The double-release pool; once ``_FLAKY`` is set, each subject tags its results with a fresh number."""

    def __init__(self, clock, limit: int) -> None:
        super().__init__(clock, limit=limit)
        self.tag = next(_FLAKY["numbers"]) if _FLAKY["on"] else 0

    def submit(self, job):
        return super().submit(job).addCallback(lambda result: f"{result} @{self.tag}")


_FLAKY: dict = {"on": False, "numbers": None}
turns_flaky = Target(build=lambda clock: _TurnsFlaky(clock, limit=2), limit=2)


def test_an_interrupt_while_shrinking_then_nondeterminism_loses_nothing(tmp_path) -> None:
    """Ctrl-C while shrinking a failure, then the last check finds the target nondeterministic: the failure
    (unshrunk) and the schedule that showed the nondeterminism are both saved, and the error names the latter."""
    _FLAKY.update(on=False, numbers=itertools.count())

    def on_example(result) -> None:
        if result.shrinking:
            _FLAKY["on"] = True  # from the first shrink run on

    config = CampaignConfig(seed=4, report_dir=str(tmp_path))
    with pytest.raises(NondeterministicTarget) as caught:
        run_campaign(turns_flaky, "test_nondeterminism:turns_flaky", config, on_example=on_example,
                     stop_requested=lambda: _FLAKY["on"])
    result = caught.value.result
    assert result.stopped_by == "error" and result.error == str(caught.value)
    (finding,) = result.findings
    assert not finding.shrunk and finding.path is not None and finding.path.parent == tmp_path / "failures"
    saved = _saved_schedule(tmp_path)
    assert str(caught.value).endswith(f"harness replay {saved}")
    assert failure_file.load(saved).schedule == finding.record.schedule  # the schedule as found


def test_a_saved_nondeterministic_schedule_copied_into_the_regression_corpus_is_refused_not_fixed(tmp_path, capsys) -> None:
    main(["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--report-dir", str(tmp_path)])
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "n.json").write_text(_saved_schedule(tmp_path).read_text())
    capsys.readouterr()
    argv = ["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "10", "--report-dir", str(tmp_path),
            "--regressions", str(corpus)]
    assert main(argv) == 2
    assert "records invariant 'harness.nondeterministic', which robust_targets:counting is not checked for" in capsys.readouterr().err


def test_merge_prints_the_error_and_no_violation_found_before_it(tmp_path, capsys) -> None:
    summary = tmp_path / "s.json"
    main(["fuzz", "robust_targets:counting", "--seed", "1", "--max-examples", "200", "--report-dir", str(tmp_path),
          "--json", str(summary)])
    capsys.readouterr()
    assert main(["merge", str(summary)]) == 2
    out = capsys.readouterr().out
    assert f"\nerror: target 'robust_targets:counting' is nondeterministic: " in out
    assert out.split("\nerror: ")[1].splitlines()[0].endswith(f"harness replay {_saved_schedule(tmp_path)}")
    assert "\nno violation found before the error; 1 example" in out and "no violations" not in out
