"""Work-submission scenarios: the reference subjects keep every promise, each buggy one is caught by its invariant.

Every reference subject must pass a campaign (200 examples by default,
1,000 marked slow) without a single violation.
"""

from __future__ import annotations

import importlib

import pytest

from harness import CampaignConfig, ClockPolicy, JobSpec, Schedule, Submit, check, load_target, run_campaign, run_schedule

#: The scenario modules of the work-submission half of the zoo.
MODULES = (
    "pools",
    "lock",
    "cooperator",
    "queue_workers",
    "priority",
)
SCENARIOS = tuple(s for name in MODULES for s in importlib.import_module(f"scenarios.{name}").SCENARIOS)
CORRECT = tuple(s for s in SCENARIOS if s.expect == "pass")


def _ids(scenarios) -> list[str]:
    return [s.target.split(":")[1] for s in scenarios]


def _campaign(spec: str, seed: int, examples: int, tmp_path):
    return run_campaign(
        load_target(spec),
        spec,
        CampaignConfig(seed=seed, max_examples=examples, report_dir=str(tmp_path), database=None, regressions=None),
    )


def _ms(kind: str, after_ms: int = 10) -> JobSpec:
    return JobSpec(kind, after_ms if kind in ("succeed", "fail") else 0)


@pytest.mark.parametrize("scenario", CORRECT, ids=_ids(CORRECT))
def test_reference_subject_passes_a_campaign(scenario, tmp_path) -> None:
    result = _campaign(scenario.target, 20, 200, tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 200


@pytest.mark.slow
@pytest.mark.parametrize("scenario", CORRECT, ids=_ids(CORRECT))
def test_reference_subject_passes_1000_examples(scenario, tmp_path) -> None:
    result = _campaign(scenario.target, 1000, 1000, tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 1000


def test_a_serial_subject_on_a_stalled_reactor_is_not_called_deadlocked() -> None:
    # Four 10 ms jobs one after another, each completion fired up to a 5 s stride late: the last
    # finishes at 20 s. The run must drain that long rather than call the last job stranded.
    schedule = Schedule(tuple(Submit(0, job, _ms("succeed")) for job in range(4)), ClockPolicy(step_ms=5_000))
    run = run_schedule(load_target("scenarios.lock:lock_resource"), schedule)
    assert check(run) == []
    assert sum(1 for event in run.trace if event.kind == "result") == 4
