"""An ``AlreadyCalledError`` is ``completion.once``'s on every path it takes (round-9 review, findings 2 and 4).

Out of an operation (raised, or failing the Deferred it returned) it is never a declared refusal, whatever
``Operation(raises=...)`` lists, and never ``errors.operation``'s; out of a timer's callable, a caller's
canceller, ``stop()``, or logged as unhandled by a callback on a job's Deferred, it is ``completion.once``
and no error invariant's. The message says where it showed, and its hint reads the trace: a cancel before
it, or none.
"""

from __future__ import annotations

import gc

import pytest
from twisted.internet import defer

from harness import Call, Cancel, JobSpec, Operation, Schedule, Stop, Submit, Target, check, run_schedule


class Answers:
    """A subject whose callers' Deferreds a helper fires; each BUG below fires one a second time."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.pending: list[defer.Deferred] = []

    def submit(self, job):
        d: defer.Deferred = defer.Deferred(lambda _: None)
        self.pending.append(d)
        return d

    def lose(self) -> None:
        """BUG: fails every caller, also one a cancel already fired."""
        for d in self.pending:
            d.errback(ConnectionError("lost"))

    def lose_later(self) -> defer.Deferred:
        """BUG: as ``lose``, but answers through the Deferred it returns."""
        return defer.maybeDeferred(self.lose)

    def stop(self) -> None:
        self.pending.clear()


def _violations(target: Target, *ops) -> dict[str, str]:
    """The run's violations, in the order ``check`` gives (its first is the verdict)."""
    return {v.invariant: v.message for v in check(run_schedule(target, Schedule(ops=tuple(ops))))}


def _operation_target(name: str, raises: tuple[type[BaseException], ...]) -> Target:
    call = (lambda s: s.lose()) if name == "lose" else (lambda s: s.lose_later())
    return Target(build=Answers, operations={name: Operation(call, raises=raises)}, menu={"cancels": True})


CANCEL_THEN_CALL = (Submit(0, 0, JobSpec(kind="hang")), Cancel(5, 0))


@pytest.mark.parametrize("raises", [(), (Exception,), (defer.AlreadyCalledError,)], ids=["none", "Exception", "exact"])
@pytest.mark.parametrize("name, kind", [("lose", "call.raised"), ("lose_later", "call.failure")])
def test_a_double_fire_out_of_an_operation_is_completion_once_whatever_it_declares(name, kind, raises):
    found = _violations(_operation_target(name, raises), *CANCEL_THEN_CALL, Call(at_ms=10, operation=name))
    assert set(found) == {"completion.once"}, found
    message = found["completion.once"]
    assert f"({kind} at 10ms in operation {name}: AlreadyCalledError: " in message, message
    assert "job 0 was cancelled before it (last at 5ms)" in message, message


def test_an_operation_still_refuses_with_a_declared_type():
    """The fix takes only AlreadyCalledError out of raises: a declared refusal stays one."""

    class Refusing(Answers):
        def lose(self) -> None:
            raise ConnectionError("not connected")

    target = Target(build=Refusing, operations={"lose": Operation(lambda s: s.lose(), raises=(Exception,))})
    run = run_schedule(target, Schedule(ops=(Call(at_ms=0, operation="lose"),)))
    assert [e.kind for e in run.trace if e.kind.startswith("call.")] == ["call.refused"]
    assert check(run) == []


class TimerFiresTwice(Answers):
    """BUG: a timer answers the caller, and so does a second timer for the same call."""

    def submit(self, job):
        d = super().submit(job)
        self.clock.callLater(0.01, d.callback, "first")
        self.clock.callLater(0.02, d.callback, "second")
        return d


class CancellerFiresAgain(Answers):
    """BUG: the canceller fails the caller's Deferred twice: cancel() raises AlreadyCalledError."""

    def submit(self, job):
        def canceller(d: defer.Deferred) -> None:
            d.errback(defer.CancelledError())
            d.errback(defer.CancelledError())

        return defer.Deferred(canceller)


class CallbackFiresTwice(Answers):
    """BUG: a callback on the job's Deferred answers the caller twice; the AlreadyCalledError fails the
    job's chain, which nobody handles: "Unhandled error in Deferred"."""

    def submit(self, job):
        d = super().submit(job)

        def deliver(value):
            d.callback(value)
            d.callback(value)

        job().addCallback(deliver)
        return d


class StopFiresTwice(Answers):
    """BUG: stop() answers every caller twice."""

    def stop(self) -> None:
        for d in self.pending:
            d.callback(None)
            d.callback(None)


