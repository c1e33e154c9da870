"""``time.gave_up_early``: a subject that gives up on a job before its ``retries + 1`` attempts failed.

``retries`` promises *at most* ``retries + 1`` attempts (``time.retries``); nothing held a subject to
making them. A retry queue dead-lettering a job one attempt too soon, or a dead-letter queue whose
``redrive()`` keeps the old attempt count (a redriven job dead-lettered again after one attempt: review
11, finding 6), passed. ``Target(gives_up_after_retries=True)`` declares the promise, judged two ways:

* a caller that fails with its job's own error (the one an attempt raised, unwrapped by ``wraps``) had
  ``retries + 1`` attempts of its job start before that answer, unless a whole request's deadline
  (``timeout_ms`` from ``"submit"``) may come before the next retry starts (the answer plus the retry's
  longest backoff and the clock's lateness reaches it: a client whose jittered delay would pass the
  deadline gives up with the last error), or a wall-clock jump came between the submission and the answer
  (a deadline kept on ``seconds()`` moves with it). Only such a failure is judged: a
  ``timeout_error`` (an attempt's or the whole request's deadline), a ``rejects`` type (a circuit
  breaker's refusal), an error of the subject's own, or a ``CancelledError`` ends the attempts for a
  reason the subject may have; a caller's cancel or a ``stop()`` before the answer excuses it too.
* a run of the job a ``redrives`` operation started afresh (``harness.invariants.redrives``; its answer,
  the operation's new Deferred, is not watched) whose attempts all failed, fewer than ``retries + 1``,
  when the run drained with nothing left scheduled and no attempt of any job running (no retry could
  still come, not even one waiting for a slot) and no ``stop()`` or cancel of the job came since the
  run began.

A subject that gives up early on purpose on some errors (a non-retryable error, a breaker that opens
during the retries and fails the caller with the last error) cannot declare it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.invariants.base import Invariant, Violation
from harness.invariants.redrives import runs
from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.run.facts import Attempt, Facts, JobFacts, facts_of
from harness.run.outcomes import OutcomeKind, received

if TYPE_CHECKING:
    from harness.run.runner import Run


class GaveUpEarly(Invariant):
    """With ``gives_up_after_retries``: a job is given up (its caller failed with its error, or a redriven
    run left) only after ``retries + 1`` failed attempts."""

    name = "time.gave_up_early"
    summary = (
        "with gives_up_after_retries declared, a caller fails with its job's own error only after retries+1 "
        "attempts, and a redriven run is left only after retries+1 failed attempts"
    )

    def applies(self, target: Target) -> bool:
        return target.gives_up_after_retries

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        retries = run.target.retries
        assert isinstance(retries, int)  # Target refuses gives_up_after_retries without a whole number
        redrives = bool(run.target.redriving_operations)
        for job in facts.jobs.values():
            if not job.attempts:
                continue
            split = runs(run.target, facts, job) if redrives and len(job.attempts) > 1 else [job.attempts]
            found = self._answer(run, facts, job, split[0], retries)
            if found is None and len(split) > 1:
                found = self._left(run, facts, job, split[-1], retries)
            if found is not None:
                return found
        return None

    def _answer(self, run: Run, facts: Facts, job: JobFacts, attempts: tuple[Attempt, ...], retries: int) -> Violation | None:
        """The caller's failure with the job's own error, after fewer than ``retries + 1`` attempts of its first run."""
        outcome = received(facts, job)
        if outcome is None or outcome.kind != OutcomeKind.FAILURE or outcome.source is None or outcome.source[0] != job.id:
            return None
        fired = outcome.index
        stop = facts.stop_for(job.submit)
        if any(c < fired for c in job.cancels) or stop is not None and stop < fired:
            return None
        before = [a for a in attempts if a.start < fired]
        if len(before) >= retries + 1 or _past_deadline(run.target, facts, job, fired, len(before)):
            return None
        said = (
            f"job {job.id}'s caller failed at {format_ms(outcome.t_us)} with its attempt {outcome.source[1]}'s "
            f"{outcome.error} after {len(before)} attempt{'' if len(before) == 1 else 's'}"
        )
        return self._early(run, said, retries, [a.start for a in before] + [fired])

    def _left(self, run: Run, facts: Facts, job: JobFacts, attempts: tuple[Attempt, ...], retries: int) -> Violation | None:
        """A redriven run whose attempts all failed, fewer than ``retries + 1``, with nothing left to retry it."""
        drained = facts.idle_drain()
        if drained is None or len(attempts) >= retries + 1:
            return None
        if any(a.end is None or a.end_kind != EventKind.JOB_FAIL or a.end > drained for a in attempts):
            return None
        begin = attempts[0].start
        if any(begin < c for c in job.cancels) or any(begin < s < drained for s in facts.stops):
            return None
        if any(a.running_at(drained) for other in facts.jobs.values() for a in other.attempts):
            return None  # a retry may wait for a slot an attempt still holds (a hung job, a raising canceller's)
        said = (
            f"job {job.id}'s run since a redrive (attempt {attempts[0].n}) was left after {len(attempts)} failed "
            f"attempt{'' if len(attempts) == 1 else 's'}, with nothing scheduled when the run drained at "
            f"{format_ms(facts.time(drained))}"
        )
        return self._early(run, said, retries, [a.start for a in attempts] + [drained])

    def _early(self, run: Run, said: str, retries: int, events: list[int]) -> Violation:
        """The violation: what gave the job up, and what the declaration promises."""
        promise = f"gives_up_after_retries promises {retries + 1} (1 + {retries} retries) before the job is given up"
        return self.violation(run, f"{said}; {promise}", events)


def _past_deadline(target: Target, facts: Facts, job: JobFacts, answer: int, retry: int) -> bool:
    """With a whole request's deadline (``timeout_ms`` from ``"submit"``): the next retry, ``retry``, may not
    start before it (the answer plus the retry's longest backoff and the clock's lateness reaches it), so giving
    up then, with the last error (or a wrapper carrying it), may be the deadline's doing, not a retry count's."""
    if target.timeout_ms is None or target.timeout_from != "submit" or job.submit is None:
        return False
    if facts.jump_between(job.submit, answer):
        return True  # a wall-clock jump moves a deadline kept on seconds(): the subject may see it passed
    wait = target.backoff_range(retry)
    high_us = int(wait[1] * 1000) if wait is not None else 0
    return facts.time(answer) + high_us + facts.late_us >= facts.time(job.submit) + target.timeout_ms * 1000
