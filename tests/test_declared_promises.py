"""Promises the second outside-user review could not declare (docs/reviews/outside-user-2.md, F5 to F7),
each shown both ways: a correct subject clean over a campaign (a bounded one here, a long one in the slow
tier), and its buggy twin caught with the invariant named.

- F7, ``Target(backoff_after_success="first_failure")``: a backoff loop that counts a success's end as the
  first failure (Twisted's ``ClientService`` counts the lost connection), so ``client_service`` declares
  ``retryPolicy``'s exact promise;
- F6, ``work.report_end(reason)``: a periodic loop that ends on purpose says so through the work it was
  given (a ``loop.end`` event): ``time.loop_died`` accepts it, ``time.after_end`` holds the loop to it;
- F5, ``Target(rejects_only_while=...)``: when a refusal is legitimate, judged by ``errors.rejects`` (a
  breaker stuck open).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import pytest
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from harness import (
    EventKind,
    JobRecord,
    JobSpec,
    RunView,
    Schedule,
    Start,
    Stop,
    Submit,
    Target,
    TargetError,
    check,
    load_target,
    run_schedule,
)
from review_campaigns import campaign, spec_id
from scenarios.backoff_loop import ReconnectingClient, delay_ms
from scenarios.review.round2 import breaker, targets
from scenarios.thirdparty import twisted_more

ROUND2 = "scenarios.review.round2.targets"
TWISTED = "scenarios.thirdparty.twisted_more"

#: The correct subjects declaring the new promises, and the twins each must catch (with the invariant).
CORRECT = (f"{TWISTED}:client_service", f"{ROUND2}:lease_reported", f"{ROUND2}:breaker_ok")
EXPECTED = {
    f"{TWISTED}:client_service_policy_off_by_one": "time.backoff",
    f"{TWISTED}:client_service_strict": "time.backoff",
    f"{ROUND2}:lease_lost_silently": "time.loop_died",
    f"{ROUND2}:lease_reports_and_renews_on": "time.after_end",
    f"{ROUND2}:breaker_stuck_open": "errors.rejects",
}


def invariants_of(target: Target, schedule: Schedule) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, schedule))]


# --- both ways, over campaigns ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_a_correct_subject_declaring_the_new_promise_stays_clean(spec: str, tmp_path: Any) -> None:
    result = campaign(spec, seed=7, examples=400, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []
    assert result.examples == 400


@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_the_buggy_twin_is_caught_with_the_invariant_named(spec: str, tmp_path: Any) -> None:
    result = campaign(spec, seed=7, examples=3000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [EXPECTED[spec]]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("spec", CORRECT, ids=spec_id)
def test_a_correct_subject_declaring_the_new_promise_stays_clean_over_a_long_campaign(spec: str, seed: int, tmp_path: Any) -> None:
    result = campaign(spec, seed=seed, examples=2500, tmp_path=tmp_path)
    assert [f.record.message for f in result.findings] == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("spec", sorted(EXPECTED), ids=spec_id)
def test_the_buggy_twin_is_caught_in_every_seed(spec: str, seed: int, tmp_path: Any) -> None:
    result = campaign(spec, seed=seed, examples=5000, tmp_path=tmp_path)
    assert [f.record.invariant for f in result.findings] == [EXPECTED[spec]]


# --- F7: backoff_after_success ----------------------------------------------------------------------


def _exact(retry: int) -> tuple[float, float]:
    return (delay_ms(retry), delay_ms(retry))


class CountingClient(ReconnectingClient):
    """``scenarios.backoff_loop``'s reconnecting client, counting its failures in a row as ``ClientService``
    does: a success's end counts as failure 1 (``count_success``), or resets the count to 0 (as there)."""

    def __init__(self, clock: IReactorTime, count_success: bool = True) -> None:
        super().__init__(clock)
        self.count_success = count_success

    def _ended(self, _: Any) -> None:
        self.failures = 1 if self.count_success else 0
        self._later(delay_ms(1))


#: Fail, succeed, then fail three times: before the success the first failure is retry 1 (100 ms);
#: after it, counting the success's end, the failures are retries 2, 3 and 4 (200, 400, 800 ms).
FAIL_SUCCEED_FAIL = Schedule(ops=(
    Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=0),
          then=(JobSpec(kind="succeed", after_ms=0), JobSpec(kind="fail", after_ms=0))),
    Stop(at_ms=3000),
))


