"""Work the subject cancels on purpose before its timeout is no early timeout (review 8, finding 1).

Two declarations, each shown both ways on the round-8 subscriber (``scenarios.review.round8``):
``Operation(..., cancels_work=True)`` (``unsubscribe()`` cancels the delivery in progress) and
``Target(sheds=...)`` (an overflowing publish evicts the slow subscriber, its caller refused with
``Unsubscribed``). The correct broker passes; a broker whose delivery timeout fires early is still
``time.timeout``, with the operation called at another instant, and with eviction declared; an
eviction when the buffer is not full is still ``errors.rejects``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from harness import Call, JobSpec, Operation, Schedule, Submit, Target, TargetError, check, load_target, run_schedule
from scenarios.review.round8 import fanout
from scenarios.review.round8.targets import FanoutGate, Unsubscribed

PACKAGE = "scenarios.review.round8.targets"
#: What an early cancel's message says of the declarations (time.timeout): only the ones that apply (review 10,
#: finding 3), after the call that cancelled the job.
CALL_HINT = "if unsubscribe cancels work on purpose, declare Operation(..., cancels_work=True) for it"
SHED_HINT = "its caller was refused with Unsubscribed then: if the subject shed the work on purpose, declare it in the Target's sheds"


class EarlyTimeout(fanout.Broker):
    """Bug: the delivery timeout is armed for a third of its length."""

    def _pump(self, sub: fanout.Subscription) -> None:
        self.delivery_timeout /= 3
        try:
            super()._pump(sub)
        finally:
            self.delivery_timeout *= 3


class EvictsBeforeFull(fanout.Broker):
    """Bug: evicts the subscriber one message before its buffer is full."""

    def _full(self, sub: fanout.Subscription) -> bool:
        return len(sub.buffer) >= self.buffer_size - 1


def _verdict(target: Target, *ops: Any) -> list[tuple[str, str]]:
    return [(v.invariant, v.message) for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def _job(n: int, after_ms: int) -> Submit:
    return Submit(at_ms=0, job=n, spec=JobSpec(kind="succeed", after_ms=after_ms))


OVERFLOW = (_job(0, 5), _job(1, 0), _job(2, 0), _job(3, 0))


def test_an_operation_declared_to_cancel_work_excuses_its_cancel() -> None:
    target = load_target(f"{PACKAGE}:fanout_unsubscribe_op")
    assert _verdict(target, _job(0, 200), Call(at_ms=50, operation="unsubscribe")) == []
    undeclared = replace(target, operations={"unsubscribe": Operation(lambda s: s.unsubscribe())})
    assert _verdict(undeclared, _job(0, 200), Call(at_ms=50, operation="unsubscribe")) == [
        ("time.timeout", "job 0 was cancelled at 50ms, only 50ms after it started; the timeout is 300ms (cancelled in the call of "
         f"unsubscribe() at 50ms; {CALL_HINT}; {SHED_HINT})")]


def test_an_early_timeout_beside_a_work_cancelling_operation_is_caught() -> None:
    """The excuse is the call's instant only: the twin's delivery cancelled at 100 ms, with unsubscribe()
    called at 50 ms for another subscriber's delivery, or never, is an early timeout."""
    target = replace(load_target(f"{PACKAGE}:fanout_unsubscribe_op"), build=lambda clock: FanoutGate(clock, EarlyTimeout))
    early = ("time.timeout", "job 0 was cancelled at 100ms, only 100ms after it started; the timeout is 300ms "
             "(cancelled by the subject's timer #2 Broker._timeout, set at 0ms, due 100ms)")
    assert _verdict(target, _job(0, 200)) == [early]
    assert _verdict(target, Call(at_ms=0, operation="unsubscribe"), _job(0, 200)) == [early]


def test_a_shed_job_refused_in_the_instant_is_no_early_timeout() -> None:
    target = load_target(f"{PACKAGE}:fanout_evict")
    assert _verdict(target, *OVERFLOW) == []
    assert _verdict(replace(target, sheds=()), *OVERFLOW) == [
        ("time.timeout", "job 0 was cancelled at 0ms, only 0ms after it started; the timeout is 300ms (cancelled in the submit of "
         f"job 3 at 0ms; {SHED_HINT})")]


def test_an_early_timeout_of_a_shedding_subject_is_caught() -> None:
    target = replace(load_target(f"{PACKAGE}:fanout_evict"), build=lambda clock: FanoutGate(clock, EarlyTimeout, "evict"))
    [(name, message)] = _verdict(target, _job(0, 200))
    assert name == "time.timeout" and message.startswith("job 0 was cancelled at 100ms, only 100ms after it started")


def test_a_shed_refusal_is_still_judged_by_errors_rejects() -> None:
    target = replace(load_target(f"{PACKAGE}:fanout_evict"), build=lambda clock: FanoutGate(clock, EvictsBeforeFull, "evict"))
    names = [name for name, _ in _verdict(target, *OVERFLOW[:3])]
    assert names == ["errors.rejects"], names


@pytest.mark.parametrize("fields, message", [
    ({"sheds": (Unsubscribed,), "rejects": ()}, "Target sheds names Unsubscribed, which is not among its rejects"),
    ({"sheds": (TimeoutError,), "rejects": (TimeoutError,), "timeout_error": TimeoutError},
     "Target sheds names TimeoutError, the timeout error"),
    ({"sheds": (Unsubscribed,), "rejects": (Unsubscribed,)}, "it needs timeout_ms on a submit target"),
    ({"sheds": Unsubscribed}, r"Target sheds must be a tuple of exception classes, got .*: write sheds=\(Unsubscribed,\)"),
])
def test_sheds_is_checked(fields: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"build": lambda clock: FanoutGate(clock), "timeout_ms": 300}
    if fields.get("sheds") == (Unsubscribed,) and fields.get("rejects") == (Unsubscribed,):
        base.pop("timeout_ms")
    with pytest.raises(TargetError, match=message):
        Target(**{**base, **fields})


def test_cancels_work_is_a_bool() -> None:
    with pytest.raises(TargetError, match="Operation cancels_work must be True or False, got 'yes'"):
        Operation(lambda s: s.unsubscribe(), cancels_work="yes")  # type: ignore[arg-type]


def test_an_unsubscribe_in_the_instant_of_the_timeout_is_no_timeout() -> None:
    """Found by a campaign: the delivery due to time out at 301 ms, on a reactor waking every 5 s, ended
    by unsubscribe() at 301 ms: the caller's Unsubscribed is not owed DeliveryTimeout."""
    from harness import ClockPolicy
    target = load_target(f"{PACKAGE}:fanout_unsubscribe_op")
    run = run_schedule(target, Schedule(ops=(Submit(at_ms=1, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
                                             Call(at_ms=301, operation="unsubscribe")), clock=ClockPolicy(step_ms=5000)))
    assert check(run) == []


def test_a_shed_job_whose_canceller_raises_is_no_early_timeout() -> None:
    """Found by a campaign: the evicted delivery's canceller raises, so its own caller is never answered;
    the callers refused with Unsubscribed in that instant say the subject shed it."""
    target = load_target(f"{PACKAGE}:fanout_evict")
    hostile = Submit(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=5, canceller_raises=True))
    assert _verdict(target, hostile, *OVERFLOW[1:]) == []
    assert [n for n, _ in _verdict(replace(target, sheds=()), hostile, *OVERFLOW[1:])] == ["time.timeout"]
