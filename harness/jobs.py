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

from .clock import FaultClock
from .faults import InjectedError
from .schedule import JobSpec
from .trace import Trace


class Job:
    """One unit of work handed to the subject; calling it starts an attempt."""

    __slots__ = ("id", "spec", "calls", "_clock", "_trace", "_error_type")

    def __init__(
        self, job_id: int, spec: JobSpec, clock: FaultClock, trace: Trace, errors: Mapping[str, type[BaseException]]
    ) -> None:
        self.id = job_id
        self.spec = spec
        self.calls = 0
        self._clock = clock
        self._trace = trace
        self._error_type = errors.get(spec.error, InjectedError)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.spec.kind}>"

    def result(self, attempt: int) -> str:
        """The value attempt ``attempt`` delivers when it succeeds."""
        return f"job{self.id}.{attempt}"

    def error(self, attempt: int) -> BaseException:
        return self._error_type(f"injected by job {self.id} attempt {attempt}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        attempt = self.calls
        self.calls += 1
        record = self._trace.record
        record("job.start", self.id, self.spec.kind, attempt)
        kind = self.spec.kind
        if kind == "raise":
            record("job.fail", self.id, self._error_type.__name__, attempt)
            raise self.error(attempt)
        if kind == "value":
            record("job.finish", self.id, "", attempt)
            return self.result(attempt)
        if kind == "immediate":
            record("job.finish", self.id, "", attempt)
            return defer.succeed(self.result(attempt))
        pending: list[IDelayedCall] = []

        def cancel(d: defer.Deferred[Any]) -> None:
            record("job.cancel", self.id, "", attempt)
            if pending and pending[0].active():
                pending[0].cancel()
            if self.spec.canceller_raises:
                raise InjectedError(f"canceller of job {self.id} failed")

        d: defer.Deferred[Any] = defer.Deferred(cancel)
        if kind in ("succeed", "fail"):
            pending.append(self._clock.callLater(self.spec.after_ms / 1000, self._settle, d, attempt))
        return d

    def _settle(self, d: defer.Deferred[Any], attempt: int) -> None:
        if self.spec.kind == "succeed":
            self._trace.record("job.finish", self.id, "", attempt)
            d.callback(self.result(attempt))
        else:
            self._trace.record("job.fail", self.id, self._error_type.__name__, attempt)
            d.errback(self.error(attempt))
