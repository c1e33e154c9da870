"""The outside-user review, round 2 (docs/reviews/outside-user-2.md): components written blind,
targets written from the docs, and more third-party code.

Both ways for every target: each correct component (and each new third-party target) stays
clean over a bounded campaign (a longer one in the slow tier), and each planted bug or misusing
glue is caught with the invariant named in ``EXPECTED``. The harness gaps the review found are
``xfail(strict=True)`` tests: each fails (and asks to become a plain test) once fixed.
"""

from __future__ import annotations

import pathlib
import random
import re
import subprocess
import sys

import pytest
from twisted.internet import defer, task

from harness import JobSpec, NondeterministicTarget, Schedule, Start, Stop, Submit, check, load_target, run_schedule
from review_campaigns import campaign, needs_synapse, spec_id
from scenarios.review.round2 import backoff, batcher, breaker, consumers, lease, repros

ROUND2 = "scenarios.review.round2.targets"
TWISTED = "scenarios.thirdparty.twisted_more"
SYNAPSE = "scenarios.thirdparty.synapse_more"
ROOT = pathlib.Path(__file__).resolve().parent.parent

CORRECT = tuple(f"{ROUND2}:{name}" for name in ("breaker_ok", "lease_ok", "batcher_ok", "backoff_ok", "consumers_ok"))
THIRDPARTY = (
    f"{TWISTED}:client_service",
    f"{TWISTED}:lock_wait_timeout",
    f"{TWISTED}:bounded_queue",
    f"{TWISTED}:cooperative_tasks",
    f"{SYNAPSE}:deferred_cache",
    f"{SYNAPSE}:deferred_cache_invalidate",
    f"{SYNAPSE}:retry_limiter",
)

#: Planted bugs (and misusing glue of third-party code): the invariant that must catch each.
EXPECTED = {
    # F5 fixed: the built-in (rejects_only_while) names it before the target's own invariant.
    f"{ROUND2}:breaker_stuck_open": "errors.rejects",
    # F1 fixed: the built-in sees the timer stop() forgot before the target's own invariant does.
    f"{ROUND2}:batcher_orphan_timer": "leaks.calls",
    f"{ROUND2}:backoff_retries_after_cancel": "cancellation.no_start",
    f"{ROUND2}:consumers_die_on_error": "errors.poison",
    f"{TWISTED}:client_service_strict": "time.backoff",
    f"{SYNAPSE}:deferred_cache_undelayed": "concurrency.key_limit",
}


