"""Delivery invariants: each caller gets the outcome of the execution that served it.

Outcomes name the attempt that made them (``harness.run.outcomes``),
so the harness knows which execution served each caller. Without sharing,
that must be the caller's own job (``errors.own_result``). With
``Target(shared=True)``, callers of one key may join one execution: each
must get the outcome of an execution of its own key that was running when
it was submitted or started after (``sharing.joined``; a finished one only
within ``cache_ms``), and cancelling one caller never fails another
(``sharing.isolated``). At most one execution per key at once is
``concurrency.key_limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.target import Target
from harness.model.known import known
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.facts import Attempt, Facts, JobFacts, facts_of
from harness.run.outcomes import Outcome, OutcomeKind, foreign_firings, received, served_by

if TYPE_CHECKING:
    from harness.run.runner import Run


def _delivered(facts: Facts, job: JobFacts) -> Outcome | None:
    """What the caller of ``job`` received, unless a cancel of its own came first, or a stop came
    first and it failed (stopping may fail callers; it never hands them another job's result)."""
    if job.periodic or job.fired is None or any(c < job.fired for c in job.cancels):
        return None
    outcome = received(facts, job)
    stop = facts.stop_for(job.submit)  # a restarted subject's: the stop that concerns this job
    if outcome is not None and outcome.kind == OutcomeKind.FAILURE and stop is not None and stop < job.fired:
        return None
    return outcome


def _what(outcome: Outcome) -> str:
    return f"delivered {outcome.value}" if outcome.kind == OutcomeKind.RESULT else f"failed with {outcome.error}"


class OwnResult(Invariant):
    """Without sharing, a caller never receives another job's value or error."""

    name = "errors.own_result"
    summary = "a caller receives its own job's result or error, never another job's"

    def applies(self, target: Target) -> bool:
        return target.kind == "submit" and not target.shared

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        if not foreign_firings(facts):
            return None  # every firing's outcome is its own job's (or names no attempt)
        for job in facts.jobs.values():
            outcome = _delivered(facts, job)
            if outcome is None or outcome.source is None or outcome.source[0] == job.id:
                continue
            other = outcome.source[0]
            return self.violation(
                run,
                f"job {job.id}'s Deferred {_what(outcome)} at {format_ms(outcome.t_us)}, which is job {other}'s "
                "outcome: results were handed to the wrong caller",
                [outcome.index, *(a.end for a in facts.jobs[other].attempts if a.end is not None)][:2],
            )
        return None


class Joined(Invariant):
    """Shared: each caller gets the outcome of a live execution of its key (a finished one only within cache_ms)."""

    name = "sharing.joined"
    summary = "each caller gets the outcome of an execution of its key it joined; a finished one is served again only within cache_ms"

    def applies(self, target: Target) -> bool:
        return target.shared

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        excused = [*target.rejects, target.cancel_error]
        if target.timeout_ms is not None:
            excused.append(target.timeout_error)
        for job in facts.jobs.values():
            outcome = _delivered(facts, job)
            if outcome is None or (outcome.kind == OutcomeKind.FAILURE and any(facts.is_error(outcome.index, t) for t in excused)):
                continue
            message = self._judge(facts, job, outcome, target.cache_ms)
            if message:
                return self.violation(run, message, [known(job.submit), outcome.index])
        return None

    @staticmethod
    def _judge(facts: Facts, job: JobFacts, outcome: Outcome, cache_ms: int | None) -> str | None:
        served = served_by(facts, job)
        caller = f"job {job.id} (key {job.key})"
        if served is None:
            if job.attempts:
                return None  # its own job ran: errors.propagate judges it
            return (
                f"{caller} never ran, yet its Deferred {_what(outcome)} at {format_ms(outcome.t_us)}, "
                f"and no execution of key {job.key} produced that"
            )
        source = facts.jobs[served.job]
        execution = f"job {served.job}" + (f" attempt {served.n}" if served.n else "")
        if source.key != job.key:
            return f"{caller} received the outcome of {execution}, which ran for key {source.key}"
        if served.end is not None and job.submit is not None and served.end < job.submit:
            gap = facts.time(job.submit) - facts.time(served.end)
            # A cache entry is dropped by a timer, which may fire late by the clock policy's stride and jitter.
            if cache_ms is None or gap > cache_ms * 1000 + facts.late_us:
                allowed = "no cache lifetime is declared" if cache_ms is None else f"the cache lifetime is {cache_ms}ms"
                return (
                    f"{caller}, submitted at {format_ms(facts.time(job.submit))}, was served the outcome of {execution}, "
                    f"which had finished {format_ms(gap)} earlier; {allowed}"
                )
        if served.end_kind == EventKind.JOB_CANCEL and served.job != job.id:
            message = _unlike_its_owner(facts, job, outcome, served, caller, execution)
            if message:
                return message
        if served.end_kind == EventKind.JOB_FAIL and outcome.kind == OutcomeKind.RESULT:
            return f"{caller} received {outcome.value} but the execution it joined ({execution}) failed"
        if served.end_kind == EventKind.JOB_FAIL and outcome.error != facts.event(known(served.end)).detail:
            return (
                f"{caller} failed with {outcome.error} but the execution it joined ({execution}) failed with "
                f"{facts.event(known(served.end)).detail}"
            )
        if served.end_kind == EventKind.JOB_FINISH and outcome.kind == OutcomeKind.FAILURE and outcome.source is None:
            return f"{caller} failed with {outcome.error} but the execution it joined ({execution}) succeeded"
        return None


def _unlike_its_owner(facts: Facts, job: JobFacts, outcome: Outcome, served: Attempt, caller: str, execution: str) -> str | None:
    """A caller that joined an execution the subject cancelled (its own timeout, say) gets what the caller
    that started it got: a cancelled execution has no outcome of its own, so the caller of its own job,
    answered in the instant of the cancel, still waiting then and not cancelled, is the reference. None when
    the outcomes match or there is no reference (that caller was cancelled or answered before, a stop came
    first, or it was answered later: then the joined caller may have been served otherwise)."""
    owner = facts.jobs[served.job]
    end = known(served.end)
    if owner.fired is None or owner.fired < end or facts.time(owner.fired) != facts.time(end):
        return None
    if any(c < owner.fired for c in owner.cancels):
        return None
    stop = facts.stop_for(owner.submit)
    if stop is not None and stop < end:
        return None
    reference = received(facts, owner)
    if reference is None:
        return None
    if reference.kind == outcome.kind and (reference.value if reference.kind == OutcomeKind.RESULT else reference.error) == (
        outcome.value if outcome.kind == OutcomeKind.RESULT else outcome.error
    ):
        return None
    return (
        f"{caller} {_what(outcome)} at {format_ms(outcome.t_us)}, but the execution it joined ({execution}), "
        f"cancelled by the subject at {format_ms(facts.time(end))}, answered its own caller (job {owner.id}) "
        f"otherwise: it {_what(reference)}; callers of one execution get the same outcome"
    )


class Isolated(Invariant):
    """Shared: cancelling one caller never fails another caller of the same key."""

    name = "sharing.isolated"
    summary = "cancelling one caller of a shared execution never fails another caller"

    def applies(self, target: Target) -> bool:
        # Whatever the cancel mode: a caller failed with the cancel error though never cancelled is wrong
        # even when no cancels are drawn (a target cannot declare cancellable=False and draw them).
        return target.shared

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        cancel_error = run.target.cancel_error
        name = cancel_error.__name__
        for job in facts.jobs.values():
            outcome = _delivered(facts, job)
            if outcome is None or outcome.kind != OutcomeKind.FAILURE or not facts.is_error(outcome.index, cancel_error):
                continue
            cancels = [c for other in facts.jobs.values() if other.key == job.key for c in other.cancels if c < outcome.index]
            cause = f"after job {facts.event(cancels[-1]).job} of the same key was cancelled" if cancels else "though nobody cancelled it"
            return self.violation(
                run,
                f"job {job.id} (key {job.key}) was never cancelled, yet its Deferred failed with {name} at "
                f"{format_ms(outcome.t_us)}, {cause}: cancelling one caller must not fail the others",
                [*cancels[-1:], outcome.index],
            )
        return None
