"""The regression corpus replay of a campaign refuses a file whose invariant its target is not checked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import CampaignConfig, FailureFileError, run_campaign
from harness.cli.main import main
from scenarios.pools import double_release_pool

BUGGY = "scenarios.pools:double_release_pool"


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A real failure file of the buggy pool (``concurrency.limit``)."""
    folder = tmp_path_factory.mktemp("reports")
    (finding,) = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=4, report_dir=str(folder))).findings
    return json.loads(finding.path.read_text())


def _corpus(tmp_path: Path, record: dict, invariant: str) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    (directory / "renamed.json").write_text(json.dumps({**record, "invariant": invariant}))
    return directory


@pytest.mark.parametrize("invariant", ["concurrency.limitt", "time.timeout", "user.gone"])
def test_fuzz_refuses_a_corpus_file_with_an_unchecked_invariant(record, invariant, tmp_path, capsys) -> None:
    corpus = _corpus(tmp_path, record, invariant)
    # Before: the still-failing schedule was counted "1 fixed" and the campaign went on.
    code = main(["fuzz", BUGGY, "--seed", "1", "--max-examples", "5", "--regressions", str(corpus),
                 "--no-database", "--report-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"records invariant {invariant!r}, which {BUGGY} is not checked for" in err
    assert "Traceback" not in err


def test_the_api_raises_a_failure_file_error(record, tmp_path) -> None:
    corpus = _corpus(tmp_path, record, "concurrency.limitt")
    with pytest.raises(FailureFileError, match="not checked for"):
        run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=1, max_examples=5, regressions=str(corpus),
                                                               report_dir=str(tmp_path / "reports")))


def test_the_unedited_file_still_fails_as_a_regression(record, tmp_path) -> None:
    corpus = _corpus(tmp_path, record, record["invariant"])
    result = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=1, max_examples=5, regressions=str(corpus),
                                                                    report_dir=str(tmp_path / "reports")))
    assert [f.source for f in result.findings][:1] == ["regression"]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"seed": 2**70}, "seed must be from 0 to 2**63 - 1"),
        ({"seed": -1}, "seed must be from 0 to 2**63 - 1"),
        ({"max_examples": 2**63}, "max_examples must be from 0 to 2**63 - 1"),
        ({"max_examples": -1}, "max_examples must be from 0 to 2**63 - 1"),
        ({"max_failures": 10**4000}, "max_failures must be from 1 to 2**63 - 1 (the summary holds 64-bit integers), got a 4001-digit"),
    ],
)
def test_the_api_refuses_seeds_and_counts_a_summary_cannot_hold(change, said, tmp_path) -> None:
    # Before: seed=2**70 ran and wrote a summary that merge and report refuse.
    with pytest.raises(ValueError, match=None) as raised:
        run_campaign(double_release_pool, BUGGY, CampaignConfig(report_dir=str(tmp_path), **{"max_examples": 5, **change}))
    assert said in str(raised.value) and "\\n" not in str(raised.value)


def test_the_largest_seed_runs(tmp_path) -> None:
    result = run_campaign(double_release_pool, BUGGY, CampaignConfig(seed=2**63 - 1, max_examples=3, report_dir=str(tmp_path)))
    assert result.seed == 2**63 - 1
