"""The outside-user review (docs/reviews/outside-user.md): components written blind, targets written from the docs.

Both ways for every target: each correct component stays clean over a bounded campaign (a longer
one in the slow tier), and each planted bug is caught with the invariant named in ``BUGGY``.
The harness findings of the review are pinned here too: a gap of the harness is an
``xfail(strict=True)`` test, which fails (and asks to be promoted to a plain test) once fixed
(F1, F2 and F4 are fixed: their tests are plain ones now).
"""

from __future__ import annotations

import dataclasses

import pytest

from harness import ClockPolicy, check, load_target, run_schedule
from review_campaigns import campaign, needs_synapse, spec_id
from scenarios.review import repros

REVIEW = "scenarios.review.targets"
SYNAPSE = "scenarios.thirdparty.synapse_prims"

#: Correct components: no invariant may break.
CORRECT = (
    f"{REVIEW}:token_bucket_ok",
    f"{REVIEW}:debouncer_ok",
    f"{REVIEW}:pool_ok",
    f"{REVIEW}:retrying_ok",
)

#: Planted bugs and the invariant that must catch each.
BUGGY = {
    f"{REVIEW}:token_bucket_off_by_one": "time.early",
    f"{REVIEW}:token_bucket_double_tick": "time.early",
    f"{REVIEW}:token_bucket_wall_clock": "time.early",
    f"{REVIEW}:debouncer_sync_raise": "errors.escaped",
    f"{REVIEW}:debouncer_leaky_error": "errors.unhandled",
    # The leaked resource shrinks the pool: a later waiter times out with a slot free (timeout_from="wait").
    f"{REVIEW}:pool_timeout_leak": "time.timeout",
    f"{REVIEW}:pool_counting": "time.timeout",
    f"{REVIEW}:retrying_off_by_one": "time.retries",
    f"{REVIEW}:retrying_forgetful_cancel": "completion.once",
    f"{REVIEW}:retrying_stale_error": "errors.own_result",
}

#: The third-party targets the review added, and the misusing glue each one catches.
TWISTED = "scenarios.thirdparty.twisted_prims"
THIRDPARTY_CORRECT = (f"{SYNAPSE}:read_write_lock", f"{SYNAPSE}:awakenable_sleeper", f"{TWISTED}:gather_results")
THIRDPARTY_BUGGY = {
    f"{TWISTED}:gather_results_unconsumed": "errors.unhandled",
    f"{SYNAPSE}:read_write_lock_per_call": "user.writers_alone",
    f"{SYNAPSE}:awakenable_sleeper_seconds": "user.sleeps_until_woken_or_timeout",
}


