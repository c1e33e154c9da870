"""``errors.logged`` (``Target(logs=...)``): the opt-in invariant on the errors a subject logs (the fifth
outside review's finding 10). Both ways: the round-5 queue's twin whose worker loop dies of a stale
receipt is caught by it; correct subjects that log only their jobs' errors (a worker logging failed
handlers, ``TimerService`` logging the failure that ended its loop, a poller logging and carrying on)
and the declared types stay clean; a subject's own error of a type a job may also be injected with
(``KeyError``) is told from the job's."""

from __future__ import annotations

import dataclasses

import pytest
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import log as legacy_log

from harness import (
    JobSpec,
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
from harness.model.faults import injected_by, injected_message

from review_campaigns import campaign

ROUND5 = "scenarios.review.round5.targets"
_log = Logger()


def names(target: Target, *ops) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops=tuple(ops))))]


def first(target: Target, *ops):
    found = [v for v in check(run_schedule(target, Schedule(ops=tuple(ops)))) if v.invariant == "errors.logged"]
    return found[0] if found else None


class LoggingPool:
    """Runs each job at once and passes its outcome on; a failed job is logged, as services do.
    ``own`` logs an error of its own at each submit (``KeyError(n)``: a bookkeeping bug it survives),
    ``message`` a message at error level with no exception, ``wrap`` logs a failed job's error
    wrapped (``Wrapped(error)``)."""

    def __init__(self, clock, own: bool = False, message: bool = False, wrap: bool = False) -> None:
        self.own, self.message, self.wrap, self.n = own, message, wrap, 0

    def submit(self, job):
        self.n += 1
        if self.own:
            try:
                {}[self.n]
            except KeyError:
                _log.failure("bookkeeping failed")
        if self.message:
            _log.error("something went wrong in job {n}", n=self.n)
        d = defer.maybeDeferred(job)

        def failed(f):
            _log.failure("job failed", Wrapped.failure(f.value) if self.wrap else f)
            return f

        return d.addErrback(failed)


class Wrapped(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(f"wrapped: {error}")
        self.error = error

    @classmethod
    def failure(cls, error: BaseException):
        from twisted.python.failure import Failure

        return Failure(cls(error))


def pool(logs=(), **kw) -> Target:
    return Target(build=lambda clock: LoggingPool(clock, **kw), retries=0, logs=logs,
                  wraps={Wrapped: lambda e: e.error})


def test_the_declaration_is_checked():
    with pytest.raises(TargetError, match=r"logs must be None .* write logs=\(KeyError,\)"):
        Target(build=LoggingPool, logs=KeyError)  # type: ignore[arg-type]
    with pytest.raises(TargetError, match="logs must be None"):
        Target(build=LoggingPool, logs=(1,))  # type: ignore[arg-type]
    assert Target(build=LoggingPool).logs is None


def test_an_injected_error_is_told_by_its_one_argument():
    assert injected_by(KeyError(injected_message(3, 1))) == (3, 1)
    assert injected_by(KeyError(3)) is None
    assert injected_by(ValueError("injected by job 3 attempt 1", "more")) is None


def test_the_jobs_own_errors_are_legitimate_and_only_they():
    failing = JobSpec(kind="fail", after_ms=10, error="KeyError")
    assert names(pool(), Submit(at_ms=0, job=0, spec=failing)) == []
    assert names(pool(), Submit(at_ms=0, job=0, spec=JobSpec(kind="raise", error="ValueError"))) == []
    # Carried by a wraps type, the job's error is still the job's.
    assert names(pool(wrap=True), Submit(at_ms=0, job=0, spec=failing)) == []
    # The subject's own KeyError is not, though a job may be injected with a KeyError too.
    found = first(pool(own=True), Submit(at_ms=5, job=0, spec=failing))
    assert found is not None and found.message.startswith("the subject logged an error at 5ms: KeyError: 1;")
    assert found.t_us == 5000
    # Declared, it is legitimate; a message at error level without an exception never is.
    assert names(pool(logs=(LookupError,), own=True), Submit(at_ms=0, job=0, spec=failing)) == []
    found = first(pool(message=True), Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=1)))
    assert found is not None and "something went wrong in job {n}" in found.message


