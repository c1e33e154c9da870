"""Quorum invariants: a job called ``fanout`` times at once, answered once ``quorum`` copies succeeded.

A target declaring ``fanout=N, quorum=K`` promises a quorum call (a
replicated read or write, a "first K of N" race): the subject calls each
job N times together, in one instant (its copies: ``0#1`` in the trace is
job 0's second copy), answers the caller with a copy's value once K copies
succeeded, fails it once K successes became impossible (more than N - K
copies failed; with ``timeout_ms``, also with the timeout error at the
timeout), and cancels the copies still running in the instant of the
answer. ``quorum=1`` is a race of N copies whose first success wins.

What the declaration lifts, and nothing else: ``time.retries`` no longer
holds one copy's success final for the others (they run beside it);
``time.timeout`` does not blame the cancel of a losing copy in the answer's
instant as an early timeout; ``errors.propagate`` accepts a failure carrying
the error of any copy that failed (not only the last one started), the
quorum's failure after a success being ``time.quorum_early``'s to judge.
Times are monotonic virtual time; the clock's lateness (``Facts.late_us``)
is allowed where a timer could be involved, no more. Nothing here applies
to a target without ``fanout``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.known import known
from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.invariants.errors import own_error
from harness.invariants.hedging import copy_name, declared, loser_left, too_many_copies
from harness.run.facts import Attempt, Facts, JobFacts, facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run

_FINISH, _FAIL, _CANCEL = EventKind.JOB_FINISH, EventKind.JOB_FAIL, EventKind.JOB_CANCEL


class _Fanout(Invariant):
    """The promise of a target that declares ``fanout`` (and ``quorum``)."""

    def applies(self, target: Target) -> bool:
        return target.fanout is not None and target.kind == "submit"


def _stop(facts: Facts, job: JobFacts) -> int | None:
    """The schedule's first ``stop()`` that concerns ``job`` (a trace index; ``Facts.stop_for``: a restarted
    subject runs again): the harness's own at teardown, after the run drained, excuses nothing."""
    stop = facts.stop_for(job.submit)
    return stop if stop is not None and (facts.drained is None or stop < facts.drained) else None


def _excused_before(facts: Facts, job: JobFacts, index: int) -> bool:
    """Whether the job was cancelled, or the subject stopped (the harness's own stop at teardown too),
    before trace index ``index``: from then on its caller may be answered in any way (the cancellation
    invariants judge it)."""
    stop = facts.stop_for(job.submit)
    return bool(job.cancels and job.cancels[0] < index) or (stop is not None and stop < index)


def _failed(facts: Facts, attempt: Attempt, answered: int | None) -> bool:
    """Whether ``attempt`` ended as a failed copy: its job failed, or the subject cancelled it (a per-copy
    timeout, say) in an earlier instant than the caller's answer (``answered``, a trace index or None); a
    cancel in the answer's own instant is a loser's."""
    if attempt.end_kind == _FAIL:
        return True
    return attempt.end_kind == _CANCEL and (answered is None or facts.time(known(attempt.end)) < facts.time(answered))


def _decided(facts: Facts, job: JobFacts, target: Target) -> tuple[int, str] | None:
    """The trace index of the copy's end that decided the job's quorum (the K-th success, or the failure
    that left fewer than K possible), before the run drained, and what it was; None if none did."""
    k, n = known(target.quorum), known(target.fanout)
    ok = failed = 0
    drained = facts.drained if facts.drained is not None else len(facts.events)
    # The ends after the drained mark are the teardown's (its stop cancels what still runs): no decision.
    for attempt in sorted((a for a in job.attempts if a.end is not None and a.end < drained), key=lambda a: known(a.end)):
        if attempt.end_kind == _FINISH:
            ok += 1
            if ok >= k:
                return known(attempt.end), f"{ok} of its copies succeeded"
        elif _failed(facts, attempt, job.fired):
            failed += 1
            if failed > n - k:
                return known(attempt.end), f"{failed} of its {n} copies failed, leaving fewer than {k} to succeed"
    return None


class FanoutCount(_Fanout):
    """At most ``fanout`` copies of a job in all."""

    name = "time.fanout_count"
    summary = "a quorum call runs at most fanout copies of a job"

    def check(self, run: Run) -> Violation | None:
        return too_many_copies(self, run, known(run.target.fanout), "(its fan-out)")


class FanoutTogether(_Fanout):
    """A job's copies start together: every copy in the instant of the first (within the clock's lateness),
    and ``fanout`` of them unless the answer was decided (or the job cancelled, or the subject stopped) in
    that instant, as when the first copies succeed at once."""

    name = "time.fanout_together"
    summary = "a quorum call starts its fanout copies of a job together, in one instant"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        late, n = facts.late_us, known(target.fanout)
        for job in facts.jobs.values():
            attempts = job.attempts
            if not attempts:
                continue
            first = attempts[0]
            began = facts.time(first.start)
            for copy in attempts[1:]:
                if facts.time(copy.start) > began + late:
                    return self.violation(
                        run,
                        f"job {job.id} {copy_name(copy)} started at {format_ms(facts.time(copy.start))}, after its "
                        f"fan-out at {format_ms(began)}; {declared(target)} promises every copy starts together, in "
                        f"the instant of the first (within the clock's lateness, {format_ms(late)})",
                        [first.start, copy.start],
                    )
            if len(attempts) >= n or _settled_then(facts, job, target, began + late):
                continue
            return self.violation(
                run,
                f"job {job.id} started {len(attempts)} cop{'y' if len(attempts) == 1 else 'ies'} at "
                f"{format_ms(began)} and nothing decided its answer then; {declared(target)} promises {n} copies at "
                "once (fewer only when the answer is decided as they start)",
                [a.start for a in attempts],
            )
        return None