def test_first_failure_counts_a_successs_end_as_the_first_failure() -> None:
    counting = Target(build=CountingClient, kind="periodic", backoff_ms=_exact, backoff_after_success="first_failure")
    run = run_schedule(counting, FAIL_SUCCEED_FAIL)
    starts = [e.t_us // 1000 for e in run.trace.events if e.kind == EventKind.JOB_START]
    assert starts[:5] == [0, 100, 200, 400, 800]  # fail; 100 later succeed; 100 later fail; 200; 400
    assert check(run) == []


def test_the_same_client_under_the_default_count_is_caught_and_the_message_says_which_count() -> None:
    reset = Target(build=CountingClient, kind="periodic", backoff_ms=_exact)
    violations = check(run_schedule(reset, FAIL_SUCCEED_FAIL))
    assert [v.invariant for v in violations] == ["time.backoff"]
    assert "after call 2 failed (retry 1); the declared backoff is 100ms to 100ms" in violations[0].message


def test_a_client_that_resets_its_count_breaks_the_first_failure_promise_by_waiting_too_little() -> None:
    resetting = Target(build=lambda clock: CountingClient(clock, count_success=False), kind="periodic",
                       backoff_ms=_exact, backoff_after_success="first_failure")
    violations = check(run_schedule(resetting, FAIL_SUCCEED_FAIL))
    assert [v.invariant for v in violations] == ["time.early"]
    assert ("after call 2 failed (retry 2 counting the last success's end as the first failure); the declared "
            "wait is at least 200ms") in violations[0].message


def test_a_wait_after_the_success_itself_is_backoff_1_in_both_counts() -> None:
    """The option changes only the failures after a success: the success's own wait is ``backoff_ms(1)``
    from its end (without ``interval_ms``), as ever; and before any success the count is as ever."""
    counting = Target(build=CountingClient, kind="periodic", backoff_ms=_exact, backoff_after_success="first_failure")
    schedule = Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=0)), Stop(at_ms=1000)))
    resetting = dataclasses.replace(counting, build=lambda clock: CountingClient(clock, count_success=False))
    assert invariants_of(counting, schedule) == [] and invariants_of(resetting, schedule) == []


def test_client_service_declares_retry_policys_exact_promise() -> None:
    target = load_target(f"{TWISTED}:client_service")
    assert target.backoff_after_success == "first_failure" and target.backoff_restart == 1
    assert target.backoff_range(3) == twisted_more.client_service_backoff_strict(3) == (800.0, 820.0)
    assert load_target(f"{TWISTED}:client_service_strict").backoff_restart == 0


def test_a_backoff_loop_counting_successes_is_watched_one_retry_longer() -> None:
    growing = lambda retry: (retry * 100, retry * 100)  # noqa: E731
    counting = Target(build=CountingClient, kind="periodic", backoff_ms=growing, backoff_after_success="first_failure")
    assert counting.period_ms() == 900 and dataclasses.replace(counting, backoff_after_success="reset").period_ms() == 800


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"backoff_after_success": "first"}, "backoff_after_success must be 'reset' (after a success a backoff loop counts "
                                             "its failures from 0), 'first_failure' (the success's end counts as the "
                                             "first failure) or 'base' (from 0, and the wait after a success is "
                                             "backoff_ms(0)), got 'first'"),
        ({"backoff_after_success": "base", "interval_ms": 100},
         "backoff_after_success='base' says a backoff loop waits backoff_ms(0) after a success's end, but interval_ms "
         "says it waits the interval from the success's start: declare one of them"),
        ({"backoff_after_success": "base", "kind": "submit", "backoff_ms": (1, 2), "retries": 1},
         "declare kind='periodic' and backoff_ms too, or leave it 'reset'"),
        ({"backoff_counts_timeouts": 1, "timeout_ms": 100}, "backoff_counts_timeouts must be True or False, got 1"),
        ({"backoff_counts_timeouts": True},
         "backoff_counts_timeouts=True says a backoff loop counts a call cancelled at its own timeout as a failed "
         "call: declare kind='periodic', backoff_ms and timeout_ms too, or drop it"),
        ({"backoff_counts_timeouts": True, "timeout_ms": 100, "backoff_ms": None, "interval_ms": 100},
         "declare kind='periodic', backoff_ms and timeout_ms too"),
        ({"backoff_after_success": True}, "backoff_after_success must be 'reset'"),
        ({"backoff_after_success": "first_failure", "kind": "submit", "backoff_ms": (1, 2), "retries": 1},
         "backoff_after_success='first_failure' says how a backoff loop counts its failures after a success: declare "
         "kind='periodic' and backoff_ms too, or leave it 'reset'"),
        ({"backoff_after_success": "first_failure", "backoff_ms": None, "interval_ms": 100},
         "declare kind='periodic' and backoff_ms too"),
    ],
)
def test_backoff_after_success_is_checked_when_the_target_is_made(fields: dict[str, Any], message: str) -> None:
    declared: dict[str, Any] = {"build": CountingClient, "kind": "periodic", "backoff_ms": _exact, **fields}
    with pytest.raises(TargetError, match=_literally(message)):
        Target(**declared)


