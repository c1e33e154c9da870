"""Shrinking the teardown: stop the subject as early as the failure allows.

A schedule without a ``Stop`` ends with the runner's own teardown: it drains
(for a periodic subject, ten virtual seconds of its loop) and only then stops
the subject. A failure caused by that stop shrinks to one operation and still
reads like a long log. This pass, run after the others, tries an explicit
``Stop`` soon after the last operation, earliest first, and keeps the first
that still breaks the same invariant with a shorter story: fewer events up
to the violation's last marked one. A stop that only cuts what comes after
the violation is not added (review 8, finding 8: four submissions that
overflowed a buffer at 0 ms were shown with a needless ``stop`` at 1 ms):
the printed excerpt leaves that tail out anyway, and the stop would be one
more operation the reader looks for a reason for. The stop is an
ordinary operation of the schedule, so the failure file replays exactly, on
any version that reads schedules.

Why a stop and not a shorter drain: the drain after a stop is what leaks are
judged on, and the drain before it what stuck jobs are judged on; cutting
either could make a correct subject look broken. Moving the stop earlier
cuts only the time before it, and nothing a correct subject does before a
stop can make it fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from harness.model.schedule import Schedule, Stop

#: How long after the last operation the added stop is tried, earliest first (ms).
STOP_AFTER_MS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000)


def stop_earlier(schedule: Schedule, measure: Callable[[Schedule], int | None]) -> Schedule:
    """``schedule`` with an explicit early ``Stop`` when that keeps the failure and shortens the trace.

    ``measure(candidate)`` replays a candidate and returns the length of its
    story (``story_length``) if it still breaks the invariant, else None. A
    schedule that already stops is returned as it is (the other passes move its stop).
    """
    if any(isinstance(op, Stop) for op in schedule.ops):
        return schedule
    baseline = measure(schedule)
    if baseline is None:
        return schedule
    for delay in STOP_AFTER_MS:
        candidate = replace(schedule, ops=schedule.ops + (Stop(schedule.end_ms + delay),))
        length = measure(candidate)
        if length is not None and length < baseline:
            return candidate
    return schedule


def story_length(trace_length: int, marked: Sequence[int]) -> int:
    """How many events a reader follows to the violation: up to its last marked event, or the whole
    trace when it marks none. An early stop must shorten this, not only the events after the violation."""
    return max(marked) + 1 if marked else trace_length
