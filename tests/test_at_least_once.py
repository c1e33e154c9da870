"""At-least-once declarations from the fifth outside review: ``lease_ms`` (finding 6: a redelivery
once a lease ran out, a late success not final), ``cancellable="detach_queued"`` (finding 3: a cancel
that only stops the caller waiting, queued work too) and ``Outcome.wrapper`` (finding 7: which
declared wrapper a caller received). Each both ways: what the declaration lifts passes, what it
keeps is still caught by the right invariant; the zoo is ``scenarios.at_least_once``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from twisted.internet import defer

from harness import (
    CampaignConfig,
    Cancel,
    JobSpec,
    Schedule,
    Stop,
    Submit,
    Target,
    TargetError,
    check,
    load_target,
    run_campaign,
    run_schedule,
)
from harness.search.exercised import INVARIANT_EXERCISE
from scenarios import CATALOG

ZOO = "scenarios.at_least_once"


def ok(after_ms: int = 0) -> JobSpec:
    return JobSpec(kind="succeed", after_ms=after_ms)


def names(target: Target | str, *ops) -> list[str]:
    if isinstance(target, str):
        target = load_target(target)
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


# -- a hand-made leased subject: each job is called; a call not done within LEASE is called again --

LEASE = 100


class Leaser:
    """Calls each job; when a call has not succeeded within ``lease`` seconds it calls it again (up
    to ``tries`` calls), and answers with the first success that came within its call's lease (or of
    the last call, which is not leased).
    ``early`` redelivers that much before the lease ran out; ``after_success`` calls a job once
    more after a success within its lease (an ack lost)."""

    def __init__(self, clock, lease: float = LEASE / 1000, tries: int = 3, early: float = 0.0,
                 after_success: bool = False) -> None:
        self.clock, self.lease, self.tries, self.early, self.after_success = clock, lease, tries, early, after_success

    def submit(self, job):
        answer = defer.Deferred()
        state = {"n": 0, "timers": []}

        def call() -> None:
            state["n"] += 1
            n, started = state["n"], self.clock.seconds()
            d = defer.maybeDeferred(job)
            timer = self.clock.callLater(self.lease - self.early, expired) if n < self.tries else None
            if timer is not None:
                state["timers"].append(timer)

            def done(value):
                if (n == self.tries or self.clock.seconds() - started < self.lease) and not answer.called:
                    for t in state["timers"]:
                        if t.active():
                            t.cancel()
                    answer.callback(value)
                    if self.after_success and n < self.tries:
                        self.clock.callLater(0.001, call)

            d.addCallbacks(done, lambda f: None)

        def expired() -> None:
            if not answer.called:
                call()

        call()
        return answer


def leaser(**kwargs) -> Target:
    return Target(build=lambda clock: Leaser(clock, **kwargs), lease_ms=LEASE, retries=2, cancellable=False,
                  menu={"cancels": False})


def test_a_redelivery_once_the_lease_ran_out_and_a_late_success_pass():
    # The first call succeeds at 150 ms, after its 100 ms lease: it was called again at 100 ms.
    assert names(leaser(), Submit(0, 0, ok(150)), Stop(1000)) == []
    undeclared = Target(build=lambda clock: Leaser(clock), retries=2, cancellable=False, menu={"cancels": False})
    assert "time.retries" in names(undeclared, Submit(0, 0, ok(150)), Stop(1000))


def test_a_redelivery_before_the_lease_ran_out_is_time_retries():
    run = run_schedule(leaser(early=0.03), Schedule(ops=(Submit(0, 0, ok(150)), Stop(1000))))
    [violation] = [v for v in check(run) if v.invariant == "time.retries"]
    assert violation.message == (
        "job 0 attempt 1 started at 70ms while attempt 0 was still running, before its 100ms lease ran out (at 100ms)"
    )


def test_the_lease_is_judged_with_retries_undeclared_too():
    target = Target(build=lambda clock: Leaser(clock, early=0.03), lease_ms=LEASE, cancellable=False,
                    menu={"cancels": False})
    assert names(target, Submit(0, 0, ok(150)), Stop(1000)) == ["time.retries"]


def test_a_call_after_a_success_within_the_lease_is_time_retries():
    run = run_schedule(leaser(after_success=True), Schedule(ops=(Submit(0, 0, ok(10)), Stop(1000))))
    [violation] = [v for v in check(run) if v.invariant == "time.retries"]
    assert violation.message == (
        "job 0 was retried (attempt 1) although attempt 0 succeeded within its 100ms lease; a success within the "
        "lease is final"
    )


def test_a_late_success_does_not_excuse_a_timely_one_swallowed():
    """errors.propagate forgives a failure after a late success, never after a success within the lease."""

    class Swallower(Leaser):
        def submit(self, job):
            d = defer.maybeDeferred(job)
            answer = defer.Deferred()
            d.addBoth(lambda _: self.clock.callLater(0, answer.errback, RuntimeError("gave up")))
            return answer

    target = Target(build=lambda clock: Swallower(clock), lease_ms=LEASE, cancellable=False, menu={"cancels": False})
    assert names(target, Submit(0, 0, ok(150))) == []  # a success after its lease: the subject may refuse it
    assert names(target, Submit(0, 0, ok(50))) == ["errors.propagate"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease_ms": 0}, "Target lease_ms must be a positive integer or None, got 0"),
        ({"lease_ms": 1.5}, "Target lease_ms must be a positive integer or None, got 1.5"),
        ({"lease_ms": True}, "Target lease_ms must be a positive integer or None, got True"),
        ({"lease_ms": 100, "kind": "periodic", "interval_ms": 10}, "Target lease_ms is a promise about the attempts of submitted jobs"),
        ({"lease_ms": 100, "hedge_ms": 50}, "Target hedge_ms and lease_ms are two reasons to call a job again"),
    ],
)
def test_lease_ms_is_checked(options, message):
    with pytest.raises(TargetError, match=message) as raised:
        Target(build=object, **options)
    assert "\n" not in str(raised.value)


def test_lease_final():
    target = Target(build=object, lease_ms=300)
    assert target.lease_final(0, 299_999) and not target.lease_final(0, 300_000)
    assert Target(build=object).lease_final(0, 10**12)


# -- detach_queued --

def test_detach_queued_lets_queued_work_start_after_the_cancel():
    # The review's write-behind: a write cancelled at once is still flushed at 100 ms.
    ops = (Submit(0, 0, ok()), Cancel(0, 0))
    assert names(f"{ZOO}:detached_writes", *ops) == []
    detach = Target(build=load_target(f"{ZOO}:detached_writes").build, keys=2, shared=True, cancellable="detach")
    assert names(detach, *ops) == ["cancellation.no_start"]


def test_work_dropped_on_cancel_is_cancellation_detaches():
    run = run_schedule(load_target(f"{ZOO}:detached_writes_dropped"), Schedule(ops=(Submit(0, 0, ok()), Cancel(0, 0))))
    [violation] = check(run)
    assert violation.invariant == "cancellation.detaches"
    assert violation.message == (
        "job 0's caller was cancelled at 0ms while the job waited, and no execution of its key 0 started after that "
        'by the time the run drained at 0ms; the target declares cancellable="detach_queued": a cancel only stops '
        "the caller waiting, the work still runs"
    )


def test_a_stop_excuses_queued_work_never_started():
    # The queue's two workers busy: job 2 waits; its caller cancels, then stop() (the subject may drop it then).
    ops = (Submit(0, 0, ok(50)), Submit(0, 1, ok(50)), Submit(0, 2, ok()), Cancel(10, 2))
    assert names(f"{ZOO}:lease_queue_unsends", *ops) == ["cancellation.detaches"]
    assert names(f"{ZOO}:lease_queue_unsends", *ops, Stop(20)) == []
    assert names(f"{ZOO}:lease_queue", *ops) == []


def test_detach_queued_still_judges_running_work():
    class Canceller:
        def submit(self, job):
            d = defer.maybeDeferred(job)
            return defer.Deferred(lambda _: d.cancel())

    target = Target(build=lambda clock: Canceller(), cancellable="detach_queued")
    run = run_schedule(target, Schedule(ops=(Submit(0, 0, ok(100)), Cancel(10, 0))))
    [violation] = [v for v in check(run) if v.invariant == "cancellation.detaches"]
    assert 'cancellable="detach_queued": running work must run on' in violation.message


def test_detach_queued_is_a_mode_per_job_too():
    target = Target(build=object, cancellable=lambda key, priority: "detach_queued" if key else True, keys=2)
    assert target.cancel_modes == {True, "detach_queued"} and target.detaches is False
    assert Target(build=object, cancellable="detach_queued").detaches
    # A cancel while the job waited exercises cancellation.detaches only under detach_queued.
    waited = SimpleNamespace(cancel_running=False, cancel_waiting=True)
    rule = INVARIANT_EXERCISE["cancellation.detaches"].rule
    assert rule(waited, target) and not rule(waited, Target(build=object, cancellable="detach"))


def test_the_review_targets_declare_it():
    """Finding 3's targets (the review's write-behind and queue) now pass the schedules it reported."""
    assert names("scenarios.review.round5.targets:wb_detach", Submit(0, 0, ok()), Cancel(0, 0)) == []
    assert names("scenarios.review.round5.targets:queue_detach", Submit(0, 0, JobSpec(kind="hang")), Cancel(0, 0),
                 Stop(500)) == []


# -- Outcome.wrapper --

def test_outcome_wrapper_names_the_wrapper_and_only_it():
    run = run_schedule(load_target("scenarios.review.round5.targets:quorum_ok"),
                       Schedule(ops=(Submit(0, 0, JobSpec(kind="fail", after_ms=0)),)))
    got = run.view.jobs[0].received
    assert (got.error, got.wrapper) == ("InjectedError", "QuorumFailed")
    bare = run_schedule(Target(build=lambda clock: _Plain()), Schedule(ops=(Submit(0, 0, JobSpec(kind="fail", after_ms=0)),)))
    assert bare.view.jobs[0].received.wrapper is None and bare.view.jobs[0].received.error == "InjectedError"


class _Plain:
    def submit(self, job):
        return defer.maybeDeferred(job)


# -- the zoo, both ways --

@pytest.mark.parametrize("name, expect", [
    ("lease_queue", None), ("detached_writes", None),
    ("lease_queue_early_expiry", "time.retries"), ("lease_queue_ack_keeps_timer", "time.retries"),
    ("lease_queue_stale_ack", "user.queue_answer_within_visibility"), ("lease_queue_unsends", "cancellation.detaches"), ("detached_writes_dropped", "cancellation.detaches"),
])
def test_the_zoo(name, expect, tmp_path):
    config = CampaignConfig(max_examples=300 if expect is None else 1500, seed=1, report_dir=str(tmp_path),
                            regressions=None, database=None, max_failures=1)
    result = run_campaign(load_target(f"{ZOO}:{name}"), f"{ZOO}:{name}", config)
    assert result.error is None
    if expect is None:
        assert result.findings == [], [f.violation.message for f in result.findings]
        return
    [finding] = result.findings
    [scenario] = [s for s in CATALOG if s.target == f"{ZOO}:{name}"]
    assert scenario.expect == expect and scenario.caught_by(finding.violation.invariant), finding.violation.message
