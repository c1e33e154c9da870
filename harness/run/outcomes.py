"""Outcomes: what each caller received, and which execution served it.

Every value a job delivers (``'job3.0'``: job 3, attempt 0) and every error
it injects (``injected by job 3 attempt 0``) names the attempt that made it.
So a caller's outcome is ground truth about which execution served it,
whatever the subject's own bookkeeping says: its own job's attempt, or, for
a shared target, the execution of the same key it joined. This module is the
one place that reads those detail strings; invariants and user code ask it.

It also names the closed vocabularies of outcomes: ``OutcomeKind`` (what a
caller received) and ``AttemptOutcome`` (how an attempt ended). Both are
``StrEnum``s, equal to the strings they replaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from harness.model.trace import EventKind
from harness.model.known import known
from harness.run.facts import Attempt, Facts, JobFacts

_VALUE = re.compile(r"'job(\d+)\.(\d+)'")
_INJECTED = re.compile(r"(\w+): (['\"]?)injected by job (\d+) attempt (\d+)\2")

# ``foreign_firings``'s tests before the expressions, for the first job ids: what follows ``'job`` in a
# job's own value, and ``injected by job `` in its own error.
_MARK = "injected by job "
_MARK_LENGTH = len(_MARK)
_PREFIXES = 512
_VALUE_PREFIXES = tuple(f"'job{job}." for job in range(_PREFIXES))
_OWN_SUFFIXES = tuple(f"{job} attempt " for job in range(_PREFIXES))


class OutcomeKind(StrEnum):
    """What a caller's Deferred delivered first: named after the trace event of the firing."""

    RESULT = "result"  #: a value (``EventKind.RESULT``)
    FAILURE = "failure"  #: an error (``EventKind.FAILURE``)


class AttemptOutcome(StrEnum):
    """How an attempt ended: named after the event that ended it (``job.finish``, ``job.fail``, ``job.cancel``)."""

    FINISHED = "finished"  #: it succeeded
    FAILED = "failed"  #: it failed (raised, or its Deferred failed)
    CANCELLED = "cancelled"  #: its own Deferred was cancelled

    @classmethod
    def of(cls, end_kind: EventKind | None) -> AttemptOutcome | None:
        """The outcome of an attempt that ended with an event of ``end_kind`` (None: still running)."""
        return _ENDED.get(end_kind) if end_kind is not None else None


_ENDED = {
    EventKind.JOB_FINISH: AttemptOutcome.FINISHED,
    EventKind.JOB_FAIL: AttemptOutcome.FAILED,
    EventKind.JOB_CANCEL: AttemptOutcome.CANCELLED,
}


@dataclass(frozen=True)
class Outcome:
    """What a caller's Deferred delivered (first firing).

    ``kind`` is ``OutcomeKind.RESULT`` or ``OutcomeKind.FAILURE`` (equal to
    ``"result"`` and ``"failure"``); ``value`` the result's
    description (``repr``, addresses masked); ``error`` the exception type
    name of a failure; ``source`` the ``(job, attempt)`` whose value or
    injected error it is, when the outcome names one; ``index`` the trace
    index of the firing and ``t_us`` its virtual time. ``error_is`` (filled
    in by ``harness.run.view``) names, sorted, the target's declared error
    types (``cancel_error``, ``timeout_error``, ``rejects``) the failure is an
    instance of: a subclass counts, and a same-named class that is not the
    declared one (the builtin ``TimeoutError`` for Twisted's) does not.
    """

    kind: OutcomeKind
    index: int
    t_us: int
    value: str | None = None
    error: str | None = None
    source: tuple[int, int] | None = None
    error_is: tuple[str, ...] = ()


def received(facts: Facts, job: JobFacts) -> Outcome | None:
    """What ``job``'s caller received, or None if its Deferred never fired."""
    fired = job.fired
    if fired is None:
        return None
    known = facts.outcomes.get(fired)  # memoised per firing: an Outcome is frozen, so it can be shared
    if known is not None:
        # Facts.outcomes holds Outcomes (only this function writes it), typed object since facts cannot import them.
        return known  # type: ignore[return-value]
    event = facts.event(fired)
    if event.kind == EventKind.RESULT:
        match = _VALUE.fullmatch(event.detail)
        source = (int(match[1]), int(match[2])) if match else None
        outcome = Outcome(OutcomeKind.RESULT, fired, event.t_us, value=event.detail, source=source)
    else:
        match = _INJECTED.fullmatch(event.detail)
        source = (int(match[3]), int(match[4])) if match else None
        outcome = Outcome(OutcomeKind.FAILURE, fired, event.t_us, error=facts.error_name(fired), source=source)
    facts.outcomes[fired] = outcome
    return outcome


