"""An operation's answer is watched, not consumed (session 13, audit 12's second strict xfail): the harness's
caller records what the Deferred delivered and passes it on, so two calls handed one shared Deferred record
the same answer, and the subject's own callbacks after the harness's see what they would without it. The
harness handles a failure it passed on that is still unhandled when the run ends (no ``errors.unhandled`` of
its making), and nothing else: a new error the subject's own callbacks make is still reported. Session 14: the
callers of ``submit`` and of ``stop()`` watch the same way (``steps.pass_on``), but two ``submit`` callers handed
one Deferred, each a consumer as real callers are (review 4, finding 11 reads the None the later one receives)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

import harness.run.runner
from harness import Call, JobSpec, Operation, Schedule, Stop, Submit, Target, check, run_schedule
from harness.model.faults import InjectedError
from harness.run import steps
from tests import answer_subjects


class Ready(answer_subjects.Shared):
    """``answer_subjects.Shared``: ``when()`` hands every caller the one ``ready`` Deferred, failed with
    ``LookupError`` at 10 ms. At 5 ms the subject adds a callback of its own to it, after the harness's: one
    that notes what it received (``seen``), or, with ``breaks``, one that raises a new error."""

    def __init__(self, clock: Any, breaks: bool = False) -> None:
        super().__init__(clock)
        self.seen: list[str] = []
        clock.callLater(0.005, self.ready.addBoth, self._broken if breaks else self._note)

    def _note(self, result: Any) -> Any:
        self.seen.append(type(getattr(result, "value", result)).__name__)
        return result

    def _broken(self, result: Any) -> None:
        raise ZeroDivisionError("the subject's own bug")


def _run(*at_ms: int, raises: tuple[type[BaseException], ...] = (LookupError,), breaks: bool = False) -> tuple[Any, list[str]]:
    """The run, and what the subject's own callback saw (the subject itself is not kept: its garbage, with any
    unhandled error in it, is collected at the run's end)."""
    seen: list[str] = []

    def build(clock: Any) -> Ready:
        subject = Ready(clock, breaks)
        subject.seen = seen
        return subject

    target = Target(build=build, operations={"when": Operation(lambda s: s.when(), raises=raises)})
    return run_schedule(target, Schedule(ops=tuple(Call(at_ms=t, operation="when") for t in at_ms))), seen


@pytest.mark.parametrize("at_ms", [(0, 0), (0, 20), (20, 30)])
def test_every_call_handed_one_deferred_records_its_failure_before_or_after_it_fired(at_ms: tuple[int, int]) -> None:
    run, seen = _run(*at_ms)
    assert [e.kind.value for e in run.trace if e.kind.value.startswith("call.")] == ["call.refused"] * 2
    assert [c.answer.error for c in run.view.calls] == ["LookupError"] * 2
    assert seen == ["LookupError"]  # the subject's own callback saw the failure, not the harness's None
    assert check(run) == []  # declared, and not logged as unhandled


def test_an_undeclared_failure_of_a_shared_deferred_is_judged_for_each_call() -> None:
    run, _ = _run(0, 20, raises=())
    assert [e.kind.value for e in run.trace if e.kind.value.startswith("call.")] == ["call.failure"] * 2
    assert [c.answer.error for c in run.view.calls] == ["LookupError"] * 2
    assert [v.invariant for v in check(run)] == ["errors.operation"]


def test_a_failed_answer_is_not_left_unhandled_by_the_harness_but_the_subjects_own_error_is() -> None:
    run, _ = _run(0)
    assert check(run) == [] and not [e for e in run.trace if e.kind.value == "log.error"]
    run, _ = _run(0, breaks=True)  # the subject's callback turns the failure into a new error nobody handles
    [violation] = check(run)
    assert violation.invariant == "errors.unhandled" and "ZeroDivisionError: the subject's own bug" in violation.message
    # A later call handed that Deferred receives the new error, as a real caller would (errors.operation).
    run, _ = _run(0, 20, breaks=True)
    assert [c.answer.error for c in run.view.calls] == ["LookupError", "ZeroDivisionError"]
    assert [v.invariant for v in check(run)] == ["errors.operation"]


# Session 14: the harness's callers of submit and of stop() watch as an operation's caller does (steps.pass_on).

