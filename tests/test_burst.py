"""``Target(rate=(n, per_ms), burst=b)`` (docs/reviews/outside-user.md F5): a token bucket's whole promise.

Any ``b + k`` starts span at least ``k * per_ms / n``. Both ways: the review's token bucket stays
clean; one refilling at several times its rate (``DoubleTickTokenBucket``, which keeps "capacity + 1
starts span a period") and one holding capacity + 1 are caught by ``time.early``, without a user
invariant.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, TargetError, check, load_target, run_schedule

from review_campaigns import campaign

REVIEW = "scenarios.review.targets"


class Starter:
    """Starts each job at its given offset (``job.id``-th entry of ``at_ms``) after construction: any start pattern."""

    def __init__(self, clock: Any, at_ms: list[int]) -> None:
        self.clock, self.at_ms = clock, at_ms

    def submit(self, job: Any) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        delay = max(0, self.at_ms[job.id] - int(self.clock.seconds() * 1000))
        self.clock.callLater(delay / 1000, lambda: defer.maybeDeferred(job).chainDeferred(d))
        return d


def _violations(at_ms: list[int], **promise: Any) -> list[str]:
    target = Target(build=lambda clock: Starter(clock, at_ms), cancellable=False, menu={"cancels": False}, **promise)
    ops = tuple(Submit(0, job, JobSpec("succeed", 0)) for job in range(len(at_ms)))
    return [f"{v.invariant}: {v.message}" for v in check(run_schedule(target, Schedule(ops, ClockPolicy())))]


@pytest.mark.parametrize(
    "promise, message",
    [
        ({"rate": (1, 100), "burst": 0}, "Target burst must be a positive integer or None, got 0"),
        ({"rate": (1, 100), "burst": True}, "Target burst must be a positive integer or None, got True"),
        ({"burst": 3}, "Target burst is how many may start at once beside a rate: declare rate=(jobs, per_ms) too"),
    ],
)
def test_bad_bursts_are_refused_in_one_line(promise: dict, message: str) -> None:
    with pytest.raises(TargetError) as info:
        Target(build=object, **promise)
    assert str(info.value) == message


def test_a_bucket_may_spend_its_burst_then_one_per_period() -> None:
    # 3 at once, then one every 100ms: any 3 + k span k * 100ms exactly.
    assert _violations([0, 0, 0, 100, 200, 300], rate=(1, 100), burst=3) == []
    # The rate alone would call the burst early (2 starts within 100ms).
    assert [v.split(":")[0] for v in _violations([0, 0, 0, 100], rate=(1, 100))] == ["time.early"]


def test_a_sustained_rate_above_the_promise_is_caught() -> None:
    # Each window of 4 spans a period (what rate=(3, 100) checks), but 5 in 100ms need 200ms.
    starts = [0, 0, 0, 100, 100, 100]
    assert _violations(starts, rate=(3, 100)) == []
    assert _violations(starts, rate=(1, 100), burst=3) == [
        "time.early: 5 jobs started between 0ms and 100ms; a burst of 3 at a rate of 1 per 100ms needs 200ms for that"
    ]


def test_a_fractional_period_is_compared_exactly() -> None:
    # 2 per 100ms (one per 50ms), burst 1: 50 then 99 is 49ms apart, needing 50ms.
    assert _violations([0, 50, 100], rate=(2, 100), burst=1) == []
    assert _violations([0, 50, 99], rate=(2, 100), burst=1) == [
        "time.early: 2 jobs started between 50ms and 99ms; a burst of 1 at a rate of 2 per 100ms needs 50ms for that"
    ]
    # 3 per 100ms, burst 1: two starts 33ms apart need 33.333ms (compared in whole us, not rounded).
    assert [v.split(":")[0] for v in _violations([0, 33], rate=(3, 100), burst=1)] == ["time.early"]
    assert _violations([0, 34], rate=(3, 100), burst=1) == []


def test_the_review_bucket_declares_its_burst_and_no_user_invariant() -> None:
    target = load_target(f"{REVIEW}:token_bucket_ok")
    assert (target.rate, target.burst, target.invariants) == ((1, 100), 3, ())


def test_the_review_bucket_stays_clean(tmp_path) -> None:
    result = campaign(f"{REVIEW}:token_bucket_ok", seed=4, examples=300, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


@pytest.mark.parametrize("name", ["token_bucket_double_tick", "token_bucket_off_by_one"])
def test_a_bucket_too_generous_is_caught_by_time_early(name: str, tmp_path) -> None:
    result = campaign(f"{REVIEW}:{name}", seed=4, examples=2000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == ["time.early"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_review_bucket_stays_clean_over_a_long_campaign(seed: int, tmp_path) -> None:
    result = campaign(f"{REVIEW}:token_bucket_ok", seed=seed, examples=2500, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