def _literally(text: str) -> str:
    import re

    return re.escape(text)


# --- F6: work.report_end ----------------------------------------------------------------------------


class Renewer:
    """A loop that gives up after ``give_up`` failed calls in a row: it stops and tells its owner
    through ``on_end`` (which the target wires to the work's ``report_end``). ``report_at_once``
    plants the report before the loop stops; ``keep_calling`` a loop that reports and runs on."""

    def __init__(self, clock: IReactorTime, work: Callable[[], Any], on_end: Callable[[str], None],
                 give_up: int = 3, keep_calling: bool = False) -> None:
        self.clock, self.work, self.on_end = clock, work, on_end
        self.give_up, self.keep_calling = give_up, keep_calling
        self.failures, self.running = 0, False
        self._next: IDelayedCall | None = None

    def start(self) -> None:
        self.running = True
        self._call()

    def _call(self) -> None:
        defer.maybeDeferred(self.work).addCallbacks(self._ok, self._failed)

    def _ok(self, _: Any) -> None:
        self.failures = 0
        self._later()

    def _failed(self, _: Any) -> None:
        self.failures += 1
        if self.failures == self.give_up:
            self.on_end(f"gave up after {self.give_up} failures")
            if not self.keep_calling:
                self.running = False
                return
        self._later()

    def _later(self) -> None:
        if self.running:
            self._next = self.clock.callLater(0.1, self._call)

    def stop(self) -> None:
        self.running = False
        if self._next is not None and self._next.active():
            self._next.cancel()


def renewer(reports: bool = True, **options: Any) -> Target:
    def build(clock: IReactorTime, work: Any) -> Renewer:
        return Renewer(clock, work, on_end=work.report_end if reports else lambda reason: None, **options)

    return Target(build=build, kind="periodic", interval_ms=100)


#: Every call fails 10 ms after it starts, the next 100 ms after that: the loop gives up after the third (at 230 ms).
#: Stopped at 2 s: the loop is watched long enough after its last call for a silent end to be judged.
FAILING = Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=10)), Stop(at_ms=2000)))


def test_a_reported_end_is_recorded_and_is_no_dead_loop() -> None:
    run = run_schedule(renewer(), FAILING)
    ends = [(e.t_us, e.job, e.detail) for e in run.trace.events if e.kind == EventKind.LOOP_END]
    assert ends == [(230_000, 0, "'gave up after 3 failures'")]
    assert check(run) == []


def test_the_same_end_unreported_is_a_dead_loop() -> None:
    """F6's false alarm was this verdict on a loop that did tell its owner: the report is what tells them apart."""
    assert invariants_of(renewer(reports=False), FAILING) == ["time.loop_died"]


def test_a_loop_that_reports_its_end_and_calls_on_is_caught_by_after_end() -> None:
    violations = check(run_schedule(renewer(keep_calling=True), FAILING))
    assert [v.invariant for v in violations] == ["time.after_end"]
    assert violations[0].message == (
        "periodic call 3 started at 330ms, after the loop reported its end at 230ms ('gave up after 3 failures'): "
        "a loop that reports its end must not call its work again"
    )


