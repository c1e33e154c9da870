"""Cancellation invariants: what cancelling the Deferred returned by ``submit`` must do.

``cancellable=True``: the caller's Deferred fails at once and the work is
cancelled (``cancellation.propagates``). ``cancellable="detach"``: the caller's
Deferred fails at once, but work already running runs on
(``cancellation.detaches``); work not yet started still never starts.
``cancellable="abandon"``: as "detach", except that the cancel which leaves
an execution with no caller waiting (every caller of it cancelled; with
``shared``, every caller of its key) may cancel the work.
``cancellable="delayed"``: the caller's Deferred may fail late, but no later
than its job would have started (a waiting job never starts: it fails once
its turn comes) or, if the job was running, than the end of the instant its
work ended; running work may run on or be cancelled (neither
``cancellation.propagates`` nor ``cancellation.detaches`` applies).
A per-job promise (``cancellable=lambda key, priority: ...``) gives each job
its own mode: each invariant judges the jobs whose mode it checks
(``Target.cancel_mode``), and applies if any job's does.
``cancellable="detach_queued"``: as "detach", for work not started yet too
(a write-behind buffer's write, a work queue's message): the caller's
Deferred fails at once, running work runs on, and a job still waiting at
the cancel is not dropped: it starts later (with ``shared``, an execution of
its key does), and it may be retried after the cancel
(``cancellation.no_start`` does not judge it; ``cancellation.detaches``
checks it ran).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.model.target import Target
from harness.model.known import known
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.calls import CALL_OPENERS, opener_of
from harness.run.diagnosis import Cause
from harness.run.facts import CANCELLABLE_KINDS, Facts, JobFacts, _filled, _stuck_attempts, abandoned_at, facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run


#: The detail of a ``cancel.raised`` event whose exception is a hostile job's canceller failing.
CANCELLER_ERROR = "CancellerError"


class _Cancellation(Invariant):
    def applies(self, target: Target) -> bool:
        return target.kind == "submit" and bool(target.cancellable)


class Fires(_Cancellation):
    """The cancelled Deferred fires, with the declared cancel error, by the end of the instant of the cancel."""

    name = "cancellation.fires"
    summary = "a cancelled Deferred fails with CancelledError (or the declared type) in the same instant"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        cancel_error = run.target.cancel_error
        expected = cancel_error.__name__
        # A cancel through which a hostile job's canceller raised (the job's own, or, for shared or
        # abandoned work, the execution's) cannot be finished by the subject: the CancellerError ends it.
        if not facts.cancelled:
            return None  # nothing was cancelled
        events, declared = facts.events, facts.declared
        raised = facts.by_kind.get(EventKind.CANCEL_RAISED)
        hostile = {events[i][2] for i in raised if events[i][4].startswith(CANCELLER_ERROR)} if raised else ()
        mode_of = _per_job(run.target)
        delays = run.target.cancellable == "delayed"  # every job's promise, unless there is one per job
        for job in facts.cancelled:  # the jobs with cancels, in job order: the others have nothing to judge
            if job.canceller_raised or job.id in hostile:
                continue  # a hostile job: its own canceller raised, the subject could not finish the cancel
            fired_at = job.fired
            if mode_of is not None:
                delays = mode_of(job.key, job.priority) == "delayed"
            if not delays and _fired_as_promised(facts, job, expected):
                continue  # the common case, settled without the walk below
            for cancel in job.cancels:
                if fired_at is not None and fired_at < cancel:
                    break  # cancelling after the result is the "harmless" case
                if delays:
                    late = _late_delayed_cancel(facts, run.target, job, cancel)
                    if late is not None:
                        at = format_ms(facts.time(cancel))
                        return self.violation(run, f"job {job.id} was cancelled at {at} {late[0]}", late[1])
                    if fired_at is None:
                        break  # excused: its turn never came (work that never ends holds the slots)
                elif fired_at is None:
                    at = format_ms(facts.time(cancel))
                    return self.violation(run, f"job {job.id} was cancelled at {at} but its Deferred never fired", [cancel])
                fired = facts.event(fired_at)
                if fired.kind == EventKind.RESULT:
                    at = format_ms(facts.time(cancel))
                    return self.violation(
                        run,
                        f"job {job.id} was cancelled at {at} but its Deferred then delivered a result "
                        f"({fired.detail}) instead of failing with {expected}",
                        [cancel, fired_at],
                    )
                if fired.t_us > events[cancel][0] and not delays:
                    at = format_ms(facts.time(cancel))
                    return self.violation(
                        run,
                        f"job {job.id} was cancelled at {at} but its Deferred fired only at {format_ms(fired.t_us)}; "
                        "it must fire by the end of the instant of the cancel",
                        [cancel, fired_at],
                    )
                # Facts.is_error(fired_at, cancel_error), inlined: the declared types if marked, else the class name.
                marked = declared.get(fired_at)
                if not (expected in marked if marked is not None else fired.detail.split(":", 1)[0] == expected):
                    at = format_ms(facts.time(cancel))
                    return self.violation(
                        run,
                        f"job {job.id} was cancelled at {at} but its Deferred failed with {fired.detail}, "
                        f"not {expected} (or a subclass)",
                        [cancel, fired_at],
                    )
                break
        return None


def _per_job(target: Target) -> Callable[[int, int], bool | str] | None:
    """``target.cancel_mode`` when the target makes a promise per job; None when every job's is
    ``target.cancellable`` itself (what ``cancel_mode`` then returns for each), read once."""
    return target.cancel_mode if callable(target.cancellable) else None


def _fired_as_promised(facts: Facts, job: JobFacts, expected: str) -> bool:
    """Whether ``job`` (cancelled, not hostile) passes ``Fires`` without a cancellation that may be delayed:
    its first cancel came before its Deferred fired, which failed in the instant of that cancel with an
    error of the type named ``expected`` (or a subclass). Then the walk finds nothing: each cancel after
    the first comes after the firing. Otherwise the walk judges it."""
    fired_at = job.fired
    if fired_at is None:
        return False
    cancel = job.cancels[0]
    if fired_at < cancel:
        return False
    events = facts.events
    fired = events[fired_at]
    if fired[1] == _RESULT or fired[0] > events[cancel][0]:
        return False
    # Facts.is_error(fired_at, cancel_error), inlined: the declared types if marked, else the class name.
    marked = facts.declared.get(fired_at)
    return expected in marked if marked is not None else fired[4].split(":", 1)[0] == expected


_RESULT = EventKind.RESULT


def _late_delayed_cancel(facts: Facts, target: Target, job: JobFacts, cancel: int) -> tuple[str, list[int]] | None:
    """For ``cancellable="delayed"``: why ``job``'s Deferred, cancelled at ``cancel``, fired too late, or None.

    Work of the job running at the cancel bounds it: the caller fails by the
    end of the instant that work ended (never, if it never ends). A job
    waiting at the cancel must fail once its turn comes; the trace cannot say
    when that would have been, so what is checked is that it fails by the
    time the run drained, unless work that never ends (hanging jobs, or
    cancellers that raised) fills the declared capacity (default limit; any one, with no limit
    declared; per key with keys), as for a stranded job.
    """
    running = [a for a in job.attempts if a.running_at(cancel)]
    fired = facts.event(job.fired).t_us if job.fired is not None else None
    if running:
        attempt = running[-1]
        if attempt.end is None:
            return None  # its work never ended: the caller may wait with it
        ended = facts.time(attempt.end)
        if fired is None or fired > ended:
            when = "never fired" if fired is None else f"fired only at {format_ms(fired)}"
            return (
                f"while its job ran, and the job's work ended at {format_ms(ended)}, but its Deferred {when}; "
                'cancellable="delayed" promises it fails by the end of the instant its work ends',
                [cancel, attempt.end] + ([] if job.fired is None else [job.fired]),
            )
        return None
    if fired is not None:
        return None
    end = facts.drained if facts.drained is not None else len(facts.events)
    if _turn_held(facts, target, job, end):
        return None
    return (
        "while it waited, but its Deferred never fired though nothing held its turn for ever; "
        'cancellable="delayed" promises it fails once its turn comes',
        [cancel],
    )


def _turn_held(facts: Facts, target: Target, job: JobFacts, end: int) -> bool:
    """Whether work of other jobs that never ends (hanging attempts, cancellers that raised) holds a waiting
    ``job``'s turn for ever, by trace index ``end``: it fills the declared capacity (default limit; any one,
    with no limit declared; per key with keys), as for a stranded job."""
    blockers = [a for a in _stuck_attempts(facts, target, end) if a.job != job.id]
    if (target.keys is None or target.limit is not None) and len(blockers) >= target.fill:
        return True
    return target.keys is not None and _filled(sum(facts.jobs[a.job].key == job.key for a in blockers), target.keyed_limit)


class NoStart(_Cancellation):
    """Once its Deferred is cancelled, a job never starts (again): no late start, no retry."""

    name = "cancellation.no_start"
    summary = "a cancelled job never starts afterwards (no late start, no retry after cancel)"

    def applies(self, target: Target) -> bool:
        return super().applies(target) and target.cancel_modes != {_QUEUED}

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        mode_of = _per_job(run.target)
        for job in facts.cancelled:  # the jobs with cancels, in job order
            if mode_of is not None and mode_of(job.key, job.priority) == _QUEUED:
                continue  # its work goes on after the cancel, queued or running: it may start, or be retried
            cancel = job.cancels[0]
            if not job.attempts or (job.fired is not None and job.fired < cancel):
                continue  # never started, or it fired before the cancel (Facts.fired_before)
            for attempt in job.attempts:
                if attempt.start > cancel:
                    what = "started" if attempt.n == 0 else f"was retried (attempt {attempt.n})"
                    return self.violation(
                        run,
                        f"job {job.id} {what} at {format_ms(facts.time(attempt.start))}, after it was cancelled "
                        f"at {format_ms(facts.time(cancel))}",
                        [cancel, attempt.start],
                    )
        return None


class Propagates(_Cancellation):
    """Cancelling a running job cancels the job's own Deferred, in the same instant."""

    name = "cancellation.propagates"
    summary = "cancelling a running job cancels the job's own Deferred"

    def applies(self, target: Target) -> bool:
        return super().applies(target) and True in target.cancel_modes

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        mode_of = _per_job(run.target)
        for job in facts.cancelled:  # the jobs with cancels, in job order
            if not job.attempts:
                continue  # never started: nothing was running at a cancel
            if mode_of is not None and mode_of(job.key, job.priority) is not True:
                continue  # a per-job promise that lets this job's work run on
            fired = job.fired
            for cancel in job.cancels:
                if fired is not None and fired < cancel:
                    break  # Facts.fired_before
                now = facts.time(cancel)
                for attempt in job.attempts:
                    end = attempt.end
                    # not Attempt.running_at(cancel), inlined, or not a kind whose Deferred can be cancelled
                    if not (attempt.start < cancel and (end is None or end > cancel)) or attempt.kind not in CANCELLABLE_KINDS:
                        continue
                    ended = attempt.end is not None and facts.time(attempt.end) == now
                    if not ended:
                        still = "and kept running" if attempt.end is None else (
                            f"and it ran on until {format_ms(facts.time(attempt.end))}"
                        )
                        if len(job.attempts) == 1:
                            text = (
                                f"job {job.id} was running when its Deferred was cancelled at {format_ms(now)}, "
                                f"but the job's own Deferred was not cancelled {still}"
                            )
                        else:  # name the attempt left running (as the trace does: 0#1), not only the job
                            n = attempt.n
                            shown = f" ({job.id}#{n} in the trace)" if n else ""
                            text = (
                                f"job {job.id} attempt {n}{shown} was running "
                                f"when the job's Deferred was cancelled at {format_ms(now)}, but that attempt's own "
                                f"Deferred was not cancelled {still}"
                            )
                        return self.violation(run, text, [cancel, attempt.start])
                break
        return None


