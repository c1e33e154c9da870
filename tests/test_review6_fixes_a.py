"""Review 6's findings 1 and 2 (docs/reviews/outside-user-6.md), fixed, each shown both ways.

Finding 1: with ``retries`` declared, a caller failed with the cancel error of an attempt the subject
cancelled at its timeout passed ``time.timeout``. Now a whole-request deadline (``timeout_from="submit"``)
holds the caller to the timeout error at T, retries or not; a timeout from ``"start"`` with retries (each
attempt's) still lets the caller get the timeout error or an error one of its attempts raised once the
subject gives up, but never the cancel error of the subject's own cancel.

Finding 2: ``retries=math.inf`` (with ``backoff_ms``) declares a subject that retries a failed job until
it lands: a caller whose attempts keep failing, each retried within the backoff, is not stranded by its
own failure at the drain horizon; one whose subject stopped retrying (no attempt running, none due within
the backoff) still is (``errors.poison``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from twisted.internet import task
from twisted.internet.defer import Deferred, maybeDeferred

from harness import ClockPolicy, JobSpec, Schedule, Submit, Target, check, load_target, run_schedule

from review_campaigns import campaign

ROUND6 = "scenarios.review.round6.targets"
HANG = JobSpec(kind="hang")


def _violations(target: Target, *ops, clock: ClockPolicy = ClockPolicy()) -> list[Any]:
    return check(run_schedule(target, Schedule(ops=tuple(ops), clock=clock)))


# -- finding 1 -------------------------------------------------------------------------------------


class AttemptTimeoutRetry:
    """Each attempt under a 300 ms ``addTimeout``, retried 50 ms after a failure, at most twice; the caller
    gets the last attempt's error. ``keep_cancel``: the timeout keeps the ``CancelledError`` of its own
    cancel (``onTimeoutCancel`` returning it) instead of turning it into ``TimeoutError``."""

    def __init__(self, clock: Any, keep_cancel: bool = False) -> None:
        self.clock = clock
        self.keep_cancel = keep_cancel

    def submit(self, job: Any) -> Deferred[Any]:
        caller: Deferred[Any] = Deferred()

        def attempt(n: int) -> None:
            d = maybeDeferred(job)
            if self.keep_cancel:
                d.addTimeout(0.3, self.clock, onTimeoutCancel=lambda result, timeout: result)
            else:
                d.addTimeout(0.3, self.clock)

            def failed(failure: Any) -> None:
                if n < 2:
                    task.deferLater(self.clock, 0.05, attempt, n + 1)
                else:
                    caller.errback(failure)

            d.addCallbacks(caller.callback, failed)

        attempt(0)
        return caller


def _attempt_timeout(keep_cancel: bool) -> Target:
    return Target(build=lambda clock: AttemptTimeoutRetry(clock, keep_cancel), timeout_ms=300, retries=2,
                  backoff_ms=(50, 50), cancellable=False)


def test_f1_whole_request_deadline_with_retries_holds_the_caller_to_the_timeout_error():
    """Fails on the old code: the one-operation schedule passed every invariant."""
    [found] = _violations(load_target(f"{ROUND6}:client_wrong_error"), Submit(at_ms=0, job=0, spec=HANG))
    assert found.invariant == "time.timeout"
    assert found.message == "job 0 timed out at 1000ms but its Deferred fired with CancelledError: , not DeadlineExceeded"
    assert _violations(load_target(f"{ROUND6}:client_ok"), Submit(at_ms=0, job=0, spec=HANG)) == []


def test_f1_whole_request_deadline_after_failed_attempts():
    """Two retryable failures, then an attempt that hangs to the deadline: the caller still gets
    DeadlineExceeded at T, not the attempt's cancel error (nor the earlier attempts' error)."""
    spec = JobSpec(kind="fail", after_ms=100, error="Retryable")
    ops = (Submit(at_ms=0, job=0, spec=spec, then=(spec, HANG)),)
    assert _violations(load_target(f"{ROUND6}:client_ok"), *ops) == []
    [found] = _violations(load_target(f"{ROUND6}:client_wrong_error"), *ops)
    assert found.invariant == "time.timeout" and "not DeadlineExceeded" in found.message


def test_f1_retries_zero_keeps_the_error_check():
    """Fails on the old code: retries=0, as the docs advise for a plain pool, lifted the check. Since review 10
    (finding 1) retries=0 holds the caller to T as without retries (no later attempt): the plain check's message."""
    [found] = _violations(load_target(f"{ROUND6}:keeps_cancel_retries0"), Submit(at_ms=0, job=0, spec=HANG))
    assert found.invariant == "time.timeout"
    assert "job 0 timed out at 300ms but its Deferred fired with CancelledError" in found.message