# --- both ways, fast tier ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", CORRECT + THIRDPARTY_CORRECT, ids=spec_id)
def test_correct_component_stays_clean(spec: str, tmp_path) -> None:
    needs_synapse(spec)
    result = campaign(spec, seed=11, examples=300, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 300


@pytest.mark.parametrize("spec", sorted({**BUGGY, **THIRDPARTY_BUGGY}), ids=spec_id)
def test_planted_bug_is_caught_with_the_right_invariant(spec: str, tmp_path) -> None:
    needs_synapse(spec)
    result = campaign(spec, seed=11, examples=3000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [{**BUGGY, **THIRDPARTY_BUGGY}[spec]]


# --- long campaigns, slow tier -----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("spec", CORRECT + THIRDPARTY_CORRECT, ids=spec_id)
def test_correct_component_stays_clean_over_a_longcampaign(spec: str, seed: int, tmp_path) -> None:
    needs_synapse(spec)
    result = campaign(spec, seed=seed, examples=2000, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


# --- findings about the components themselves ---------------------------------------------------


def test_a_shared_target_defaults_to_one_execution_per_key(tmp_path) -> None:
    """The debouncer opens a new window while its key's work runs, so two executions of one key
    overlap: ``shared`` alone promises they do not (key_limit 1), and the harness says so."""
    target = dataclasses.replace(load_target(f"{REVIEW}:debouncer_ok"), key_limit=None)
    result = campaign("review:debouncer_default_key_limit", seed=1, examples=2000, tmp_path=tmp_path, target=target)
    assert [f.record.invariant for f in result.findings] == ["concurrency.key_limit"]


# --- harness findings, pinned ------------------------------------------------------------------


def test_a_caller_joined_to_a_hanging_shared_execution_is_not_stuck() -> None:
    """docs/reviews/outside-user.md F2, fixed: with shared, an execution of the key that never ends excuses its callers
    whatever key_limit says (tests/test_shared_overlap.py has both ways)."""
    run = run_schedule(repros.shared_overlap, repros.SHARED_OVERLAP_SCHEDULE)
    assert [v.invariant for v in check(run)] == []


def test_queue_jumping_bucket_breaks_fifo_when_a_call_comes_between_two_rounds() -> None:
    """The planted queue jump is a real bug: driven by hand in a real reactor's order (the
    refill tick, then I/O, then the round the tick scheduled), job 4 takes job 3's token."""
    from twisted.internet.task import Clock

    from scenarios.review.token_bucket import QueueJumpingTokenBucket, TokenBucket

    for cls, expect in ((QueueJumpingTokenBucket, [4, 3]), (TokenBucket, [3, 4])):
        clock = Clock()
        bucket = cls(clock, rate=10, capacity=3)
        granted: list[int] = []
        for i in range(4):
            bucket.acquire().addCallback(lambda _, i=i: granted.append(i))
        tick = bucket._tick
        clock.rightNow = tick.getTime()
        tick.func()                       # runUntilCurrent: the refill tick runs ...
        bucket.acquire().addCallback(lambda _: granted.append(4))  # ... I/O: a new caller ...
        clock.advance(0)                  # ... the next runUntilCurrent: the hand-over
        clock.advance(0.1)
        assert granted[3:] == expect, cls.__name__


@pytest.mark.parametrize("tie_break", ["fifo", "lifo", "shuffle"])
@pytest.mark.parametrize("step_ms", [0, 10, 100])
def test_an_operation_lands_between_two_rounds_of_an_instant_only_when_the_schedule_says_so(tie_break: str, step_ms: int) -> None:
    """docs/reviews/outside-user.md F1, fixed: by default job 4's submit runs after every round due at 100 ms, under every
    tie-break and stride; with ``after_rounds=1`` it comes between the tick and the hand-over, as
    I/O does on a real reactor, and the queue jump is caught (tests/test_rounds.py has the rest)."""
    target = load_target(f"{REVIEW}:token_bucket_queue_jump")
    schedule = dataclasses.replace(repros.QUEUE_JUMP_SCHEDULE, clock=ClockPolicy(tie_break=tie_break, seed=3, step_ms=step_ms))
    assert check(run_schedule(target, schedule)) == []
    between = dataclasses.replace(schedule, ops=schedule.ops[:-1] + (dataclasses.replace(schedule.ops[-1], after_rounds=1),))
    assert [v.invariant for v in check(run_schedule(target, between))] == ["concurrency.fifo"]


def test_a_campaign_finds_the_queue_jump(tmp_path) -> None:
    result = campaign(f"{REVIEW}:token_bucket_queue_jump", seed=11, examples=1500, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == ["concurrency.fifo"]


def test_a_job_whose_canceller_raised_is_recorded_as_never_ending_and_keeps_what_it_holds() -> None:
    """docs/reviews/outside-user.md F4, fixed: the attempt reads as cancelled at the cancel (end_us set) with
    ``canceller_raised``, and ``running_at`` keeps it: an invariant that counts the attempts running
    at the end stays clean; one that trusts end_us alone still blames the pool."""
    held: list[int] = []

    def naive(run) -> None:
        held.append(run.subject.pool.in_use)
        running = [a for a in run.view.attempts() if a.end_us is None]
        assert run.subject.pool.in_use <= len(running), "resource held by a job that ended"

    def holders(run) -> None:
        end = run.trace.events[-1].t_us
        assert run.subject.pool.in_use <= len(run.view.running_at(end)), "resource held by a job that ended"

    target = dataclasses.replace(load_target(f"{REVIEW}:pool_ok"), invariants=(naive, holders))
    run = run_schedule(target, repros.HOSTILE_HOLDER_SCHEDULE)
    [attempt] = run.view.attempts()
    assert (attempt.outcome, attempt.end_us, attempt.canceller_raised) == ("cancelled", 10_000, True)
    assert run.view.running_at(20_000) == [attempt]
    assert held == [1]
    assert [v.invariant for v in check(run)] == ["user.naive"]
    # The review's own invariant reads the schedule's hostile jobs and stays clean.
    assert check(run_schedule(load_target(f"{REVIEW}:pool_ok"), repros.HOSTILE_HOLDER_SCHEDULE)) == []


def test_debouncer_shares_one_execution_and_its_error_on_the_harness_clock(harness_clock) -> None:
    """Hand-driven, on the plugin's fault clock: three callers of one window, one execution,
    every caller the same error, none left unhandled."""
    from scenarios.review.debouncer import Debouncer

    runs: list[str] = []

    def work(key: str) -> None:
        runs.append(key)
        raise ValueError(f"no {key}")

    debouncer = Debouncer(harness_clock, 0.05, work)
    got: list[str] = []
    for _ in range(3):
        debouncer.call("k").addErrback(lambda f: got.append(f.getErrorMessage()))
    harness_clock.advance(0.05)
    assert runs == ["k"] and got == ["no k"] * 3
    assert debouncer.pending() == 0 and harness_clock.getDelayedCalls() == []


def test_the_escape_not_the_cancel_is_blamed() -> None:
    """docs/reviews/outside-user.md F13: job 1 was stranded by the exception that escaped at 50 ms, before job 0's
    cancel. Taking the cancelled job out also took its raise away, so the cancel was blamed
    (cancellation.releases, first in report order); the diagnosis now sees that healing the
    cancelled job's raise alone, its cancel kept, frees job 1: a failure stranded it."""
    run = run_schedule(load_target(f"{REVIEW}:debouncer_sync_raise"), repros.CANCEL_BLAMED_SCHEDULE)
    kinds = [e.kind for e in run.trace.events]
    assert kinds.index("reactor.error") < kinds.index("cancel")
    assert [v.invariant for v in check(run)] == ["errors.escaped", "errors.poison"]
