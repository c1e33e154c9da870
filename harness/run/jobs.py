"""Jobs: harness-made callables whose behaviour comes from the schedule.

The subject calls a job to do a unit of work. Each call is an *attempt*; the
job records in the trace, as ground truth, when each attempt started and how
it ended (``job.finish``, ``job.fail``, ``job.cancel``). Invariants trust these
events, never the subject's own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from harness.run.clock import FaultClock
from harness.model.faults import CancellerError, InjectedError
from harness.model.schedule import JobSpec
from harness.model.trace import EventKind, Trace


class Job:
    """One unit of work handed to the subject; calling it starts an attempt.

    Attempt k behaves as ``specs[k]``, the last spec repeating, so a schedule
    can say "fail twice, then succeed" for code that retries. ``key`` is the
    key it was submitted under (0 when the target declares no ``keys``).
    """

    __slots__ = ("id", "specs", "key", "calls", "pending", "_clock", "_trace", "_errors")

    def __init__(
        self,
        job_id: int,
        specs: tuple[JobSpec, ...],
        clock: FaultClock,
        trace: Trace,
        errors: Mapping[str, type[BaseException]],
        key: int = 0,
    ) -> None:
        self.id = job_id
        self.specs = specs
        self.key = key
        self.calls = 0
        #: The Deferred of each attempt not settled yet, by attempt: held until it fires.
        self.pending: dict[int, defer.Deferred[Any]] = {}
        self._clock = clock
        self._trace = trace
        self._errors = errors

    def __repr__(self) -> str:
        return f"<Job {self.id}>"

    def spec(self, attempt: int) -> JobSpec:
        return self.specs[min(attempt, len(self.specs) - 1)]

    def result(self, attempt: int) -> str:
        """The value attempt ``attempt`` delivers when it succeeds."""
        return f"job{self.id}.{attempt}"

    def error(self, attempt: int) -> BaseException:
        error_type = self._errors.get(self.spec(attempt).error, InjectedError)
        return error_type(f"injected by job {self.id} attempt {attempt}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        attempt = self.calls
        self.calls += 1
        spec = self.spec(attempt)
        record = self._trace.record
        kind = spec.kind
        record(EventKind.JOB_START, self.id, kind, attempt)
        if kind == "raise":
            error = self.error(attempt)
            record(EventKind.JOB_FAIL, self.id, type(error).__name__, attempt)
            raise error
        if kind == "value":
            record(EventKind.JOB_FINISH, self.id, "", attempt)
            return self.result(attempt)
        if kind == "immediate":
            record(EventKind.JOB_FINISH, self.id, "", attempt)
            return defer.succeed(self.result(attempt))
        timer: list[IDelayedCall] = []

        def cancel(d: defer.Deferred[Any]) -> None:
            if timer and timer[0].active():
                timer[0].cancel()
            if spec.canceller_raises:
                record(EventKind.JOB_CANCEL, self.id, "canceller raised", attempt)
                raise CancellerError(f"canceller of job {self.id} failed")
            record(EventKind.JOB_CANCEL, self.id, "", attempt)
            self.pending.pop(attempt, None)  # Deferred.cancel fails it next

        d: defer.Deferred[Any] = defer.Deferred(cancel)
        self.pending[attempt] = d
        if kind in ("succeed", "fail"):
            timer.append(self._clock.callLater(spec.after_ms / 1000, self._settle, d, attempt))
        return d

    def release(self) -> None:
        """Let go of the attempts still pending: the run is over."""
        self.pending.clear()

    def _settle(self, d: defer.Deferred[Any], attempt: int) -> None:
        self.pending.pop(attempt, None)
        if self.spec(attempt).kind == "succeed":
            self._trace.record(EventKind.JOB_FINISH, self.id, "", attempt)
            d.callback(self.result(attempt))
        else:
            error = self.error(attempt)
            self._trace.record(EventKind.JOB_FAIL, self.id, type(error).__name__, attempt)
            d.errback(error)