#: The mode under which a cancel detaches the caller from its work whether that work runs or waits.
_QUEUED = "detach_queued"
#: The modes under which a cancelled caller's running work runs on (``cancellation.detaches``).
_DETACHING = frozenset({"detach", "abandon", _QUEUED})


class Detaches(_Cancellation):
    """Declared ``cancellable="detach"``: cancelling a caller leaves its running work alone; with
    ``"detach_queued"``, its waiting work too: a job waiting at the cancel still runs."""

    name = "cancellation.detaches"
    summary = (
        'with cancellable="detach", cancelling a caller never cancels the work already running ("abandon": unless no '
        'caller waits for it any more; "detach_queued": nor drops the work still waiting, which runs later)'
    )

    def applies(self, target: Target) -> bool:
        return super().applies(target) and bool(target.cancel_modes & _DETACHING)

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        mode_of = run.target.cancel_mode
        for job in facts.cancelled:  # the jobs with cancels, in job order
            mode = mode_of(job.key, job.priority)
            if mode not in _DETACHING:
                continue  # a per-job promise under which this job's work is cancelled, or may be
            if mode == _QUEUED:
                dropped = _dropped_on_cancel(facts, run.target, job)
                if dropped is not None:
                    return self.violation(run, dropped[0], dropped[1])
            abandons = mode == "abandon"
            for cancel in job.cancels:
                now = facts.time(cancel)
                for attempt in job.attempts:
                    if attempt.running_at(cancel) and attempt.end_kind == EventKind.JOB_CANCEL and facts.time(known(attempt.end)) == now:
                        abandoned = abandoned_at(facts, run.target, attempt) if abandons else None
                        if abandoned is not None and abandoned < known(attempt.end):
                            continue  # cancelled once its last waiting caller was (maybe a later cancel, same instant)
                        if _cancelled_by_earlier_timer(facts, cancel, known(attempt.end)):
                            continue  # the subject's own timer (a timeout set before the cancel) cancelled it
                        if _cancelled_by_stop(facts, cancel, known(attempt.end)):
                            continue  # a stop() after the cancel, in its instant, cancelled it: no caller's cancel
                        promise = (
                            'cancellable="abandon": running work may be cancelled only once every caller of it has cancelled'
                            if abandons
                            else f'cancellable="{mode}": running work must run on'
                        )
                        return self.violation(
                            run,
                            f"job {job.id}'s caller was cancelled at {format_ms(now)} and the job's own work was "
                            f"cancelled too; the target declares {promise}",
                            [cancel, known(attempt.end)],
                        )
        return None