# --- both ways, fast tier ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", CORRECT + THIRDPARTY, ids=spec_id)
def test_correct_target_stays_clean(spec: str, tmp_path) -> None:
    needs_synapse(spec)
    result = campaign(spec, seed=11, examples=300, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 300


@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_planted_bug_is_caught_with_the_right_invariant(spec: str, tmp_path) -> None:
    needs_synapse(spec)
    result = campaign(spec, seed=11, examples=3000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [EXPECTED[spec]]


def test_lease_renewal_landing_after_stop_is_caught_by_its_own_invariant(tmp_path) -> None:
    """The planted bug (a renewal landing after stop() re-arms the watchdog) is no built-in's: the
    renewal is in flight when stop() completes, and the timer it arms fires in the drain (F1). The
    target's own ``no_timer_after_stop`` catches it; the false alarm F2 (``time.loop_died``) is gone."""
    result = campaign(f"{ROUND2}:lease_renews_after_stop", seed=11, examples=3000, tmp_path=tmp_path, max_failures=3)
    found = [f.record.invariant for f in result.findings]
    assert "user.no_timer_after_stop" in found and "time.loop_died" not in found


def test_retry_limiter_on_the_global_random_is_reported_nondeterministic(tmp_path) -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    with pytest.raises(NondeterministicTarget, match="is nondeterministic"):
        campaign(f"{SYNAPSE}:retry_limiter_global_random", seed=11, examples=3000, tmp_path=tmp_path)


def _cooperator_stop_skips_tasks() -> bool:
    """Whether this Twisted's ``Cooperator.stop()`` leaves some tasks' ``whenDone()`` unfired."""
    coop = task.Cooperator(scheduler=lambda step: task.Clock().callLater(0.01, step),
                           terminationPredicateFactory=lambda: (lambda: True))
    ended: list[int] = []
    for i in range(4):
        coop.cooperate(iter([None, None])).whenDone().addErrback(lambda f, i=i: ended.append(i))
    coop.stop()
    return ended != [0, 1, 2, 3]


def test_cooperator_stop_skips_every_other_task_in_twisted_26() -> None:
    """The Twisted bug the harness found, by hand: ``stop()`` iterates ``self._tasks`` while each
    task's ``_completeWith`` removes itself from it."""
    import twisted

    if tuple(int(p) for p in twisted.__version__.split(".")[:2]) != (26, 10):
        pytest.skip("checked against Twisted 26.10 only")
    assert _cooperator_stop_skips_tasks()


def test_glue_relying_on_cooperator_stop_is_caught_while_twisted_skips_tasks(tmp_path) -> None:
    """Both symptoms: a skipped task's caller never answered, and pausing a skipped task raises
    ``ValueError`` from ``list.remove`` (the Cooperator no longer lists it). The stranded caller
    is reported as ``cancellation.releases`` when a no-op cancel is in the schedule (F4)."""
    result = campaign(f"{TWISTED}:cooperative_tasks_cooperator_stop", seed=11, examples=3000, tmp_path=tmp_path,
                       max_failures=2)
    found = {f.record.invariant for f in result.findings}
    if not _cooperator_stop_skips_tasks():
        assert found == set()
        return
    assert "errors.operation" in found and found & {"completion.deadline", "cancellation.releases"}


def test_a_cancel_after_the_result_is_not_blamed_for_a_stranded_job() -> None:
    if not _cooperator_stop_skips_tasks():
        pytest.skip("needs the Twisted bug")
    run = run_schedule(load_target(f"{TWISTED}:cooperative_tasks_cooperator_stop"), repros.NO_OP_CANCEL_BLAMED_SCHEDULE)
    assert [v.invariant for v in check(run)] == ["completion.deadline"]


# --- long campaigns, slow tier -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("spec", CORRECT + THIRDPARTY, ids=spec_id)
def test_correct_target_stays_clean_over_a_longcampaign(spec: str, seed: int, tmp_path) -> None:
    needs_synapse(spec)
    result = campaign(spec, seed=seed, examples=2000, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


# --- the planted bugs are real: each driven by hand on a plain task.Clock ----------------------


def test_breaker_twin_stays_open_after_a_failed_trial() -> None:
    for cls, state in ((breaker.CircuitBreaker, breaker.HALF_OPEN), (breaker.BuggyCircuitBreaker, breaker.OPEN)):
        clock = task.Clock()
        b = cls(clock, threshold=2, reset_timeout=5)
        for _ in range(3):
            b.call(lambda: defer.fail(ValueError())).addErrback(lambda f: None)
            clock.advance(5)  # the third call is the half-open trial, and fails
        assert b.state == state, cls.__name__


def test_lease_twin_calls_on_lost_after_stop() -> None:
    for cls, lost_after_stop in ((lease.LeaseRenewer, False), (lease.BuggyLeaseRenewer, True)):
        clock = task.Clock()
        pending: list[defer.Deferred] = []
        lost: list[float] = []
        renewer = cls(clock, lambda: pending.append(defer.Deferred()) or pending[-1], 3.0, lambda: lost.append(1))
        renewer.start()
        pending[-1].callback(None)
        clock.advance(1)          # the second renewal is in flight ...
        renewer.stop()            # ... when the renewer stops
        if not pending[-1].called:
            pending[-1].callback(None)
        clock.advance(10)
        assert bool(lost) == lost_after_stop, cls.__name__


def test_batcher_twin_cuts_a_later_batch_early() -> None:
    for cls, batches in ((batcher.Batcher, [[1, 2]]), (batcher.BuggyBatcher, [[1, 2], [3]])):
        clock = task.Clock()
        b = cls(clock, lambda items: defer.succeed(len(items)), max_size=2, max_delay=1.0)
        b.add(1), b.add(2)
        clock.advance(0.5)
        b.add(3)
        clock.advance(0.6)        # 1.1 s: the forgotten timer of the first batch fired at 1.0 s
        assert b.batches == batches, cls.__name__


def test_backoff_twin_retries_after_a_cancel_during_its_sleep() -> None:
    for cls, attempts in ((backoff.BackoffRetrier, 1), (backoff.BuggyBackoffRetrier, 2)):
        clock = task.Clock()
        r = cls(clock, random.Random(1))
        out = r.call(lambda: defer.fail(ValueError("x")))
        out.addErrback(lambda f: f.trap(defer.CancelledError))
        out.cancel()
        clock.advance(100)
        assert r.attempts_started == attempts, cls.__name__


def test_consumer_pool_twin_stalls_after_as_many_failures_as_workers() -> None:
    for cls, served in ((consumers.ConsumerPool, 3), (consumers.BuggyConsumerPool, 2)):
        def process(x: int) -> int:
            if x < 0:
                raise ValueError(x)
            return x
        pool = cls(process, workers=2)
        pool.start()
        results: list = []
        for x in (-1, -2, 3):
            pool.submit(x).addBoth(results.append)
        assert len(results) == served, cls.__name__
        for r in results:
            if not isinstance(r, int):
                r.trap(ValueError)


def test_consumer_pool_refuses_work_after_stop() -> None:
    """Found by the harness (F6): an item submitted after stop() used to wait for ever."""
    pool = consumers.ConsumerPool(lambda x: x, workers=2)
    pool.start()
    pool.stop()
    failure: list = []
    pool.submit(1).addErrback(failure.append)
    assert failure and failure[0].check(consumers.PoolStopped)


# --- harness findings, pinned ------------------------------------------------------------------


def test_a_timer_left_by_stop_fires_after_stop() -> None:
    """F1's schedule does what it says: the batch's timer, left pending by stop() at 10 ms,
    fires at 100 ms."""
    run = run_schedule(repros.one_shot_leak, repros.ONE_SHOT_LEAK_SCHEDULE)
    kinds = [(e.t_us, e.kind) for e in run.trace.events]
    assert (10_000, "stop") in kinds and (100_000, "timer.fire") in kinds


def test_leaks_calls_catches_a_one_shot_timer_left_by_stop() -> None:
    """F1: stop() at 10 ms completes with no work in flight and the batch's timer (#1) pending."""
    run = run_schedule(repros.one_shot_leak, repros.ONE_SHOT_LEAK_SCHEDULE)
    [violation] = [v for v in check(run) if v.invariant == "leaks.calls"]
    assert violation.message == (
        "stop() completed at 10ms with no work in flight, yet left a DelayedCall of the subject pending: "
        "#1 Batcher._on_timer due at 100ms (set before stop(), it can only fire into a stopped subject)"
    )


def test_without_the_promise_a_timer_left_by_stop_is_judged_after_the_drain_only() -> None:
    """F1's look at stop() is opt-in (``stop_cancels_timers``): without it, a one-shot timer that
    fires harmlessly into the stopped subject (a cache entry's expiry) is no leak."""
    import dataclasses

    assert repros.one_shot_leak.stop_cancels_timers
    target = dataclasses.replace(repros.one_shot_leak, stop_cancels_timers=False, invariants=())
    run = run_schedule(target, repros.ONE_SHOT_LEAK_SCHEDULE)
    assert [v.invariant for v in check(run)] == []


class _ForgetfulStop:
    """Each submit arms a 1 s housekeeping timer; stop() cancels none of them."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def submit(self, job):
        self.clock.callLater(1.0, lambda: None)
        return job()

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("after_ms, judged", [(0, True), (50, False)])
def test_a_timer_left_by_stop_is_judged_only_with_no_work_in_flight(after_ms: int, judged: bool) -> None:
    """In-flight work may still need its timers: with a job running when stop() returns, the look
    at stop() records nothing (the drain lets the work finish); with none, the timer is a leak."""
    from harness import Target

    target = Target(build=_ForgetfulStop, stop_cancels_timers=True)
    schedule = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=after_ms)), Stop(at_ms=10)))
    run = run_schedule(target, schedule)
    assert ("leaks.calls" in [v.invariant for v in check(run)]) is judged


def test_a_call_due_at_the_instant_stop_completes_is_not_judged() -> None:
    """A ``callLater(0)`` still due when stop() lands between the rounds of an instant is the rest
    of that instant's work (Synapse's BatchingQueue schedules one), not a timer left for later."""
    from harness import Target

    class NextTick(_ForgetfulStop):
        def submit(self, job):
            self.clock.callLater(0, lambda: None)
            return job()

    schedule = Schedule(ops=(Submit(at_ms=0, job=0, spec=JobSpec(kind="immediate")), Stop(at_ms=0, after_rounds=0)))
    run = run_schedule(Target(build=NextTick, stop_cancels_timers=True), schedule)
    assert "reactor.pause" in [e.kind for e in run.trace.events]
    assert [v.invariant for v in check(run)] == []


def test_a_timer_left_by_stop_is_judged_when_the_deferred_stop_returned_fires() -> None:
    """The batcher's stop() returns a Deferred that waits for the batch in flight: the look comes
    when it fires (50 ms, nothing in flight then), not when stop() returned (10 ms)."""
    schedule = Schedule(ops=(
        Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=50)),
        Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=0)),
        Submit(at_ms=0, job=2, spec=JobSpec(kind="succeed", after_ms=0)),
        Stop(at_ms=10),
    ))
    run = run_schedule(repros.one_shot_leak, schedule)
    assert [(e.t_us, e.detail.split(",")[0]) for e in run.trace.events if e.kind == "leak.call"] == [
        (50_000, "#1 Batcher._on_timer due at 100ms")]


def test_stop_cancels_timers_must_be_a_bool() -> None:
    from harness import Target, TargetError

    with pytest.raises(TargetError, match="stop_cancels_timers must be True or False, got 'yes'"):
        Target(build=lambda clock: None, stop_cancels_timers="yes")


def test_the_correct_batcher_leaves_no_timer_at_stop() -> None:
    """The same schedule on the correct batcher (its size cut cancels the timer): no leak."""
    run = run_schedule(load_target(f"{ROUND2}:batcher_ok"), repros.ONE_SHOT_LEAK_SCHEDULE)
    assert [v.invariant for v in check(run)] == []
    assert not [e for e in run.trace.events if e.kind == "leak.call"]


def test_a_built_in_catches_the_orphan_timer_without_the_targets_own_invariant(tmp_path) -> None:
    import dataclasses

    target = dataclasses.replace(load_target(f"{ROUND2}:batcher_orphan_timer"), invariants=())
    result = campaign(f"{ROUND2}:batcher_orphan_timer", seed=11, examples=2000, tmp_path=tmp_path, target=target)
    assert [f.record.invariant for f in result.findings] == ["leaks.calls"]


def test_a_straggler_failing_as_the_run_drains_is_not_judged() -> None:
    run = run_schedule(repros.patient_lease, repros.STRAGGLER_AT_THE_END)
    assert repros.loop_end_reported(run)
    assert [v.invariant for v in check(run)] == []


def test_a_straggler_failing_after_the_loop_reported_its_end_is_not_a_dead_loop() -> None:
    run = run_schedule(repros.patient_lease, repros.STRAGGLER_THEN_MORE_RUN)
    assert repros.loop_end_reported(run)
    assert [v.invariant for v in check(run)] == []


def test_trace_names_timers_without_memory_addresses() -> None:
    """F4: automat's callable object answers ``__qualname__`` with a repr, address included."""
    target = load_target(f"{TWISTED}:client_service")
    schedule = Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=10)),))
    run = run_schedule(target, schedule)
    details = [e.detail for e in run.trace.events if e.kind in ("timer.set", "timer.fire")]
    assert details and not any(re.search(r"0x[0-9a-fA-F]", d) for d in details), details
    if any("_Client._reconnect at" in d for d in details):  # automat's repr-named callable (Twisted >= 24)
        assert "_Client._reconnect at 0x?" in details[0]


