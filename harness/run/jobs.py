"""Jobs: harness-made callables whose behaviour comes from the schedule.

The subject calls a job to do a unit of work. Each call is an *attempt*; the
job records in the trace, as ground truth, when each attempt started and how
it ended (``job.finish``, ``job.fail``, ``job.cancel``). Invariants trust these
events, never the subject's own bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall

from harness.errors import TargetError
from harness.run.clock import FaultClock
from harness.model.faults import CancellerError, InjectedError, injected_message
from harness.model.schedule import JobSpec
from harness.model.trace import EventKind, Trace
from harness.run.describe import describe, describe_result
from harness.run.facts import CANCELLER_RAISED
from harness.run.session import running_guard

#: How much of a ``report_end`` reason the ``loop.end`` event keeps.
REASON_LIMIT = 120

#: The kinds of event a job records, read once: on Python 3.11 every attribute of an Enum class is
#: looked up through ``EnumType.__getattr__`` (about 150 ns), and a run's jobs record about 40 events.
_JOB_START, _JOB_FINISH, _JOB_FAIL, _JOB_CANCEL = (
    EventKind.JOB_START, EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL
)
_TIMEOUT_RESTART, _SUBMIT, _SUBMIT_RAISED = EventKind.TIMEOUT_RESTART, EventKind.SUBMIT, EventKind.SUBMIT_RAISED


class Job:
    """One unit of work handed to the subject; calling it starts an attempt.

    Attempt k behaves as ``specs[k]``, the last spec repeating, so a schedule
    can say "fail twice, then succeed" for code that retries. ``key`` is the
    key it was submitted under (0 when the target declares no ``keys``).
    ``specs`` may be given as the one spec of a job that is not retried (no
    tuple made for it: a run makes about 40 jobs).
    """

    __slots__ = ("id", "first", "then", "key", "calls", "pending", "_clock", "_trace", "_errors")

    def __init__(
        self,
        job_id: int,
        specs: tuple[JobSpec, ...] | JobSpec,
        clock: FaultClock,
        trace: Trace,
        errors: Mapping[str, type[BaseException]],
        key: int = 0,
    ) -> None:
        self.id = job_id
        self.then: tuple[JobSpec, ...]
        if isinstance(specs, JobSpec):
            self.first, self.then = specs, ()
        else:
            self.first, self.then = specs[0], specs[1:]
        self.key = key
        self.calls = 0
        #: The Deferred of each attempt not settled yet, by attempt: held until it fires.
        self.pending: dict[int, defer.Deferred[Any]] = {}
        self._clock = clock
        self._trace = trace
        self._errors = errors

    def __repr__(self) -> str:
        return f"<Job {self.id}>"

    @property
    def specs(self) -> tuple[JobSpec, ...]:
        """How each attempt behaves, in turn (the last repeating)."""
        return (self.first, *self.then)

    def spec(self, attempt: int) -> JobSpec:
        then = self.then
        if not attempt or not then:
            return self.first
        return then[min(attempt, len(then)) - 1]

    def result(self, attempt: int) -> str:
        """The value attempt ``attempt`` delivers when it succeeds."""
        return f"job{self.id}.{attempt}"

    def error(self, attempt: int) -> BaseException:
        error_type = self._errors.get(self.spec(attempt).error, InjectedError)
        return error_type(injected_message(self.id, attempt))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        attempt = self.calls
        self.calls += 1
        spec = self.first if not attempt or not self.then else self.spec(attempt)
        trace = self._trace
        kind = spec.kind
        # The attempt's events appended as ``trace.record`` appends them (``Trace.record``: a call cost more).
        if not trace.closed:
            trace.raw.append((trace.stamps.now_us, _JOB_START, self.id, attempt, kind))
        if kind == "raise":
            error = self.error(attempt)
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _JOB_FAIL, self.id, attempt, type(error).__name__))
            raise error
        if kind == "value":
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _JOB_FINISH, self.id, attempt, ""))
            return self.result(attempt)
        if kind == "immediate":
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _JOB_FINISH, self.id, attempt, ""))
            return defer.succeed(self.result(attempt))
        pending = _Pending(self, attempt, spec.canceller_raises)
        d: defer.Deferred[Any] = defer.Deferred(pending.cancel)
        self.pending[attempt] = d
        if kind in ("succeed", "fail"):
            # The harness's own call: the runner's timer events leave it out (``FaultClock.call_quietly``).
            pending.timer = self._clock.call_quietly(spec.after_ms / 1000, self._settle, d, attempt)
        return d

    def report_end(self, reason: object = "") -> None:
        """The work of a periodic target: say that the loop calling it has ended on purpose, and why.

        A loop may end on purpose (a lease renewer that lost its lease) and tell
        its owner through a callback of its own, which the harness cannot see:
        wire that callback here (``on_lost=lambda: work.report_end("lease
        lost")``). The report is recorded as a ``loop.end`` event (``reason``
        described on one line); ``time.loop_died`` takes it as the loop's report
        of its end, and ``time.after_end`` holds the loop to it: no call of the
        work starts after it (one in flight may still end, its failure not
        judged). Reporting again is harmless (the first report counts); a
        report after ``stop()`` is judged by nothing. A job of a submit target
        has it too, and its report is judged by nothing.
        """
        self._trace.record(EventKind.LOOP_END, self.id, describe_result(reason, REASON_LIMIT))

    def restart_timeout(self, like: Job | None = None) -> None:
        """With ``timeout_from="glue"``: this job's timeout T runs from this instant on (an idle session's
        timer reset by activity), or, given ``like``, another job of the run, from where that job's runs now
        (a deadline shared by a group: a barrier generation's, from its first arrival). Recorded as a
        ``timeout.restart`` event; ``time.timeout`` reads it. Harmless, and judged by nothing, otherwise.

        A ``like`` job with no deadline to share is a mistake of the glue, refused: one not submitted in
        this run (a periodic target's work, one whose submit raised, another run's) or whose deadline is
        off (``stop_timeout()``); or one whose submit was still under way and raised after the call
        (``refuse_likes_of_raised``, when it raised). The run ends with a one-line ``TargetError`` naming both jobs and the fix
        (a target error, not a violation of the subject), even when the glue is a Deferred's callback that
        Twisted would catch the error in; outside a run, the ``TargetError`` is raised here.
        """
        if like is None:
            detail = ""
        else:
            wrong = self._no_deadline_like(like)
            if wrong is not None:
                _refuse_like(self.id, f"job {like.id}" if isinstance(like, Job) else describe(like, 40), wrong)
            detail = f"job {like.id}"
        self._trace.record(EventKind.TIMEOUT_RESTART, self.id, detail)

    def _no_deadline_like(self, like: object) -> str | None:
        """Why ``like`` has no deadline for ``restart_timeout`` to share (``None``: it has one). Read from the trace
        (its last ``timeout.restart``, else its submission), as ``time.timeout`` reads it: glue calls are few."""
        if not isinstance(like, Job):
            return f"like= takes a job the harness handed to the subject, got {describe(like, 40)}"
        trace = self._trace
        if like._trace is not trace:
            return f"job {like.id} is another run's (kept by the subject or its glue since)"
        if trace.closed:
            return None  # the run is over: nothing is judged
        for _t, kind, job, _attempt, detail in reversed(trace.raw):
            if job != like.id:
                continue
            if kind is _TIMEOUT_RESTART:
                return f"job {like.id}'s deadline is off (its glue called stop_timeout())" if detail == "stopped" else None
            if kind is _SUBMIT:
                return None
            if kind is _SUBMIT_RAISED:
                return f"job {like.id} has no deadline (its submit raised)"
        return f"job {like.id} was never submitted (a periodic target's work has no deadline)"

    def stop_timeout(self) -> None:
        """With ``timeout_from="glue"``: this job has no timeout from now on, until ``restart_timeout()`` (an
        idle timer disarmed). Recorded as a ``timeout.restart`` event with the detail ``stopped``."""
        self._trace.record(EventKind.TIMEOUT_RESTART, self.id, "stopped")

    def release(self) -> None:
        """Let go of the attempts still pending: the run is over."""
        self.pending.clear()

    def _settle(self, d: defer.Deferred[Any], attempt: int) -> None:
        self.pending.pop(attempt, None)
        trace = self._trace  # its events appended as ``trace.record`` appends them (``Trace.record``)
        spec = self.first if not attempt or not self.then else self.spec(attempt)  # (as __call__: no call for a first attempt)
        if spec.kind == "succeed":
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _JOB_FINISH, self.id, attempt, ""))
            d.callback(self.result(attempt))
        else:
            error = self.error(attempt)
            if not trace.closed:
                trace.raw.append((trace.stamps.now_us, _JOB_FAIL, self.id, attempt, type(error).__name__))
            d.errback(error)


def refuse_likes_of_raised(trace: Trace, job_id: int) -> None:
    """After job ``job_id``'s submit raised: refuse the earliest ``restart_timeout(like=job <job_id>)`` another
    job's glue called while that submit was still under way (the call's own check found the job submitted, with
    a deadline to share; it has none now). Scans back to the job's ``submit`` event: a raise is rare, and close."""
    named, found = f"job {job_id}", None
    for _t, kind, job, _attempt, detail in reversed(trace.raw):
        if job == job_id and kind is _SUBMIT:
            break
        if kind is _TIMEOUT_RESTART and detail == named and job != job_id:
            found = job
    if found is not None:
        _refuse_like(found, named, f"job {job_id} has no deadline (its submit, under way then, raised after the call)")


