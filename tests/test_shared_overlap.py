"""``shared`` with ``key_limit > 1``: a caller that joined an execution that never ends is not stuck.

docs/reviews/outside-user.md F2 of the outside-user review (a debouncer whose executions of one key overlap, declared
``shared=True, key_limit=100``): a caller that joined a hanging execution was flagged
``completion.deadline``. ``sharing.joined`` lets a caller be served by any execution of its key
running at its submission or started after it, so such an execution that never ends excuses it,
whatever ``key_limit`` says; a caller of a shared subject that is really lost is still caught.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import pytest
from hypothesis import strategies as st
from twisted.internet import defer

from harness import (
    Call,
    JobSpec,
    Operation,
    Schedule,
    Submit,
    Target,
    TargetError,
    check,
    run_schedule,
)
from harness.store.judged import checked_names
from scenarios.single_flight import SingleFlight, caches_failures_flight, single_flight

from review_campaigns import campaign

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


def test_both_ways_over_a_campaign(tmp_path) -> None:
    clean = campaign("single_flight key_limit 100", 3, 1500, tmp_path, overlapping)
    assert [f.record.message for f in clean.findings] == [] and clean.examples == 1500
    caught = campaign("forgetful flight", 3, 1500, tmp_path, forgetful)
    assert [f.record.invariant for f in caught.findings] == ["completion.deadline"]


# -- docs/reviews/outside-user-2.md F9: executions of one key that overlap without bound ---------------------


class InvalidatingFlight(SingleFlight):
    """A single-flight cache with ``invalidate(key)`` (Synapse's ``DeferredCache.invalidate``): the running
    execution is dropped from the cache, its callers still get its outcome, and the next caller starts a
    new one beside it. Repeated, any number of executions of a key overlap."""

    def invalidate(self, key: Any) -> None:
        self._flights.pop(key, None)


def _invalidating(**promises: Any) -> Target:
    return Target(
        build=InvalidatingFlight, keys=2, shared=True, cancellable="detach",
        operations={"invalidate": Operation(lambda subject, key: subject.invalidate(key), args=(st.integers(0, 1),))},
        **promises,
    )


unbounded = _invalidating(key_limit=math.inf)

#: Three executions of key 0 running at once at 20ms: each caller after an invalidate starts a new one.
THREE_OVERLAP = Schedule(ops=(
    Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=100), key=0),
    Call(at_ms=10, operation="invalidate", args=(0,)),
    Submit(at_ms=10, job=1, spec=JobSpec(kind="succeed", after_ms=100), key=0),
    Call(at_ms=20, operation="invalidate", args=(0,)),
    Submit(at_ms=20, job=2, spec=JobSpec(kind="succeed", after_ms=100), key=0),
    Submit(at_ms=30, job=3, key=0),  # joins the third execution
))


def test_an_unbounded_key_limit_lets_executions_of_a_key_overlap() -> None:
    assert unbounded.keyed_limit is None
    assert "concurrency.key_limit" not in checked_names(unbounded)
    assert check(run_schedule(unbounded, THREE_OVERLAP)) == []


def test_a_bounded_key_limit_still_fires_on_the_same_overlap() -> None:
    for promises in ({}, {"key_limit": 2}):  # shared alone means 1
        [violation] = check(run_schedule(_invalidating(**promises), THREE_OVERLAP))
        assert violation.invariant == "concurrency.key_limit", promises
        assert "of key 0 running" in violation.message


def test_the_global_limit_is_still_judged_beside_an_unbounded_key_limit() -> None:
    [violation] = check(run_schedule(_invalidating(key_limit=math.inf, limit=2), THREE_OVERLAP))
    assert violation.invariant == "concurrency.limit" and "3 jobs running" in violation.message


@pytest.mark.parametrize("bad", [0, -1, 2.5, "16", True, float("nan"), -math.inf])
def test_a_bad_key_limit_is_refused_naming_math_inf(bad: Any) -> None:
    with pytest.raises(TargetError, match=r"Target key_limit must be a positive integer, math.inf \(no bound"):
        _invalidating(key_limit=bad)


def test_unbounded_both_ways_over_a_campaign(tmp_path) -> None:
    clean = campaign("invalidating flight key_limit inf", 3, 1500, tmp_path, unbounded)
    assert [f.record.message for f in clean.findings] == [] and clean.examples == 1500
    bounded = campaign("invalidating flight key_limit 1", 3, 1500, tmp_path, _invalidating())
    assert [f.record.invariant for f in bounded.findings] == ["concurrency.key_limit"]
    # A shared subject's real bug is still caught with the key limit unbounded.
    stale = dataclasses.replace(caches_failures_flight, key_limit=math.inf)
    caught = campaign("caches failures, key_limit inf", 3, 1500, tmp_path, stale)
    assert [f.record.invariant for f in caught.findings] == ["sharing.joined"]