def _dropped_on_cancel(facts: Facts, target: Target, job: JobFacts) -> tuple[str, list[int]] | None:
    """For ``cancellable="detach_queued"``: why ``job``, waiting at its first cancel, was dropped, or None.

    A job waits at the cancel when its Deferred had not fired and no attempt
    of it had started (with ``shared``, nor was an execution of its key
    running, which it may have joined: ``cancellation.detaches`` judges that
    one). Its work must still run: an attempt of it (with ``shared``, of any
    job of its key) starts after the cancel, by the time the run drained.
    Excused: a ``stop()`` before the run drained (a stopped subject may drop
    work nobody waits for), a declared ``timeout_ms`` from the submission or
    over the wait that ran out first (the subject may drop the job at it),
    and work that never ends filling the job's turn (as a stranded job is
    excused: ``_turn_held``).
    """
    cancel = job.cancels[0]
    if (job.fired is not None and job.fired < cancel) or job.submit is None or job.canceller_raised:
        return None
    if any(a.start < cancel for a in job.attempts):
        return None  # it had started: running (detached) or between attempts (retries are never owed)
    shared = target.shared
    mine = [j for j in facts.jobs.values() if j.key == job.key] if shared else [job]
    if shared and any(a.running_at(cancel) for j in mine for a in j.attempts):
        return None  # it may have joined that execution: running work, judged as such
    end = facts.drained if facts.drained is not None else len(facts.events)
    if any(a.start > cancel and a.start < end for j in mine for a in j.attempts):
        return None  # its work ran after the cancel
    stop = facts.stop_for(job.submit)  # a restarted subject's: the stop that concerns this job
    if stop is not None and stop < end:
        return None
    if target.timeout_ms is not None and target.timeout_from != "start":
        if facts.time(end) >= facts.time(job.submit) + target.timeout_ms * 1000:
            return None
    if _turn_held(facts, target, job, end):
        return None
    what = f"no execution of its key {job.key} started" if shared else "it never started"
    return (
        f"job {job.id}'s caller was cancelled at {format_ms(facts.time(cancel))} while the job waited, and {what} "
        f"after that by the time the run drained at {format_ms(facts.time(end))}; the target declares "
        'cancellable="detach_queued": a cancel only stops the caller waiting, the work still runs',
        [cancel],
    )


