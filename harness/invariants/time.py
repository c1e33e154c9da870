"""Time invariants: timeouts, retries and backoff, rates, and periodic work.

Times are monotonic virtual time. A call may fire late by up to the clock
policy's stride plus jitter (``Facts.late_us``), never early; checks allow
that lateness and nothing more. Wall-clock jumps move only ``seconds()``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple, TYPE_CHECKING

from harness.model.target import Target
from harness.model.known import known
from harness.model.schedule import Jump
from harness.model.trace import EventKind, counted, format_ms
from harness.invariants.base import Invariant, Violation
from harness.invariants.early_cancel import early_cancel_note
from harness.invariants.on_demand import asking, on_demand_calls
from harness.invariants.redrives import runs
from harness.invariants.wait_slots import free_slot_before, held_of, holding, retry_left_free, rooms
from harness.invariants.wait_window import window_left_open
from harness.run.calls import CALL_OPENERS, SCHEDULE_OPERATIONS, opener_of, operation_called_before, owed_before
from harness.run.chains import chain_lateness, last_rearm, loop_timers, timer_number
from harness.run.facts import Attempt, Facts, JobFacts, abandoned_at, facts_of, stranded_jobs
from harness.run.outcomes import served_by
from harness.run.timers import timer_name

if TYPE_CHECKING:
    from harness.run.runner import Run


class Timeout(Invariant):
    """Declared timeout T: a job still running T after it started is cancelled at T, and its caller gets the
    timeout error; and the timeout error reaches only callers whose job really ran (or waited) T.

    Work the subject ends on purpose is no early timeout: a job cancelled in
    the instant of a call of an operation declared ``cancels_work``, after it,
    or, with ``sheds``, one whose caller is refused with one of those errors
    in the instant of the cancel (``_ended_on_purpose``; review 8, finding 1).

    With ``timeout_fires`` the caller must fail at T even when the job's own
    canceller raises (without it, such a job excuses a timeout that fails the
    caller through the job's cancellation, as ``Deferred.addTimeout`` does).
    """

    name = "time.timeout"
    summary = (
        "a job still running T after it started (or was submitted) is cancelled at T and fails with the timeout "
        "error, which no job gets sooner"
    )

    def applies(self, target: Target) -> bool:
        return target.timeout_ms is not None

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        if target.kind == "periodic":
            found = _judge_periodic(target, facts)
            return None if found is None else self.violation(run, *found)
        origins = _glue_origins(facts) if target.timeout_from == "glue" else {}
        for job in facts.jobs.values():
            if job.periodic:
                continue
            if target.timeout_from == "glue":
                message = _judge_glue(target, facts, job, origins.get(job.id))
            elif target.timeout_detaches:
                message = (
                    (_judge_unstarted(target, facts, job) if target.timeout_from == "submit" else None)
                    or _judge_detached(target, facts, job)
                    or self._legitimate(target, facts, job)
                )
            elif run.target.timeout_from == "wait":
                message = _judge_wait(run.target, facts, job) or _legitimate_wait(run, facts, job)
            elif run.target.timeout_from == "submit":
                message = (
                    _judge_unstarted(run.target, facts, job)
                    or self._judge(run.target, facts, job)
                    or self._legitimate(run.target, facts, job)
                )
            else:
                message = self._judge(run.target, facts, job) or self._legitimate(run.target, facts, job)
            if message is not None:
                text, events = message
                return self.violation(run, text, events)
        if target.shared and target.timeout_from != "wait" and not target.retries:
            found = _judge_joined(target, facts)
            if found is not None:
                return self.violation(run, *found)
        return None

    def _judge(self, target: Target, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
        timeout = known(target.timeout_ms) * 1000
        horizon = facts.time(facts.drained) if facts.drained is not None else 0
        excused = self._excused_from(facts, job)
        hedged = target.hedge_ms is not None and bool(job.attempts)
        if hedged:
            # A hedged request's timeout is the request's, from its first copy's start (or its submission):
            # answered before it, the request owes no timeout (a copy left running is time.hedge_losers').
            first = job.attempts[0].start if target.timeout_from == "start" else known(job.submit)
            if job.fired is not None and _answered_before_timeout(facts, job, facts.time(first) + timeout):
                return None
        for attempt in job.attempts:
            if _quorum_loser(target, facts, job, attempt):
                continue  # what the caller got then is the quorum invariants' to judge (the timeout error: _legitimate's)
            origin = facts.time(
                (first if hedged else attempt.start) if target.timeout_from == "start" else known(job.submit)
            )
            due = origin + timeout
            if hedged and facts.time(attempt.start) >= due:
                continue  # a copy started at or after the request's timeout: the hedging invariants judge it
            # How messages name the attempt: a hedge copy after the first is timed from the request's start.
            who, it = (f"job {job.id}'s copy {attempt.n}", "the request") if hedged and attempt.n else (f"job {job.id}", "it")
            ended = facts.time(attempt.end) if attempt.end is not None else None
            on_purpose = attempt.end_kind == EventKind.JOB_CANCEL and _ended_on_purpose(target, facts, job, attempt)
            if (
                attempt.end_kind == EventKind.JOB_CANCEL
                and known(ended) < due
                and (excused is None or excused > known(attempt.end))
                and not _abandoned_before(target, facts, attempt)
                and not on_purpose
            ):
                what = (f"job {job.id}'s copy {attempt.n} was cancelled at {format_ms(known(ended))} while its caller "
                        f"still waited, only {format_ms(known(ended) - origin)} after the request"
                        if hedged else f"job {job.id} was cancelled at {format_ms(known(ended))}, only "
                        f"{format_ms(known(ended) - origin)} after it")
                return (
                    f"{what} {'started' if target.timeout_from == 'start' else 'was submitted'}; the timeout is "
                    f"{target.timeout_ms}ms{'' if hedged else early_cancel_note(target, facts, job, attempt)}",
                    [attempt.start, known(attempt.end)],
                )
            if due > horizon:
                # Due after the run drained: judged only when nothing was left scheduled then (no timer could
                # ever cancel it), for a job still running at the drain and not excused before it.
                idle = facts.idle_drain()
                if idle is None or (attempt.end is not None and attempt.end < idle) or (excused is not None and excused < idle):
                    continue
                return (
                    f"{who} was still running when the run drained at {format_ms(facts.time(idle))} with nothing "
                    f"left scheduled: no timeout could cancel it at {format_ms(due)}, {target.timeout_ms}ms after {it} "
                    f"{'started' if target.timeout_from == 'start' else 'was submitted'}",
                    [attempt.start, idle],
                )
            if ended is not None and attempt.end_kind != EventKind.JOB_CANCEL and ended <= due + facts.late_us:
                continue  # the job ended on its own in time (on a late clock, before the timeout fired)
            if attempt.end_kind == EventKind.JOB_CANCEL and known(ended) < due:
                continue  # cancelled early by the user or a stop (an unexcused early cancel returned above)
            if on_purpose and known(ended) <= due + facts.late_us:
                continue  # ended on purpose before a late clock fired the timeout: no timeout's to answer
            if excused is not None and facts.time(excused) <= due + facts.late_us and (
                attempt.end is None or attempt.end > excused
            ):
                continue  # a cancel or stop came first, before the timeout was due or before a late clock fired it
            timed_out = attempt.end_kind == EventKind.JOB_CANCEL and known(ended) <= due + facts.late_us
            if not timed_out:
                still = "never ended" if ended is None else f"ran on until {format_ms(ended)}"
                return (
                    f"{who} was still running at {format_ms(due)}, {target.timeout_ms}ms after {it} "
                    f"{'started' if target.timeout_from == 'start' else 'was submitted'}, but the timeout did not "
                    f"cancel it (it {still})",
                    [attempt.start] + ([attempt.end] if attempt.end is not None else []),
                )
            # A job whose own canceller raised blocks a timeout that fails the caller through the job's
            # cancellation (Deferred.addTimeout); only a target declaring timeout_fires promises more.
            if attempt.canceller_raised and not target.timeout_fires:
                continue
            if target.retries and target.timeout_from == "start":
                # Each attempt's timeout: a retry may follow, and the caller is not held to fail at T; but a
                # caller that did not cancel never gets the cancel error of an attempt the subject cancelled,
                # and after the last attempt declared it fails once the subject gives up, no later than a retry
                # would have come (review 10, finding 1). retries=0 (a plain pool) is held to T below.
                kept = _kept_cancel(target, facts, job, attempt, excused) or _gave_up_late(target, facts, job, attempt, excused)
                if kept is not None:
                    return kept
                continue
            # No retries, or a whole-request deadline (timeout_from="submit"): nothing runs after it, so the
            # caller fails with the timeout error in the instant the subject cancelled its job.
            if target.shared and job.fired is not None and job.fired < known(attempt.end):
                continue  # shared: its caller was answered before (from a cache, say); its job served others
            if target.timeout_cleanup_ms is not None:
                cleaned = _judge_cleanup(target, facts, job, attempt, excused)
                if cleaned is not None:
                    return cleaned
                continue
            expected = target.timeout_error.__name__
            if job.fired is None or facts.time(job.fired) > known(ended):
                hostile = (
                    f" (the job's own canceller raised, and timeout_fires promises the caller fails with "
                    f"{expected} at the timeout whatever the job does)"
                    if attempt.canceller_raised
                    else ""
                )
                return (
                    f"job {job.id} timed out at {format_ms(known(ended))} but its Deferred did not fail then{hostile}",
                    [attempt.start, known(attempt.end)],
                )
            if facts.event(job.fired).kind != EventKind.FAILURE or not facts.is_error(job.fired, target.timeout_error):
                return (
                    f"job {job.id} timed out at {format_ms(known(ended))} but its Deferred fired with "
                    f"{facts.event(job.fired).detail}, not {expected}",
                    [known(attempt.end), job.fired],
                )
        return None

    @staticmethod
    def _legitimate(target: Target, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
        """A timeout error is legitimate only for a job that ran (or, timed from submission, waited) T.

        Unless the job raised that error itself, the caller got it after a
        cancel or a stop (any error goes then), or it is a declared rejection.
        """
        fired = _timeout_to_judge(target, facts, job)
        if fired is None:
            return None
        detail, at, timeout = facts.event(fired).detail, format_ms(facts.time(fired)), known(target.timeout_ms)
        joined = _joined_execution(target, facts, job)
        if joined is not None:
            # shared: the caller joined another job's execution, and times out with it
            submit = target.timeout_from == "submit"
            origin = known(joined.submit) if submit else joined.attempts[0].start
            waited = facts.time(fired) - facts.time(origin)
            if waited >= timeout * 1000:
                return None
            return (
                f"job {job.id} failed with {detail} at {at}, only {format_ms(waited)} after job {joined.id}'s "
                f"execution, which it joined, {'was submitted' if submit else 'started'}; a timeout error is "
                f"legitimate only after the {timeout}ms timeout",
                [origin, fired],
            )
        if target.timeout_from == "submit":
            origin, what = known(job.submit), "was submitted"
        elif job.attempts and job.attempts[0].start < fired:
            origin, what = job.attempts[0].start, "started"
        else:
            return (
                f"job {job.id} never started, yet its Deferred failed with {detail} at {at}; a timeout error "
                f"is legitimate only for a job that ran the {timeout}ms timeout",
                [known(job.submit), fired],
            )
        waited = facts.time(fired) - facts.time(origin)
        if waited >= timeout * 1000:
            return None
        return (
            f"job {job.id} failed with {detail} at {at}, only {format_ms(waited)} after it {what}; a timeout "
            f"error is legitimate only after the {timeout}ms timeout",
            [origin, fired],
        )

    @staticmethod
    def _excused_from(facts: Facts, job: JobFacts) -> int | None:
        """The first user cancel or stop (``Facts.stop_for``: a restarted subject runs again): from then on the
        job may end for reasons other than the timeout."""
        stop = facts.stop_for(job.submit)
        marks = [*job.cancels[:1], *([] if stop is None else [stop])]
        return min(marks) if marks else None


def _judge_periodic(target: Target, facts: Facts) -> tuple[str, list[int]] | None:
    """A periodic target's timeout T: each call of the work still running T after it started is cancelled
    at T (by T plus the clock's lateness), and none is cancelled sooner.

    A call cancelled in the instant of a call of an operation declared
    ``cancels_work``, after it, was not cancelled too soon.
    A ``stop()``, or the loop's reported end (``report_end``), before the call
    ended (and, for a call still running, by T plus the lateness) excuses it:
    the subject may then end its work in any way. A call whose canceller
    raised was cancelled all the same. There is no caller to judge: what the
    subject does with the timeout (a miss, a log) is its own.
    """
    timeout, late = known(target.timeout_ms) * 1000, facts.late_us
    reports = facts.by_kind.get(EventKind.LOOP_END, ())
    idle = facts.idle_drain()
    for job in facts.jobs.values():
        if not job.periodic:
            continue
        marks = [*facts.stops[:1], *(i for i in reports[:1] if facts.events[i][2] == job.id)]
        excused = min(marks) if marks else None
        for attempt in job.attempts:
            end = attempt.end
            started = facts.time(attempt.start)
            due = started + timeout
            if idle is not None and due > facts.time(idle) and (end is None or end > idle):
                # Running when the run drained with nothing left scheduled, due after: no timer could ever cancel
                # it. Only a stop() or reported end before the drain excuses it (not the harness's teardown stop).
                if excused is not None and excused < idle:
                    continue
                return (
                    f"periodic call {attempt.n} was still running when the run drained at {format_ms(facts.time(idle))} "
                    f"with nothing left scheduled: no timeout could cancel it at {format_ms(due)}, "
                    f"{target.timeout_ms}ms after it started",
                    [attempt.start, idle],
                )
            if excused is not None and excused < (end if end is not None else len(facts.events)):
                if facts.time(excused) <= started + timeout + late:
                    continue  # stopped (or the loop ended) while it ran, before its timeout was overdue
            ended = facts.time(end) if end is not None else None
            if attempt.end_kind == EventKind.JOB_CANCEL and known(ended) < due and not _ended_on_purpose(target, facts, job, attempt):
                return (
                    f"periodic call {attempt.n} was cancelled at {format_ms(known(ended))}, only "
                    f"{format_ms(known(ended) - started)} after it started; the timeout is {target.timeout_ms}ms"
                    f"{early_cancel_note(target, facts, job, attempt, periodic=True)}",
                    [attempt.start, known(end)],
                )
            if ended is not None and ended <= due + late:
                continue  # ended on its own in time, or was cancelled at its timeout
            if facts.drained is None or due > facts.time(facts.drained):
                continue  # the run ended before the timeout was due (judged above when nothing was left to run)
            still = "never ended" if ended is None else f"ran on until {format_ms(ended)}"
            return (
                f"periodic call {attempt.n} was still running at {format_ms(due)}, {target.timeout_ms}ms after it "
                f"started, but the timeout did not cancel it (it {still})",
                [attempt.start] + ([end] if end is not None else []),
            )
    return None


def _judge_joined(target: Target, facts: Facts) -> tuple[str, list[int]] | None:
    """With ``shared``: the callers still waiting on an execution when it timed out time out with it.

    An execution timed out when the subject cancelled it at its timeout (by
    T plus the clock's lateness after its start, or its job's submission),
    not in the instant of a cancel of a caller of its key, before any
    ``stop()``, and not once nobody waited for it (``abandon``); without
    ``timeout_fires``, not when its own canceller raised. A caller of its key
    still waiting then (submitted before, not answered, not cancelled, its
    own job not started) fails with the timeout error in that instant, when
    it is served by it (``served_by``); and one never answered at all, when
    no other execution of its key ran then or started after (it could not be
    waiting for another one), and the run drained with it stranded
    (``stranded_jobs``: nothing that never ends excuses it). A caller queued
    for the key's next execution is judged by that one.
    """
    timeout, late = known(target.timeout_ms) * 1000, facts.late_us
    for owner in facts.jobs.values():
        stop = facts.stop_for(owner.submit)
        for attempt in owner.attempts:
            if attempt.end_kind != EventKind.JOB_CANCEL or (attempt.canceller_raised and not target.timeout_fires):
                continue
            end = known(attempt.end)
            if stop is not None and stop < end:
                continue
            origin = attempt.start if target.timeout_from == "start" else known(owner.submit)
            due, ended = facts.time(origin) + timeout, facts.time(end)
            if not due <= ended <= due + late:
                continue  # not cancelled at its timeout
            keyed = [j for j in facts.jobs.values() if j.key == owner.key and not j.periodic]
            if any(facts.time(c) == ended and c < end for j in keyed for c in j.cancels) or _abandoned_before(target, facts, attempt):
                continue  # a caller's cancel in the same instant, or nobody waited: not for certain the timeout
            others = [a for j in keyed for a in j.attempts if a is not attempt and (a.running_at(end) or a.start > end)]
            for job in keyed:
                if job is owner or job.submit is None or job.submit > end or job.submit_raised is not None:
                    continue
                if job.fired is not None and job.fired < end or any(c < end for c in job.cancels):
                    continue  # answered or cancelled before: not waiting on it
                if any(a.start < end for a in job.attempts):
                    continue  # its own job ran: judged by its own attempts
                message = _joined_timed_out(target, facts, job, attempt, others)
                if message is not None:
                    return message
    return None


def _joined_timed_out(target: Target, facts: Facts, job: JobFacts, attempt: Attempt,
                      others: list[Attempt]) -> tuple[str, list[int]] | None:
    """What is wrong with ``job``, a caller of ``attempt``'s key still waiting when that execution timed out
    (``_judge_joined``), or None."""
    end = known(attempt.end)
    ended = format_ms(facts.time(end))
    execution = f"job {attempt.job}'s execution of key {job.key}"
    expected = target.timeout_error.__name__
    if job.fired is None:
        if others or facts.drained is None or job.id not in stranded_jobs(facts, target):
            return None  # it may wait for another execution of its key (or the run did not drain)
        return (
            f"job {job.id} was waiting on {execution} when it timed out at {ended} ({target.timeout_ms}ms after it "
            f"{'started' if target.timeout_from == 'start' else 'was submitted'}), and its Deferred never fired (no "
            f"other execution of key {job.key} ran then or started after); a caller that joined an execution "
            f"times out with it, failing with {expected} then",
            [known(job.submit), end],
        )
    served = served_by(facts, job)
    if served is not attempt or facts.time(job.fired) != facts.time(end):
        return None  # served by another execution (or later, by something this cannot tell)
    event = facts.event(job.fired)
    if event.kind == EventKind.FAILURE and any(
        facts.is_error(job.fired, t) for t in (target.timeout_error, target.cancel_error, *target.rejects)
    ):
        return None  # timed out with it (a cancel error is sharing.isolated's; a declared reject goes)
    return (
        f"job {job.id} was waiting on {execution} when it timed out at {ended}, but its Deferred fired with "
        f"{event.detail}, not {expected}; a caller that joined an execution times out with it",
        [known(job.submit), end, job.fired],
    )


def _answered_before_timeout(facts: Facts, job: JobFacts, due: int) -> bool:
    """A hedged request's caller answered before its timeout ``due``: before it, or by it plus the clock's
    lateness with the outcome of a copy that finished or failed in that instant (on a late clock a copy's
    answer may come first, overdue calls running in due order: the timeout then owes nothing)."""
    answered = facts.time(known(job.fired))
    if answered < due:
        return True
    if answered > due + facts.late_us:
        return False
    served = served_by(facts, job)
    return (
        served is not None and served.job == job.id and served.end_kind in (EventKind.JOB_FINISH, EventKind.JOB_FAIL)
        and facts.time(known(served.end)) == answered
    )


def _joined_execution(target: Target, facts: Facts, job: JobFacts) -> JobFacts | None:
    """With ``shared``: the other job whose execution served ``job``'s caller (``served_by``: the attempt its
    outcome names, else one of its key ending in the instant of the firing), when ``job`` itself never ran
    before its caller fired; None otherwise (not shared, its own job ran, or nothing served it). Such a
    caller shares that execution's timeout, measured from that job's first start (or submission)."""
    if not target.shared or job.fired is None or any(a.start < job.fired for a in job.attempts):
        return None
    served = served_by(facts, job)
    if served is None or served.job == job.id:
        return None
    return facts.jobs[served.job]


def _ended_on_purpose(target: Target, facts: Facts, job: JobFacts, attempt: Attempt) -> bool:
    """Whether the subject cancelled ``attempt`` on purpose, not at a timeout: in the instant of a call of an
    operation declared ``cancels_work`` (after it, before the schedule's next operation: an ``unsubscribe()``
    that cancels the delivery in progress),
    or, with ``sheds``, answering its caller in that instant with one of those refusals (an evicted slow
    consumer, shed load; ``errors.rejects`` judges whether the refusal was legitimate)."""
    end = known(attempt.end)
    at = facts.time(end)
    names = target.work_cancelling_operations
    # The cancel made by the call itself (or what it set off in that instant: a callLater(0) runs before the
    # schedule's next operation), not by a later operation of the instant (a submit's: audit 12).
    if names and operation_called_before(facts, end) in names:
        return True
    if not target.sheds:
        return False
    # Its caller refused in the cancel's instant; or, when its canceller raised (the job never ends, and its
    # caller cannot be answered through it), any caller refused after the cancel by the same step of the run,
    # before the schedule's next operation: the subject shed work. A refusal made by a later operation of that
    # instant (a submit that sheds a waiter) is another shed, no excuse for this cancel (audit 12).
    refused = [job.fired] if job.fired is not None else []
    if attempt.canceller_raised:
        refused = [i for i in facts.by_kind.get(EventKind.FAILURE, ()) if i > end and not _operation_between(facts, end, i)]
    return any(
        facts.time(i) == at and facts.event(i).kind == EventKind.FAILURE and any(facts.is_error(i, t) for t in target.sheds)
        for i in refused
    )


def _operation_between(facts: Facts, first: int, last: int) -> bool:
    """Whether an operation of the schedule was applied between trace indexes ``first`` and ``last``."""
    return any(facts.events[i][1] in SCHEDULE_OPERATIONS for i in range(first + 1, last))


def _abandoned_before(target: Target, facts: Facts, attempt: Attempt) -> bool:
    """With ``shared``: whether ``attempt`` was cancelled once nobody waited for it any more (every caller
    of its key cancelled or answered: ``abandoned_at``), so an early end is no timeout's."""
    if not target.shared:
        return False
    abandoned = abandoned_at(facts, target, attempt)
    return abandoned is not None and abandoned <= known(attempt.end)


def _kept_cancel(target: Target, facts: Facts, job: JobFacts, attempt: Attempt,
                 excused: int | None) -> tuple[str, list[int]] | None:
    """With ``retries`` and a timeout from ``"start"`` (each attempt's): whether ``job``'s caller got an error
    other than the timeout's after ``attempt``, which the subject cancelled at its timeout (review 6, finding 1).

    The caller is not held to fail at T (a retry may follow) and may get the timeout error or an error one of
    its job's attempts raised once the subject gives up; but not another (the cancel error of an attempt the
    subject cancelled itself is no error the job produced, and the caller never cancelled). Judged when its
    Deferred failed with an error neither ``timeout_error``, a declared reject, nor one an attempt raised,
    ``attempt`` being the last of its attempts to end before that (an error a later attempt raised is
    ``errors.propagate``'s to judge), and neither a cancel of its own nor a ``stop()`` (``excused``) came before.
    """
    fired = job.fired
    if fired is None or fired < known(attempt.end) or (excused is not None and excused < fired):
        return None
    if facts.event(fired).kind != EventKind.FAILURE:
        return None
    if any(facts.is_error(fired, t) for t in (target.timeout_error, *target.rejects)):
        return None
    name = facts.error_name(fired)
    if any(a.end_kind == EventKind.JOB_FAIL and known(a.end) < fired and facts.event(known(a.end)).detail == name
           for a in job.attempts):
        return None  # an error one of its attempts raised (the last attempt's error, once the subject gives up)
    if any(a.end is not None and known(attempt.end) < a.end < fired for a in job.attempts):
        return None  # a later attempt ended before the answer: errors.propagate judges what it passed on
    return (
        f"job {job.id}'s attempt {attempt.n} timed out at {format_ms(facts.time(known(attempt.end)))} and its "
        f"Deferred failed at {format_ms(facts.time(fired))} with {facts.event(fired).detail.rstrip(': ')}, though "
        f"its caller never cancelled: the subject's own cancel of a timed-out attempt is no error the job produced; the "
        f"caller gets {target.timeout_error.__name__} or an error one of its attempts raised",
        [known(attempt.end), fired],
    )


def _gave_up_late(target: Target, facts: Facts, job: JobFacts, attempt: Attempt,
                  excused: int | None) -> tuple[str, list[int]] | None:
    """With ``retries`` and a timeout from ``"start"``: whether ``job``'s caller was answered late after
    ``attempt``, its last declared attempt (number ``retries``: no retry left), which the subject cancelled at
    its timeout (review 10, finding 1).

    The subject gives up then, and its caller fails no later than a retry would have started: by the cancel
    plus the longest wait the run showed from the end of one of the job's attempts to the start of the next
    (plus twice the clock's lateness: the timeout and the timer that moves on may each fire late), or plus
    the high end of the declared ``backoff_ms`` before one more retry (plus the lateness), whichever is
    longer. A subject that started each retry in the call that ended the attempt before (no timer between) fails
    the caller in the instant of the last cancel. A work queue that redelivers a message when its visibility runs out, and
    dead-letters it then after its last delivery, answers when it would have redelivered: in time. A caller
    answered before the attempt ended (background retries, a shared answer) owes nothing here, nor one whose
    cancel or a ``stop()`` came before the answer was due; an unanswered one is judged once the run drained
    after that, or before with nothing left scheduled (no timer could answer it). What the caller got is
    ``_kept_cancel``'s to judge.
    """
    if attempt.n != target.retries:
        return None
    end = known(attempt.end)
    ended = facts.time(end)
    # How long the subject took to start each retry after the attempt before ended, for the retries that came
    # through a timer (not in the call that ended the attempt before: a stride clock may run both in one instant).
    waits = [facts.time(after.start) - facts.time(before.end) for before, after in zip(job.attempts, job.attempts[1:])
             if after.n <= attempt.n and before.end is not None and before.end < after.start
             and opener_of(facts, after.start) != opener_of(facts, before.end)]
    waited = max(waits, default=0)
    slack = waited + 2 * facts.late_us if waits else 0
    declared = target.backoff_range(attempt.n + 1)
    if declared is not None:
        slack = max(slack, math.ceil(declared[1] * 1000) + facts.late_us)
    due = ended + slack
    fired = job.fired
    if fired is not None and (fired < end or facts.time(fired) <= due):
        return None
    answered = fired if fired is not None else facts.drained if facts.drained is not None else len(facts.events)
    if excused is not None and excused < answered and facts.time(excused) <= due:
        return None  # cancelled or stopped before the answer was due (not the teardown stop): any end goes then
    if fired is None and (facts.drained is None or facts.time(facts.drained) < due) and facts.idle_drain() is None:
        return None  # the run ended before the answer was due, with timers left that might have answered it
    if not slack:
        when = "this subject started each retry in the call that ended the attempt before"
    elif waits and slack == waited + 2 * facts.late_us:
        when = (f"this subject started a retry at most {format_ms(waited)} after the attempt before ended"
                f"{', plus twice the clock lateness' if facts.late_us else ''}")
    else:
        when = (f"the declared backoff before one more retry is at most {known(declared)[1]:g}ms"
                f"{', plus the clock lateness' if facts.late_us else ''}")
    got = "never failed" if fired is None else f"failed only at {format_ms(facts.time(fired))}"
    return (
        f"job {job.id}'s last attempt ({attempt.n}: 1 + {target.retries} retries declared) timed out at "
        f"{format_ms(ended)} but its Deferred {got}; with no retry left the caller fails when the subject gives up, "
        f"by {format_ms(due)}: {when}",
        [attempt.start, end] + ([fired] if fired is not None else []),
    )


def _judge_cleanup(target: Target, facts: Facts, job: JobFacts, attempt: Attempt,
                   excused: int | None) -> tuple[str, list[int]] | None:
    """``timeout_cleanup_ms=C``: ``job``'s caller, whose ``attempt`` the subject cancelled at its timeout, fails with
    ``timeout_error`` within C of that cancel (review 10, finding 2: a saga compensating its completed steps, a
    rollback, before it answers), plus how late the timers on the cleanup's way fired (``chain_lateness``: a
    backoff between two tries of a compensation may fire as late as the clock may be, each in its turn).

    A cancel of the caller's own or a ``stop()`` during the cleanup, before the answer and by the bound (plus the
    clock's lateness: a cleanup timer overdue then, not yet run by a late reactor), excuses the rest (the cleanup
    may end with its error). An answer never given is judged at the drain: when the bound
    passed by then, or nothing at all was left scheduled (``Facts.idle_drain``: nothing could ever answer it).
    """
    end, fired = known(attempt.end), job.fired
    cancelled, cleanup = facts.time(end), known(target.timeout_cleanup_ms)
    last = fired if fired is not None else facts.drained if facts.drained is not None else len(facts.events) - 1
    origin = opener_of(facts, end)
    late = 0 if origin is None else chain_lateness(facts.events, origin, last, facts.late_us, cleanup * 1000)
    bound = cancelled + cleanup * 1000 + late
    if (excused is not None and end < excused and (fired is None or excused < fired)
            and facts.time(excused) <= bound + facts.late_us  # (before a late reactor ran the cleanup's overdue timer)
            and (facts.drained is None or excused < facts.drained)):  # the teardown stop() excuses nothing
        return None  # the caller's cancel or a stop() came during the cleanup: any error goes then
    expected = target.timeout_error.__name__
    promise = f"timeout_cleanup_ms={cleanup} promises it fails with {expected} within {cleanup}ms of the timeout"
    hops = f" (and the {format_ms(late)} the timers on the cleanup's way fired late)" if late else ""
    if fired is None:
        if facts.drained is None or (facts.time(facts.drained) <= bound and facts.idle_drain() is None):
            return None  # the run ended within the bound, timers still pending: the cleanup may still answer
        return (
            f"job {job.id} timed out at {format_ms(cancelled)} but its Deferred never fired; {promise}{hops}",
            [attempt.start, end],
        )
    if facts.time(fired) > bound:
        return (
            f"job {job.id} timed out at {format_ms(cancelled)} but its Deferred fired only at "
            f"{format_ms(facts.time(fired))}, {format_ms(facts.time(fired) - cancelled)} later; {promise}{hops}",
            [end, fired],
        )
    if facts.event(fired).kind != EventKind.FAILURE or not facts.is_error(fired, target.timeout_error):
        return (
            f"job {job.id} timed out at {format_ms(cancelled)} but its Deferred fired with "
            f"{facts.event(fired).detail}, not {expected} ({promise})",
            [end, fired],
        )
    return None


def _quorum_loser(target: Target, facts: Facts, job: JobFacts, attempt: Attempt) -> bool:
    """With ``fanout``: whether ``attempt`` was cancelled in the instant its job's caller was answered (a
    losing copy of a quorum call, cancelled as the answer came), so its end is no timeout's, early or late:
    whether the answer was due then is ``time.quorum_early``'s and ``time.quorum_late``'s to judge, and a
    timeout error ``_legitimate``'s."""
    fired = job.fired
    return (
        target.fanout is not None
        and fired is not None
        and attempt.end_kind == EventKind.JOB_CANCEL
        and facts.time(fired) == facts.time(known(attempt.end))
    )


#: How the wait-timeout messages name the promise.
_WAIT = 'timeout_from="wait"'


def _timeout_to_judge(target: Target, facts: Facts, job: JobFacts) -> int | None:
    """The firing (trace index) of ``job``'s caller with the timeout error, unless a cancel or stop came
    first (any error goes then), it is a declared reject, or it is the job's own error, propagated."""
    fired = job.fired
    if fired is None or facts.event(fired).kind != EventKind.FAILURE or not facts.is_error(fired, target.timeout_error):
        return None
    stop = facts.stop_for(job.submit)
    if any(c < fired for c in job.cancels) or (stop is not None and stop < fired):
        return None
    if any(facts.is_error(fired, t) for t in target.rejects):
        return None
    name = facts.error_name(fired)
    if any(a.end_kind == EventKind.JOB_FAIL and known(a.end) < fired and facts.event(known(a.end)).detail == name for a in job.attempts):
        return None  # the job's own error, propagated
    return fired


def _unanswered_at_deadline(target: Target, facts: Facts, job: JobFacts) -> tuple[int, int | None, int | None] | None:
    """The deadline (T after the submission, virtual us) and first start of a job not started by it (plus
    the clock's lateness) and not answered, cancelled or stopped before it, within the drained run, and
    None; or, for a deadline after the drain, the deadline, None and the ``drained`` event's index, when
    the job was still waiting, unanswered, with nothing left scheduled then (``Facts.idle_drain``: nothing
    could ever answer it). None for any other job. ``timeout_from="submit"`` and ``"wait"`` judge what
    such a job's caller received.

    A caller answered in a late wake-up, but in the chain of a timer of the subject's that was due before
    T (``harness.run.calls.owed_before``: a connect's own timeout, due at 200 ms, run at 5 s together with
    the checkout timer due at 300 ms), was answered before T: a punctual reactor would have answered it
    then, so what it got is no timeout's answer to judge here."""
    submit = job.submit
    if submit is None or job.submit_raised is not None:
        return None
    late = facts.late_us
    due = facts.time(submit) + known(target.timeout_ms) * 1000
    first = job.first_start
    if first is not None and facts.time(first) <= due + late:
        return None  # it started in time
    fired = job.fired
    if facts.drained is None:
        return None
    if due > facts.time(facts.drained):
        # Due after the run drained: held to it only when nothing was left scheduled then (no timer could ever
        # answer it), unanswered and not excused before the drain (the harness's teardown stop is no excuse).
        idle = _held_past_drain(facts, fired, Timeout._excused_from(facts, job), first)
        return None if idle is None else (due, None, idle)
    if fired is not None and (facts.time(fired) < due or (facts.time(fired) <= due + late and owed_before(facts, fired, due))):
        # answered before the timeout (refused, say), or by a timer of the subject's due before it that a late
        # clock ran in the timeout's wake-up: an early timeout error is judged elsewhere
        return None
    excused = Timeout._excused_from(facts, job)
    if excused is not None and facts.time(excused) <= due + late:
        return None
    return due, first, None


def _held_past_drain(facts: Facts, fired: int | None, excused: int | None, first: int | None = None) -> int | None:
    """For a deadline due after the run drained: the ``drained`` event's index when it still binds (nothing was
    left scheduled then, so no timer could ever answer the caller, and the caller was neither answered (``fired``),
    started (``first``) nor excused by a cancel or ``stop()`` before the drain: the teardown stop is no excuse);
    None otherwise."""
    idle = facts.idle_drain()
    if idle is None or any(i is not None and i < idle for i in (fired, first, excused)):
        return None
    return idle


def _judge_unstarted(target: Target, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
    """``timeout_from="submit"``: a job not yet started T after its submission is held to T all the same.

    Its caller fails with the timeout error at T (plus the clock's lateness),
    and the job never starts afterwards: the deadline covers the wait for a
    slot, whatever keeps the slots busy (no never-ending-jobs excuse). A
    caller answered before T (refused, say), a cancel or a ``stop()`` by T
    excuse it. Without ``timeout_fires``, so does a running job whose own
    canceller raised by then: a timeout that fails the caller through a
    cancellation (``Deferred.addTimeout`` over a chain) may be blocked by it.
    A job that started by T is judged by its attempts (``Timeout._judge``).
    """
    held = _unanswered_at_deadline(target, facts, job)
    if held is None:
        return None
    due, first, idle = held
    late = facts.late_us
    if not target.timeout_fires and any(facts.time(known(a.end)) <= due + late for a in facts.raised):
        return None
    submit, fired = known(job.submit), job.fired
    expected = target.timeout_error.__name__
    timeout = target.timeout_ms
    if idle is not None:
        return _never_answered(job, facts, due, idle, expected, 'timeout_from="submit"')
    if fired is None or facts.time(fired) > due + late:
        when = "never fired" if fired is None else f"fired only at {format_ms(facts.time(fired))}"
        return (
            f"job {job.id} was still waiting for a slot at {format_ms(due)}, {timeout}ms after it was submitted, "
            f'but its Deferred {when}; timeout_from="submit" promises it fails with {expected} then, '
            "started or not",
            [submit] + ([] if fired is None else [fired]),
        )
    if facts.event(fired).kind != EventKind.FAILURE or not facts.is_error(fired, target.timeout_error):
        return (
            f"job {job.id} timed out at {format_ms(due)} while still waiting for a slot, but its Deferred fired "
            f"with {facts.event(fired).detail}, not {expected}",
            [submit, fired],
        )
    if first is not None:
        return (
            f"job {job.id} timed out at {format_ms(due)} while still waiting for a slot ({timeout}ms after it "
            f"was submitted), yet it started at {format_ms(facts.time(first))}: a timed-out job must not start",
            [submit, fired, first],
        )
    return None


def _judge_detached(target: Target, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
    """``timeout_detaches``: a caller still waiting T after its job started (or was submitted) fails with the
    timeout error then (by T plus the clock's lateness), and the work may run on (review 9, finding 1).

    As ``cancellable="detach"`` for a caller's cancel: the timeout answers the
    caller and leaves the work it cannot reach (a multiplexed call already on
    the wire) running, so work still running after T is no missed timeout (nor
    is one the subject cancels then). The subject cancelling the work before T
    is still an early timeout, unless ended on purpose (``_ended_on_purpose``);
    a caller answered before T, a cancel or a ``stop()`` by T excuse the rest.
    A caller answered by a timer of the subject's due before T that a late
    clock ran in the timeout's wake-up was answered before T (``owed_before``).
    With ``"submit"``, a job not started by T is ``_judge_unstarted``'s.
    """
    submit = job.submit
    if submit is None or job.submit_raised is not None:
        return None
    if target.timeout_from == "start":
        if not job.attempts:
            return None  # never started: no timeout runs (a timeout error then is _legitimate's)
        origin, what = job.attempts[0].start, "started"
    else:
        origin, what = submit, "was submitted"
    late, expected = facts.late_us, target.timeout_error.__name__
    due = facts.time(origin) + known(target.timeout_ms) * 1000
    excused = Timeout._excused_from(facts, job)
    for attempt in job.attempts:
        end = attempt.end
        if (
            attempt.end_kind == EventKind.JOB_CANCEL and facts.time(known(end)) < due
            and (excused is None or excused > known(end))
            and not _ended_on_purpose(target, facts, job, attempt)
        ):
            return (
                f"job {job.id} was cancelled at {format_ms(facts.time(known(end)))}, only "
                f"{format_ms(facts.time(known(end)) - facts.time(origin))} after it {what}; the timeout is "
                f"{target.timeout_ms}ms (and, with timeout_detaches, it leaves the work running){early_cancel_note(target, facts, job, attempt)}",
                [attempt.start, known(end)],
            )
    fired = job.fired
    if facts.drained is None:
        return None
    if due > facts.time(facts.drained):
        # Due after the run drained: held to it only when nothing was left scheduled then (no timer could ever
        # fail its caller), unanswered and not excused before the drain (the harness's teardown stop is no excuse).
        idle = _held_past_drain(facts, fired, excused)
        return None if idle is None else _never_answered(job, facts, due, idle, expected, "timeout_detaches")
    if fired is not None and (facts.time(fired) < due or (facts.time(fired) <= due + late and owed_before(facts, fired, due))):
        return None  # answered before the timeout (an early timeout error is _legitimate's)
    if excused is not None and facts.time(excused) <= due + late and (fired is None or excused < fired):
        return None  # a cancel or stop came first, before the timeout was due or before a late clock fired it
    if fired is None or facts.time(fired) > due + late:
        when = "never fired" if fired is None else f"fired only at {format_ms(facts.time(fired))}"
        return (
            f"job {job.id}'s caller was still waiting at {format_ms(due)}, {target.timeout_ms}ms after it {what}, "
            f"but its Deferred {when}; timeout_detaches promises it fails with {expected} then (its work may run on)",
            [origin] + ([] if fired is None else [fired]),
        )
    if facts.event(fired).kind == EventKind.FAILURE and facts.is_error(fired, target.timeout_error):
        return None
    if any(a.end is not None and a.end_kind != EventKind.JOB_CANCEL and a.end < fired for a in job.attempts):
        return None  # its work ended on its own and answered it before a late clock fired the timeout
    if any(i < fired and facts.time(i) >= due for i in facts.by_kind.get(EventKind.CALL, ())):
        return None  # an operation called once the timeout was due, before a late clock fired it (a lost connection)
    return (
        f"job {job.id} timed out at {format_ms(due)} ({target.timeout_ms}ms after it {what}), but its Deferred "
        f"fired with {facts.event(fired).detail}, not {expected}",
        [origin, fired],
    )


def _glue_origins(facts: Facts) -> dict[int, list[tuple[int, int | None]]]:
    """``timeout_from="glue"``: for each job, where its deadline runs from, in turn: ``(index, origin)``, the
    trace index from which it holds and the virtual time the timeout runs from (None: switched off). The first
    is its submission; each ``timeout.restart`` event of the job's glue then restarts it (now), sets it to
    where another job's runs then (``job <n>``), or switches it off (``stopped``)."""
    origins: dict[int, list[tuple[int, int | None]]] = {}
    for job in facts.jobs.values():
        if job.submit is not None and job.submit_raised is None and not job.periodic:
            origins[job.id] = [(job.submit, facts.time(job.submit))]
    for index in facts.by_kind.get(EventKind.TIMEOUT_RESTART, ()):
        _t, _kind, job_id, _attempt, detail = facts.events[index]
        marks = origins.get(job_id)
        if marks is None:
            continue  # a job not submitted (yet): nothing to time
        origin: int | None = facts.time(index)
        if detail == "stopped":
            origin = None
        elif detail:
            other = origins.get(int(detail.split()[1]), [])
            origin = other[-1][1] if other else None
        marks.append((index, origin))
    return origins


def _judge_glue(target: Target, facts: Facts, job: JobFacts,
                marks: list[tuple[int, int | None]] | None) -> tuple[str, list[int]] | None:
    """``timeout_from="glue"``: a caller is timed from where its glue says (review 9, finding 3: a barrier
    generation's deadline, from its first arrival; an idle session's timer, reset by any of its activity).

    The deadline runs from the job's submission, and from each
    ``restart_timeout()`` of its glue on (now, or from where another job's
    runs then), switched off by ``stop_timeout()`` until the next restart
    (``_glue_origins``). A ``timeout_error`` reaches the caller only at or
    after T from where its deadline ran as it fired, or from where it ran
    before a restart that came once T had passed (a late clock fires a timer
    due before it after it). A caller still waiting when T passed from where
    its deadline runs, with no restart by T plus the clock's lateness, fails
    by then (a cancel or ``stop()`` by then excuses it). The work's own end
    is not judged: the deadline is the callers'. ``marks`` is the job's ``_glue_origins``.
    """
    if not marks:
        return None
    timeout, late = known(target.timeout_ms) * 1000, facts.late_us
    expected = target.timeout_error.__name__
    fired = _timeout_to_judge(target, facts, job)
    if fired is not None:
        at = facts.time(fired)
        current = [(i, o) for i, o in marks if i < fired]
        reached = [o for (i, o), (nxt, _) in zip(current, [*current[1:], (fired, None)])
                   if o is not None and o + timeout <= facts.time(nxt)]
        if not reached:
            origin = current[-1][1]
            why = ("while its glue had switched its deadline off (stop_timeout())" if origin is None
                   else f"only {format_ms(at - origin)} after its deadline last ran from {format_ms(origin)}")
            return (
                f"job {job.id} failed with {facts.event(fired).detail} at {format_ms(at)}, {why}; a timeout error is "
                f"legitimate only {target.timeout_ms}ms after where its deadline runs from "
                "(timeout_from='glue': its submission, or its glue's last restart_timeout())",
                [known(job.submit), *(i for i, _ in current[1:]), fired],
            )
    if facts.drained is None:
        return None
    horizon, answered = facts.time(facts.drained), job.fired
    excused = Timeout._excused_from(facts, job)
    for (index, origin), (following, _) in zip(marks, [*marks[1:], (None, None)]):
        if origin is None:
            continue
        due = origin + timeout
        if following is not None and facts.time(following) <= due + late:
            continue  # restarted (or switched off) before the timeout was overdue
        if answered is not None and answered < index:
            return None  # answered before this deadline ran
        if due > horizon:
            idle = _held_past_drain(facts, answered, excused)
            return None if idle is None else _never_answered(job, facts, due, idle, expected, 'timeout_from="glue"')
        if answered is not None and facts.time(answered) <= due + late:
            return None
        if excused is not None and facts.time(excused) <= due + late:
            return None
        when = "never fired" if answered is None else f"fired only at {format_ms(facts.time(answered))}"
        since = "its submission" if index == job.submit else "a restart_timeout() of its glue"
        return (
            f"job {job.id} was still waiting at {format_ms(due)}, {target.timeout_ms}ms after its deadline ran from "
            f"{format_ms(origin)} ({since}), "
            f"but its Deferred {when}; it fails with {expected} then",
            [index] + ([] if answered is None else [answered]),
        )
    return None


def _never_answered(job: JobFacts, facts: Facts, due: int, idle: int, expected: str, promise: str) -> tuple[str, list[int]]:
    """The message for a job still waiting unanswered when the run drained with nothing left scheduled, its
    deadline ``due`` after that (``_unanswered_at_deadline``)."""
    return (
        f"job {job.id} was still waiting, unanswered, when the run drained at {format_ms(facts.time(idle))} with "
        f"nothing left scheduled: nothing could fail it with {expected} at {format_ms(due)}, as {promise} promises",
        [known(job.submit), idle],
    )


def _judge_wait(target: Target, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
    """``timeout_from="wait"``: a job not started T after its submission fails with the timeout error
    then (by T plus the clock's lateness), and never starts afterwards; a cancel or stop first excuses it."""
    held = _unanswered_at_deadline(target, facts, job)
    if held is None:
        return None
    due, first, idle = held
    expected = target.timeout_error.__name__
    if idle is not None:
        return _never_answered(job, facts, due, idle, expected, _WAIT)
    if first is not None:
        return (
            f"job {job.id} started at {format_ms(facts.time(first))}, after its wait timed out at {format_ms(due)} "
            f"({target.timeout_ms}ms after it was submitted; {_WAIT})",
            [known(job.submit), first],
        )
    if job.fired is None or facts.time(job.fired) > due + facts.late_us:
        when = "never fired" if job.fired is None else f"fired only at {format_ms(facts.time(job.fired))}"
        return (
            f"job {job.id} waited {target.timeout_ms}ms without starting (submitted at "
            f"{format_ms(facts.time(known(job.submit)))}) but its Deferred {when}; {_WAIT} promises "
            f"it fails with {expected} at {format_ms(due)}",
            [known(job.submit)] + ([] if job.fired is None else [job.fired]),
        )
    if facts.event(job.fired).kind != EventKind.FAILURE or not facts.is_error(job.fired, target.timeout_error):
        return (
            f"job {job.id}'s wait timed out at {format_ms(due)} but its Deferred fired with "
            f"{facts.event(job.fired).detail}, not {expected}",
            [known(job.submit), job.fired],
        )
    return None


def _legitimate_wait(run: Run, facts: Facts, job: JobFacts) -> tuple[str, list[int]] | None:
    """``timeout_from="wait"``: a timeout error reaches only a caller whose job never started, at least T
    after its submission, and only if the declared ``capacity`` (default ``limit``) was full at some moment
    of its wait (any one job running, with no ``limit``): a queue with a free slot has no reason to keep a
    job waiting. With ``rate`` and no ``limit``, ``capacity`` or per-key bound, the window instead
    (``_window_wait``). With ``slot_timers`` (what else holds a slot: connects in progress), judged at the moment
    of the timeout instead (``_slots_at_timeout``); with ``weight``, "full" is no room for the job's weight
    (``wait_slots.rooms``: the weight held, the bounds, a waiter ahead of it with no room)."""
    target = run.target
    fired = _timeout_to_judge(target, facts, job)
    if fired is None or job.submit is None:
        return None
    detail, at, timeout = facts.event(fired).detail, format_ms(facts.time(fired)), known(target.timeout_ms)
    if job.attempts and job.attempts[0].start < fired:
        return (
            f"job {job.id} started at {format_ms(facts.time(job.attempts[0].start))}, yet its Deferred failed with "
            f"{detail} at {at}; {_WAIT} times out only the wait, not the job",
            [job.attempts[0].start, fired],
        )
    submitted = facts.time(job.submit)
    waited = facts.time(fired) - submitted
    if waited < timeout * 1000:
        return (
            f"job {job.id} failed with {detail} at {at}, only {format_ms(waited)} after it was submitted; a timeout "
            f"error is legitimate only after the {timeout}ms timeout",
            [job.submit, fired],
        )
    full = target.fill
    if target.slot_timers:
        return _slots_at_timeout(run, facts, job, fired)
    per_key = target.keyed_limit if target.keys else None
    if target.rate is not None and target.limit is None and target.capacity is None and per_key is None:
        return _window_wait(run, facts, job, fired)
    if target.weight is not None:
        room = rooms(target, facts, job, job.submit, fired)
        if not any(r.blocked for r in room):
            return (
                f"job {job.id}'s wait timed out at {at}, but the declared capacity of {target.capacity} always had room "
                f"for its weight of {target.weight_of(job.key, job.priority)} while it waited (at most a weight of "
                f"{max(r.held for r in room)} held, and no waiter ahead of it blocked, since its submission at "
                f"{format_ms(submitted)}): a job with room to run must not be kept waiting",
                [job.submit, fired],
            )
    else:
        most = _most_running(facts, job.submit, fired)
        if most < full and (per_key is None or _most_running(facts, job.submit, fired, job.key) < per_key):
            return (
                f"job {job.id}'s wait timed out at {at}, but the declared {'limit' if target.capacity is None else 'capacity'} "
                f"of {full} was never full while it waited "
                f"(at most {most} running since its submission at {format_ms(submitted)}): a job with a free slot "
                "must not be kept waiting",
                [job.submit, fired],
            )
    free = free_slot_before(target, facts, job, fired, run.view.timers)
    if free is not None:
        return (
            f"job {job.id}'s wait timed out at {at}, but {'it had had room to run' if target.weight else 'a slot had been free'} "
            f"since {format_ms(facts.time(free.since))} ({held_of(target, free.held)} from then on"
            f"{_room_for(target, job)}): a job with a free slot "
            "must not be kept waiting; only a slot freed in the instant of the timeout, or within the clock's "
            f"lateness of it ({format_ms(facts.late_us)}), excuses it",
            [job.submit, free.since, fired],
        )
    return None


def _window_wait(run: Run, facts: Facts, job: JobFacts, fired: int) -> tuple[str, list[int]] | None:
    """``timeout_from="wait"`` with ``rate`` and no ``limit``: the window, not the running jobs, makes a wait
    legitimate (review 12, finding 3; ``wait_window``)."""
    target, submit = run.target, known(job.submit)
    jobs, per_ms = known(target.rate)
    bucket = "" if target.burst is None else " with a burst of " + str(target.burst)
    promise = f"the declared rate of {jobs} per {per_ms}ms{bucket}"
    found = window_left_open(target, facts, job, fired, _first_starts(facts), run.view.timers)
    if found is None:
        return None
    at = format_ms(facts.time(fired))
    why, since = found
    if since is None:
        return (
            f"job {job.id}'s wait timed out at {at}, but {promise} had room for its start all along its wait (since its "
            f"submission at {format_ms(facts.time(submit))}): a job the rate lets start must not be kept waiting",
            [submit, fired],
        )
    return (
        f"job {job.id}'s wait timed out at {at}, but {promise} had had room for its start since {format_ms(since)}: a "
        "job the rate lets start must not be kept waiting; only room made in the instant of the timeout, or within "
        f"the clock's lateness of it ({format_ms(facts.late_us)}), excuses it",
        [submit, fired],
    )


def _slots_at_timeout(run: Run, facts: Facts, job: JobFacts, fired: int) -> tuple[str, list[int]] | None:
    """``timeout_from="wait"`` with ``slot_timers``: a waiter's timeout error (trace index ``fired``) is
    legitimate only if, as it fired, the slots were full (attempts running, an attempt whose canceller
    raised holding its slot, plus the declared slot timers pending reach ``capacity``), or as many slot
    timers were pending as jobs waited (submitted, not started, not answered before ``fired``: each had a
    slot being prepared, a connect of its own). Judged at the timeout, not at some moment of the wait: a
    slot held by a connect early in the wait excuses nothing once the connect ended and its slot stayed
    free (a pool that forgets to connect again after a failed connect)."""
    target = run.target
    names = {timer_name(f) for f in target.slot_timers}
    held = sum(1 for timer in run.view.timers if timer.function in names and timer.pending_at(fired))
    running = sum(
        1
        for other in facts.jobs.values()
        for a in other.attempts
        if a.start < fired and (a.end is None or a.end > fired or a.canceller_raised)
    )
    waiting = sum(
        1
        for other in facts.jobs.values()
        if other.submit is not None and other.submit < fired and other.submit_raised is None and not other.periodic
        and (other.first_start is None or other.first_start > fired)
        and (other.fired is None or other.fired >= fired)
    )
    if running + held >= target.fill or held >= waiting:
        return None
    what = "limit" if target.capacity is None else "capacity"
    timers = "/".join(sorted(names))
    return (
        f"job {job.id}'s wait timed out at {format_ms(facts.time(fired))}, but then the declared {what} of "
        f"{target.fill} was not full ({running} running, {counted(held, 'slot')} held by pending {timers} timers) "
        f"and {counted(waiting, 'job')} waited for fewer slots being prepared: a job with a free slot must not be "
        "kept waiting",
        [known(job.submit), fired],
    )


def _room_for(target: Target, job: JobFacts) -> str:
    """What a weighted capacity adds to a free slot's message: the waiter's own weight, and that no waiter ahead
    of it was blocked (``rooms``); nothing without a ``weight``."""
    if target.weight is None:
        return ""
    ahead = ", and no waiter ahead of it blocked" if target.order is not None else ""
    return f", room for its weight of {target.weight_of(job.key, job.priority)}{ahead}"


def _most_running(facts: Facts, first: int, last: int, key: int | None = None) -> int:
    """The most jobs holding a slot at once between trace indexes ``first`` and ``last`` (``holding``: an
    attempt running, an attempt whose canceller raised, which never ends, or a job between two of its attempts,
    whose retry's backoff may keep its slot); given a ``key``, only the jobs of that key (a waiter whose key was
    at its ``key_limit`` had no slot to run in either)."""
    changes: list[tuple[int, int]] = []
    for job in facts.jobs.values():
        if key is not None and job.key != key:
            continue
        for start, end in holding(job):
            if start > last or (end is not None and end < first):
                continue
            changes.append((max(start, first), 1))
            if end is not None and end <= last:
                changes.append((end, -1))
    running = most = 0
    for _, step in sorted(changes, key=lambda c: (c[0], -c[1])):
        running += step
        most = max(most, running)
    return most


class Retries(Invariant):
    """A job runs again only as a retry: never after one of its attempts succeeded, nor after its caller's
    Deferred fired, whatever ``retries`` says; with ``retries`` declared, at most ``retries + 1`` attempts,
    each only after the previous one failed.

    Without ``retries`` the count and the overlap are not judged (a hedging
    subject may run copies of a job at once), but a success is final all the
    same: a job called again once it succeeded, or once its caller had its
    answer, runs twice for one request. A start after the caller was
    cancelled is ``cancellation.no_start``'s to judge. A target declaring
    ``retries_after_answer`` (a subject that answers its caller and goes on
    retrying in the background) is spared the rule about the caller's answer,
    and that rule only. A target declaring ``lease_ms`` (at-least-once
    delivery) may call a job again once an attempt has run ``lease_ms``
    without succeeding, while that attempt still runs, and holds final only a
    success within its lease; an attempt joined by another before its lease
    ran out is a violation, ``retries`` declared or not.
    """

    name = "time.retries"
    summary = (
        "no job runs again after it succeeded or its caller fired; with retries declared, at most retries+1 "
        "attempts per job, each only after the previous attempt failed"
    )

    def applies(self, target: Target) -> bool:
        return target.kind == "submit"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        redrives = bool(run.target.redriving_operations)
        for job in facts.jobs.values():
            if len(job.attempts) < 2:
                continue  # nearly every job: one attempt, or none
            for attempts in (runs(run.target, facts, job) if redrives else (job.attempts,)):
                found = self._run(run, facts, job, attempts, afresh=attempts[0] is not job.attempts[0])
                if found is not None:
                    return found
        return None

    def _run(self, run: Run, facts: Facts, job: JobFacts, attempts: tuple[Attempt, ...], afresh: bool) -> Violation | None:
        """One run of ``job``'s attempts (all of them, unless a ``redrives`` operation started it afresh:
        ``afresh``, its caller's answer then came before the run, which is not judged against it)."""
        retries, lease_ms = run.target.retries, run.target.lease_ms
        if len(attempts) > 1:
            if retries is not None and len(attempts) > retries + 1:
                again = f" since a redrive started it afresh (attempt {attempts[0].n})" if afresh else ""
                return self.violation(
                    run,
                    f"job {job.id} was attempted {len(attempts)} times{again}; at most {retries + 1} "
                    f"(1 + {retries} retries) were declared",
                    [a.start for a in attempts],
                )
            finished, fired = job.finished, None if afresh else job.fired
            if lease_ms is not None:
                finished = _final_success(facts, run.target, attempts)
            for previous, attempt in zip(attempts, attempts[1:]):
                start = attempt.start
                if previous.end is None or previous.end > start:  # it starts while the previous one runs
                    if lease_ms is not None:
                        expiry = facts.time(previous.start) + lease_ms * 1000
                        if facts.time(start) < expiry:
                            return self.violation(
                                run,
                                f"job {job.id} attempt {attempt.n} started at {format_ms(facts.time(start))} while "
                                f"attempt {previous.n} was still running, before its {lease_ms}ms lease ran out "
                                f"(at {format_ms(expiry)})",
                                [previous.start, start],
                            )
                    elif retries is not None:
                        return self.violation(
                            run,
                            f"job {job.id} attempt {attempt.n} started at {format_ms(facts.time(start))} "
                            f"while attempt {previous.n} was still running",
                            [previous.start, start],
                        )
                if finished is not None and finished < start and run.target.fanout is None:  # a quorum's copies run beside a success
                    done = next(a for a in job.attempts if a.end == finished)
                    if lease_ms is not None:
                        final = f" within its {lease_ms}ms lease; a success within the lease is final"
                    else:
                        final = "; a success is final, retries declared or not" if retries is None else ""
                    return self.violation(
                        run,
                        f"job {job.id} was retried (attempt {attempt.n}) although attempt {done.n} succeeded{final}",
                        [finished, start],
                    )
                if (
                    fired is not None
                    and fired < start
                    and not run.target.retries_after_answer  # declared: the subject may run a job on after its answer
                    and not any(c < start for c in job.cancels)
                ):
                    return self.violation(
                        run,
                        f"job {job.id} attempt {attempt.n} started at {format_ms(facts.time(start))}, after its "
                        f"Deferred had fired at {format_ms(facts.time(fired))}: nobody waits for that run",
                        [fired, start],
                    )
        return None


def _afresh(attempt: Attempt, first: int) -> str:
    """How a message names a retry of a run a ``redrives`` call started afresh: with its attempt number."""
    return f" (attempt {attempt.n}, since a redrive)" if first else ""


def _final_success(facts: Facts, target: Target, attempts: tuple[Attempt, ...]) -> int | None:
    """With ``lease_ms``: the trace index of the first end of an attempt that succeeded within its lease
    (``Target.lease_final``), or None. A success after the lease ran out is not final."""
    ends = [
        a.end for a in attempts
        if a.end is not None and a.end_kind == EventKind.JOB_FINISH and target.lease_final(facts.time(a.start), facts.time(a.end))
    ]
    return min(ends) if ends else None


class Backoff(Invariant):
    """Declared backoff: the delay before each retry stays within its declared range.

    The high end is judged with the clock's lateness, or, for a retry (of a job, or of a backoff loop)
    that came through several timers in a row (a ``callLater(0)`` hop, then the backoff), with the lateness they fired
    with one after another (``chain_lateness``, within the retry's own delay).
    """

    name = "time.backoff"
    summary = "the delay before each retry stays within the declared backoff range"

    def applies(self, target: Target) -> bool:
        return target.backoff_ms is not None

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        if run.target.backoff_loop:
            return self._loop(run, facts)
        lease = run.target.lease_ms is not None
        redrives = bool(run.target.redriving_operations)
        for job in facts.jobs.values():
            for attempts in (runs(run.target, facts, job) if redrives and len(job.attempts) > 1 else (job.attempts,)):
                found = self._retries(run, facts, job, attempts, lease)
                if found is not None:
                    return found
        return None

    def _retries(self, run: Run, facts: Facts, job: JobFacts, attempts: tuple[Attempt, ...], lease: bool) -> Violation | None:
        """The retries of one run of ``job``'s attempts (all of them, unless a ``redrives`` operation started
        it afresh: its first attempt is then no retry, and retry k is the run's k-th)."""
        first = attempts[0].n if attempts else 0
        for previous, attempt in zip(attempts, attempts[1:]):
            if previous.end is None:
                continue
            if lease and (previous.end > attempt.start or previous.end_kind == EventKind.JOB_FINISH):
                continue  # a redelivery once the lease ran out (the attempt ran on, or succeeded late): no retry wait
            k = attempt.n - first  # retry k of its run
            low, high = known(run.target.backoff_range(k))
            waited = facts.time(attempt.start) - facts.time(previous.end)
            if waited > high * 1000 + facts.late_us and waited <= high * 1000 + chain_lateness(
                    facts.events, previous.end, attempt.start, facts.late_us, round(high * 1000)):
                continue  # a retry reached through several timers in a row (a callLater(0) hop, then the backoff)
            if waited > high * 1000 + facts.late_us and (run.target.limit is not None or run.target.capacity is not None):
                # A retry, once due, may wait for a slot like a new job: only while the slots stay full.
                free = retry_left_free(run.target, facts, job, previous.end, facts.time(previous.end) + round(high * 1000), attempt.start)
                if free is None:
                    continue
                return self.violation(
                    run,
                    f"job {job.id} retry {k}{_afresh(attempt, first)} started {format_ms(waited)} after attempt {previous.n} "
                    f"ended, past the declared backoff of {low:g}ms to {high:g}ms, and a slot was free from "
                    f"{format_ms(free.since_us)} to {format_ms(free.until_us)} ({held_of(run.target, free.held)}"
                    f"{_room_for(run.target, job)}): a retry past "
                    f"its backoff may wait only for a slot, not beside a free one",
                    [previous.end, free.freed, attempt.start],
                )
            if waited < low * 1000 or waited > high * 1000 + facts.late_us:
                return self.violation(
                    run,
                    f"job {job.id} retry {k}{_afresh(attempt, first)} started {format_ms(waited)} after attempt {previous.n} "
                    f"ended; the declared backoff is {low:g}ms to {high:g}ms",
                    [previous.end, attempt.start],
                )
        return None

    def _loop(self, run: Run, facts: Facts) -> Violation | None:
        """A backoff loop: the call after a failure comes within that retry's range (``time.early`` judges the low end)."""
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            for previous, attempt, wait in _backoff_waits(run.target, job, _subject_cancels(run.target, facts, job, facts.first_stop()),
                                                          _requested(run.target, facts, job)):
                if wait.most_ms is None:
                    continue
                low, high = wait.least_ms, wait.most_ms
                waited = facts.time(attempt.start) - facts.time(wait.origin)
                if waited > high * 1000 + facts.late_us:
                    # The way to the call may be several timers in a row (a callLater(0) hop, then the
                    # backoff), each as late as the clock may be: their lateness along the chain is excused.
                    chain = chain_lateness(facts.events, wait.origin, attempt.start, facts.late_us, round(high * 1000),
                                           loop_timers(facts.events, job.id, attempt.start))
                    if waited <= high * 1000 + chain:
                        continue
                    hops = f" (the timers on its way fired {format_ms(chain)} late, one after another)" if chain > facts.late_us else ""
                    return self.violation(
                        run,
                        f"periodic call {attempt.n} came {format_ms(waited)} after call {previous.n} {wait.why}; "
                        f"the declared backoff is {low:g}ms to {high:g}ms{hops}",
                        [known(previous.end), attempt.start],
                    )
        return None


class Early(Invariant):
    """Nothing starts earlier than promised: periodic calls keep their interval, rate-limited work its rate.

    Both are judged in monotonic time, and a wall-clock jump never excuses a
    burst. Code that reads ``seconds()`` may have one interval of its
    periodic schedule shortened by a jump, no more: ``LoopingCall`` times
    its next call from one ``seconds()`` reading, so after a jump exactly one
    gap (the one the jumped reading timed) may be short, and the grid holds
    again from there. So every jump between two calls excuses one interval;
    replaying the ticks a jump seemed to skip is a burst and is caught.
    """

    name = "time.early"
    summary = "periodic calls come no sooner than the interval; rate-limited starts stay within the declared rate"

    def applies(self, target: Target) -> bool:
        return target.rate is not None or target.kind == "periodic"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        found: Violation | None = None
        if target.backoff_loop:
            found = self._backoff(run, facts, target)
        elif target.kind == "periodic":
            found = self._periodic(run, facts, known(target.interval_ms) * 1000)
        if found is None and target.rate is not None:
            if target.burst is not None:
                found = self._burst(run, facts, *target.rate, target.burst)
            else:
                found = self._rate(run, facts, *target.rate)
        return found

    def _periodic(self, run: Run, facts: Facts, interval: int) -> Violation | None:
        """For every two calls i < j: ``t_j - t_i >= (j - i - jumps) * interval - late``, where ``jumps``
        counts the jumps after the call before i and before j (each may shorten one gap).

        Checked in one pass: the bound is ``w_j >= max(v_i) - late`` with
        ``w_j = t_j - j*interval + J(s_j)*interval`` and
        ``v_i = t_i - i*interval + J(s_(i-1))*interval``, ``J(s)`` the jumps before trace index ``s``.
        """
        # A call answering a request for a call now (Operation(calls_now=True)) keeps no interval: left out.
        forced = on_demand_calls(facts, asking(run.target)) if run.target.operations else set()
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            best: tuple[int, Attempt] | None = None
            origin = job.submit if job.submit is not None else -1
            before = origin
            attempts = [a for a in job.attempts if (job.id, a.n) not in forced] if forced else job.attempts
            for k, attempt in enumerate(attempts):
                t = facts.time(attempt.start)
                if best is not None:
                    v, first = best
                    w = t - k * interval + facts.jumps_between(-1, attempt.start) * interval
                    if w < v - facts.late_us:
                        i = attempts.index(first)
                        excused = facts.jumps_between(attempts[i - 1].start if i else origin, attempt.start)
                        earliest = facts.time(first.start) + (k - i - excused) * interval - facts.late_us
                        jumps = f", allowing one interval for each of the {excused} wall-clock jumps between" if excused else ""
                        return self.violation(
                            run,
                            f"periodic call {attempt.n} came at {format_ms(t)}, earlier than the "
                            f"{interval // 1000}ms interval allows (call {first.n} was at "
                            f"{format_ms(facts.time(first.start))}, so no sooner than {format_ms(earliest)}{jumps})",
                            [first.start, attempt.start],
                        )
                v = t - k * interval + facts.jumps_between(-1, before) * interval
                if best is None or v >= best[0]:
                    best = (v, attempt)  # on a tie the later call: the closest pair is the clearest report
                before = attempt.start
        return None

    def _backoff(self, run: Run, facts: Facts, target: Target) -> Violation | None:
        """A backoff loop: after the k-th failure in a row, the next call waits at least the low end of retry k's range.

        In monotonic time: a wall-clock jump excuses no early retry (waits set with ``callLater`` never see one).
        """
        stop = facts.first_stop()
        for job in facts.jobs.values():
            if not job.periodic:
                continue
            requested = _requested(target, facts, job)
            for previous, attempt, wait in _backoff_waits(target, job, _subject_cancels(target, facts, job, stop), requested):
                if attempt.n in requested:
                    # A call answering a request for a call now (Operation(calls_now=True)) owes no wait (review 11,
                    # finding 3), as _periodic leaves it out of the interval grid.
                    continue
                origin, low, why = wait.origin, wait.least_ms, wait.why
                waited = facts.time(attempt.start) - facts.time(origin)
                if waited < round(low * 1000):
                    return self.violation(
                        run,
                        f"periodic call {attempt.n} came at {format_ms(facts.time(attempt.start))}, "
                        f"{format_ms(waited)} after call {previous.n} {why}; the declared wait is at least {low:g}ms",
                        sorted({previous.start, origin, attempt.start}),
                    )
        return None

    def _rate(self, run: Run, facts: Facts, jobs: int, per_ms: int) -> Violation | None:
        starts = _first_starts(facts)
        for early, late in zip(starts, starts[jobs:]):
            if facts.time(late) - facts.time(early) < per_ms * 1000:
                return self._too_soon(
                    run, facts, starts, early, late, f"{jobs + 1} jobs", f"the declared rate is {jobs} per {per_ms}ms"
                )
        return None

    def _burst(self, run: Run, facts: Facts, jobs: int, per_ms: int, burst: int) -> Violation | None:
        """A token bucket: any ``burst + k`` starts span at least ``k * per_ms / jobs``.

        For starts ``i < j`` (``k = j - i + 1 - burst >= 1``): ``(t_j - t_i) * jobs >= k * per``, checked in
        one pass as ``t_j * jobs - j * per >= max(t_i * jobs - i * per) + (1 - burst) * per``, ``per`` in us.
        """
        starts = _first_starts(facts)
        per = per_ms * 1000
        best: tuple[int, int] | None = None  # (t_i * jobs - i * per, i) over the i at least burst before j
        for j, index in enumerate(starts):
            if j >= burst:
                i = j - burst
                v = facts.time(starts[i]) * jobs - i * per
                if best is None or v >= best[0]:
                    best = (v, i)  # on a tie the later start: the closest pair is the clearest report
            if best is None:
                continue
            v, i = best
            if facts.time(index) * jobs - j * per < v + (1 - burst) * per:
                k = j - i + 1 - burst
                return self._too_soon(
                    run, facts, starts, starts[i], index, f"{j - i + 1} jobs",
                    f"a burst of {burst} at a rate of {jobs} per {per_ms}ms needs {format_ms(k * per // jobs)} for that",
                )
        return None

    def _too_soon(self, run: Run, facts: Facts, starts: list[int], early: int, late: int, count: str, promise: str) -> Violation:
        """``count`` started between the starts at trace indices ``early`` and ``late``, sooner than ``promise`` allows."""
        jumped = " (in monotonic time: the wall-clock jump between them excuses nothing)"
        return self.violation(
            run,
            f"{count} started between {format_ms(facts.time(early))} and {format_ms(facts.time(late))}; {promise}"
            f"{jumped if facts.jump_between(early, late) else ''}",
            [s for s in starts if early <= s <= late],
        )


def _first_starts(facts: Facts) -> list[int]:
    """The trace index of each job's first start, in trace order."""
    return sorted(j.first_start for j in facts.jobs.values() if j.first_start is not None)


class _Periodic(Invariant):
    def applies(self, target: Target) -> bool:
        return target.kind == "periodic"

    @staticmethod
    def periodic_jobs(facts: Facts) -> list[JobFacts]:
        return [job for job in facts.jobs.values() if job.periodic]


class Overlap(_Periodic):
    """Periodic work never overlaps itself unless the target allows it."""

    name = "time.overlap"
    summary = "a periodic call never starts while the previous one still runs (unless overlap=True)"

    def applies(self, target: Target) -> bool:
        return target.kind == "periodic" and not target.overlap

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        for job in self.periodic_jobs(facts):
            for previous in job.attempts:
                for attempt in job.attempts:
                    if attempt.n > previous.n and previous.running_at(attempt.start):
                        return self.violation(
                            run,
                            f"periodic call {attempt.n} started at {format_ms(facts.time(attempt.start))} while "
                            f"call {previous.n} (started {format_ms(facts.time(previous.start))}) was still running",
                            [previous.start, attempt.start],
                        )
        return None


class AfterStop(_Periodic):
    """After ``stop()``, the periodic function is never called again."""

    name = "time.after_stop"
    summary = "after stop() the periodic function is never called again"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        stop = facts.first_stop()
        if stop is None:
            return None
        for job in self.periodic_jobs(facts):
            for attempt in job.attempts:
                if attempt.start > stop:
                    return self.violation(
                        run,
                        f"periodic call {attempt.n} started at {format_ms(facts.time(attempt.start))}, after "
                        f"stop() at {format_ms(facts.time(stop))}",
                        [stop, attempt.start],
                    )
        return None


class AfterEnd(_Periodic):
    """After the loop reported its end (the work's ``report_end``), the periodic function is never called again.

    A report says the loop has ended on purpose; a call that starts after it
    means the loop runs on (or the report came too early). A call in flight at
    the report may still end. A report after ``stop()`` is not judged (a call
    after ``stop()`` is ``time.after_stop``'s).
    """

    name = "time.after_end"
    summary = "after the loop reported its end (work.report_end), the periodic function is never called again"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        reports = facts.by_kind.get(EventKind.LOOP_END)
        if not reports:
            return None  # the loop never reported an end (every target that does not use it)
        stop = facts.first_stop()
        for job in self.periodic_jobs(facts):
            report = next((i for i in reports if facts.events[i][2] == job.id), None)
            if report is None or (stop is not None and stop < report):
                continue
            for attempt in job.attempts:
                if attempt.start > report:
                    return self.violation(
                        run,
                        f"periodic call {attempt.n} started at {format_ms(facts.time(attempt.start))}, after the loop "
                        f"reported its end at {format_ms(facts.time(report))} ({facts.event(report).detail}): a loop "
                        "that reports its end must not call its work again",
                        [report, attempt.start],
                    )
        return None


class LoopDied(_Periodic):
    """A loop never ends in silence: an error in periodic work is reported, and a started loop calls its work.

    A call that ends in error is one that failed, or that the subject itself
    cancelled (its own timeout: a ``job.cancel`` before any ``stop()``). After
    it, more calls come within the loop's wait, or the loop reports its end;
    so after a ``start()`` whose work was never called, and after a last call
    that succeeded (``_silent_end``): a loop whose tick forgot to call its
    work, or that re-armed only on the work's Deferred. The loop's end is reported when
    the Deferred ``start()`` returned fails, the work's ``report_end`` is
    called, or an error is logged while the loop went quiet (no timer of the
    loop's own, ``harness.run.chains.loop_timers``, fired after the call and
    set another: a loop still ticking without calling its work, which logs
    each failed call, has not ended, it is stuck; the subject's other timers,
    a stats loop or a cache sweeper, and a one-shot timer of the loop that
    logs the death, are no ticking). The wait, for
    an interval loop, is two intervals plus the clock's lateness; for one
    that still sets timers after the call, two intervals each as late as the
    clock may fire (``2 * (interval + late)``: one tick may be skipped, a
    misfire policy, and a late tick moves the next; ``skips + 1`` ticks with
    ``Target.skips`` declared, no bound with ``math.inf``). A backoff loop waits
    twice the high end of the failed call's own retry, plus the lateness.
    For a loop still setting timers, either is lengthened by how late the
    timers on the way from the call's end fired, one after another, beyond
    the lateness already allowed (``chain_lateness``: a ``callLater(0)`` hop,
    then the backoff, each as late as the clock may be; review 8, finding 2),
    and by how far the wall clock was set back (behind the latest time it had shown, at the call's
    end or after a jump before the wait's end): a loop aiming its calls at
    wall-clock due times waits that much longer. The wait runs from the
    latest call of an operation that re-armed the loop since, if one did
    (``harness.run.chains.last_rearm``: a restart, ``stop(); start()``,
    cancelled the loop's pending timer and set one of the same function):
    buildbot's ``RepeatedActionHandler`` restarted less than an interval
    apart puts its next call off by design (session 12); not once the loop
    let more than ``skips`` ticks pass since without a call, nor a re-arm
    for later than the wait (audit 13). A call of the work
    cancelled by an operation, declared ``cancels_work`` or not, still owes
    the next call: the declaration excuses the call's early end
    (``time.timeout``), not the loop's. A call that ends after
    ``stop()``, or after the loop reported its end, is not judged: no more
    calls are owed then, however long the run goes on.
    """

    name = "time.loop_died"
    summary = "a started loop calls its work, and goes on after each call (an error in it is reported): never a silent end"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        target = run.target
        stop = facts.first_stop()
        # The Deferred start() returned failed, or the work's report_end was called: the loop reported its own
        # end (an error, or an end on purpose; not a silence).
        reported = EventKind.LOOP_END in facts.by_kind
        ends = facts.of_kind(EventKind.FAILURE, EventKind.LOOP_END) if reported else facts.of_kind(EventKind.FAILURE)
        for job in self.periodic_jobs(facts):
            cancels = _subject_cancels(target, facts, job, stop)
            in_a_row = _failures_in_a_row(job, target.backoff_restart, cancels,
                                          _requested(target, facts, job) if target.backoff_loop else frozenset())
            ended = next((i for i in ends if facts.events[i][2] == job.id), None)
            for attempt in job.attempts:
                kind = attempt.end_kind
                if kind != EventKind.JOB_FAIL and (kind != EventKind.JOB_CANCEL or attempt.canceller_raised):
                    continue  # succeeded, still running, or never settled (its canceller raised)
                end = known(attempt.end)  # a failed or cancelled attempt has ended
                if stop is not None and stop < end:
                    continue  # a call in flight at stop() ended: after stop() no more calls are expected
                if ended is not None and ended < end:
                    continue  # likewise once the loop reported its end: a straggler's failure is not a death
                if kind == EventKind.JOB_CANCEL and any(c < end for c in job.cancels):
                    continue  # cancelled through the handle of start(): the schedule's doing, not the subject's
                if any(later.start > end for later in job.attempts):
                    continue
                window_end = self._window_end(facts, end)
                unreported = self._unreported(facts, job, end, window_end)
                if unreported is None:
                    continue
                text, ticking = unreported
                high: float | None = None
                if target.backoff_loop:
                    # Twice the longest wait before its next retry (a cancelled call counts as one failure more,
                    # or not: the longer of the two).
                    ks = in_a_row[attempt.n]
                    counted = kind == EventKind.JOB_FAIL or attempt.n in cancels.timed_out
                    retries = ks if counted else tuple(r for k in ks for r in (max(k, 1), k + 1))
                    high = max(known(target.backoff_range(r))[1] for r in retries)
                how = "failed" if kind == EventKind.JOB_FAIL else "was cancelled by the subject (before any stop())"
                found = self._silent(
                    run, facts, job.id, end, window_end, ticking, high, "its retry",
                    f"periodic call {attempt.n} {how} at {format_ms(facts.time(end))} and the function was never "
                    "called again", text, [attempt.start, end],
                )
                if found is not None:
                    return found
            found = self._silent_end(run, facts, job, stop, ended)
            if found is not None:
                return found
        return None

    def _silent_end(self, run: Run, facts: Facts, job: JobFacts, stop: int | None, ended: int | None) -> Violation | None:
        """A loop silent from its ``start()`` (its work never called) or after its last call, which succeeded:
        judged as after a failed call, with the wait of an interval (or, for a backoff loop without one, of
        its first retry's high end). None when a call is still running, or the schedule cancelled the
        handle of ``start()``, stopped the subject or the loop reported its end before."""
        origin = job.submit
        if origin is None:
            return None  # (a periodic job is started by the schedule's start)
        last = job.attempts[-1] if job.attempts else None
        if last is not None:
            if last.end_kind != EventKind.JOB_FINISH or any(a.end is None for a in job.attempts):
                return None  # ended in error (judged above), or a call still running: the loop owes nothing yet
            origin = known(last.end)
            if any(a.end is not None and a.end > origin for a in job.attempts):
                return None  # (an earlier call of an overlapping loop ended after it: judged from that one)
        if (stop is not None and stop < origin) or (ended is not None and ended < origin):
            return None
        window_end = self._window_end(facts, origin)
        if any(c < window_end for c in job.cancels):
            return None  # the schedule cancelled the handle of start(): the loop may have ended by it
        unreported = self._unreported(facts, job, origin, window_end, silent=True)
        if unreported is None:
            return None
        text, ticking = unreported
        target = run.target
        high = known(target.backoff_range(target.backoff_first_wait))[1] if target.interval_ms is None else None
        if last is None:
            opened = f"the loop was started at {format_ms(facts.time(origin))} and its function was never called"
            events = [origin]
        else:
            opened = (f"periodic call {last.n} succeeded at {format_ms(facts.time(origin))} and the function was "
                      "never called again")
            events = [last.start, origin]
        return self._silent(run, facts, job.id, origin, window_end, ticking, high, "its next call", opened, text, events)

    def _silent(
        self, run: Run, facts: Facts, job: int, origin: int, window_end: int, ticking: bool, high: float | None,
        waiter: str, opened: str, text: str, events: list[int],
    ) -> Violation | None:
        """The violation when the loop stayed silent from trace index ``origin`` to ``window_end`` past its wait,
        else None. The wait: ``high`` given (a backoff loop), twice that plus the lateness (``waiter`` says
        whose wait it is); else two intervals plus the lateness, or, for a loop still setting timers
        (``ticking``), two intervals each as late as the clock may fire. For a loop still setting timers,
        either is lengthened by how late the timers on the way from the call's end fired, one after another
        (``chain_lateness``: a ``callLater(0)`` hop, then the backoff; beyond the lateness already
        allowed), and by how far the wall clock was set back. All from the latest call of an operation in
        the span that re-armed the loop (``last_rearm``: a restart, ``stop(); start()``), if one did: the
        schedule put the loop's next call off, and the loop owes it from there, as from its ``start()``."""
        target = run.target
        late = facts.late_us
        calls = facts.by_kind.get(EventKind.CALL, ())
        rearm = None
        if any(origin < i <= window_end for i in calls):
            # How far out a re-arm may set the loop's timer and still put its call off: the wait without the
            # allowances worked out below but the wall clock's setback (None: a backoff loop, or no bound).
            reach: int | None = None
            if high is None and target.skips != math.inf:
                ticks = max(int(target.skips) + 1, 2)
                reach = ticks * (known(target.interval_ms) * 1000 + late)
                if ticking and facts.jumps:
                    reach += _wall_behind_us(run, facts, origin, window_end)
            rearm = last_rearm(facts.events, job, origin, window_end, target.skips, reach)
        since = ""
        if rearm is not None:
            # An operation re-armed the loop (a restart): its wait runs from there, as from its start().
            origin = rearm
            since = f" since {facts.events[rearm][4]} re-armed it at {format_ms(facts.time(rearm))}"
        silence = facts.time(window_end) - facts.time(origin)
        if high is not None:
            patience, lates = 2 * round(high * 1000) + late, late
            wait = f"twice the {high:g}ms {waiter} may wait, plus {format_ms(late)} of lateness"
        elif ticking:
            # Two ticks, each as late as the clock fires: one may be skipped (a misfire policy), and a
            # late tick moves the next one by as much; with skips=N declared, N + 1 ticks (math.inf: none
            # is too long while the loop still ticks).
            if target.skips == math.inf:
                return None
            ticks = int(target.skips) + 1
            patience, lates = ticks * (known(target.interval_ms) * 1000 + late), ticks * late
            wait = f"{_count(ticks)} {target.interval_ms}ms intervals" + (f", each up to {format_ms(late)} late" if late else "")
        else:
            # No timer set after the call: only one pending at its end can bring the next call (a timer
            # set from a tick, due within an interval), fired late at most once.
            patience, lates = 2 * known(target.interval_ms) * 1000 + late, late
            wait = f"two {target.interval_ms}ms intervals" + (f" and {format_ms(late)} of lateness" if late else "")
        if silence >= patience and ticking and late:
            # A loop still setting timers may reach its next call through several in a row (a callLater(0)
            # hop, then the backoff or the tick), each fired as late as the clock may be: the wait is
            # lengthened by how late the timers on the way from the call's end fired, along the latest chain
            # of them, beyond the lateness already allowed (an interval loop's ticks: one each).
            chain = chain_lateness(facts.events, origin, window_end, late, patience - lates,
                                   loop_timers(facts.events, job, window_end + 1))
            more = late + chain - lates
            if more > 0:
                patience += more
                wait += f", plus the {format_ms(more)} the timers on its way fired late, one after another"
        if silence < patience:
            return None
        back = _wall_behind_us(run, facts, origin, window_end) if ticking and facts.jumps else 0
        if back:
            # A loop still setting timers may aim them at wall-clock due times: it waits longer by as much
            # as the wall clock is behind. (One that set none after the call cannot be waiting for one.)
            patience += back
            wait += f", plus the {format_ms(back)} the wall clock was set back"
            if silence < patience:
                return None
        if silence == patience and _preempted(facts, window_end):
            # The stop came before calls due at the wait's very end (a step handled before them): the
            # loop's owed call may be among them, so the silence is not yet a death.
            return None
        until = "stop()" if window_end in facts.stops else "the run drained"
        return self.violation(
            run,
            f"{opened} ({format_ms(silence)} until {until}{since}, past the {format_ms(patience)} wait: {wait}), yet {text}",
            events,
        )

    @staticmethod
    def _window_end(facts: Facts, after: int) -> int:
        later = [i for i in facts.stops if i > after]
        if later:
            return later[0]
        return facts.drained if facts.drained is not None else len(facts.events) - 1

    @staticmethod
    def _unreported(facts: Facts, job: JobFacts, start: int, end: int, silent: bool = False) -> tuple[str, bool] | None:
        """None if the loop reported its end between trace indices ``start`` and ``end``: the Deferred of
        ``start()`` failed, or ``report_end`` was called; or an error was logged and the loop went quiet: no
        timer of the loop's (``loop_timers``) fired in that span and set another. A loop that logs each
        failure but still ticks has not ended; the subject's other timers (a cache's expiry, a stats
        ``LoopingCall``, a reconnect loop) say nothing about the loop, nor does a one-shot timer of the
        loop's (a ``callLater(0, ...)`` logging the death out of the failed call's stack). Else what it
        lacked (``silent``: after a start or a success, with no error to report), and whether the subject
        set any timer in that span (the longer wait: see ``check``)."""
        logged = ticking = False
        for _, kind, job_id, _, _ in facts.events[start:end + 1]:
            if (kind == EventKind.FAILURE or kind == EventKind.LOOP_END) and job_id == job.id:
                return None
            if kind == EventKind.LOG_ERROR:
                logged = True
            elif kind == EventKind.TIMER_SET:
                ticking = True
        if not logged:
            if silent:
                return "the loop reported no end (no error logged, no failed start() Deferred, no report_end)", ticking
            return "the error was not reported (not logged, no failed start() Deferred, no report_end)", ticking
        # The loop ticks on if one of its timers fired after the call and set another: a one-shot timer of the
        # loop (a callLater(0, ...) that logs the death out of the failed call's stack) ticks nothing.
        ours = loop_timers(facts.events, job.id, end + 1) if ticking else {}
        fired: set[int] = set()  # the loop's timers that fired in the span
        tick = None
        for event in facts.events[start:end + 1] if ours else ():
            number = timer_number(event[4]) if event[1] == EventKind.TIMER_FIRE or event[1] == EventKind.TIMER_SET else None
            if number is None or number not in ours:
                continue
            if event[1] == EventKind.TIMER_FIRE:
                fired.add(number)
            elif ours[number] in fired:
                tick = event
                break
        if tick is None:
            return None
        return (f"the loop did not report its end: an error was logged, but the loop kept setting timers of its "
                f"own ({tick[4].split(' due ', 1)[0]}, set at {format_ms(tick[0])}) without calling its work (stuck, not "
                "ended; a loop that ends on purpose calls report_end)", True)


def _count(n: int) -> str:
    """``two``, ``three``... for the waits' messages (digits past ten)."""
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[n] if n < len(words) else str(n)


def _preempted(facts: Facts, index: int) -> bool:
    """Whether the operation at trace index ``index`` (a ``stop()``) was handled before calls due in its
    instant: a ``reactor.pause`` before it in the same instant, with only operations between."""
    at = facts.time(index)
    for back in range(index - 1, -1, -1):
        kind = facts.events[back][1]
        if facts.time(back) != at:
            return False
        if kind == EventKind.REACTOR_PAUSE:
            return True
        if kind in CALL_OPENERS and kind not in SCHEDULE_OPERATIONS:
            return False  # a call the reactor ran (a timer, a job settling) after the pause: the stop came after it
    return False


def _wall_behind_us(run: Run, facts: Facts, start: int, end: int) -> int:
    """The most the wall clock (``seconds()``) was behind the latest time it had shown, at trace index
    ``start`` or right after a jump up to ``end`` (in us): how much longer than its interval a loop aiming
    its calls at wall-clock due times may wait then. 0 without a backward jump.

    Each ``Jump`` of the schedule records one ``clock.jump`` event, in order.
    """
    deltas = [op.delta_ms for op in run.schedule.ops if type(op) is Jump]
    at_start = facts.time(start)
    offset = most = 0
    highest: int | None = None  # the latest wall-clock time shown so far (it peaks right before each jump)
    judged_start = False
    for index, delta in zip(facts.jumps, deltas):
        if index > end:
            break
        if index > start and not judged_start:
            judged_start = True
            if highest is not None:
                most = max(most, highest - (at_start + offset))
        t = facts.time(index)
        highest = t + offset if highest is None else max(highest, t + offset)
        offset += delta * 1000
        if index > start:
            most = max(most, highest - (t + offset))
    if not judged_start and highest is not None:
        most = max(most, highest - (at_start + offset))
    return most


def _failures_in_a_row(job: JobFacts, restart: int = 0, cancels: _Cancels | None = None,
                       requested: frozenset[int] = frozenset()) -> dict[int, tuple[int, ...]]:
    """For each attempt number, how many calls had failed in a row when it ended (the counts it may be,
    in order): after a success the count restarts at ``restart`` (``Target.backoff_restart``: 1 when the
    success's end counts as the first failure), and a success itself reads ``restart``. With
    ``Target.backoff_counts_timeouts`` (``cancels``, ``_subject_cancels``) a call the subject cancelled at its
    own timeout counts as a failure too, and one it cancelled on purpose may or may not (an aborted poll: either
    count, until the next success); otherwise a cancelled call leaves the count as it was. A call answering a
    request for a call now (its number in ``requested``) may come of a count the request restarted at 0,
    or of the count as it was (a poller's ``poll_now()`` resets its interval, another loop's need not):
    either, until the next success (review 11, finding 3)."""
    counts: frozenset[int] = frozenset((0,))
    out: dict[int, tuple[int, ...]] = {}
    timed_out, either = cancels or (frozenset(), frozenset())
    for attempt in job.attempts:
        if attempt.n in requested:
            counts |= {0}
        if attempt.end_kind == EventKind.JOB_FAIL or attempt.n in timed_out:
            counts = frozenset(c + 1 for c in counts)
        elif attempt.n in either:
            counts |= {c + 1 for c in counts}
        elif attempt.end_kind == EventKind.JOB_FINISH:
            counts = frozenset((restart,))
        out[attempt.n] = tuple(sorted(counts))
    return out


def _requested(target: Target, facts: Facts, job: JobFacts) -> frozenset[int]:
    """The numbers of the calls of periodic ``job`` that answered a request for a call now
    (``Operation(calls_now=True)``; none on most targets)."""
    if not target.operations:
        return frozenset()
    return frozenset(n for j, n in on_demand_calls(facts, asking(target)) if j == job.id)


class _Cancels(NamedTuple):
    """The calls of a backoff loop the subject cancelled itself (their numbers), with
    ``Target.backoff_counts_timeouts``: at its own timeout (``timed_out``: each a failed call), or on purpose
    (``either``: in the instant of a call of an ``Operation(cancels_work=True)``, ``_ended_on_purpose``, an
    aborted poll: a failed call or none, as the subject counts it; audit 15)."""

    timed_out: frozenset[int]
    either: frozenset[int]


def _subject_cancels(target: Target, facts: Facts, job: JobFacts, stop: int | None) -> _Cancels:
    """The calls of periodic ``job`` the subject cancelled itself, before any ``stop()`` and any cancel of the
    ``start()`` handle (``_Cancels``; none without ``Target.backoff_counts_timeouts``)."""
    timed_out: set[int] = set()
    either: set[int] = set()
    for attempt in job.attempts if target.backoff_counts_timeouts else ():
        if attempt.end_kind != EventKind.JOB_CANCEL or attempt.canceller_raised:
            continue
        end = known(attempt.end)
        if (stop is not None and stop < end) or any(c < end for c in job.cancels):
            continue
        (either if _ended_on_purpose(target, facts, job, attempt) else timed_out).add(attempt.n)
    return _Cancels(frozenset(timed_out), frozenset(either))


class _Wait(NamedTuple):
    """What a backoff loop's call had to wait for: from event ``origin``, at least ``least_ms``; ``retry`` k, or 0;
    at most ``most_ms`` (plus the lateness) when ``time.backoff`` judges the high end (after a failure, or
    a success's ``backoff_ms(0)``), else None."""

    origin: int
    least_ms: float
    why: str
    retry: int
    most_ms: float | None


def _backoff_waits(target: Target, job: JobFacts, cancels: _Cancels | None = None,
                   requested: frozenset[int] = frozenset()) -> Iterator[tuple[Attempt, Attempt, _Wait]]:
    """Each call of a backoff loop after the first, with the wait it owed to the call before.

    After the k-th failure in a row: ``backoff_range(k)`` from the failure;
    after a success: ``interval_ms`` from the previous start, or without one
    ``backoff_range(1)`` from its end (``backoff_range(0)``, both ends, with
    ``backoff_after_success="base"``). A call still running, or cancelled
    (by ``stop()``, on purpose, or by its own timeout unless ``backoff_counts_timeouts``
    counts it as a failure: ``cancels``, ``_subject_cancels``), sets no wait: overlap and
    after-stop are judged apart.
    Where a request for a call now (``requested``) may have restarted the count, the
    wait is the widest of the counts it may be.
    """
    restart = target.backoff_restart
    in_a_row = _failures_in_a_row(job, restart, cancels, requested)
    timed_out = cancels.timed_out if cancels is not None else frozenset()
    succeeded = False  # a call before this one succeeded: with a restart, its end is failure 1 of the count
    for previous, attempt in zip(job.attempts, job.attempts[1:]):
        succeeded = succeeded or previous.end_kind == EventKind.JOB_FINISH
        if previous.end is None or previous.end > attempt.start:
            continue
        timed_out_here = previous.n in timed_out
        if previous.end_kind == EventKind.JOB_FAIL or timed_out_here:
            ks = in_a_row[previous.n]
            counted = " counting the last success's end as the first failure" if restart and succeeded else ""
            how = "timed out" if timed_out_here else "failed"
            ranges = [known(target.backoff_range(k)) for k in ks]
            low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
            retry = " or ".join(str(k) for k in ks)
            either = ": a request for a call now may have restarted the count" if len(ks) > 1 else ""
            yield previous, attempt, _Wait(previous.end, low, f"{how} (retry {retry}{counted}{either})", ks[-1], high)
        elif previous.end_kind == EventKind.JOB_FINISH:
            if target.interval_ms is not None:
                yield previous, attempt, _Wait(previous.start, float(target.interval_ms), "started (it succeeded)", 0, None)
            elif target.backoff_first_wait == 0:
                low, high = known(target.backoff_range(0))
                yield previous, attempt, _Wait(previous.end, low, "succeeded (the base wait, backoff_ms(0))", 0, high)
            else:
                low = known(target.backoff_range(1))[0]
                why = "succeeded (its end counts as the first failure)" if restart else "succeeded (retry count reset)"
                yield previous, attempt, _Wait(previous.end, low, why, 0, None)
