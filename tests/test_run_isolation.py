"""Nothing of an earlier run lands in a later run's trace: a failure an earlier run's subject left unhandled,
dropped during a later run, is not that run's.

A target that keeps its last subject in a class attribute (a registry of the instance built, a
singleton) keeps it past its run; the next run's ``build`` drops it, and Twisted logs the failed
Deferred it held ("Unhandled error in Deferred") inside that run. Recorded there, it failed the later
schedule with ``errors.unhandled`` for another schedule's error: a finding whose replay alone shows
nothing. The log capture tells the two apart by Twisted's count of Failures made
(``harness.guard.private_api.failures_made``) and leaves the earlier one to the startup observer, where
errors logged between runs go. (A failure the leftover makes during the later run, in a generator's
``finally`` say, is made then, and still counts as the later run's.)
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.logger import globalLogPublisher

from harness import JobSpec, Schedule, Submit, Target, check, run_schedule
from harness.run import logcapture


class _KeepsLast:
    """Keeps the last instance built; holds a failed Deferred nobody handles (this run's unhandled error)."""

    last: _KeepsLast | None = None

    def __init__(self, clock: Any) -> None:
        _KeepsLast.last = self  # drops the previous run's subject, in this run's build
        self.lost: defer.Deferred[Any] | None = None

    def submit(self, job: Any) -> defer.Deferred[Any]:
        if self.lost is None:
            self.lost = defer.fail(RuntimeError("made in an earlier run, never handled"))
        return defer.maybeDeferred(job)


def test_an_earlier_runs_unhandled_failure_stays_out_of_a_later_runs_trace(monkeypatch) -> None:
    seen: list[dict[str, Any]] = []

    def startup(event: dict[str, Any]) -> None:
        seen.append(event)

    # A startup observer of our own (the run takes it off the publisher and puts it back, as Twisted's).
    globalLogPublisher.addObserver(startup)
    monkeypatch.setattr(logcapture, "startup_log_observer", lambda: startup)
    target = Target(build=_KeepsLast)
    schedule = Schedule(ops=(Submit(0, 0, JobSpec(kind="succeed", after_ms=5)),))
    try:
        runs = [run_schedule(target, schedule) for _ in range(3)]
    finally:
        globalLogPublisher.removeObserver(startup)
        kept, _KeepsLast.last = _KeepsLast.last, None
        if kept is not None and kept.lost is not None:
            kept.lost.addErrback(lambda _: None)
    # Each run held its failure past its end (the class attribute): none is judged for another's.
    assert [[v.invariant for v in check(run)] for run in runs] == [[], [], []]
    assert runs[1].trace.events == runs[2].trace.events == runs[0].trace.events
    # Not swallowed: the two dropped in the later runs went where errors logged between runs go (with
    # whatever else was logged between these runs: other tests' garbage a sweep collected, say).
    messages = [event["log_failure"].getErrorMessage() for event in seen if "log_failure" in event]
    assert messages.count("made in an earlier run, never handled") == 2


def test_a_runs_own_unhandled_failure_is_still_its_own() -> None:
    class Drops:
        def __init__(self, clock: Any) -> None:
            pass

        def submit(self, job: Any) -> defer.Deferred[Any]:
            defer.fail(RuntimeError("dropped unhandled"))
            return defer.maybeDeferred(job)

    run = run_schedule(Target(build=Drops), Schedule(ops=(Submit(0, 0, JobSpec(kind="succeed", after_ms=5)),)))
    assert [v.invariant for v in check(run)] == ["errors.unhandled"]