def test_a_timer_named_by_a_repr_keeps_its_name_without_the_address() -> None:
    """F4, on any Twisted: a callable whose ``__qualname__`` is a repr is named by it, the address masked."""

    class Reconnect:
        def __init__(self) -> None:
            self.__qualname__ = f"<function _Client._reconnect at {hex(id(self))}>"

        def __call__(self) -> None:
            pass

    from harness.run.clock import func_name

    assert func_name(Reconnect()) == "<function _Client._reconnect at 0x?>"


_DIGEST_SCRIPT = """
import sys
from harness import JobSpec, Schedule, Start, load_target, run_schedule
schedule = Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=10)),))
print(run_schedule(load_target(sys.argv[1]), schedule).trace.digest())
"""


def test_a_trace_of_a_callable_object_timer_is_the_same_in_another_process() -> None:
    """F4: a failure file of such a target replays "exactly" in another process: the trace's digest
    does not depend on where the process put the timer's function in memory."""
    digests = {
        subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, f"{TWISTED}:client_service"], check=True,
                       capture_output=True, text=True, cwd=ROOT).stdout.strip()
        for _ in range(2)
    }
    here = run_schedule(load_target(f"{TWISTED}:client_service"),
                        Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=10)),))).trace.digest()
    assert digests == {here}


