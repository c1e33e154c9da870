"""Suspensions still in force when the run drains: a legitimate reason for a job not to finish.

An operation declared ``Operation(suspends="resume")`` (or ``suspends=True``,
when nothing but the end of the run lifts it) pauses the subject's progress
on purpose: a producer's ``pause()``, a cooperative task's, a maintenance
mode. Each call of the named resume operation ends the latest suspension of
that kind still in force. A job held back by a suspension that was never
lifted has not finished when the run drains, and that is no deadlock.

The diagnosis (``harness.run.diagnosis``) tells it apart the way it tells a
cancelled job's leaked slot apart: it replays the schedule without the
suspending calls still in force at the end; a stranded job that then
finishes was held by the suspension (``Cause.SUSPENDED``, excused), one that
still does not is stranded for another reason and judged as before. A
suspension that was lifted excuses nothing: after the resume the subject
must make progress again, so a resume that forgets a job is still
``completion.deadline``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import cast

from harness.model.operations import Operation
from harness.model.schedule import Call, Schedule
from harness.model.target import Target


def in_force(target: Target, schedule: Schedule) -> tuple[int, ...]:
    """The indices in ``schedule.ops`` of the suspending calls that no resume call ended, in order."""
    operations = cast(Mapping[str, Operation], target.operations)  # a table of Operations once the Target is made
    if not any(op.suspends for op in operations.values()):
        return ()
    open_calls: list[tuple[int, str | None]] = []  # (index of the call, the operation that resumes it)
    for index, op in enumerate(schedule.ops):
        if not isinstance(op, Call) or op.operation not in operations:
            continue
        for position in range(len(open_calls) - 1, -1, -1):  # a resume ends the latest suspension it resumes
            if open_calls[position][1] == op.operation:
                del open_calls[position]
                break
        suspends = operations[op.operation].suspends
        if suspends:
            open_calls.append((index, suspends if isinstance(suspends, str) else None))
    return tuple(index for index, _ in open_calls)


def lifted(target: Target, schedule: Schedule) -> Schedule | None:
    """``schedule`` without the suspending calls still in force at its end, or None if there are none."""
    held = set(in_force(target, schedule))
    if not held:
        return None
    return replace(schedule, ops=tuple(op for index, op in enumerate(schedule.ops) if index not in held))
