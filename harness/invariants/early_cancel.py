"""Why a job was cancelled before its timeout: the call that cancelled it, and what could declare it.

``time.timeout`` calls a cancel before T an early timeout unless the
subject ended the work on purpose in a way the target declared
(``Operation(..., cancels_work=True)``, ``Target(sheds=...)``). Its message
once ended with both declarations whatever the target was, and named no
cause: a saga whose finished step's timeout stayed armed was advised to
declare operations and refusals it has none of (review 10, finding 3). The
trace knows better: the cancel happened in one call of the reactor (an
operation of the schedule, one of the subject's timers firing, a job
settling: ``harness.run.calls.opener_of``), and a timer's ``timer.set`` says
when it was set (before the job started: it cannot be this job's timeout).
This module names that call and gives only the advice that applies: the
operation declaration when an operation of the schedule made the cancel, the
refusal when the caller was refused in the cancel's instant with one of the
target's ``rejects``. A pure function of the trace.
"""

from __future__ import annotations

from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.run.calls import opener_of, operation_called_before, timer_set_at
from harness.run.facts import Attempt, Facts, JobFacts
from harness.run.timers import set_due_us

def early_cancel_note(target: Target, facts: Facts, job: JobFacts, attempt: Attempt, periodic: bool = False) -> str:
    """What an early cancel's message adds, in parentheses: who cancelled ``attempt`` (ended by a
    ``job.cancel``) and, where one applies, how the target declares work it ends on purpose."""
    end = attempt.end
    if end is None:
        return ""
    parts = [_cause(facts, job, attempt, end, periodic, target.timeout_from == "submit")]
    operation = operation_called_before(facts, end)
    if operation is not None and operation in target.operations and operation not in target.work_cancelling_operations:
        parts.append(f"if {operation} cancels work on purpose, declare Operation(..., cancels_work=True) for it")
    refusal = None if periodic else _refusal(target, facts, job, end)
    if refusal is not None:
        parts.append(f"its caller was refused with {refusal} then: if the subject shed the work on purpose, "
                     f"declare it in the Target's sheds")
    return f" ({'; '.join(part for part in parts if part)})"


def _cause(facts: Facts, job: JobFacts, attempt: Attempt, end: int, periodic: bool, from_submit: bool) -> str:
    """The call the cancel at trace index ``end`` happened in, named as the trace names it."""
    opener = opener_of(facts, end)
    if opener is None:
        return ""
    t, kind, who, _, detail = facts.events[opener]
    at = format_ms(t)
    if kind == EventKind.TIMER_FIRE:
        return _by_timer(facts, job, attempt, opener, detail, periodic, from_submit)
    what = _OPENED.get(kind)
    if what is None:
        return ""  # a start(), a clock jump or a reactor pause: nothing the message can add
    return f"cancelled in {what.replace('<detail>', str(detail)).replace('<job>', str(who))} at {at}"


#: How ``_cause`` names the call a cancel happened in, by the event that opened it (``<detail>``: the event's
#: detail, ``<job>``: its job), but for one of the subject's timers firing (``_by_timer``).
_OPENED: dict[str, str] = {
    EventKind.CALL: "the call of <detail>",
    EventKind.SUBMIT: "the submit of job <job>",
    EventKind.CANCEL: "the cancel of job <job>",
    EventKind.JOB_FINISH: "the call settling job <job>'s work",
    EventKind.JOB_FAIL: "the call settling job <job>'s work",
}


def _by_timer(facts: Facts, job: JobFacts, attempt: Attempt, fire: int, label: str, periodic: bool,
              from_submit: bool) -> str:
    """A cancel made by one of the subject's timers: which, when it was set and due; and, set before the
    job started (or was submitted), that it cannot have been this job's timeout."""
    set_at = timer_set_at(facts, fire)
    if set_at is None:
        return f"cancelled by the subject's timer {label}"
    due = set_due_us(facts.events[set_at][4])
    how = "moved" if facts.events[set_at][1] == EventKind.TIMER_RESET else "set"  # a reset() or delay() moved it
    when = f"{how} at {format_ms(facts.time(set_at))}" + ("" if due is None else f", due {format_ms(due)}")
    origin = job.submit if from_submit and job.submit is not None else attempt.start
    if set_at < origin:
        what = "call" if periodic else "job"
        began = "was submitted" if from_submit and not periodic else "started"
        return (f"cancelled by the subject's timer {label}, {when}, before the {what} {began} at "
                f"{format_ms(facts.time(origin))}: not this {what}'s timeout; a deadline of earlier work left armed?")
    return f"cancelled by the subject's timer {label}, {when}"


def _refusal(target: Target, facts: Facts, job: JobFacts, end: int) -> str | None:
    """The name of the ``rejects`` type the job's caller was refused with in the cancel's instant, if it was
    (what ``Target(sheds=...)`` excuses); None otherwise."""
    fired = job.fired
    if fired is None or facts.events[fired][1] != EventKind.FAILURE or facts.time(fired) != facts.time(end):
        return None
    for error in target.rejects:
        if error not in target.sheds and facts.is_error(fired, error):
            return error.__name__
    return None
