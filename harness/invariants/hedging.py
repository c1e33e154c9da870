"""Hedging invariants: a job's copies, started beside it when it has not answered in time.

A target declaring ``hedge_ms=H`` (and ``hedges=N``, 1 by default) promises
a hedged request: the subject calls the job once, and while the caller
still waits and the job has not succeeded, calls it again H after the
latest copy started (at once after a copy failed, if it likes), up to N
copies beyond the first; the first answer wins, and every copy still
running when the caller's Deferred fires is cancelled in that instant.

Each copy is an attempt of the job (``0#1`` in the trace is job 0's first
hedge). Times are monotonic virtual time, as for every time invariant: a
copy never comes before H (a wall-clock jump excuses nothing), and it may
come late by the clock's lateness (``Facts.late_us``), no more. Nothing here
applies to a target without ``hedge_ms``: ``applies`` keeps them out of its
runs altogether.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.known import known
from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.facts import Attempt, Facts, JobFacts, facts_of
from harness.run.runner import DRAIN_SLACK_MS

if TYPE_CHECKING:
    from harness.run.runner import Run


class _Hedging(Invariant):
    """The promise of a target that declares ``hedge_ms``."""

    def applies(self, target: Target) -> bool:
        return target.hedge_ms is not None and target.kind == "submit"


def copy_name(attempt: Attempt) -> str:
    """How messages name a copy: "attempt 1 (0#1 in the trace)"."""
    return f"attempt {attempt.n} ({attempt.job}#{attempt.n} in the trace)"


def declared(target: Target) -> str:
    """The declaration of copies, as messages quote it: ``hedge_ms=100, hedges=2`` or ``fanout=3, quorum=2``."""
    if target.fanout is not None:
        return f"fanout={target.fanout}, quorum={target.quorum}"
    hedges = f", hedges={target.hedges}" if target.hedges is not None else ""
    return f"hedge_ms={target.hedge_ms}{hedges}"


class HedgeCount(_Hedging):
    """At most ``hedges + 1`` copies of a job in all (2 with ``hedges`` undeclared)."""

    name = "time.hedge_count"
    summary = "a hedged job runs at most hedges + 1 copies in all"

    def check(self, run: Run) -> Violation | None:
        most = run.target.hedge_limit
        return too_many_copies(self, run, most, f"(the first and {most - 1} hedge{'s' if most > 2 else ''})")


def too_many_copies(invariant: Invariant, run: Run, most: int, which: str) -> Violation | None:
    """The violation of ``invariant`` for the first job that ran more than ``most`` copies (``which`` says
    what the declaration allows, for the message), or None."""
    facts = facts_of(run)
    for job in facts.jobs.values():
        attempts = job.attempts
        if len(attempts) > most:
            extra = attempts[most]
            return invariant.violation(
                run,
                f"job {job.id} ran {len(attempts)} copies: {copy_name(extra)} started at "
                f"{format_ms(facts.time(extra.start))}, but {declared(run.target)} promises at most {most} {which}",
                [a.start for a in attempts],
            )
    return None


class HedgeEarly(_Hedging):
    """No copy starts sooner than ``hedge_ms`` after the previous copy started, unless a copy of the job
    failed in between (a hedger may replace a failed copy at once)."""

    name = "time.hedge_early"
    summary = "a hedged copy starts no sooner than hedge_ms after the previous one (or at once after a copy failed)"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        hedge_us = known(run.target.hedge_ms) * 1000
        for job in facts.jobs.values():
            attempts = job.attempts
            if len(attempts) < 2:
                continue
            for previous, attempt in zip(attempts, attempts[1:]):
                gap = facts.time(attempt.start) - facts.time(previous.start)
                if gap >= hedge_us or _failed_between(facts, job, previous.start, attempt.start):
                    continue
                return self.violation(
                    run,
                    f"job {job.id} {copy_name(attempt)} started at {format_ms(facts.time(attempt.start))}, only "
                    f"{format_ms(gap)} after attempt {previous.n} started; {declared(run.target)} promises a copy "
                    f"no sooner than {run.target.hedge_ms}ms after the previous one (or at once after a copy failed)",
                    [previous.start, attempt.start],
                )
        return None


def _failed_between(facts: Facts, job: JobFacts, first: int, last: int) -> bool:
    """Whether a copy of ``job`` ended in a failure between trace indices ``first`` and ``last``."""
    return any(
        a.end is not None and first < a.end < last and a.end_kind == EventKind.JOB_FAIL for a in job.attempts
    )


class HedgeLate(_Hedging):
    """A copy is started when it is due: ``hedge_ms`` after the latest copy started (plus the clock's
    lateness), while the caller still waits, no copy succeeded and fewer than ``hedges + 1`` ran.

    A caller answered, a copy that succeeded, a cancel of the job or a
    ``stop()`` by the due time (plus the lateness) excuse it; so does a run
    that stopped watching before it was due (``DRAIN_SLACK_MS`` after its
    last operation, at the least), and, with ``limit`` declared, that many
    attempts running at the due time (the copy may wait for a slot).
    """

    name = "time.hedge_late"
    summary = "a hedged copy starts hedge_ms after the previous one (within the clock's lateness) while the caller waits"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        if facts.drained is None:
            return None  # the run did not drain (a hang): what was due is not known
        target = run.target
        hedge_us, late, most = known(target.hedge_ms) * 1000, facts.late_us, target.hedge_limit
        # What the run watched: the drain goes on at least DRAIN_SLACK_MS past the last operation (a copy due
        # by then would have started before the drained mark, which is recorded at the last activity).
        horizon = max(facts.time(facts.drained), run.schedule.end_ms * 1000 + DRAIN_SLACK_MS * 1000)
        for job in facts.jobs.values():
            attempts = job.attempts
            if not attempts or job.periodic:
                continue
            # A stop of the schedule's excuses what was due after it (the first that concerns the job:
            # Facts.stop_for, a restarted subject runs again); the teardown's, after the drained mark, does not.
            stop = facts.stop_for(job.submit)
            first_stop = stop if stop is not None and stop < facts.drained else None
            for k in range(1, min(len(attempts) + 1, most)):
                previous = attempts[k - 1]
                due = facts.time(previous.start) + hedge_us
                copy = attempts[k] if k < len(attempts) else None
                if copy is not None and facts.time(copy.start) <= due + late:
                    continue  # on time (an early copy is time.hedge_early's)
                if due > horizon or _settled_by(facts, job, first_stop, due + late):
                    break  # no copy was owed then, nor any after it
                if target.limit is not None and _running_at(facts, due) >= target.fill:
                    break  # the limit (or a declared capacity, below it) was full: the copy may wait for a slot
                if copy is None:
                    what = "no copy was ever started"
                    events = [previous.start]
                else:
                    what = f"{copy_name(copy)} started only at {format_ms(facts.time(copy.start))}"
                    events = [previous.start, copy.start]
                return self.violation(
                    run,
                    f"job {job.id} attempt {previous.n} started at {format_ms(facts.time(previous.start))} and its "
                    f"caller still waited {target.hedge_ms}ms later, at {format_ms(due)}, with no copy succeeded, "
                    f"but {what}; {declared(target)} promises the next copy then (within the clock's lateness, "
                    f"{format_ms(late)})",
                    events,
                )
        return None


def _settled_by(facts: Facts, job: JobFacts, first_stop: int | None, t_us: int) -> bool:
    """Whether by virtual time ``t_us`` the job's caller had fired, one of its copies had succeeded, or the
    job was cancelled or the subject stopped: no copy is owed from then on."""
    for mark in (job.fired, job.finished, job.cancels[0] if job.cancels else None, first_stop):
        if mark is not None and facts.time(mark) <= t_us:
            return True
    return False


def _running_at(facts: Facts, t_us: int) -> int:
    """How many job attempts were running at virtual time ``t_us`` (started by then, not ended before it;
    one whose canceller raised holds its slot for ever)."""
    count = 0
    for job in facts.jobs.values():
        for a in job.attempts:
            if facts.time(a.start) > t_us:
                continue
            if a.end is None or a.canceller_raised or facts.time(a.end) > t_us:
                count += 1
    return count


class HedgeLosers(_Hedging):
    """When the caller's Deferred fires with its answer, every copy still running is cancelled (or has
    ended) by the end of that instant: no loser is left running for nobody.

    A firing after the job's own cancel, or after a ``stop()``, is judged by
    the cancellation invariants (``cancellation.propagates``,
    ``cancellation.detaches``) and the leak checks instead.
    """

    name = "time.hedge_losers"
    summary = "once a hedged job's caller has its answer, no copy of it is left running"

    def check(self, run: Run) -> Violation | None:
        return loser_left(self, run, "a hedged request cancels its losing copies when the first answer comes")


def loser_left(invariant: Invariant, run: Run, promise: str) -> Violation | None:
    """The violation of ``invariant`` for the first copy still running after the end of the instant its
    job's caller was answered (``promise`` ends the message), unless a cancel of the job or a ``stop()``
    came first; None when every loser was cancelled (or had ended) then."""
    facts = facts_of(run)
    for job in facts.jobs.values():
        fired = job.fired
        if fired is None or not job.attempts:
            continue
        first_stop = facts.stop_for(job.submit)  # a restarted subject's: the stop that concerns this job
        if (job.cancels and job.cancels[0] < fired) or (first_stop is not None and first_stop < fired):
            continue
        answered = facts.time(fired)
        for attempt in job.attempts:
            if attempt.start > fired:
                break  # started after the answer: time.retries judges that
            end = attempt.end
            if end is not None and facts.time(end) <= answered:
                continue
            still = "never ended" if end is None else f"ran on until {format_ms(facts.time(end))}"
            return invariant.violation(
                run,
                f"job {job.id}'s caller had its answer at {format_ms(answered)}, but {copy_name(attempt)}, started "
                f"at {format_ms(facts.time(attempt.start))}, was not cancelled then: it {still}; {promise}",
                [fired, attempt.start] + ([] if end is None else [end]),
            )
    return None