def test_f1_per_attempt_timeout_with_retries_both_ways():
    """A timeout from the start with retries: every attempt hangs and times out; the caller gets the last
    attempt's TimeoutError (clean), or the kept CancelledError of the subject's own cancel (caught, and
    not on the old code)."""
    ops = (Submit(at_ms=0, job=0, spec=HANG),)
    assert _violations(_attempt_timeout(keep_cancel=False), *ops) == []
    [found] = _violations(_attempt_timeout(keep_cancel=True), *ops)
    assert found.invariant == "time.timeout"
    assert found.message.startswith("job 0's attempt 2 timed out at 1000ms and its Deferred failed at 1000ms with CancelledError")


class RenamesTimeout:
    """A plain timeout wrapper failing the caller with ``RuntimeError("timed out")`` at its timeout (review6's
    ``renames_timeout_retries0``, added after this fix started)."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def submit(self, job: Any) -> Deferred[Any]:
        from twisted.python.failure import Failure

        return maybeDeferred(job).addTimeout(
            0.3, self.clock, onTimeoutCancel=lambda result, timeout: Failure(RuntimeError("timed out")))


def test_f1_retries_zero_any_error_not_the_jobs_is_caught():
    """Not only the cancel error: an error neither the timeout's nor raised by an attempt (RuntimeError) at a
    per-attempt timeout is caught with retries=0 too."""
    renames = Target(build=RenamesTimeout, timeout_ms=300, retries=0)
    [found] = _violations(renames, Submit(at_ms=0, job=0, spec=HANG))
    assert found.invariant == "time.timeout" and "fired with RuntimeError: timed out, not TimeoutError" in found.message


def test_f1_per_attempt_timeout_the_last_attempts_own_error_goes():
    """What target.md allows stays allowed: attempts time out, the last one fails with its own error, and
    the caller gets that error (errors.propagate judges it), keep_cancel or not."""
    ops = (Submit(at_ms=0, job=0, spec=HANG, then=(HANG, JobSpec(kind="fail", after_ms=10))),)
    for keep_cancel in (False, True):
        assert _violations(_attempt_timeout(keep_cancel), *ops) == []


def test_f1_twin_caught_by_a_campaign(tmp_path):
    """The twin the review's campaigns missed (5 seeds x 3000 examples) is found, named time.timeout."""
    result = campaign(f"{ROUND6}:client_wrong_error", 1, 500, tmp_path)
    assert [f.violation.invariant for f in result.findings] == ["time.timeout"]
    assert result.findings[0].examples_to_detect is not None and result.findings[0].examples_to_detect <= 500


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["mixed", "pct"])
def test_f1_correct_client_clean_over_a_long_campaign(strategy, tmp_path):
    result = campaign(f"{ROUND6}:client_ok", 5, 2000, tmp_path, strategy=strategy)
    assert result.error is None
    assert result.findings == [], [f.violation.message for f in result.findings]


# -- finding 2 -------------------------------------------------------------------------------------

from dataclasses import replace  # noqa: E402

from harness import Stop, TargetError  # noqa: E402
from scenarios.review.round6 import coalesce  # noqa: E402
from scenarios.review.round6.targets import PatientGate, flush_retry_forever  # noqa: E402


class GivesUpFlusher(coalesce.CoalescingFlusher):
    """The twin: after three failed flushes in a row (not stopping) the batch is dropped silently; nobody is
    told, and its writers' callers wait for ever."""

    failures = 0

    def _flushed(self, result: Any) -> None:
        self.failures = 0
        super()._flushed(result)

    def _flush_failed(self, failure: Any) -> None:
        self.failures += 1
        if self.failures >= 3 and not self.stopping:
            self.inflight = None  # BUG: the batch is dropped, and no retry is armed
            return
        super()._flush_failed(failure)


flush_gives_up = replace(flush_retry_forever, build=lambda clock: PatientGate(clock, GivesUpFlusher),
                         description="review 6 fixes: a flusher that stops retrying silently")