def _cancelled_by_earlier_timer(facts: Facts, cancel: int, ended: int) -> bool:
    """Whether the work cancelled at ``ended`` (in the instant of the caller's ``cancel``) was cancelled by
    a call of the subject's that the caller's cancel did not make: the last call opened between the two
    is a timer of the subject set before the cancel (its own ``addTimeout`` firing late, on the same
    instant). A timer set during or after the cancel (``callLater(0, work.cancel)`` from the canceller)
    is the cancel's doing; so is anything after another operation or a job's own call, and a run whose
    timer events stopped (``timer.limit``) shows no timer: then the cancel is blamed, as before."""
    events = facts.events
    for index in range(ended - 1, cancel, -1):
        event = events[index]
        if event[1] not in CALL_OPENERS:
            continue
        if event[1] != EventKind.TIMER_FIRE:
            return False
        set_as = f"{event[4]} due "
        return any(
            events[i][1] == EventKind.TIMER_SET and events[i][4].startswith(set_as) for i in range(cancel)
        )
    return False


def _cancelled_by_stop(facts: Facts, cancel: int, ended: int) -> bool:
    """Whether the work cancelled at ``ended`` (in the instant of the caller's ``cancel``) was cancelled by a
    ``stop()`` that came after the cancel: the last call opened between the two is a ``stop`` (the schedule's,
    or the teardown's when the run drained in that instant). A stop is not a caller's cancel: stopping a
    subject may cancel the work it runs, whatever the cancels promise (left alone in audit 14, round 15)."""
    opener = opener_of(facts, ended - 1, cancel)
    return opener is not None and facts.events[opener][1] == EventKind.STOP