def foreign_firings(facts: Facts) -> list[int]:
    """The trace indices of the firings (``result`` and ``failure`` events) whose outcome names an attempt
    of another job than the one whose Deferred fired, in trace order; memoised on the facts.

    Usually none: a caller gets what its own job made, or an error that names no attempt. So
    ``errors.own_result`` checks nothing more when this is empty (each job's outcome is one of these firings).
    """
    found = facts.foreign
    if found is None:
        found = []
        events, value, injected = facts.events, _VALUE.fullmatch, _INJECTED.fullmatch
        # Before each regular expression, a test that settles most firings at a fraction of its cost: a
        # value that begins ``'job<its own job>.`` names its own job's attempt or none; an error whose
        # detail does not hold ``injected by job``, or holds it last followed by ``<its own job> attempt``,
        # names none or its own (the expression ends the detail there: ``attempt <n>`` and a closing quote).
        for index in facts.by_kind.get(EventKind.RESULT, ()):
            event = events[index]
            detail, job = event[4], event[2]
            if detail.startswith(_VALUE_PREFIXES[job] if 0 <= job < _PREFIXES else f"'job{job}."):
                continue
            match = value(detail)
            if match is not None and int(match[1]) != job:
                found.append(index)
        for index in facts.by_kind.get(EventKind.FAILURE, ()):
            event = events[index]
            detail = event[4]
            mark = detail.rfind(_MARK)
            if mark < 0:
                continue
            job = event[2]
            if detail.startswith(_OWN_SUFFIXES[job] if 0 <= job < _PREFIXES else f"{job} attempt ", mark + _MARK_LENGTH):
                continue
            match = injected(detail)
            if match is not None and int(match[3]) != job:
                found.append(index)
        found.sort()
        facts.foreign = found
    return found


def attempt_of(facts: Facts, source: tuple[int, int]) -> Attempt | None:
    """The attempt ``(job, n)``, if the trace has it."""
    job = facts.jobs.get(source[0])
    if job is None:
        return None
    return next((a for a in job.attempts if a.n == source[1]), None)


def served_by(facts: Facts, job: JobFacts) -> Attempt | None:
    """The execution whose outcome ``job``'s caller received, or None.

    The attempt its outcome names; else (an error that names none, such as a
    timeout) its own last attempt that ended before the firing; else an
    attempt of the same key that ended at the instant of the firing: the
    last of those that fit the outcome (``_fits``: a failure, one that failed
    with that error or was cut by a cancel; a result, one that finished), else
    the last of them. A subject may end one execution of a key (its own
    timeout cancels it), start the next and only then fail the first one's
    callers, all in one instant: those callers were served by the execution
    whose end fits what they got, not by the newest one.
    """
    outcome = received(facts, job)
    if outcome is None:
        return None
    if outcome.source is not None:
        found = attempt_of(facts, outcome.source)
        if found is not None:
            return found
    own = [a for a in job.attempts if a.end is not None and a.end < outcome.index]
    if own:
        return own[-1]
    same_instant = [
        a
        for other in facts.jobs.values()
        if other.key == job.key and not other.periodic
        for a in other.attempts
        if a.end is not None and a.end < outcome.index and facts.time(a.end) == outcome.t_us
    ]
    if not same_instant:
        return None
    fitting = [a for a in same_instant if _fits(facts, a, outcome)]
    return max(fitting or same_instant, key=lambda a: known(a.end))


def _fits(facts: Facts, attempt: Attempt, outcome: Outcome) -> bool:
    """Whether ``attempt``'s end could have given ``outcome`` (one that names no attempt): a failure comes from
    an attempt that failed with that error, or from one that was cancelled (a timeout's or a cancel's error); a
    result from one that finished."""
    if outcome.kind == OutcomeKind.RESULT:
        return attempt.end_kind == EventKind.JOB_FINISH
    if attempt.end_kind == EventKind.JOB_CANCEL:
        return True
    return attempt.end_kind == EventKind.JOB_FAIL and facts.events[known(attempt.end)][4] == outcome.error


def callers_of(facts: Facts, attempt: Attempt) -> list[JobFacts]:
    """The callers an execution served (its own job's, and for a shared target, those that joined it)."""
    return [job for job in facts.jobs.values() if served_by(facts, job) is attempt]