@pytest.mark.parametrize(
    "build, ops, kind",
    [
        (TimerFiresTwice, (Submit(0, 0, JobSpec(kind="hang")),), "reactor.error"),
        (CancellerFiresAgain, (Submit(0, 0, JobSpec(kind="hang")), Cancel(5, 0)), "cancel.raised"),
        (CallbackFiresTwice, (Submit(0, 0, JobSpec(kind="succeed", after_ms=5)),), "unhandled"),
        (StopFiresTwice, (Submit(0, 0, JobSpec(kind="hang")), Stop(10)), "stop.raised"),
    ],
    ids=["timer", "canceller", "unhandled", "stop"],
)
def test_every_path_of_a_double_fire_is_completion_once_alone(build, ops, kind):
    gc.collect()
    target = Target(build=build, cancellable=True, menu={"cancels": True})
    found = _violations(target, *ops)
    assert next(iter(found), None) == "completion.once", found  # the verdict
    # no error invariant takes the AlreadyCalledError for its own (errors.escaped, errors.unhandled...); a
    # canceller's is also cancellation.harmless's ("cancel() must never raise"), which holds as well
    others = [name for name, said in found.items() if name != "completion.once" and "AlreadyCalled" in said]
    assert others == (["cancellation.harmless"] if kind == "cancel.raised" else []), found
    message = found["completion.once"]
    assert f"({kind} at " in message, message
    if any(isinstance(op, Cancel) for op in ops):
        assert "job 0 was cancelled before it" in message, message
    else:
        assert "no cancel came before it: two paths of the subject fired the same Deferred" in message, message
        assert "after a cancel" not in message, message


class DoubleFire(defer.AlreadyCalledError):
    """A subject's own name for a Deferred fired twice (its Deferred subclass says which one)."""


class RenamedDoubleFire(Answers):
    """BUG: answers a caller twice, its own Deferred raising ``DoubleFire``: out of an operation, and out of a
    timer (the reactor's error path)."""

    def lose(self) -> None:
        raise DoubleFire("request 0 answered already")

    def submit(self, job):
        self.clock.callLater(0.005, self.lose)
        return super().submit(job)


@pytest.mark.parametrize("raises", [(), (Exception,), (DoubleFire,)], ids=["none", "Exception", "exact"])
def test_a_double_fire_under_another_class_name_is_completion_once_by_its_class(raises):
    """The class relation, not the name: a subclass of AlreadyCalledError named otherwise escaped the name test
    (it was errors.operation's, or errors.escaped's out of a timer). Twisted's own keeps its text."""
    target = Target(build=RenamedDoubleFire, operations={"lose": Operation(lambda s: s.lose(), raises=raises)})
    found = _violations(target, Submit(0, 0, JobSpec(kind="hang")), Call(at_ms=10, operation="lose"))
    assert next(iter(found)) == "completion.once" and not [n for n, said in found.items() if "DoubleFire" in said
                                                            and n != "completion.once"], found
    message = found["completion.once"]
    assert "(reactor.error at 5ms in the subject: RenamedDoubleFire.lose: DoubleFire: [AlreadyCalledError] " \
           "request 0 answered already); no cancel came before it" in message, message
    run = run_schedule(target, Schedule(ops=(Call(at_ms=0, operation="lose"),)))
    assert [(e.kind, e.detail) for e in run.trace if e.kind.startswith("call.")] == [
        ("call.raised", "lose: DoubleFire: [AlreadyCalledError] request 0 answered already")]
    assert [v.invariant for v in check(run)] == ["completion.once"]


class GatheredDoubleFire(Answers):
    """BUG: ``lose_all()`` answers through ``gatherResults(consumeErrors=True)`` (or a ``DeferredList`` with
    ``fireOnOneErrback``) over work one of which a double fire failed: a ``FirstError`` carrying ``DoubleFire``
    (or Twisted's own ``AlreadyCalledError``), one ``FirstError`` deep or two."""

    error: type[defer.AlreadyCalledError] = DoubleFire
    how = "gather"

    def lose_all(self) -> defer.Deferred:
        failed = defer.fail(self.error("request 0 answered already"))
        if self.how == "gather":
            return defer.gatherResults([failed], consumeErrors=True)
        if self.how == "list":
            return defer.DeferredList([failed], fireOnOneErrback=True, consumeErrors=True)
        return defer.gatherResults([defer.gatherResults([failed], consumeErrors=True)], consumeErrors=True)


@pytest.mark.parametrize("how", ["gather", "list", "nested"])
@pytest.mark.parametrize("error", [DoubleFire, defer.AlreadyCalledError], ids=["renamed", "twisted"])
def test_a_double_fire_carried_by_a_first_error_is_completion_once_by_its_class(how: str, error) -> None:
    """Session 14: the class test (``describe.double_fire``) looks inside a FirstError: carried, a renamed
    subclass was errors.operation's, and either class a declared refusal under a broad ``raises`` (judged by
    nothing). Twisted's own class, carried, keeps its text (named in it already)."""
    subject = type("Subject", (GatheredDoubleFire,), {"error": error, "how": how})
    target = Target(build=subject, operations={"lose_all": Operation(lambda s: s.lose_all(), raises=(Exception,))})
    run = run_schedule(target, Schedule(ops=(Call(at_ms=0, operation="lose_all"),)))
    [(kind, detail)] = [(e.kind.value, e.detail) for e in run.trace if e.kind.startswith("call.")]
    assert kind == "call.failure" and detail.startswith("lose_all: FirstError: ")
    assert ("[AlreadyCalledError] FirstError[#0" in detail) is (error is DoubleFire), detail
    assert "completion.once" in [v.invariant for v in check(run)]