class Harmless(_Cancellation):
    """Cancelling twice, or after the result arrived, raises nothing."""

    name = "cancellation.harmless"
    summary = "cancelling twice, or after the result, is harmless (cancel() never raises)"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        for index in facts.of_kind(EventKind.CANCEL_RAISED):
            event = facts.event(index)
            if not event.detail.startswith(CANCELLER_ERROR):
                return self.violation(
                    run, f"cancelling job {event.job} raised {event.detail}; cancel() must never raise", [index]
                )
        return None


class Releases(_Cancellation):
    """A cancelled job gives its slot back: jobs queued behind it still run."""

    name = "cancellation.releases"
    summary = "a cancelled job releases its slot: the jobs queued behind it still run"
    needs_diagnosis = True

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        diagnosis = self.diagnosis(run)
        stuck = diagnosis.first(Cause.CANCEL)
        if stuck is None:
            return None
        job = facts.jobs[stuck]
        cancels = [c for other in facts.jobs.values() for c in other.cancels]
        also = ""
        if any(s.job == stuck and s.failure_too for s in diagnosis.stranded):
            also = (
                " (the cancel ended running work in an error, and the job stays stranded when that work fails "
                "instead of being cancelled: a failure strands it too, see errors.poison)"
            )
        return self.violation(
            run,
            f"job {job.id}, submitted at {format_ms(facts.time(known(job.submit)))}, never finished after "
            f"another job was cancelled: the cancelled job's slot was not released{also}",
            [known(job.submit), *cancels],
        )
