"""Completion invariants: every submitted Deferred fires exactly once, in time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.target import Target
from harness.model.known import known
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.answers import read_answer
from harness.run.diagnosis import Cause
from harness.run.facts import Facts, facts_of
from harness.run.runner import DRAIN_SLACK_MS

if TYPE_CHECKING:
    from harness.run.runner import Run

#: Where an ``AlreadyCalledError`` shows: escaped, logged, raised by submit, cancel, ``stop()`` or an operation,
#: or failing a Deferred (a caller's, the one ``stop()`` returned, or one an operation returned). An operation's
#: is never recorded as a declared refusal (``call.refused``), whatever its ``raises`` says.
_DOUBLE_FIRE_KINDS = (
    EventKind.REACTOR_ERROR,
    EventKind.UNHANDLED,
    EventKind.LOG_ERROR,
    EventKind.SUBMIT_RAISED,
    EventKind.CANCEL_RAISED,
    EventKind.FAILURE,
    EventKind.STOP_RAISED,
    EventKind.STOP_FAILURE,
    EventKind.CALL_RAISED,
    EventKind.CALL_FAILURE,
)


def _any_double_fire(facts: Facts) -> bool:
    """Whether an event of a kind ``Once`` reads mentions AlreadyCalledError: most runs have none. Looked
    for kind by kind, without merging the kinds' indices into trace order (only a violation needs that).
    A subclass of it named otherwise is mentioned too: ``describe_error`` writes ``Other: [AlreadyCalledError] message``."""
    events, by_kind = facts.events, facts.by_kind
    for kind in _DOUBLE_FIRE_KINDS:
        indices = by_kind.get(kind)
        if indices:
            for index in indices:
                if "AlreadyCalledError" in events[index][4]:
                    return True
    return False


class Once(Invariant):
    """No Deferred is fired twice (``AlreadyCalledError`` anywhere in the run)."""

    name = "completion.once"
    summary = "every Deferred fires exactly once (no AlreadyCalledError)"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        if not _any_double_fire(facts):
            return None
        for index in facts.of_kind(*_DOUBLE_FIRE_KINDS):
            event = facts.event(index)
            if "AlreadyCalledError" in event.detail:
                return self.violation(run, double_fire_message(facts, index), [index])
        return None


_CALL_KINDS = (EventKind.CALL_RAISED, EventKind.CALL_FAILURE)


def double_fire_message(facts: Facts, index: int) -> str:
    """What ``Once`` says of the ``AlreadyCalledError`` at trace ``index``: where it showed (a job, an operation,
    the subject) and a hint read from the trace: a caller's cancel before it, or none (round-9 review, F2, F4)."""
    event = facts.event(index)
    detail = event.detail
    if event.kind in _CALL_KINDS:
        operation, _, detail = read_answer(detail)[0].partition(": ")
        where = f"operation {operation}"
    else:
        where = f"job {event.job}" if event.job >= 0 else "the subject"
    cancels = [i for i in facts.of_kind(EventKind.CANCEL) if i < index]
    if cancels:
        jobs = sorted({facts.event(i).job for i in cancels})
        last = facts.event(cancels[-1])
        named = f"job {jobs[0]}" if len(jobs) == 1 else "jobs " + ", ".join(str(j) for j in jobs)
        hint = (
            f"{named} {'was' if len(jobs) == 1 else 'were'} cancelled before it (last at {format_ms(last.t_us)}): "
            "typically a result or error arriving after a cancel already fired the caller's Deferred"
        )
    else:
        hint = (
            "no cancel came before it: two paths of the subject fired the same Deferred (a timer and a result, "
            "a close and a timeout); the error names the function that fired it the second time"
        )
    return f"a Deferred was fired twice ({event.kind} at {format_ms(event.t_us)} in {where}: {detail}); {hint}"


class Deadline(Invariant):
    """Every job that can finish does: by the end of the run, or within the declared ``deadline_ms``."""

    name = "completion.deadline"
    summary = "every job that can finish does, within the declared deadline or by the end of the run"
    needs_diagnosis = True

    def applies(self, target: Target) -> bool:
        return target.kind == "submit"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        stuck = self.diagnosis(run).first(Cause.NONE)
        if stuck is not None:
            job = facts.jobs[stuck]
            end = facts.time(facts.drained) if facts.drained is not None else 0
            return self.violation(
                run,
                f"job {job.id}, submitted at {format_ms(facts.time(known(job.submit)))}, could finish but its "
                f"Deferred had not fired when the run drained at {format_ms(end)} (deadlock or starvation)"
                + timers_pending_hint(facts, run.target),
                [known(job.submit)],
            )
        deadline = run.target.deadline_ms
        if deadline is None:
            return None
        for job in facts.jobs.values():
            if job.periodic or job.submit is None or job.fired is None or job.cancels:
                continue
            took = facts.time(job.fired) - facts.time(job.submit)
            if took > deadline * 1000 + facts.late_us:
                return self.violation(
                    run,
                    f"job {job.id} took {format_ms(took)} from submit to result; the declared deadline is "
                    f"{deadline}ms",
                    [job.submit, job.fired],
                )
        return None


