"""The time and leaks zoo: every reference subject passes long campaigns, every buggy one is caught by its invariant."""

from __future__ import annotations

import pytest

from harness import INVARIANTS, CampaignConfig, CampaignResult, load_target, run_campaign
from scenarios import TIME_MODULES, Scenario, zoo

ZOO = zoo(*TIME_MODULES)
CORRECT = tuple(s for s in ZOO if s.expect == "pass")
BUGGY = tuple(s for s in ZOO if s.expect != "pass")

#: Examples a buggy subject must be caught within; the slowest to find takes a few hundred.
DETECT_WITHIN = 2_000


def _ids(scenarios: tuple[Scenario, ...]) -> list[str]:
    return [s.target.removeprefix("scenarios.") for s in scenarios]


def _campaign(scenario: Scenario, seed: int, examples: int, tmp_path) -> CampaignResult:
    config = CampaignConfig(
        seed=seed, max_examples=examples, report_dir=str(tmp_path), database=None, regressions=None
    )
    return run_campaign(load_target(scenario.target), scenario.target, config)


def test_the_zoo_covers_every_time_and_leaks_invariant() -> None:
    assert len(CORRECT) >= 4 and len(BUGGY) >= 9
    families = {inv.name for inv in INVARIANTS if inv.name.split(".")[0] in ("time", "leaks")}
    assert families <= {s.expect for s in BUGGY}
    assert {s.expect for s in BUGGY} <= {inv.name for inv in INVARIANTS}


@pytest.mark.parametrize("scenario", CORRECT, ids=_ids(CORRECT))
def test_reference_subject_passes_a_campaign(scenario: Scenario, tmp_path) -> None:
    result = _campaign(scenario, seed=200, examples=200, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 200


@pytest.mark.slow
@pytest.mark.parametrize("scenario", CORRECT, ids=_ids(CORRECT))
def test_reference_subject_passes_1000_examples(scenario: Scenario, tmp_path) -> None:
    result = _campaign(scenario, seed=1000, examples=1000, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 1000


@pytest.mark.parametrize("scenario", BUGGY, ids=_ids(BUGGY))
def test_buggy_subject_is_caught_by_its_invariant(scenario: Scenario, tmp_path) -> None:
    result = _campaign(scenario, seed=1, examples=DETECT_WITHIN, tmp_path=tmp_path)
    assert result.findings, f"{scenario.target} not caught in {result.examples} examples"
    finding = result.findings[0]
    assert finding.record.invariant == scenario.expect, finding.record.message
    assert finding.shrunk and len(finding.record.schedule.ops) <= 6


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4, 5])
@pytest.mark.parametrize("scenario", BUGGY, ids=_ids(BUGGY))
def test_buggy_subject_is_caught_whatever_the_seed(scenario: Scenario, seed: int, tmp_path) -> None:
    result = _campaign(scenario, seed=seed, examples=DETECT_WITHIN, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [scenario.expect]