def test_not_declared_nothing_is_judged():
    target = dataclasses.replace(pool(own=True, message=True), logs=None)
    assert names(target, Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=1))) == []


class OwnLoggingLoop:
    """A periodic subject that calls its work at start and logs an error of its own (legacy ``log.err``)."""

    def __init__(self, clock) -> None:
        self.clock = clock

    def start(self, work):
        d = defer.maybeDeferred(work)
        legacy_log.err(RuntimeError("cannot read the schedule"), "start")
        return d

    def stop(self):
        return None


def test_a_periodic_subject_too():
    target = Target(build=OwnLoggingLoop, kind="periodic", interval_ms=100, logs=())
    found = first(target, Start(at_ms=0, job=0, spec=JobSpec(kind="value")), Stop(at_ms=1))
    assert found is not None and "RuntimeError: cannot read the schedule" in found.message


def test_the_round5_queue_twin_is_caught_and_the_queue_is_not(tmp_path):
    """Finding 10: the twin's worker loop dies of KeyError (a stale receipt): errors.logged names it,
    where a stranded job was blamed before. The correct queue logs its jobs' errors and its handler
    timeout's (declared: logs=(defer.TimeoutError,))."""
    result = campaign(f"{ROUND5}:queue_stale_ack_logs", 3, 300, tmp_path)
    [finding] = result.findings
    assert finding.violation.invariant == "errors.logged", finding.violation.message
    assert ": KeyError: " in finding.violation.message
    result = campaign(f"{ROUND5}:queue_logs_ok", 3, 200, tmp_path / "ok")
    assert result.findings == [], [f.violation.message for f in result.findings]
    # Without the handler timeout declared, its logging is caught: the declaration is what lets it pass.
    undeclared = dataclasses.replace(load_target(f"{ROUND5}:queue_logs_ok"), logs=())
    result = campaign(f"{ROUND5}:queue_logs_ok", 3, 200, tmp_path / "undeclared", undeclared)
    [finding] = result.findings
    assert finding.violation.invariant == "errors.logged" and "TimeoutError" in finding.violation.message


#: Correct subjects that log errors by contract, all of them their work's own: with logs=() they
#: stay clean. A worker logging failed handlers, TimerService logging the failure that ended its
#: loop pollers and tickers logging and carrying on, hedgers
#: logging a hostile canceller's error.
LOGGING_SUBJECTS = (
    "scenarios.at_least_once:lease_queue",
    "scenarios.thirdparty.twisted_extra:timer_service",
    "scenarios.poller:looping_poller",
    "scenarios.drift_ticker:drift_free_ticker",
    "scenarios.housekeeping:service_with_stats",
    "scenarios.thirdparty.buildbot_utils:polled",
    "scenarios.ticker:counting_ticker",
    "scenarios.hedge:hedged_call",
    "scenarios.caller_timeout:caller_timeout_pool",
)


@pytest.mark.parametrize("spec", LOGGING_SUBJECTS[:3])
def test_correct_subjects_that_log_their_jobs_errors_stay_clean(spec, tmp_path):
    result = campaign(spec, 3, 150, tmp_path, dataclasses.replace(load_target(spec), logs=()))
    assert result.findings == [], [f.violation.message for f in result.findings]


@pytest.mark.slow
@pytest.mark.parametrize("spec", LOGGING_SUBJECTS + (f"{ROUND5}:queue_logs_ok",))
def test_correct_subjects_stay_clean_over_long_campaigns(spec, tmp_path):
    target = load_target(spec)
    if target.logs is None:
        target = dataclasses.replace(target, logs=())
    result = campaign(spec, 3, 2000, tmp_path, target)
    assert result.findings == [], [f.violation.message for f in result.findings]
