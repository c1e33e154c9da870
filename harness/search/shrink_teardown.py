"""Shrinking the teardown: stop the subject as early as the failure allows.

A schedule without a ``Stop`` ends with the runner's own teardown: it drains
(for a periodic subject, ten virtual seconds of its loop) and only then stops
the subject. A failure caused by that stop shrinks to one operation and still
reads like a long log. This pass, run after the others, tries an explicit
``Stop`` soon after the last operation, earliest first, and keeps the first
that still breaks the same invariant with a shorter trace, if the stop
shortens the story (the events up to the violation's last marked one) or
cuts more than ``MIN_TAIL_CUT`` events after it. A stop that only cuts a few
events after the violation is not added (review 8, finding 8: four
submissions that overflowed a buffer at 0 ms were shown with a needless
``stop`` at 1 ms, which cut 12 events): the printed excerpt shows or counts
such a tail anyway, and the stop would be one more operation the reader
looks for a reason for. A periodic loop's ten virtual seconds after the
violation (hundreds of events, thousands for a fast retry) are worth it.
The stop is an ordinary operation of the schedule, so the failure file
replays exactly, on any version that reads schedules.

Why a stop and not a shorter drain: the drain after a stop is what leaks are
judged on, and the drain before it what stuck jobs are judged on; cutting
either could make a correct subject look broken. Moving the stop earlier
cuts only the time before it, and nothing a correct subject does before a
stop can make it fail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import NamedTuple

from harness.model.schedule import Schedule, Stop

#: An added stop that leaves the story as long must cut more events than this after the violation: a screenful
#: of excerpt (``harness.output.timeline.MAX_EXCERPT``, which ``tests/test_short_failures.py`` holds it to).
MIN_TAIL_CUT = 22


class Measured(NamedTuple):
    """A replayed candidate that still breaks the invariant: its trace's length and its story's (``story_length``)."""

    length: int
    story: int


#: How long after the last operation the added stop is tried, earliest first (ms).
STOP_AFTER_MS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000)


def stop_earlier(schedule: Schedule, measure: Callable[[Schedule], Measured | None]) -> Schedule:
    """``schedule`` with an explicit early ``Stop`` when that keeps the failure and shortens the trace (its
    story, or by more than ``MIN_TAIL_CUT`` events).

    ``measure(candidate)`` replays a candidate and returns the lengths of its
    trace and its story if it still breaks the invariant, else None. A
    schedule that already stops is returned as it is (the other passes move its stop).
    """
    if any(isinstance(op, Stop) for op in schedule.ops):
        return schedule
    baseline = measure(schedule)
    if baseline is None:
        return schedule
    for delay in STOP_AFTER_MS:
        candidate = replace(schedule, ops=schedule.ops + (Stop(schedule.end_ms + delay),))
        measured = measure(candidate)
        if measured is not None and _worth_a_stop(measured, baseline):
            return candidate
    return schedule


def _worth_a_stop(measured: Measured, baseline: Measured) -> bool:
    """Whether a stop that gives ``measured`` is worth its operation, against ``baseline`` without it."""
    if measured.length >= baseline.length:
        return False
    return measured.story < baseline.story or baseline.length - measured.length > MIN_TAIL_CUT


def story_length(trace_length: int, marked: Sequence[int]) -> int:
    """How many events a reader follows to the violation: up to its last marked event, or the whole
    trace when it marks none. An early stop must shorten this, not only the events after the violation."""
    return max(marked) + 1 if marked else trace_length
