"""Nondeterministic targets are reported as such, with the first two trace lines that differ."""

from __future__ import annotations

import json
import re

import pytest

import robust_targets
from harness import CampaignConfig, NondeterministicTarget, run_campaign
from harness.cli.main import main
from harness.model.trace import digest_lines
from scenarios.pools import double_release_pool

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