# --- Synapse's FederationRateLimiter: two findings of the harness ------------------------------


def test_federation_rate_limiter_runs_more_than_concurrent_after_a_refusal_by_hand() -> None:
    """T7 without the harness: seven 100 ms requests at once on a plain task.Clock; the refused
    seventh's exit starts a queued request beside the two running."""
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    from scenarios.thirdparty import synapse_more

    clock = task.Clock()
    limited = synapse_more.RateLimited(clock)
    running, most = [0], [0]

    def job() -> defer.Deferred:
        running[0] += 1
        most[0] = max(most[0], running[0])
        return task.deferLater(clock, 0.1, lambda: running.__setitem__(0, running[0] - 1))

    for caller in [limited.submit(job) for _ in range(7)]:
        caller.addErrback(lambda f: None)
    for _ in range(20):
        clock.advance(0.05)
    assert most[0] == synapse_more.CONCURRENT + 1


def test_federation_rate_limiter_overshoot_is_caught() -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    from scenarios.thirdparty import synapse_more

    run = run_schedule(synapse_more.federation_rate_limiter, synapse_more.OVERSHOOT_SCHEDULE)
    assert [v.invariant for v in check(run)] == ["concurrency.limit"]


def test_federation_rate_limiter_runs_a_request_cancelled_in_its_sleep() -> None:
    pytest.importorskip("synapse", reason="needs the thirdparty extra")
    from scenarios.thirdparty import synapse_more

    run = run_schedule(synapse_more.federation_rate_limiter_cancelled, synapse_more.CANCELLED_SLEEPER_SCHEDULE)
    assert [v.invariant for v in check(run)] == ["cancellation.fires", "cancellation.no_start"]


