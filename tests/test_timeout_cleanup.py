"""``Target(timeout_cleanup_ms=C)``: a timeout that cancels the work at T and fails the caller with
``timeout_error`` once a bounded cleanup is over (review 10, finding 2: a saga compensating its completed
steps). ``time.timeout`` then holds the caller to C after the cancel, plus how late the cleanup's timers
fired one after another: an answer within C passes, one after C, never, or with another error is caught;
bad combinations are refused in one line. And finding 1: ``retries=0`` no longer lifts "the caller fails
at T" (there is no later attempt)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from twisted.internet import defer

from harness import Cancel, ClockPolicy, JobSpec, Schedule, Submit, Target, TargetError, check, load_target, run_schedule

from review_campaigns import campaign

T = 300
HOP_MS = 20


class Timeout(Exception):
    pass


class CleanupPool:
    """Each job's work is cancelled at T by the pool's own timer; the pool then cleans up through ``hops``
    timers of ``HOP_MS`` in a row (a compensation retried after a backoff), and only then fails the caller
    with ``error`` (or never, with ``answer=False``). A caller's cancel fails it at once."""

    def __init__(self, clock, hops=2, error=Timeout, answer=True):
        self.clock, self.hops, self.error, self.answer = clock, hops, error, answer

    def submit(self, job):
        timed_out = []
        work = defer.maybeDeferred(job)
        caller: defer.Deferred[object] = defer.Deferred(lambda _d: work.cancel())

        def expire():
            timed_out.append(True)
            work.cancel()

        timer = self.clock.callLater(T / 1000, expire)

        def cleanup(left):
            if left:
                self.clock.callLater(HOP_MS / 1000, cleanup, left - 1)
            elif self.answer and not caller.called:
                caller.errback(self.error("timed out"))

        def ok(value):
            if timer.active():
                timer.cancel()
            if not caller.called:
                caller.callback(value)

        def bad(failure):
            if timer.active():
                timer.cancel()
            if timed_out:
                cleanup(self.hops)
            elif not caller.called:
                caller.errback(failure)

        work.addCallbacks(ok, bad)
        return caller


def target(cleanup_ms=2 * HOP_MS, **pool) -> Target:
    return Target(build=lambda clock: CleanupPool(clock, **pool), timeout_ms=T, timeout_error=Timeout,
                  timeout_cleanup_ms=cleanup_ms)


def verdicts(t: Target, *ops, clock: ClockPolicy | None = None) -> list[tuple[str, str]]:
    schedule = Schedule(ops=ops) if clock is None else Schedule(ops=ops, clock=clock)
    return [(v.invariant, v.message) for v in check(run_schedule(t, schedule))]


HANG = Submit(at_ms=0, job=0, spec=JobSpec(kind="hang"))
QUICK = Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=100))


def test_answer_within_the_cleanup_passes():
    assert verdicts(target(), HANG, QUICK) == []


def test_answer_after_a_late_clocks_chain_of_cleanup_timers_passes():
    """Each cleanup timer may fire as late as the clock may be, one after the other: the bound grows by how late
    they fired along the chain (``chain_lateness``), not by one lateness only."""
    for seed in range(8):
        clock = ClockPolicy(step_ms=7, jitter_ms=5, seed=seed)
        assert verdicts(target(hops=4, cleanup_ms=4 * HOP_MS), HANG, clock=clock) == [], seed


def test_a_cancel_during_the_cleanup_excuses_it_even_past_the_bound_on_a_late_clock():
    """The caller cancels 1 ms after the bound while the cleanup's timer, due before, waits for a reactor waking
    every 100 ms: it was owed then, not missed (a saga_ok false alarm found by a campaign)."""
    cancel = Cancel(at_ms=T + 2 * HOP_MS + 1, job=0)
    assert verdicts(target(), HANG, cancel, clock=ClockPolicy(step_ms=100)) == []
    assert verdicts(target(), HANG, cancel) == []


def test_undeclared_cleanup_is_the_old_timeout_alarm():
    t = dataclasses.replace(target(), timeout_cleanup_ms=None)
    assert verdicts(t, HANG) == [("time.timeout", "job 0 timed out at 300ms but its Deferred did not fail then")]


def test_answer_after_the_cleanup_bound_is_caught():
    [(name, message)] = verdicts(target(cleanup_ms=2 * HOP_MS - 1), HANG)
    assert name == "time.timeout"
    assert message == ("job 0 timed out at 300ms but its Deferred fired only at 340ms, 40ms later; timeout_cleanup_ms=39 "
                       "promises it fails with Timeout within 39ms of the timeout")


