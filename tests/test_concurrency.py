"""concurrency.limit both ways: a correct pool passes long campaigns, a leaky pool is caught."""

from __future__ import annotations

import pytest

from harness import CampaignConfig, JobSpec, Schedule, Submit, check, run_campaign, run_schedule
from scenarios.pools import double_release_pool, semaphore_pool


def test_limit_violation_names_the_invariant_jobs_and_time() -> None:
    schedule = Schedule(
        (
            Submit(0, 0, JobSpec("succeed", 20)),
            Submit(0, 1, JobSpec("fail", 10)),
            Submit(0, 2, JobSpec("succeed", 10)),
            Submit(0, 3, JobSpec("succeed", 10)),
        )
    )
    (violation,) = check(run_schedule(double_release_pool, schedule))
    assert violation.invariant == "concurrency.limit"
    assert violation.jobs == (0, 2, 3)
    assert violation.t_us == 10_000
    assert "3 jobs running at 10ms but the limit is 2" in violation.message
    assert check(run_schedule(semaphore_pool, schedule)) == []


def test_buggy_pool_is_caught_and_shrunk(tmp_path) -> None:
    result = run_campaign(
        double_release_pool, "scenarios.pools:double_release_pool", CampaignConfig(seed=3, report_dir=str(tmp_path))
    )
    (finding,) = result.findings
    assert finding.record.invariant == "concurrency.limit"
    # The smallest counterexample has four operations (two running jobs, one fails, two waiting
    # jobs start); shrinking must get within one of it.
    assert len(finding.record.schedule.ops) <= 5
    assert finding.path is not None and finding.path.exists()


def test_correct_pool_passes_a_campaign(tmp_path) -> None:
    result = run_campaign(
        semaphore_pool,
        "scenarios.pools:semaphore_pool",
        CampaignConfig(seed=11, max_examples=300, report_dir=str(tmp_path)),
    )
    assert result.findings == []
    assert result.examples == 300


@pytest.mark.slow
def test_correct_pool_passes_2000_examples(tmp_path) -> None:
    result = run_campaign(
        semaphore_pool,
        "scenarios.pools:semaphore_pool",
        CampaignConfig(seed=2000, max_examples=2000, report_dir=str(tmp_path)),
    )
    assert result.findings == []
    assert result.examples == 2000