def test_a_campaign_finds_the_federation_rate_limiter_overshoot(tmp_path) -> None:
    needs_synapse(f"{SYNAPSE}:federation_rate_limiter")
    result = campaign(f"{SYNAPSE}:federation_rate_limiter", seed=11, examples=3000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == ["concurrency.limit"]


def test_the_minimal_overshoot_needs_no_clock_fault(tmp_path) -> None:
    needs_synapse(f"{SYNAPSE}:federation_rate_limiter")
    result = campaign(f"{SYNAPSE}:federation_rate_limiter", seed=2, examples=3000, tmp_path=tmp_path)
    [finding] = result.findings
    clock = finding.record.schedule.clock
    assert (clock.step_ms, clock.jitter_ms) == (0, 0), clock


def test_the_shrinker_trades_a_late_clock_for_jobs_that_take_that_long() -> None:
    """F13: the candidate of a schedule of 0 ms jobs on a clock firing up to 50 ms late is a punctual
    clock with 50 ms jobs (jobs that already take time, and ``immediate`` ones, are left alone)."""
    from harness import ClockPolicy
    from harness.search.shrink import _tame_clock

    schedule = Schedule(
        ops=(
            Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=0)),
            Submit(at_ms=0, job=1, spec=JobSpec(kind="fail", after_ms=0), then=(JobSpec(kind="succeed", after_ms=0),)),
            Submit(at_ms=0, job=2, spec=JobSpec(kind="succeed", after_ms=30)),
            Submit(at_ms=0, job=3, spec=JobSpec(kind="immediate")),
        ),
        clock=ClockPolicy(step_ms=20, jitter_ms=30),
    )
    [traded] = [c for c in _tame_clock(schedule) if c.clock.step_ms == c.clock.jitter_ms == 0]
    assert [[s.after_ms for s in op.specs] for op in traded.ops] == [[50], [50, 50], [30], [0]]
