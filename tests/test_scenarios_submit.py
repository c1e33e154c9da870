"""Work-submission scenarios: the reference subjects keep every promise, each buggy one is caught by its invariant.

Three layers, from cheapest to broadest:

* a hand-written minimal schedule per bug, which must break exactly the
  expected invariant first, and which every reference subject must pass;
* a campaign per reference subject (200 examples by default, 1,000 marked
  slow), which must find nothing;
* a campaign per buggy subject, which must name the expected invariant
  within a bounded number of examples.
"""

from __future__ import annotations

import importlib

import pytest

from harness import CampaignConfig, ClockPolicy, JobSpec, Schedule, Submit, check, load_target, run_campaign, run_schedule
from harness.model.schedule import Cancel

#: The scenario modules of the work-submission half of the zoo.
MODULES = (
    "pools",
    "lock",
    "cooperator",
    "queue_workers",
    "priority",
    "semaphore",
    "gather",
    "next_tick",
    "cancel",
    "error_paths",
    "cooldown_gate",
)
SCENARIOS = tuple(s for name in MODULES for s in importlib.import_module(f"scenarios.{name}").SCENARIOS)
CORRECT = tuple(s for s in SCENARIOS if s.expect == "pass")
BUGGY = tuple(s for s in SCENARIOS if s.expect != "pass")

#: Campaign seed and example budget for each buggy scenario. Each budget is well above the
#: examples needed to find the bug with the expected invariant, measured over seeds 1 to 5.
DETECTION_SEED = 3
DETECTION_BUDGET = 1_500


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


#: For each buggy scenario, a smallest schedule that shows its bug.
MINIMAL = {
    "scenarios.pools:double_release_pool": Schedule(
        (Submit(0, 0, _ms("succeed", 20)), Submit(0, 1, _ms("fail")), Submit(0, 2, _ms("succeed")), Submit(0, 3, _ms("succeed")))
    ),
    "scenarios.semaphore:cancel_leak_pool": Schedule(
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed")), Cancel(0, 1), Submit(0, 2, _ms("succeed")))
    ),
    "scenarios.semaphore:failure_leak_pool": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(0, 1, _ms("fail")), Submit(0, 2, _ms("succeed")))
    ),
    "scenarios.gather:gather_throttle": Schedule(
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed")), Submit(0, 2, _ms("succeed")))
    ),
    "scenarios.next_tick:next_tick_fifo": Schedule(
        # Both admissions are due at 0ms; the reactor wakes late, after both submits, and the lifo
        # tie-break runs job 1's first.
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed"))), ClockPolicy(tie_break="lifo", jitter_ms=5)
    ),
    "scenarios.next_tick:next_tick_raises": Schedule((Submit(0, 0, _ms("raise")),)),
    "scenarios.next_tick:next_tick_delivery_pool": Schedule((Submit(0, 0, _ms("succeed")), Cancel(0, 0))),
    "scenarios.cancel:detaching_pool": Schedule((Submit(0, 0, _ms("succeed")), Cancel(0, 0))),
    "scenarios.cancel:cooperative_cancel_pool": Schedule((Submit(0, 0, _ms("succeed")), Cancel(0, 0))),
    "scenarios.cancel:ticket_pool": Schedule((Submit(0, 0, _ms("immediate")), Cancel(0, 0))),
    "scenarios.error_paths:swallowing_pool": Schedule((Submit(0, 0, _ms("fail")),)),
    "scenarios.error_paths:tee_pool": Schedule((Submit(0, 0, _ms("fail")),)),
    "scenarios.error_paths:bookkeeping_pool": Schedule((Submit(0, 0, _ms("fail")),)),
    "scenarios.queue_workers:no_skip_queue_workers": Schedule(
        (Submit(0, 0, _ms("succeed")), Submit(0, 1, _ms("succeed")), Cancel(0, 1))
    ),
    "scenarios.priority:min_heap_priority_pool": Schedule(
        (Submit(0, 0, _ms("succeed"), 0), Submit(0, 1, _ms("succeed"), 1), Submit(0, 2, _ms("succeed"), 0))
    ),
    "scenarios.priority:idle_flag_scheduler": Schedule(
        (Submit(0, 0, _ms("immediate"), 1), Submit(0, 1, _ms("succeed"), 0))
    ),
    "scenarios.cooperator:dead_worker_pool": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(0, 1, _ms("fail")), Submit(0, 2, _ms("succeed")))
    ),
    # Two failures in a row (the gate reopened between them), then a job long after the cooldown: refused.
    "scenarios.cooldown_gate:sticky_gate": Schedule(
        (Submit(0, 0, _ms("fail")), Submit(200, 1, _ms("fail")), Submit(400, 2, _ms("succeed")))
    ),
}


def test_every_buggy_scenario_has_a_minimal_schedule() -> None:
    assert set(MINIMAL) == {s.target for s in BUGGY}


def test_the_zoo_covers_every_invariant_of_its_families() -> None:
    from harness.invariants import INVARIANTS

    from test_scenarios_keyed import BUGGY as KEYED_BUGGY

    families = ("concurrency", "cancellation", "errors", "completion", "sharing")
    wanted = {inv.name for inv in INVARIANTS if inv.name.split(".")[0] in families}
    assert wanted <= {s.expect for s in BUGGY + KEYED_BUGGY}
    assert len(CORRECT) >= 5 and len(BUGGY) >= 11


@pytest.mark.parametrize("scenario", BUGGY, ids=_ids(BUGGY))
def test_minimal_schedule_breaks_the_expected_invariant_first(scenario) -> None:
    violations = check(run_schedule(load_target(scenario.target), MINIMAL[scenario.target]))
    assert violations, f"{scenario.target} kept every promise on its minimal schedule"
    assert violations[0].invariant == scenario.expect, violations


@pytest.mark.parametrize("scenario", CORRECT, ids=_ids(CORRECT))
def test_reference_subject_passes_every_minimal_schedule(scenario) -> None:
    target = load_target(scenario.target)
    for bug, schedule in MINIMAL.items():
        assert check(run_schedule(target, schedule)) == [], f"the schedule that shows {bug}"


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


@pytest.mark.parametrize("scenario", BUGGY, ids=_ids(BUGGY))
def test_buggy_subject_is_caught_by_its_invariant(scenario, tmp_path) -> None:
    result = _campaign(scenario.target, DETECTION_SEED, DETECTION_BUDGET, tmp_path)
    assert result.findings, f"{scenario.target}: nothing found in {DETECTION_BUDGET} examples"
    finding = result.findings[0]
    assert finding.record.invariant == scenario.expect, finding.record.message
    # The saved schedule is shrunk and still breaks the same invariant when replayed.
    assert len(finding.record.schedule.ops) <= 6
    replayed = check(run_schedule(load_target(scenario.target), finding.record.schedule))
    assert scenario.expect in [v.invariant for v in replayed]


def test_a_serial_subject_on_a_stalled_reactor_is_not_called_deadlocked() -> None:
    # Four 10 ms jobs one after another, each completion fired up to a 5 s stride late: the last
    # finishes at 20 s. The run must drain that long rather than call the last job stranded.
    schedule = Schedule(tuple(Submit(0, job, _ms("succeed")) for job in range(4)), ClockPolicy(step_ms=5_000))
    run = run_schedule(load_target("scenarios.lock:lock_resource"), schedule)
    assert check(run) == []
    assert sum(1 for event in run.trace if event.kind == "result") == 4