def test_answer_never_given_is_caught():
    found = dict(verdicts(target(answer=False), HANG))
    assert "its Deferred never fired; timeout_cleanup_ms=40 promises" in found["time.timeout"]


def test_answer_with_another_error_is_caught():
    [(name, message)] = verdicts(target(error=RuntimeError), HANG)
    assert name == "time.timeout"
    assert "its Deferred fired with RuntimeError: timed out, not Timeout (timeout_cleanup_ms=40 promises" in message


def test_correct_pool_passes_a_campaign_with_every_fault(tmp_path):
    result = campaign("cleanup", seed=3, examples=60, tmp_path=tmp_path, target=target(), all_faults=True)
    assert result.error is None and result.findings == [], [f.violation.message for f in result.findings]


def test_late_pool_is_caught_by_a_campaign(tmp_path):
    result = campaign("cleanup-late", seed=3, examples=200, tmp_path=tmp_path, target=target(hops=3))
    assert [f.violation.invariant for f in result.findings] == ["time.timeout"]


@pytest.mark.parametrize("fields, problem", [
    ({}, "declare timeout_ms too"),
    ({"timeout_ms": 5, "timeout_from": "wait"}, 'timeout_from="wait" times the caller'),
    ({"timeout_ms": 5, "timeout_from": "glue"}, 'timeout_from="glue" times the caller'),
    ({"timeout_ms": 5, "timeout_detaches": True}, "timeout_detaches=True answers the caller at T"),
    ({"timeout_ms": 5, "retries": 1}, "retries=1 already lets the caller be answered"),
    ({"timeout_ms": 5, "retries": math.inf, "backoff_ms": (1, 2)}, "retries=inf already lets"),
    ({"timeout_ms": 5, "hedge_ms": 2}, "hedge_ms=2"),
    ({"timeout_ms": 5, "fanout": 2, "quorum": 1}, "fanout=2"),
    ({"timeout_ms": 5, "shared": True, "keys": 2}, "shared=True"),
    ({"kind": "periodic", "interval_ms": 10, "timeout_ms": 5}, "a periodic Target has no caller"),
])
def test_bad_declarations_are_refused_in_one_line(fields, problem):
    with pytest.raises(TargetError) as refused:
        Target(build=CleanupPool, timeout_cleanup_ms=10, **fields)
    message = str(refused.value)
    assert message.startswith("Target timeout_cleanup_ms promises") and problem in message and "\n" not in message


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "10"])
def test_cleanup_must_be_a_positive_integer(value):
    with pytest.raises(TargetError, match="Target timeout_cleanup_ms must be a positive integer or None"):
        Target(build=CleanupPool, timeout_ms=5, timeout_cleanup_ms=value)


def test_accepted_beside_retries_0_and_a_whole_request_deadline_with_retries():
    Target(build=CleanupPool, timeout_ms=5, retries=0, timeout_cleanup_ms=10)
    Target(build=CleanupPool, timeout_ms=5, timeout_from="submit", retries=2, timeout_cleanup_ms=10)


def test_finding1_retries_0_holds_the_caller_to_t():
    """Review 10, finding 1: a pool that cancels the work at 300 ms and answers 2 s later is caught with
    ``retries=0`` as without it; with ``timeout_cleanup_ms`` it is caught too (2 s is past any bound declared)."""
    probes = "scenarios.review.round10.probes"
    for name in ("late_answer", "late_answer_retries0"):
        [(invariant, message)] = verdicts(load_target(f"{probes}:{name}"), HANG)
        assert (invariant, message) == ("time.timeout", "job 0 timed out at 300ms but its Deferred did not fail then")
    bounded = dataclasses.replace(load_target(f"{probes}:late_answer_retries0"), timeout_cleanup_ms=1000)
    [(invariant, message)] = verdicts(bounded, HANG)
    assert invariant == "time.timeout" and "fired only at 2300ms, 2000ms later" in message


def test_saga_answer_after_its_declared_cleanup_is_caught():
    """The round-10 saga answers 50 ms after its step's timeout (one backoff of its compensation): declared 50,
    clean; declared 49, caught."""
    saga = load_target("scenarios.review.round10.probes:saga_timeout_after_compensation")
    assert verdicts(saga, HANG) == []
    [(invariant, message)] = verdicts(dataclasses.replace(saga, timeout_cleanup_ms=49), HANG)
    assert invariant == "time.timeout" and "fired only at 550ms, 50ms later; timeout_cleanup_ms=49" in message