def timers_pending_hint(facts: Facts, target: Target) -> str:
    """For a caller judged never answered at a drain that stopped with timers of the subject still pending
    (the ``drained`` event's ``pending=N``): what the run waited for, and the declaration that lets it wait
    longer, for a subject that answers through a timer of its own (a batcher flushing every 15 s, a retry 30 s
    later: audit 14). Empty when nothing was pending: nothing could have answered the caller any more."""
    if facts.drained is None:
        return ""
    pending = facts.event(facts.drained).detail.removeprefix("pending=")
    if not pending.isdigit() or pending == "0":
        return ""
    timers = f"{pending} timer{'' if pending == '1' else 's'} still pending then"
    deadline, backoffs = target.declared_answer_ms
    if deadline:
        return (f"; {timers}, but the run waited past the declared deadline_ms={deadline} for them (a timer loop "
                "that never answers the caller)")
    if backoffs:
        return (f"; {timers}, but the run waited past the declared retries' backoff_ms for them (a timer loop "
                "that never answers the caller)")
    return (f"; {timers}: the run stops waiting {DRAIN_SLACK_MS // 1000} s after the last operation's work. If the "
            "subject answers through a timer of its own later than that (a batcher flushing every 15 s), declare "
            "deadline_ms (each job answered within it of its submission; a retry's wait: retries and backoff_ms), "
            "and the run waits that long for its callers")


class Stopped(Invariant):
    """A ``stop()`` that returned a Deferred fires it: not judged while work is in flight or anything is
    scheduled (a graceful stop may wait for them), only once nothing is left that could fire it."""

    name = "completion.stop"
    summary = "the Deferred stop() returned fires, unless it still waits on work in flight or a scheduled call"

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        pending = facts.of_kind(EventKind.STOP_PENDING)
        if not pending:
            return None
        # An earlier stop of a restarted subject names its stop event; otherwise it is the run's last stop.
        stop = read_answer(facts.event(pending[0]).detail)[1]
        if stop is None or stop < 0:
            stop = facts.last_stop()
        called = "" if stop is None else f" (called at {format_ms(facts.time(stop))}, {facts.event(stop).detail})"
        return self.violation(
            run,
            f"stop(){called} returned a Deferred that never fired: the run ended at {format_ms(facts.time(pending[0]))} "
            "with no work in flight and nothing scheduled, so nothing could fire it any more (a shutdown that hangs)",
            ([] if stop is None else [stop]) + pending[:1],
        )


class Answered(Invariant):
    """The Deferred an operation returns fires (``whenConnected``, ``drain()``): judged once the run is
    stopped, with no work in flight and nothing scheduled, unless the operation declares ``may_pend``."""

    name = "completion.operation"
    summary = "an operation's Deferred fires by the time the stopped subject is idle (unless it declares may_pend)"

    def applies(self, target: Target) -> bool:
        return bool(target.operations)

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        pending = facts.of_kind(EventKind.CALL_PENDING)
        if not pending:
            return None
        index = pending[0]
        label, call = read_answer(facts.event(index).detail)
        events = [index] if call is None else [call, index]
        stopped = facts.last_stop()  # a subject an Operation(restarts=True) started again: its last stop
        when = "" if stopped is None else f", stopped at {format_ms(facts.time(stopped))},"
        return self.violation(
            run,
            f"operation {label}, called at {format_ms(facts.time(events[0]))}, returned a Deferred that never fired: "
            f"the subject{when} ended the run with no work in flight and nothing scheduled, so its caller waits for "
            "ever; answer it (stop() may fail it), or declare Operation(may_pend=True) if it may wait for ever"
            + _restart_hint(facts, run.target, label, call),
            events,
        )


def _restart_hint(facts: Facts, target: Target, label: str, call: int | None) -> str:
    """For a call made after the run's first ``stop()`` with a call of another operation, not declared
    ``restarts``, between them: the hint that such an operation may have started the subject again."""
    stop = facts.first_stop()
    if call is None or stop is None or stop > call:
        return ""
    name = label.partition("(")[0]
    between = {
        facts.event(i).detail.partition("(")[0] for i in facts.of_kind(EventKind.CALL) if stop < i < call
    } - {name} - target.restarting_operations
    if not between:
        return ""
    return f"; if {' or '.join(sorted(between))}() started the stopped subject again, declare Operation(restarts=True)"
