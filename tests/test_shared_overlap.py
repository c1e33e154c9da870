"""``shared`` with ``key_limit > 1``: a caller that joined an execution that never ends is not stuck.

docs/reviews/outside-user.md F2 of the outside-user review (a debouncer whose executions of one key overlap, declared
``shared=True, key_limit=100``): a caller that joined a hanging execution was flagged
``completion.deadline``. ``sharing.joined`` lets a caller be served by any execution of its key
running at its submission or started after it, so such an execution that never ends excuses it,
whatever ``key_limit`` says; a caller of a shared subject that is really lost is still caught.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from twisted.internet import defer

from harness import CampaignConfig, JobSpec, Schedule, Submit, Target, check, run_campaign, run_schedule
from scenarios.single_flight import SingleFlight, single_flight

#: Overlapping executions of one key allowed (as the review's debouncer needs).
overlapping = dataclasses.replace(single_flight, key_limit=100)

#: Job 1 joins job 0's execution, which hangs (the review's SHARED_OVERLAP_SCHEDULE).
JOINS_A_HANG = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"), key=0),
    Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed"), key=0),
))


class ForgetfulFlight(SingleFlight):
    """BUG: a caller that joins a running execution is never fired."""

    def _join(self, flight: Any) -> defer.Deferred[Any]:
        if flight.callers:
            return defer.Deferred()  # BUG: not in flight.callers
        return super()._join(flight)


forgetful = Target(build=ForgetfulFlight, keys=2, shared=True, cancellable="detach", key_limit=100)


def test_a_caller_joined_to_a_hanging_shared_execution_is_not_stuck() -> None:
    assert check(run_schedule(overlapping, JOINS_A_HANG)) == []
    assert check(run_schedule(single_flight, JOINS_A_HANG)) == []  # key_limit 1: as before


def test_a_lost_caller_of_a_shared_subject_is_still_caught_beside_a_hang_of_another_key() -> None:
    schedule = Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"), key=1),
        Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=10), key=0),
        Submit(at_ms=0, job=2, key=0),
    ))
    [violation] = check(run_schedule(forgetful, schedule))
    assert violation.invariant == "completion.deadline" and "job 2" in violation.message
    assert check(run_schedule(overlapping, schedule)) == []


def _campaign(target: Target, name: str, examples: int, tmp_path: Any):
    config = CampaignConfig(seed=3, max_examples=examples, report_dir=str(tmp_path), database=None, regressions=None)
    return run_campaign(target, name, config)


def test_both_ways_over_a_campaign(tmp_path) -> None:
    clean = _campaign(overlapping, "single_flight key_limit 100", 1500, tmp_path)
    assert [f.record.message for f in clean.findings] == [] and clean.examples == 1500
    caught = _campaign(forgetful, "forgetful flight", 1500, tmp_path)
    assert [f.record.invariant for f in caught.findings] == ["completion.deadline"]