class TickingGate(PatientGate):
    """The twin's glue with a housekeeping tick (a LoopingCall every second, stopped by stop()): the run
    no longer drains with nothing scheduled, so only the backoff bound tells the twin stopped retrying."""

    def __init__(self, clock: Any, cls: type[coalesce.CoalescingFlusher]) -> None:
        super().__init__(clock, cls)
        self.tick = task.LoopingCall(lambda: None)
        self.tick.clock = clock
        self.tick.start(1.0, now=False)

    def stop(self) -> Deferred[Any]:
        if self.tick.running:
            self.tick.stop()
        return super().stop()


flush_gives_up_ticking = replace(flush_retry_forever, build=lambda clock: TickingGate(clock, GivesUpFlusher),
                                 description="review 6 fixes: the silent twin beside a housekeeping tick")
WRITE_FAILS = Submit(at_ms=0, job=0, spec=JobSpec(kind="raise"))


def test_f2_retries_inf_is_declarable():
    """Fails on the old code (retries=math.inf was refused)."""
    assert flush_retry_forever.retries == math.inf and flush_retry_forever.retries_unbounded
    assert Target(build=object, retries=math.inf, backoff_ms=(10, 20)).retries_unbounded
    assert not Target(build=object, retries=3).retries_unbounded


def test_f2_retries_inf_needs_backoff_and_no_other_float():
    with pytest.raises(TargetError, match="declare backoff_ms"):
        Target(build=object, retries=math.inf)
    with pytest.raises(TargetError, match="math.inf"):
        Target(build=object, retries=2.5, backoff_ms=(10, 20))
    with pytest.raises(TargetError, match="periodic"):
        Target(build=lambda clock, work: None, kind="periodic", interval_ms=100, retries=math.inf, backoff_ms=(1, 2))


def test_f2_a_write_retried_until_the_drain_is_not_stranded():
    """Fails on the old code: errors.poison at the drain horizon."""
    assert _violations(flush_retry_forever, WRITE_FAILS) == []
    assert _violations(flush_retry_forever, WRITE_FAILS, Stop(at_ms=0)) == []


def test_f2_a_subject_that_stops_retrying_is_caught():
    found, *rest = _violations(flush_gives_up, WRITE_FAILS)
    assert found.invariant == "errors.poison"
    assert [v.invariant for v in rest] == ["user.flush_stop_is_durable"]  # the teardown stop() saw nothing pending
    assert "its attempt 2 failed at 250ms and the run drained at 350ms with nothing left scheduled" in found.message
    # stopped early, the twin's stop() still answers (gives up loudly): nothing to catch
    assert _violations(flush_gives_up, WRITE_FAILS, Stop(at_ms=0)) == []


def test_f2_a_subject_that_stops_retrying_beside_other_timers_is_caught():
    """Calls still scheduled at the drain (a tick), but no retry within the backoff's high bound: caught; the
    correct flusher beside the same tick is clean."""
    found, *_ = _violations(flush_gives_up_ticking, WRITE_FAILS)
    assert found.invariant == "errors.poison"
    assert "its attempt 2 failed at 250ms and no retry came within the declared backoff (up to 6150ms)" in found.message
    ticking_ok = replace(flush_retry_forever, build=lambda clock: TickingGate(clock, coalesce.CoalescingFlusher))
    assert _violations(ticking_ok, WRITE_FAILS) == []


def test_f2_without_the_declaration_the_twin_and_the_correct_flusher_look_alike():
    """What the declaration buys: without it both strand the caller (errors.poison), so the twin's silent stop
    could not be told from retrying."""
    undeclared = replace(flush_retry_forever, retries=None, backoff_ms=None)
    assert [v.invariant for v in _violations(undeclared, WRITE_FAILS)] == ["errors.poison"]


def test_f2_twin_caught_by_a_campaign(tmp_path):
    result = campaign("tests.test_review6_fixes_a:flush_gives_up", 1, 500, tmp_path)
    assert [f.violation.invariant for f in result.findings] == ["errors.poison"]


def test_f2_correct_flusher_clean(tmp_path):
    result = campaign(f"{ROUND6}:flush_retry_forever", 1, 400, tmp_path)
    assert result.error is None and result.findings == [], [f.violation.message for f in result.findings]


@pytest.mark.slow
@pytest.mark.parametrize("strategy, seed", [("mixed", 5), ("pct", 7), ("swarm", 9)])
def test_f2_correct_flusher_clean_over_a_long_campaign(strategy, seed, tmp_path):
    result = campaign(f"{ROUND6}:flush_retry_forever", seed, 2000, tmp_path, strategy=strategy)
    assert result.error is None
    assert result.findings == [], [f.violation.message for f in result.findings]
