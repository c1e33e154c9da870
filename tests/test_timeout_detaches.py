"""``Target(timeout_detaches=True)``: a timeout that fails the caller at T and leaves the work running (review 9,
finding 1: a multiplexed RPC call already on the wire cannot be cancelled). ``time.timeout`` then holds the
caller, not the work: a correct client passes with its work running past T; a client whose timeout never
answers, answers early, late or with the wrong error, or cancels the work before T, is still caught."""

from __future__ import annotations

import pytest
from twisted.internet import defer

from harness import JobSpec, Schedule, Submit, Cancel, Target, TargetError, check, run_schedule

T = 300


class Timeout(Exception):
    pass


class Client:
    """Each job is a call on the wire: the caller fails at ``after`` ms with ``error``; the work runs on, and its
    late answer is dropped. ``early_cancel`` cancels the work at 100 ms (a bug: work ended before T)."""

    def __init__(self, clock, after=T, error=Timeout, early_cancel=False, answer=True):
        self.clock, self.after, self.error, self.early_cancel, self.answer = clock, after, error, early_cancel, answer

    def submit(self, job):
        caller: defer.Deferred[object] = defer.Deferred(lambda _d: timer.active() and timer.cancel())
        work = defer.maybeDeferred(job)

        def answered(outcome):
            if not caller.called:
                if timer.active():
                    timer.cancel()
                caller.callback(outcome) if not isinstance(outcome, Exception) else caller.errback(outcome)

        def timed_out():
            if self.answer and not caller.called:
                caller.errback(self.error("timed out"))

        timer = self.clock.callLater(self.after / 1000, timed_out)
        if self.early_cancel:
            self.clock.callLater(0.1, work.cancel)
        work.addCallbacks(answered, lambda f: answered(f.value))
        return caller


def target(**client) -> Target:
    return Target(build=lambda clock: Client(clock, **client), cancellable="detach", timeout_ms=T,
                  timeout_from="submit", timeout_error=Timeout, timeout_detaches=True)


def verdicts(t: Target, *ops) -> list[str]:
    return [v.invariant for v in check(run_schedule(t, Schedule(ops=ops)))]


SLOW = Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=1000))
QUICK = Submit(at_ms=0, job=1, spec=JobSpec(kind="succeed", after_ms=100))


def test_a_timeout_that_leaves_the_work_running_passes():
    assert verdicts(target(), SLOW, QUICK) == []


def test_the_same_client_without_the_declaration_is_a_missed_timeout():
    undeclared = Target(build=lambda clock: Client(clock), cancellable="detach", timeout_ms=T,
                        timeout_from="submit", timeout_error=Timeout)
    assert verdicts(undeclared, SLOW) == ["time.timeout"]


@pytest.mark.parametrize("client, found", [
    ({"answer": False}, "still waiting at 300ms"),  # the timeout neither answers nor cancels
    ({"after": 500}, "still waiting at 300ms"),  # late
    ({"after": 200}, "only 200ms after it was submitted"),  # early
    ({"error": KeyError}, "not Timeout"),  # the wrong error
    ({"early_cancel": True}, "was cancelled at 100ms"),  # the work cancelled before T
])
def test_a_broken_detaching_timeout_is_caught(client, found):
    [violation] = [v for v in check(run_schedule(target(**client), Schedule(ops=(SLOW,)))) if v.invariant == "time.timeout"]
    assert found in violation.message, violation.message


def test_a_cancel_before_the_timeout_excuses_it():
    assert verdicts(target(answer=False), SLOW, Cancel(at_ms=50, job=0)) == []


@pytest.mark.parametrize("fields, problem", [
    ({}, "declare timeout_ms too"),
    ({"timeout_ms": 5, "timeout_from": "wait"}, 'timeout_from="wait"'),
    ({"timeout_ms": 5, "shared": True, "keys": 2}, "shared=True"),
    ({"timeout_ms": 5, "fanout": 2, "quorum": 1}, "fanout=2"),
])
def test_bad_declarations_are_refused_in_one_line(fields, problem):
    with pytest.raises(TargetError) as refused:
        Target(build=Client, timeout_detaches=True, **fields)
    assert problem in str(refused.value) and "\n" not in str(refused.value)


def test_periodic_and_non_bool_are_refused():
    with pytest.raises(TargetError, match="a periodic Target has no caller"):
        Target(build=Client, kind="periodic", interval_ms=10, timeout_ms=5, timeout_detaches=True)
    with pytest.raises(TargetError, match="timeout_detaches must be True or False"):
        Target(build=Client, timeout_ms=5, timeout_detaches="yes")
