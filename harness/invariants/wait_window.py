"""``timeout_from="wait"`` with ``rate``: was a waiter kept waiting beside a window with room until its timeout?

With a declared ``rate`` (and no ``limit`` or ``capacity``) what makes a wait legitimate is the rate, not
the running jobs (review 12, finding 3: a limiter whose max wait is shorter than its window fails fast
while the window is full, whatever its calls' durations). A wait timeout is legitimate only if a start
during the wait would have broken the declared rate at some moment of it (``n`` starts within the last
``per_ms``; with ``burst``, the token bucket empty), and, once the window last had room, it did not stay
open with the waiter still waiting for longer than the clock's lateness before the timeout fired (a
limiter whose freed place wakes no waiter); on a late clock the window counts as full for the lateness after
it last had room (the subject's timer counting a place out fires that late). As with the slots (``wait_slots``), an operation called while
the window had room (it may have paused the subject) or a periodic timer of the subject pending from then
to the timeout (a refill tick not yet come) excuses the open window.

Starts are each job's first start, as ``time.early`` counts them, in monotonic time.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.model.known import known
from harness.model.target import Target
from harness.model.trace import EventKind
from harness.run.facts import Facts, JobFacts
from harness.invariants.wait_slots import tick_pending
from harness.run.timers import TimerRecord


def _room_from(target: Target, times: list[int]) -> int | None:
    """The earliest virtual time (us) at which one more start, after the starts at ``times`` (sorted), keeps
    the declared rate; None if one could start at any time."""
    jobs, per_ms = target.rate or (1, 1)
    per, m = per_ms * 1000, len(times)
    if target.burst is None:
        return times[m - jobs] + per if m >= jobs else None
    # A token bucket (time.early's _burst): starts i < m with k = m - i + 1 - burst >= 1 need
    # (t_m - t_i) * jobs >= k * per.
    latest: int | None = None
    for i in range(0, m + 1 - target.burst):
        k = m - i + 1 - target.burst
        due = times[i] + -(-k * per // jobs)
        latest = due if latest is None else max(latest, due)
    return latest


def window_left_open(
    target: Target, facts: Facts, waiter: JobFacts, fired: int, starts: Sequence[int],
    timers: Sequence[TimerRecord] = (),
) -> tuple[str, int | None] | None:
    """Why ``waiter``'s timeout error (trace index ``fired``) had no reason under the declared rate: ("never",
    None) if no start during its wait would have broken the rate, ("since", t_us) if the window had had room
    since ``t_us``, more than the clock's lateness before the timeout; None if the timeout is legitimate.
    ``starts``: every job's first start (trace indexes, in order); ``timers``: the subject's timers."""
    submit = known(waiter.submit)
    begin, end = facts.time(submit), facts.time(fired)
    times = [facts.time(s) for s in starts if s < fired and s != waiter.first_start]
    moments = [begin] + [t for t in times if begin < t <= end]
    if not any(_full_at(target, times, t, facts.late_us) for t in moments):
        return ("never", None)
    opened = _room_from(target, times)
    if opened is None or opened > end:
        return None
    since = max(opened, begin)
    if end - since <= facts.late_us:
        return None
    first = next((i for i in range(submit, fired) if facts.time(i) >= since), fired)
    if any(first <= call < fired for call in facts.of_kind(EventKind.CALL)):
        return None
    if tick_pending(facts, timers, first, fired, (target.timeout_ms or 0) * 1000):
        return None
    return ("since", since)


def _full_at(target: Target, times: list[int], t: int, late: int) -> bool:
    """Whether one more start at ``t``, after those of ``times`` up to ``t``, would have broken the declared
    rate up to ``late`` before (a late clock runs the subject's timer that counts a place out that late)."""
    room = _room_from(target, [s for s in times if s <= t])
    return room is not None and room + late > t

