"""One code path per job: a campaign in one process and a parallel one (``run_workers``) share the corpus
replay, the config checks, the result handling and the determinism check, so the same corpus and config
through both give the same result. These tests fail when the two paths drift apart again."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import robust_targets
from harness import CampaignConfig, JobSpec, Schedule, Submit, TargetHung, run_campaign, run_schedule, run_workers
from harness.cli import commands as cli_commands
from harness.cli.main import main
from harness.model.target import load_target
from harness.pytest import settings as pytest_settings
from harness.search import campaign, verdict
from harness.search.campaign import DEFAULT_MAX_EXAMPLES, enough, example_limit, masked_invariants
from harness.search.verdict import HANG

BUGGY = "scenarios.pools:double_release_pool"
SPINNING = "robust_targets:spinning"
LIMIT = 0.3


def _corpus(tmp_path: Path, spec: str, **options) -> Path:
    """A regression corpus holding the failure a seeded campaign finds in ``spec``."""
    corpus = tmp_path / "corpus"
    config = CampaignConfig(
        seed=9, max_examples=300, report_dir=str(tmp_path / "found"), regressions=str(corpus), save_regressions=True,
        **options,
    )
    found = run_campaign(load_target(spec), spec, config)
    assert found.findings and list(corpus.glob("*.json")), found.stopped_by
    return corpus


def _both(spec: str, config: CampaignConfig):
    """The same campaign in one process and on two workers."""
    target = load_target(spec)
    return run_campaign(target, spec, config), run_workers(target, spec, config, workers=2)


def _shape(result) -> tuple:
    """What must not depend on the path: the corpus replays, the findings, why the campaign stopped."""
    replays = [(r.path.name, r.status, r.exact, r.violation and r.violation.invariant) for r in result.regressions]
    findings = [(f.source, f.violation.invariant, f.path and f.path.name, f.shrunk) for f in result.findings]
    return replays, findings, result.stopped_by, result.examples


def test_the_same_corpus_and_config_give_the_same_result_in_one_process_and_on_workers(tmp_path) -> None:
    corpus = _corpus(tmp_path, BUGGY)
    config = CampaignConfig(seed=3, max_examples=100, report_dir=str(tmp_path / "r"), regressions=str(corpus))
    alone, parallel = _both(BUGGY, config)
    assert _shape(alone) == _shape(parallel)
    (replay,) = alone.regressions
    assert replay.fails and alone.findings[0].source == "regression" and alone.stopped_by == "max-failures"


def test_both_paths_replay_the_corpus_with_the_example_timeout(tmp_path) -> None:
    corpus = _corpus(tmp_path, SPINNING, example_timeout_s=LIMIT)
    config = CampaignConfig(seed=3, max_examples=50, report_dir=str(tmp_path / "r"), regressions=str(corpus),
                            example_timeout_s=LIMIT)
    alone, parallel = _both(SPINNING, config)
    assert _shape(alone) == _shape(parallel)
    for result in (alone, parallel):
        (finding,) = result.findings
        assert finding.violation.invariant == HANG
        assert f"within the {LIMIT:g}s wall-clock limit" in finding.violation.message  # not the 10 s default


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_failures": 0}, "max_failures must be at least 1"),
        ({"save_regressions": True}, "save_regressions needs a regressions directory"),
        ({"strategy": "nope"}, "unknown search strategy 'nope'"),
        ({"pct_depth": 0}, "pct_depth must be between 1"),
        ({"example_timeout_s": 0}, "example_timeout_s must be positive or None"),
    ],
)
def test_both_paths_refuse_the_same_bad_config_with_the_same_message(tmp_path, change, message) -> None:
    config = replace(CampaignConfig(seed=1, max_examples=10, report_dir=str(tmp_path)), **change)
    target = load_target(BUGGY)
    with pytest.raises(ValueError) as alone:
        run_campaign(target, BUGGY, config)
    with pytest.raises(ValueError) as parallel:
        run_workers(target, BUGGY, config, workers=2)
    assert str(alone.value) == str(parallel.value) and message in str(alone.value)


def test_which_invariants_are_masked_and_when_enough_are_found_count_the_ignored_ones() -> None:
    result = campaign.CampaignResult(target=BUGGY, seed=1)
    config = CampaignConfig(max_failures=2, ignore=frozenset({"errors.poison"}))
    assert masked_invariants(config, result) == {"errors.poison"} and not enough(config, result)
    finding = campaign.Finding(record=None, run=None, violation=verdict.Violation("concurrency.limit", "m"))  # type: ignore[arg-type]
    result.findings += [finding, finding]  # the same invariant twice (two corpus files) counts once
    assert masked_invariants(config, result) == {"errors.poison", "concurrency.limit"} and enough(config, result)


def test_which_step_hung_is_the_one_the_runner_reports() -> None:
    three = Schedule((Submit(0, 0, JobSpec("succeed", 10)), Submit(10, 1, JobSpec("succeed", 10)), Submit(20, 2)))
    with pytest.raises(TargetHung) as caught:
        run_schedule(robust_targets.spinning, three, timeout_s=LIMIT)
    assert caught.value.step == caught.value.run.unfinished_step == 1


def test_replay_uses_the_search_layers_determinism_check(tmp_path, monkeypatch, capsys) -> None:
    """``harness replay`` of a file whose trace changed runs the schedule again through the same check a
    campaign makes (``harness.search.verdict.check_deterministic``), not a copy of it."""
    assert main(["fuzz", BUGGY, "--seed", "9", "--no-database", "--no-regressions", "--report-dir", str(tmp_path)]) == 1
    (saved,) = (tmp_path / "failures").glob("*.json")
    data = json.loads(saved.read_text())
    saved.write_text(json.dumps({**data, "target": "robust_targets:counting_buggy"}))  # its trace differs now
    assert cli_commands.check_deterministic is verdict.check_deterministic
    calls = []
    monkeypatch.setattr(cli_commands, "check_deterministic", lambda *args: calls.append(args))
    capsys.readouterr()
    main(["replay", str(saved)])
    assert len(calls) == 1 and calls[0][4] == "robust_targets:counting_buggy"
    monkeypatch.undo()
    assert main(["replay", str(saved)]) == 2
    assert "is nondeterministic: replaying" in capsys.readouterr().err


# -- DEFAULT_MAX_EXAMPLES: one constant, stated the same everywhere ---------------------------------


def test_there_is_one_default_example_count() -> None:
    assert pytest_settings.DEFAULT_MAX_EXAMPLES is campaign.DEFAULT_MAX_EXAMPLES == DEFAULT_MAX_EXAMPLES
    assert example_limit(CampaignConfig()) == DEFAULT_MAX_EXAMPLES
    assert example_limit(CampaignConfig(budget_s=5)) is None
    assert example_limit(CampaignConfig(max_examples=7, budget_s=5)) == 7


def test_the_default_example_count_is_documented_consistently(capsys) -> None:
    from harness.cli.parser import build_parser

    fuzz_help = build_parser()._subparsers._group_actions[0].choices["fuzz"].format_help()  # type: ignore[union-attr]
    assert f"(default {DEFAULT_MAX_EXAMPLES} without --budget)" in " ".join(fuzz_help.split())
    (setting,) = [s for s in pytest_settings.SETTINGS if s.name == "max_examples"]
    assert f"default {DEFAULT_MAX_EXAMPLES};" in setting.help
    docs = (Path(__file__).resolve().parent.parent / "docs" / "pytest.md").read_text()
    (row,) = [line for line in docs.splitlines() if line.startswith("| `--harness-max-examples N`")]
    assert f"| {DEFAULT_MAX_EXAMPLES}, as `harness fuzz`" in row
    reference = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "cli.md").read_text()
    assert f"| `--max-examples N` | {DEFAULT_MAX_EXAMPLES} when there is no `--budget` |" in reference