def test_a_call_in_flight_at_the_report_may_still_fail_afterwards() -> None:
    """The report comes while a call runs (the F2 straggler, reported through report_end): that call's
    failure is not judged, and it started before the report, so it breaks no promise of the report."""

    def build(clock: IReactorTime, work: Any) -> Any:
        class EndsWhileCalling(Renewer):
            def start(self) -> None:
                self.running = True
                self._call()
                self.clock.callLater(0.05, lambda: (setattr(self, "running", False), work.report_end("lease lost")))

        return EndsWhileCalling(clock, work, on_end=lambda reason: None)

    target = Target(build=build, kind="periodic", interval_ms=100)
    straggler = Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="fail", after_ms=930)),))
    run = run_schedule(target, straggler)
    kinds = [e.kind for e in run.trace.events if e.kind in (EventKind.LOOP_END, EventKind.JOB_FAIL)]
    assert kinds == [EventKind.LOOP_END, EventKind.JOB_FAIL]
    assert check(run) == []


def test_reporting_twice_or_after_stop_is_harmless() -> None:
    def build(clock: IReactorTime, work: Any) -> Renewer:
        def twice(reason: str) -> None:
            work.report_end(reason)
            work.report_end("again")

        return Renewer(clock, work, on_end=twice)

    assert invariants_of(Target(build=build, kind="periodic", interval_ms=100), FAILING) == []

    class ReportsAtStop(Renewer):
        def stop(self) -> None:
            super().stop()
            self.on_end("stopped")

    stopped = Schedule(ops=(Start(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=10)), Stop(at_ms=150)))
    target = Target(build=lambda clock, work: ReportsAtStop(clock, work, on_end=work.report_end), kind="periodic",
                    interval_ms=100)
    run = run_schedule(target, stopped)
    assert [e.detail for e in run.trace.events if e.kind == EventKind.LOOP_END] == ["'stopped'"]
    assert check(run) == []


def test_a_build_may_read_report_end_at_once_even_when_the_schedule_never_starts_the_subject() -> None:
    """``build(clock, work)`` runs for every schedule; one without a start gets work that is never called,
    and its ``report_end`` does nothing (the shrinker tries such schedules)."""
    target = load_target("scenarios.quota_poller:quota_poller")
    run = run_schedule(target, Schedule(ops=(Stop(at_ms=10),)))
    assert check(run) == [] and not any(e.kind == EventKind.LOOP_END for e in run.trace.events)


def test_a_subject_started_with_its_work_gets_report_end_too() -> None:
    """``start(work)``-style subjects get the same work: an adapter wires the report when it starts them."""

    class Later(Renewer):
        def __init__(self, clock: IReactorTime) -> None:
            super().__init__(clock, work=lambda: None, on_end=lambda reason: None)

        def start_with(self, work: Any) -> None:
            self.work, self.on_end = work, work.report_end
            self.start()

    target = Target(build=Later, kind="periodic", interval_ms=100, start=lambda subject, work: subject.start_with(work))
    assert invariants_of(target, FAILING) == []


# --- F5: rejects_only_while -------------------------------------------------------------------------


def never(view: RunView, job: JobRecord, t_us: int) -> bool:
    return False