def _refuse_like(job_id: int, named: str, wrong: str) -> NoReturn:
    """Refuse job ``job_id``'s ``restart_timeout(like=<named>)``: ``wrong`` says why that has no deadline to share."""
    _refuse_glue(f"job {job_id}'s restart_timeout(like={named})", (
        f"{wrong}, so job {job_id}'s deadline would be off too, judged by nothing: give like= a job "
        "whose deadline runs (the group's first member still waiting), restart this one now with "
        "restart_timeout(), or switch it off with stop_timeout()"))


def _refuse_glue(called: str, why: str) -> NoReturn:
    """Refuse a mistake of the target's glue: through the running run's escape guard (the run ends with a
    ``TargetError`` saying "the target called <called> ...; <why>"), or, outside a run, at once."""
    guard = running_guard()
    if guard is not None:
        guard.refuse(called, why)
    raise TargetError(f"the target called {called}; {why}")


class _Pending:
    """The canceller of one pending attempt (a small object, not a closure: a run makes one per attempt)."""

    __slots__ = ("job", "attempt", "canceller_raises", "timer")

    def __init__(self, job: Job, attempt: int, canceller_raises: bool) -> None:
        self.job = job
        self.attempt = attempt
        self.canceller_raises = canceller_raises
        #: The call that settles the attempt after its duration (None: it hangs until cancelled).
        self.timer: IDelayedCall | None = None

    def cancel(self, d: defer.Deferred[Any]) -> None:
        timer, job = self.timer, self.job
        if timer is not None and timer.active():
            timer.cancel()
        trace = job._trace
        if self.canceller_raises:
            trace.record(_JOB_CANCEL, job.id, CANCELLER_RAISED, self.attempt)
            raise CancellerError(f"canceller of job {job.id} failed")
        if not trace.closed:  # trace.record(_JOB_CANCEL, job.id, "", attempt), appended here (``Trace.record``)
            trace.raw.append((trace.stamps.now_us, _JOB_CANCEL, job.id, self.attempt, ""))
        job.pending.pop(self.attempt, None)  # Deferred.cancel fails it next
