"""What a caller received, when it is a bare ``CancelledError``, is recorded without ``describe_error``'s work.

``steps.submitter``'s ``received`` records a ``CancelledError`` made without arguments, never raised, whose
failure holds no frames (what ``Deferred.cancel`` makes: most of the errors a run's callers receive) as
``_BARE_CANCELLED``, the text ``describe_error`` gives it. Every other error still goes through
``describe_error``; these tests hold each kind of cancellation error to what ``describe_error`` says of it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Target
from harness.model.schedule import JobSpec, Schedule, Submit
from harness.model.trace import EventKind, Trace
from harness.run import runner, steps
from harness.run.clock import FaultClock
from harness.run.describe import describe_error


class _Handing:
    """A subject whose ``submit`` hands back a Deferred the test fires."""

    def __init__(self) -> None:
        #: What each Deferred failed with, as its first errback saw it (before the harness's own callback).
        self.failures: list[Failure] = []

    def submit(self, job: object) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        d.addErrback(self._seen)
        return d

    def _seen(self, failure: Failure) -> Failure:
        self.failures.append(failure)
        return failure


class _Sub(defer.CancelledError):
    pass


class _OwnFailure(Failure):
    pass


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _cases() -> list[tuple[str, Any]]:
    """(name, how to fire a caller's Deferred) for each kind of cancellation error a caller may get."""
    late = defer.CancelledError()
    late_failure = Failure(late)  # its frames are read later, from its tb (None): none
    _raised(late)  # raised after its failure was made: describe_error names the place from the exception
    cleaned = Failure(_raised(defer.CancelledError()))
    cleaned.cleanFailure()  # no traceback left, but the frames it recorded
    # Never raised itself, but its failure given another's traceback: frames, which describe_error names
    elsewhere = Failure(defer.CancelledError(), defer.CancelledError, _raised(ValueError()).__traceback__)
    return [
        ("cancel", lambda d: d.cancel()),  # Deferred.cancel's own: the bare one
        ("bare errback", lambda d: d.errback(defer.CancelledError())),
        ("with a message", lambda d: d.errback(defer.CancelledError("why"))),
        ("with an empty argument", lambda d: d.errback(defer.CancelledError(""))),
        ("raised", lambda d: d.errback(Failure(_raised(defer.CancelledError())))),
        ("raised after its failure was made", lambda d: d.errback(late_failure)),
        ("cleaned", lambda d: d.errback(cleaned)),
        ("frames from elsewhere", lambda d: d.errback(elsewhere)),
        ("a subclass", lambda d: d.errback(_Sub())),
        ("a failure subclass", lambda d: d.errback(_OwnFailure(defer.CancelledError()))),
    ]


def _received() -> list[tuple[str, str, str]]:
    """(case, recorded detail, describe_error's text of what was received) for every case."""
    clock = FaultClock()
    trace = Trace.of_clock(clock)
    target = Target(build=lambda clock: _Handing())
    run = runner.Run(target=target, schedule=Schedule(()), trace=trace, clock=clock, subject=target.build(clock))
    submit = steps.submitter(run, target.error_types)
    cases = _cases()
    for job, (_, fire) in enumerate(cases):
        submit(Submit(0, job, JobSpec("hang")))
        fire(run.handles[job])
    got = run.subject.failures
    details = [event.detail for event in trace if event.kind == EventKind.FAILURE]
    assert len(details) == len(cases) == len(got)
    return [(name, detail, describe_error(f.value, f)) for (name, _), detail, f in zip(cases, details, got)]


def test_every_cancellation_error_is_recorded_as_describe_error_says() -> None:
    for name, detail, described in _received():
        assert detail == described, name


def test_the_cases_tell_the_bare_one_from_the_others() -> None:
    # (so that a shortcut taken too widely, for an error with a message, a place or frames, shows above)
    by_name = {name: detail for name, detail, _ in _received()}
    assert by_name["cancel"] == by_name["bare errback"] == steps._BARE_CANCELLED == "CancelledError: "
    assert by_name["with a message"] == "CancelledError: why"
    for name in ("raised", "raised after its failure was made", "cleaned", "frames from elsewhere"):
        assert by_name[name].startswith("CancelledError: (no message) raised at test_received_bare_cancel.py:"), name
    assert by_name["a subclass"] == "_Sub: "
