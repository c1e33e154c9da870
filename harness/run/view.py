"""The documented, typed view of a run: what user invariants read instead of trace strings.

``RunView.of(run)`` (or ``run.view``) turns the trace of a finished run into
records: one ``JobRecord`` per submitted job (its key, priority, attempts
with start and end times and how each ended, what its caller received and
when it was cancelled, which execution served it), one ``CallRecord`` per
target operation call, and a few queries invariants need (what ran at a
virtual time, what a caller received, which execution served a caller). It
is built on ``harness.run.facts``, the index the built-in invariants
use, so a user invariant sees exactly what they see. Times are virtual
microseconds (``t_us``), as in the trace, monotonic; the ``*wall_us`` fields
and ``wall_us(index)`` give what the subject's ``clock.seconds()`` read then
(monotonic time plus the wall-clock jumps so far), and ``late_us`` how late
the clock policy lets a call fire. ``timers`` holds the subject's own delayed
calls (``harness.run.timers``), read from the trace only when asked for. The
reference is docs/run-api.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from harness.run.facts import Attempt, Facts, JobFacts, facts_of
from harness.run.answers import read_answer
from harness.run.outcomes import AttemptOutcome, Outcome, OutcomeKind, received, served_by
from harness.run.timers import TimerRecord, read_timers, timer_name
from harness.model.schedule import Call, Jump
from harness.model.trace import EventKind, as_event
from harness.model.known import known

if TYPE_CHECKING:
    from harness.run.runner import Run
    from harness.model.trace import Event

__all__ = ["AttemptRecord", "CallRecord", "EventKind", "JobRecord", "RunView", "Step", "StepKind", "TimerRecord"]


class StepKind(StrEnum):
    """What a ``Step`` is: an attempt starts or ends, or an operation is called."""

    START = "start"
    END = "end"
    CALL = "call"


@dataclass(frozen=True)
class AttemptRecord:
    """One call of a job by the subject: ``n`` counts from 0 (later ones are retries).

    ``outcome`` is an ``AttemptOutcome`` (``"finished"``, ``"failed"``,
    ``"cancelled"``) or None (still running when the run ended); ``error`` the
    exception type of a failure. ``canceller_raised``: its Deferred was
    cancelled (``outcome`` ``"cancelled"``, ``end_us`` the cancel) but the
    job's own canceller raised, so the job never ends: it keeps whatever it
    holds, and ``running_at`` counts it as running from then on.
    """

    job: int
    n: int
    behaviour: str
    start_us: int
    end_us: int | None
    outcome: AttemptOutcome | None
    error: str | None
    #: What ``clock.seconds()`` read at the start and end (monotonic time plus the jumps so far).
    start_wall_us: int | None = None
    end_wall_us: int | None = None
    canceller_raised: bool = False
    #: The trace indices of the ``job.start`` event and of the event that ended the attempt (None: still
    #: running when the run ended), as ``CallRecord.index`` and ``TimerRecord.set_index``: they order
    #: an attempt against an operation, a submission or a timer within one instant, which times cannot.
    start_index: int = -1
    end_index: int | None = None

    def running_at(self, t_us: int) -> bool:
        """Started at or before ``t_us`` and not ended before it (an attempt whose canceller raised never ends)."""
        return self.start_us <= t_us and (self.end_us is None or self.canceller_raised or self.end_us > t_us)


@dataclass(frozen=True)
class JobRecord:
    """One submitted job and its caller.

    ``received`` is what the caller's Deferred delivered first (None: never
    fired); ``cancelled_us`` when the harness cancelled it (``cancel_indices``
    where in the trace); ``served_by`` which attempt's outcome it received
    (its own, or, for a shared target, the execution it joined).
    """

    id: int
    key: int
    priority: int
    periodic: bool
    submitted_us: int | None
    attempts: tuple[AttemptRecord, ...]
    received: Outcome | None
    cancelled_us: tuple[int, ...]
    served_by: AttemptRecord | None
    #: What ``clock.seconds()`` read when the job was submitted.
    submitted_wall_us: int | None = None
    #: The trace index of the ``submit`` event (None: never submitted), to order the submission against
    #: other events of the same instant (an operation's ``CallRecord.index``, an attempt's ``start_index``).
    submit_index: int | None = None
    #: The trace indices of the ``cancel`` events, one per entry of ``cancelled_us``: order a cancel against
    #: a start, an answer or an operation of the same instant (review 10, finding 5).
    cancel_indices: tuple[int, ...] = ()

    @property
    def ran(self) -> bool:
        return bool(self.attempts)


@dataclass(frozen=True)
class CallRecord:
    """One target operation call: its name and arguments, when, and what it raised (exception type)."""

    operation: str
    args: tuple[Any, ...]
    t_us: int
    raised: str | None
    declared: bool
    #: What ``clock.seconds()`` read when the operation was called.
    wall_us: int | None = None
    #: The trace index of the ``call`` event (as ``Outcome.index``): relate a call to other events.
    index: int = -1
    #: What the Deferred the operation returned delivered first, or the plain value it returned (``kind``,
    #: ``value`` or ``error``, ``index`` and ``t_us`` of its ``call.result``, ``call.failure`` or
    #: ``call.refused`` event; a plain value as ``describe_returned`` records it); None if the call raised,
    #: returned None, or its Deferred never fired.
    answer: Outcome | None = None
    #: Its Deferred had not fired when the run ended stopped, with no work in flight and nothing
    #: scheduled (the ``call.pending`` event ``completion.operation`` judges).
    pending: bool = False


@dataclass(frozen=True)
class Step:
    """One moment in a run, in trace order: an attempt starts or ends, or an operation is called."""

    t_us: int
    kind: StepKind
    attempt: AttemptRecord | None = None
    call: CallRecord | None = None
    wall_us: int | None = None


class RunView:
    """The typed records of one finished run; build with ``RunView.of(run)``."""

    def __init__(self, run: Run) -> None:
        facts = facts_of(run)
        self.facts = facts
        self.events: list[Event] = list(map(as_event, facts.events))
        self._schedule = run.schedule
        self._skew = _skews(run.schedule, self.events)
        self._declared = tuple(sorted({t.__name__ for t in run.target.declared_errors}))
        #: The declared wrappers callers received, by the trace index of their failure (``Run.wrapped``).
        self._wrapped: dict[int, str] = getattr(run, "wrapped", None) or {}
        self._attempts = {id(a): _attempt(facts, a, self.wall_us) for job in facts.jobs.values() for a in job.attempts}
        self.jobs: dict[int, JobRecord] = {job.id: self._job(job) for job in facts.jobs.values()}
        self.calls: tuple[CallRecord, ...] = _calls(run, facts, self.wall_us)
        #: How late the clock policy lets a call fire after it is due, in microseconds: the
        #: stride (``schedule.clock.step_ms``) plus the jitter (``schedule.clock.jitter_ms``).
        self.late_us: int = facts.late_us

    def wall_us(self, index: int) -> int:
        """What ``clock.seconds()`` read at trace index ``index``, in whole microseconds: the event's
        monotonic ``t_us`` plus every wall-clock jump recorded up to it (without the clock's sub-microsecond drift)."""
        if index >= len(self._skew):  # a target invariant may read while the trace still grows
            self._skew = _skews(self._schedule, self.events)
        return self.events[index].t_us + self._skew[index]

    @classmethod
    def of(cls, run: Run) -> RunView:
        cached = getattr(run, "_view", None)
        if cached is None or cached.facts is not facts_of(run):
            # A cache kept on the run, which does not declare it (as facts_of keeps the facts):
            cached = run._view = cls(run)  # type: ignore[attr-defined]
        return cached

    def _job(self, job: JobFacts) -> JobRecord:
        served = served_by(self.facts, job)
        return JobRecord(
            id=job.id,
            key=job.key,
            priority=job.priority,
            periodic=job.periodic,
            submitted_us=self.facts.time(job.submit) if job.submit is not None else None,
            attempts=tuple(self._attempts[id(a)] for a in job.attempts),
            received=self._outcome(received(self.facts, job)),
            cancelled_us=tuple(self.facts.time(c) for c in job.cancels),
            served_by=self._attempts[id(served)] if served is not None else None,
            submitted_wall_us=self.wall_us(job.submit) if job.submit is not None else None,
            submit_index=job.submit,
            cancel_indices=job.cancels,
        )

    def _outcome(self, outcome: Outcome | None) -> Outcome | None:
        """``outcome`` with ``error_is`` filled in: the declared types its error is an instance of (the
        ``error.is`` event after the firing when the harness recorded one, else those of the same name);
        and ``wrapper``: the declared wrapper the caller received, when ``wraps`` unwrapped its failure."""
        if outcome is None or outcome.error is None:
            return outcome
        marked = self.facts.declared.get(outcome.index)
        names = tuple(sorted(marked)) if marked is not None else tuple(n for n in self._declared if n == outcome.error)
        wrapper = self._wrapped.get(outcome.index)
        if wrapper is not None:
            return replace(outcome, error_is=names, wrapper=wrapper)
        return replace(outcome, error_is=names) if names else outcome

    def attempts(self) -> list[AttemptRecord]:
        """Every attempt, in the order they started."""
        return [self._attempts[id(a)] for a in sorted(_all(self.facts), key=lambda a: a.start)]

    def running_at(self, t_us: int) -> list[AttemptRecord]:
        """The attempts running at virtual time ``t_us``."""
        return [a for a in self.attempts() if a.running_at(t_us)]

    def received(self, job: int) -> Outcome | None:
        """What job ``job``'s caller received (first firing of its Deferred), or None."""
        return self.jobs[job].received

    def served_by(self, job: int) -> AttemptRecord | None:
        """Which attempt's outcome job ``job``'s caller received."""
        return self.jobs[job].served_by

    def callers_of(self, attempt: AttemptRecord) -> list[JobRecord]:
        """The callers an execution served: its own job's and those that joined it."""
        return [job for job in self.jobs.values() if job.served_by is attempt]

    @cached_property
    def _timers(self) -> tuple[tuple[TimerRecord, ...], int | None]:
        # Read on first use only: built-in invariants never ask, so a run whose own invariants do not pays nothing.
        return read_timers(self.events, self.wall_us)

    @property
    def timers(self) -> tuple[TimerRecord, ...]:
        """The subject's own delayed calls, in the order they were set: when each was set, due, and fired
        or cancelled (``TimerRecord``). The harness's own calls are never among them."""
        return self._timers[0]

    @property
    def timer_limit_index(self) -> int | None:
        """The trace index of the ``timer.limit`` event, after which no timer was recorded (None: all were)."""
        return self._timers[1]

    def timers_calling(self, function: Any) -> list[TimerRecord]:
        """The timers that call ``function`` (``Poller._poll``, a bound method, ``LoopingCall``), matched by the
        name the trace gives it, so an invariant names the function, not a string."""
        name = function if isinstance(function, str) else timer_name(function)
        return [timer for timer in self.timers if timer.function == name]

    def of_kind(self, kind: EventKind | str) -> Iterator[tuple[int, Event]]:
        """``(trace index, event)`` of every event of one kind.

        Raises ``ValueError`` for a string that names no ``EventKind``: a misspelt kind is an
        error, never an empty answer.
        """
        member = EventKind(kind)
        return ((i, e) for i, e in enumerate(self.events) if e.kind == member)

    def steps(self) -> Iterator[Step]:
        """Attempt starts and ends and operation calls, in the order they happened."""
        starts = {a.start: a for a in _all(self.facts)}
        ends = {a.end: a for a in _all(self.facts) if a.end is not None}
        calls = iter(self.calls)
        for index, event in enumerate(self.events):
            wall = self.wall_us(index)
            if index in starts:
                yield Step(event.t_us, StepKind.START, attempt=self._attempts[id(starts[index])], wall_us=wall)
            elif index in ends:
                yield Step(event.t_us, StepKind.END, attempt=self._attempts[id(ends[index])], wall_us=wall)
            elif event.kind == EventKind.CALL:
                call = next(calls, None)
                if call is not None:
                    yield Step(event.t_us, StepKind.CALL, call=call, wall_us=wall)


def _all(facts: Facts) -> Iterator[Attempt]:
    return (a for job in facts.jobs.values() for a in job.attempts)


def _skews(schedule: Any, events: list[Event]) -> list[int]:
    """Per trace index, the wall-clock skew (sum of jumps, microseconds) so far. Each ``clock.jump``
    event is paired with the schedule's next ``Jump`` (its detail string is never parsed)."""
    jumps = iter(op for op in schedule.ops if isinstance(op, Jump))
    skew, out = 0, []
    for event in events:
        if event.kind == EventKind.CLOCK_JUMP:
            op = next(jumps, None)
            skew += op.delta_ms * 1000 if op is not None else 0
        out.append(skew)
    return out


def _attempt(facts: Facts, a: Attempt, wall_us: Callable[[int], int]) -> AttemptRecord:
    error = facts.event(known(a.end)).detail if a.end_kind == EventKind.JOB_FAIL else None
    return AttemptRecord(
        job=a.job,
        n=a.n,
        behaviour=a.kind,
        start_us=facts.time(a.start),
        end_us=facts.time(a.end) if a.end is not None else None,
        outcome=AttemptOutcome.of(a.end_kind),
        error=error,
        start_wall_us=wall_us(a.start),
        end_wall_us=wall_us(a.end) if a.end is not None else None,
        canceller_raised=a.canceller_raised,
        start_index=a.start,
        end_index=a.end,
    )


def _calls(run: Run, facts: Facts, wall_us: Callable[[int], int]) -> tuple[CallRecord, ...]:
    """Pair each ``call`` event with its schedule operation (the detail is never parsed for the name)."""
    ops = iter(op for op in run.schedule.ops if isinstance(op, Call))
    out: list[CallRecord] = []
    events = list(map(as_event, facts.events))
    answers, pending = _answers(events)
    for index, event in enumerate(events):
        if event.kind != EventKind.CALL:
            continue
        op = next(ops)
        after = events[index + 1] if index + 1 < len(events) else None
        raised = declared = None
        if (
            after is not None and after.kind in (EventKind.CALL_RAISED, EventKind.CALL_REFUSED)
            and read_answer(after.detail)[1] is None and after.detail.startswith(f"{op.operation}: ")
        ):
            raised = after.detail[len(op.operation) + 2 :].split(":", 1)[0]
            declared = after.kind == EventKind.CALL_REFUSED
        out.append(CallRecord(
            op.operation, op.args, event.t_us, raised, bool(declared), wall_us(index), index,
            answer=_answer(events, answers.get(index), len(op.operation) + 2), pending=index in pending,
        ))
    return tuple(out)


_ANSWERS = frozenset({EventKind.CALL_RESULT, EventKind.CALL_FAILURE, EventKind.CALL_REFUSED})


def _answers(events: list[Event]) -> tuple[dict[int, int], set[int]]:
    """For each call whose Deferred answered, the trace index of its first answer, by the call's index;
    and the calls whose Deferred never fired (``call.pending``)."""
    answers: dict[int, int] = {}
    pending: set[int] = set()
    for index, event in enumerate(events):
        if event.kind in _ANSWERS or event.kind == EventKind.CALL_PENDING:
            call = read_answer(event.detail)[1]
            if call is None:
                continue
            if event.kind == EventKind.CALL_PENDING:
                pending.add(call)
            else:
                answers.setdefault(call, index)
    return answers, pending


def _answer(events: list[Event], index: int | None, skip: int) -> Outcome | None:
    """The ``Outcome`` of the answer event at ``index`` (its detail less the ``name: `` prefix of ``skip``
    characters and the call's index)."""
    if index is None:
        return None
    event = events[index]
    text = read_answer(event.detail)[0][skip:]
    if event.kind == EventKind.CALL_RESULT:
        return Outcome(OutcomeKind.RESULT, index, event.t_us, value=text)
    return Outcome(OutcomeKind.FAILURE, index, event.t_us, error=text.split(":", 1)[0])