def _handed(*ops: Any) -> tuple[Any, list[str]]:
    """The run of ``answer_subjects.Handed`` (``last()`` and ``when()`` declaring the injected error and
    ``LookupError``), and what the subject's own callbacks saw."""
    seen: list[str] = []

    def build(clock: Any) -> answer_subjects.Handed:
        subject = answer_subjects.Handed(clock)
        subject.seen = seen
        return subject

    raises = (InjectedError, LookupError)
    operations = {"last": Operation(lambda s: s.last(), raises=raises), "when": Operation(lambda s: s.when(), raises=raises)}
    return run_schedule(Target(build=build, operations=operations), Schedule(ops=ops)), seen


def _answers(run: Any) -> list[tuple[str, str]]:
    """Each caller's answer in trace order: its event's kind, and its detail (without the call's event index)."""
    keep = ("result", "failure", "call.result", "call.refused", "call.failure", "stop.failure")
    return [(e.kind.value, e.detail.split(" (call at")[0]) for e in run.trace if e.kind.value in keep]


@pytest.mark.parametrize("job", [JobSpec("fail", 20), JobSpec("succeed", 20), JobSpec("immediate")], ids=["fails", "succeeds", "fired"])
@pytest.mark.parametrize("asked_ms", [0, 30])
def test_a_jobs_deferred_an_operation_returns_too_gives_both_callers_its_answer(job: JobSpec, asked_ms: int) -> None:
    run, seen = _handed(Submit(0, 0, job), Call(asked_ms, "last"))
    received = run.view.jobs[0].received
    [call] = run.view.calls
    assert received is not None and call.answer is not None
    assert (call.answer.value, call.answer.error) == (received.value, received.error)  # not the None it was left
    assert received.value != "None" and seen and "NoneType" not in seen  # the subject's own callback saw it too
    assert check(run) == []  # a declared failure, and not logged as unhandled: the harness handled it at the end


def test_stops_deferred_an_operation_returns_too_gives_both_callers_its_failure() -> None:
    run, seen = _handed(Call(0, "when"), Stop(1), Call(20, "when"))
    assert _answers(run) == [("call.refused", "when: LookupError: down")] + [("stop.failure", "LookupError: down")] + [
        ("call.refused", "when: LookupError: down")]
    assert seen == ["LookupError"]  # the subject's own callback on stop()'s Deferred, added at 5 ms after both


def test_two_submits_handed_one_deferred_still_leave_the_later_caller_none() -> None:
    # Review 4, finding 11: each submit caller consumes, as real callers do (sharing.joined reads the None).
    class Twice(answer_subjects.Handed):
        def submit(self, job: Any) -> Any:
            return self.jobs[0] if self.jobs else super().submit(job)

    run = run_schedule(Target(build=Twice), Schedule(ops=(Submit(0, 0, JobSpec("fail", 20)), Submit(0, 1, JobSpec()))))
    answers = [(kind, detail) for kind, detail in _answers(run) if kind in ("result", "failure")]
    assert answers == [("failure", "InjectedError: injected by job 0 attempt 0"), ("result", "None")]


def test_a_mutant_that_does_not_handle_what_it_passed_on_raises_false_alarms(monkeypatch: pytest.MonkeyPatch) -> None:
    ops = (Submit(0, 0, JobSpec("fail", 20)), Call(30, "last"), Stop(40))
    run, _ = _handed(*ops)
    assert check(run) == []
    monkeypatch.setattr(harness.run.runner, "handle_passed_on", lambda passed_on: None)
    run, _ = _handed(*ops)
    assert {v.invariant for v in check(run)} == {"errors.unhandled"}  # the job's failure and stop()'s


def test_a_failure_delivered_once_the_run_let_go_is_consumed_not_passed_on() -> None:
    # Nothing handles it then (the teardown's handle_passed_on ran): passed on, it was logged as "Unhandled error
    # in Deferred" outside any run (the equivalence benchmark printed ~50, from synapse's read-write lock's
    # coroutines closed as their garbage was collected).
    run, _ = _handed(Submit(0, 0, JobSpec("fail", 20)))
    assert not run.watching and run.passed_on == []
    d: defer.Deferred[None] = defer.Deferred()
    late = Failure(LookupError("late"))
    assert steps.pass_on(run, d, late) is None and run.passed_on == []
    assert steps.pass_on(run, d, "value") == "value"