class Refuser:
    """Refuses every job with ``breaker.CircuitOpenError``: before stop() a refusal ``never`` allows."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        return defer.fail(breaker.CircuitOpenError("closed for good"))


ONE_JOB = Schedule(ops=(Submit(at_ms=10, job=0, spec=JobSpec(kind="succeed", after_ms=5)),))


def test_a_refusal_the_target_does_not_allow_is_errors_rejects() -> None:
    target = Target(build=lambda clock: Refuser(), rejects=(breaker.CircuitOpenError,), rejects_only_while=never)
    violations = check(run_schedule(target, ONE_JOB))
    assert [v.invariant for v in violations] == ["errors.rejects"]
    assert violations[0].message == (
        "job 0, submitted at 10ms, was refused at 10ms (CircuitOpenError: closed for good), but the target's "
        "rejects_only_while (never) says no refusal is legitimate then"
    )
    assert invariants_of(dataclasses.replace(target, rejects_only_while=None), ONE_JOB) == []  # rejects alone: any refusal


def test_the_function_gets_the_view_the_refused_jobs_record_and_the_time() -> None:
    asked: list[tuple[int, int | None, int]] = []

    def allowed(view: RunView, job: JobRecord, t_us: int) -> bool:
        assert isinstance(view, RunView) and view.jobs[job.id] is job
        asked.append((job.id, job.submitted_us, t_us))
        return True

    target = Target(build=lambda clock: Refuser(), rejects=(breaker.CircuitOpenError,), rejects_only_while=allowed)
    assert invariants_of(target, ONE_JOB) == []
    assert asked == [(0, 10_000, 10_000)]


class RaisingRefuser:
    """Refuses by raising from submit (as ``DeferredQueue.put`` raises ``QueueOverflow``)."""

    def submit(self, job: Any) -> defer.Deferred[Any]:
        raise breaker.CircuitOpenError("full")


def test_a_submit_that_raises_a_rejects_type_is_a_refusal_too() -> None:
    target = Target(build=lambda clock: RaisingRefuser(), rejects=(breaker.CircuitOpenError,), rejects_only_while=never)
    assert invariants_of(target, ONE_JOB) == ["errors.rejects"]


def test_refusals_after_stop_are_not_judged() -> None:
    target = Target(build=lambda clock: Refuser(), rejects=(breaker.CircuitOpenError,), rejects_only_while=never,
                    stop=lambda subject: None)
    after_stop = Schedule(ops=(Stop(at_ms=0), Submit(at_ms=10, job=0, spec=JobSpec(kind="succeed", after_ms=5))))
    assert invariants_of(target, after_stop) == []


def test_other_failures_are_not_refusals() -> None:
    failing = Target(build=lambda clock: Refuser(), rejects=(ValueError,), rejects_only_while=never,
                     errors=(breaker.CircuitOpenError,))
    assert "errors.rejects" not in invariants_of(failing, ONE_JOB)


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda view, job, t_us: 1, r"rejects_only_while \(<lambda>\) returned 1 for job 0 refused at 10ms; it must return "
                                    r"True \(a refusal then is legitimate\) or False"),
        (lambda view, job, t_us: view.nothing, r"rejects_only_while \(<lambda>\) raised AttributeError: .* for job 0 refused "
                                               r"at 10ms; it must return whether a refusal then is legitimate"),
    ],
)
def test_a_function_that_raises_or_answers_no_bool_is_a_target_error(answer: Any, message: str) -> None:
    target = Target(build=lambda clock: Refuser(), rejects=(breaker.CircuitOpenError,), rejects_only_while=answer)
    with pytest.raises(TargetError, match=message):
        check(run_schedule(target, ONE_JOB))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"rejects_only_while": "open"}, "Target rejects_only_while must be a function (view, job, t_us) -> ..., got 'open'"),
        ({"rejects_only_while": lambda view, job: True},
         "Target rejects_only_while is called as rejects_only_while(view, job, t_us), but the function given cannot take "
         "that"),
        ({"rejects_only_while": never, "rejects": ()},
         "Target rejects_only_while says when the subject may refuse a job, but rejects names no refusal type: declare "
         "rejects=(YourRefusalError,) too"),
        ({"rejects_only_while": never, "kind": "periodic", "interval_ms": 100},
         "Target rejects_only_while judges refused submitted jobs; a periodic Target cannot declare it"),
    ],
)
def test_rejects_only_while_is_checked_when_the_target_is_made(fields: dict[str, Any], message: str) -> None:
    declared: dict[str, Any] = {"build": lambda clock: Refuser(), "rejects": (breaker.CircuitOpenError,), **fields}
    with pytest.raises(TargetError, match=_literally(message)):
        Target(**declared)


def test_the_stuck_breaker_is_caught_by_the_built_in_alone(tmp_path: Any) -> None:
    """Without the target's own 50-line invariant, the declared liveness still names the bug."""
    alone = dataclasses.replace(targets.breaker_stuck_open, invariants=())
    result = campaign(f"{ROUND2}:breaker_stuck_open", seed=7, examples=3000, tmp_path=tmp_path, target=alone)
    assert [f.record.invariant for f in result.findings] == ["errors.rejects"]
    assert "rejects_only_while (breaker_may_refuse) says no refusal is legitimate then" in result.findings[0].record.message


def test_without_the_declaration_the_stuck_breaker_passes_every_built_in(tmp_path: Any) -> None:
    """What F5 reported: ``rejects`` alone excuses every refusal."""
    bare = dataclasses.replace(targets.breaker_stuck_open, invariants=(), rejects_only_while=None)
    result = campaign(f"{ROUND2}:breaker_stuck_open", seed=7, examples=1000, tmp_path=tmp_path, target=bare)
    assert result.findings == []