def _settled_then(facts: Facts, job: JobFacts, target: Target, t_us: int) -> bool:
    """Whether by virtual time ``t_us`` the job's caller had fired, its quorum was decided, the job was
    cancelled or the subject stopped: the copies not started then are owed no longer."""
    decided = _decided(facts, job, target)
    stop = _stop(facts, job)
    for mark in (job.fired, decided[0] if decided else None, job.cancels[0] if job.cancels else None, stop):
        if mark is not None and facts.time(mark) <= t_us:
            return True
    return False


class QuorumEarly(_Fanout):
    """The caller gets a value only once ``quorum`` copies succeeded, and fails only once that became
    impossible (more than ``fanout - quorum`` copies failed), or with the timeout error (``time.timeout``
    judges when), or a declared rejection; a cancel of the job or a ``stop()`` first excuses any answer."""

    name = "time.quorum_early"
    summary = "a quorum call answers with a value only after quorum successes, and fails only once they are impossible"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        k, n = known(target.quorum), known(target.fanout)
        allowed = [*target.rejects, *((target.timeout_error,) if target.timeout_ms is not None else ())]
        for job in facts.jobs.values():
            fired = job.fired
            if fired is None or _excused_before(facts, job, fired):
                continue
            before = [a for a in job.attempts if a.end is not None and a.end < fired]
            if target.shared and not any(a.start < fired for a in job.attempts):
                continue  # it joined another caller's execution: sharing.joined judges it
            event = facts.event(fired)
            at = format_ms(event.t_us)
            if event.kind == EventKind.RESULT:
                ok = sum(1 for a in before if a.end_kind == _FINISH)
                if ok < k:
                    return self.violation(
                        run,
                        f"job {job.id}'s caller got {event.detail} at {at} when {ok} of its copies had succeeded; "
                        f"{declared(target)} promises a value only once {k} have",
                        [fired, *(known(a.end) for a in before)],
                    )
                continue
            if any(facts.is_error(fired, t) for t in allowed) or not own_error(event.detail):
                continue
            failed = sum(1 for a in before if _failed(facts, a, fired))
            if failed <= n - k:
                return self.violation(
                    run,
                    f"job {job.id}'s caller failed with {event.detail} at {at} when {failed} of its {n} copies had "
                    f"failed, so {k} could still succeed; {declared(target)} promises a failure only once more than "
                    f"{n - k} {'has' if n - k == 1 else 'have'} failed"
                    + (" (or the timeout error at the timeout)" if target.timeout_ms is not None else ""),
                    [fired, *(known(a.end) for a in before)],
                )
        return None


class QuorumLate(_Fanout):
    """Once a job's quorum is decided (its ``quorum``-th copy succeeded, or one more failed than
    ``fanout - quorum``), the caller is answered in that instant (within the clock's lateness). A cancel of
    the job or a ``stop()`` by then excuses it, as does a run that did not drain (a hang: what came next is
    not known)."""

    name = "time.quorum_late"
    summary = "a quorum call answers in the instant its quorum is reached or becomes impossible"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        late = facts.late_us
        for job in facts.jobs.values():
            decided = _decided(facts, job, target)
            if decided is None:
                continue
            index, why = decided
            fired = job.fired
            if fired is not None and fired < index:
                continue  # answered first (time.quorum_early judges whether it could be)
            due = facts.time(index)
            if fired is not None and facts.time(fired) <= due + late:
                continue
            marks = [m for m in (job.cancels[0] if job.cancels else None, _stop(facts, job)) if m is not None]
            if any(m < (fired if fired is not None else len(facts.events)) and facts.time(m) <= due + late for m in marks):
                continue
            if fired is None and facts.drained is None:
                continue
            when = "was never answered" if fired is None else f"was answered only at {format_ms(facts.time(fired))}"
            return self.violation(
                run,
                f"job {job.id}'s quorum was decided at {format_ms(due)} ({why}), but its caller {when}; "
                f"{declared(target)} promises the answer then (within the clock's lateness, {format_ms(late)})",
                [index] + ([] if fired is None else [fired]),
            )
        return None


class FanoutLosers(_Fanout):
    """When the caller's Deferred fires with its answer, every copy still running is cancelled (or has
    ended) by the end of that instant. A firing after the job's own cancel, or after a ``stop()``, is judged
    by the cancellation invariants and the leak checks instead."""

    name = "time.fanout_losers"
    summary = "once a quorum call's caller has its answer, no copy of the job is left running"

    def check(self, run: Run) -> Violation | None:
        return loser_left(self, run, "a quorum call cancels the copies still running when it answers")
