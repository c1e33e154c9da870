"""Which hostile job behaviours a shrunk failure needs: a canceller that raised.

A job whose own canceller raises (``JobSpec.canceller_raises``, a hostile job) can abort the subject's
code that cancelled it: a time-out handler killed by the ``CancellerError`` before it delivers. The
violation that follows is about the subject's answers ("job 1 timed out at 300ms but its Deferred did
not fail then") and, when it also needs a clock fault, the clock note names only that (review 11,
finding 7: "it fails only with calls due at the same instant run in lifo order"), though what the user
must fix is the handler that a raising canceller kills. After shrinking, this pass runs the failing
schedule once without each canceller that raised in its trace; a canceller without which the failure
goes is named in the note beside the clock faults (``clock_causes.needs_note``). Only on a failure, one
run per raising canceller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from harness.model.schedule import Schedule, Start, Submit
from harness.model.trace import EventKind, Event, format_ms
from harness.run.facts import CANCELLER_RAISED


@dataclass(frozen=True, slots=True)
class Behaviour:
    """A hostile behaviour of one job in a failing schedule: how to say it, and the schedule without it."""

    said: str
    without: Schedule


def raising_cancellers(schedule: Schedule, events: Iterable[Event]) -> tuple[Behaviour, ...]:
    """Each job whose canceller raised in ``events`` (a run of ``schedule``), first raise first: "job 0's
    canceller raising at 300ms", and ``schedule`` with every attempt of that job's canceller left quiet."""
    first: dict[int, int] = {}
    for event in events:
        if event.kind == EventKind.JOB_CANCEL and event.detail == CANCELLER_RAISED:
            first.setdefault(event.job, event.t_us)
    return tuple(Behaviour(f"job {job}'s canceller raising at {format_ms(t_us)}", _quiet(schedule, job)) for job, t_us in first.items())


def _quiet(schedule: Schedule, job: int) -> Schedule:
    """``schedule`` with job ``job``'s specs (first attempt and retries, or periodic calls) not raising from their canceller."""
    ops = tuple(
        replace(op, spec=replace(op.spec, canceller_raises=False), then=tuple(replace(s, canceller_raises=False) for s in op.then))
        if isinstance(op, (Submit, Start)) and op.job == job
        else op
        for op in schedule.ops
    )
    return replace(schedule, ops=ops)
