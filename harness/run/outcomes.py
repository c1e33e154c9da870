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
from typing import Any

from harness.model.trace import EventKind
from harness.model.known import known
from harness.run.facts import Attempt, Facts, JobFacts

_VALUE = re.compile(r"'job(\d+)\.(\d+)'")
_INJECTED = re.compile(r"(\w+): (['\"]?)injected by job (\d+) attempt (\d+)\2")

#: The job each firing's detail names (``_VALUE``'s or ``_INJECTED``'s job; None: it names no attempt), by
#: detail, worked out once per detail by ``_names_value`` and ``_names_error``: a run's firings repeat the same
#: few dozen details, and a dict lookup costs less than any test of the text (``str.startswith`` and ``rfind``
#: parse their arguments on every call on Python 3.11). Bounded, as the description caches: memory stays flat.
_VALUE_NAMES: dict[str, int | None] = {}
_ERROR_NAMES: dict[str, int | None] = {}
MAX_NAMES = 4_096
_UNSEEN: Any = object()


def _names_value(detail: str) -> int | None:
    """The job a ``result`` event's detail names (``'job3.0'``: 3), or None."""
    match = _VALUE.fullmatch(detail)
    return int(match[1]) if match else None


def _names_error(detail: str) -> int | None:
    """The job a failure's detail names (``ValueError: injected by job 3 attempt 0``: 3), or None."""
    match = _INJECTED.fullmatch(detail)
    return int(match[3]) if match else None


#: What ``foreign_firings`` reads per kind of firing: the names worked out so far, how to work one out, the kind.
_FIRINGS = ((_VALUE_NAMES, _names_value, EventKind.RESULT), (_ERROR_NAMES, _names_error, EventKind.FAILURE))


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
        events = facts.events
        # Each firing's detail looked up in the names worked out before (nearly every firing of a campaign
        # repeats a detail seen in an earlier run); the expression only for a detail seen first.
        for names, work_out, kind in _FIRINGS:
            for index in facts.by_kind.get(kind, ()):
                event = events[index]
                detail = event[4]
                named = names.get(detail, _UNSEEN)
                if named is _UNSEEN:
                    named = work_out(detail)
                    if len(names) >= MAX_NAMES:
                        names.clear()
                    names[detail] = named
                if named is not None and named != event[2]:
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
