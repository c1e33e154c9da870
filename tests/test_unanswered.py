"""A Deferred nothing can fire any more: the one stop() returned (completion.stop) and those operations
returned (completion.operation), judged once the run is stopped and idle; and the answers of operations,
recorded in the trace and read as ``CallRecord.answer`` (docs/reviews/outside-user-8.md, findings 3 and 4)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from twisted.internet import defer

from harness import Call, JobSpec, Operation, Schedule, Stop, Submit, Target, check, run_schedule
from scenarios.graceful import graceful_pool, idle_stop_pool, idle_waiter_pool


class Waiters:
    """``wait(ms)`` answers after ``ms`` with ``"ok <ms>"`` (0: never, until stop() fails it, or never with
    ``strand``); ``refuse()`` fails its Deferred with a declared ``LookupError`` after 5 ms."""

    def __init__(self, clock: Any, strand: bool = False) -> None:
        self.clock, self.strand = clock, strand
        self.waiting: list[defer.Deferred[str]] = []

    def submit(self, job: Any) -> defer.Deferred[Any]:
        return defer.maybeDeferred(job)

    def wait(self, ms: int) -> defer.Deferred[str]:
        d: defer.Deferred[str] = defer.Deferred()
        if ms:
            call = self.clock.callLater(ms / 1000, d.callback, f"ok {ms}")
            d.addErrback(lambda f: (call.cancel(), f)[1])
        else:
            self.waiting.append(d)
        return d

    def refuse(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self.clock.callLater(0.005, d.errback, LookupError("no"))
        return d

    def stop(self) -> None:
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            if not self.strand:
                d.errback(RuntimeError("stopped"))


def _target(strand: bool = False, may_pend: bool = False) -> Target:
    return Target(
        build=lambda clock: Waiters(clock, strand),
        operations={
            "wait": Operation(lambda s, ms: s.wait(ms), args=(st.sampled_from([0, 10, 30]),), raises=(RuntimeError,), may_pend=may_pend),
            "refuse": Operation(lambda s: s.refuse(), raises=(LookupError,)),
        },
    )


def _names(target: Target, *ops: Any) -> list[str]:
    return [v.invariant for v in check(run_schedule(target, Schedule(ops)))]


def test_call_records_hold_what_each_returned_deferred_answered_in_any_order() -> None:
    schedule = Schedule((Call(0, "wait", (30,)), Call(0, "wait", (10,)), Call(0, "refuse"), Call(0, "wait", (0,))))
    run = run_schedule(_target(), schedule)
    late, early, refused, stopped = run.view.calls
    assert (late.answer.kind, late.answer.value, late.answer.t_us) == ("result", "'ok 30'", 30_000)
    assert (early.answer.value, early.answer.t_us) == ("'ok 10'", 10_000)
    assert early.answer.index < late.answer.index  # answered in the other order than called, each to its call
    assert run.view.events[late.answer.index].kind == "call.result"
    assert (refused.answer.kind, refused.answer.error, refused.raised) == ("failure", "LookupError", None)
    assert run.view.events[refused.answer.index].kind == "call.refused"
    assert (stopped.answer.error, stopped.pending) == ("RuntimeError", False)  # failed by the teardown stop()
    assert check(run) == []


def test_an_operation_deferred_nobody_answers_breaks_completion_operation() -> None:
    run = run_schedule(_target(strand=True), Schedule((Call(0, "wait", (10,)), Call(5, "wait", (0,)))))
    [violation] = check(run)
    assert violation.invariant == "completion.operation"
    assert violation.message.startswith("operation wait(0), called at 5ms, returned a Deferred that never fired")
    assert "Operation(may_pend=True)" in violation.message
    assert [c.pending for c in run.view.calls] == [False, True]
    assert run.view.events[violation.events[0]].kind == "call"


def test_may_pend_declares_a_deferred_that_may_wait_for_ever() -> None:
    assert _names(_target(strand=True, may_pend=True), Call(5, "wait", (0,))) == []


def test_an_operation_deferred_is_not_judged_while_work_is_in_flight() -> None:
    # The hanging job is in flight at the end: the waiter might still be answered by it.
    assert _names(_target(strand=True), Submit(0, 0, JobSpec("hang")), Call(5, "wait", (0,))) == []


def test_a_stop_that_never_completes_breaks_completion_stop_on_an_idle_subject_only() -> None:
    done = Submit(0, 0, JobSpec("succeed", after_ms=10))
    assert _names(idle_stop_pool, done) == ["completion.stop"]
    [violation] = check(run_schedule(idle_stop_pool, Schedule((done, Stop(20)))))
    assert violation.message.startswith("stop() (called at 20ms, scheduled) returned a Deferred that never fired")
    # A graceful stop waiting for a job that hangs is waiting, not hung: judged by nothing here.
    assert _names(graceful_pool, Submit(0, 0, JobSpec("hang")), Stop(5)) == []
    assert _names(graceful_pool, done, Stop(5), Call(20, "when_idle")) == []


def test_when_idle_asked_of_an_idle_pool_is_answered() -> None:
    ops = (Submit(0, 0, JobSpec("succeed", after_ms=10)), Call(20, "when_idle"))
    assert _names(idle_waiter_pool, *ops) == ["completion.operation"]
    [call] = run_schedule(graceful_pool, Schedule(ops)).view.calls
    assert (call.answer.kind, call.answer.value, call.answer.t_us) == ("result", "None", 20_000)
