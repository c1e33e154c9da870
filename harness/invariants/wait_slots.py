"""``timeout_from="wait"``: was a waiter kept waiting beside a free slot until its timeout?

A wait timeout is legitimate only while the waiter had no slot to run in. ``time.timeout`` first asks
that the declared ``capacity`` (default ``limit``) was full at some moment of the wait; this module adds
the rule a pool that frees a slot and starts no waiter breaks (round 7, finding 3): once the slots stop
being full they must not stay free, with the waiter still waiting, for longer than the clock's lateness
before its timeout fires. A slot freed in the instant of the timeout (in either order: the hand-off may be
a ``callLater(0)`` the timeout beat) or within the lateness of a late wake-up is no bug.

What holds a slot: every job attempt from its start to its end (for ever, if its canceller raised), and a
job between two of its attempts (a retry's backoff may keep its slot); with keys and a per-key bound, a
waiter whose key is at that bound is blocked too. Not judged when the target declares ``rate`` (a start
may wait for a token with a slot free) or when one of the target's operations was called while the slot
was free (it may have paused the subject). Nor while a periodic timer of the subject (a ``LoopingCall``, a
``callLater`` that sets itself again) was pending from the moment the slot was freed to the timeout without
firing: a dispatcher that hands free slots to waiters on its ticks may leave one free until its next tick
(audit 11), if that tick was due within the wait timeout of the free; once a tick has passed with the slot
still free and the waiter still waiting, it is judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from harness.model.target import Target
from harness.model.trace import EventKind
from harness.run.calls import opener_of
from harness.run.chains import timer_number
from harness.run.facts import Facts, JobFacts
from harness.run.timers import TimerRecord


class FreeSlot(NamedTuple):
    """The trace index from which the waiter's slots were no longer full (and stayed so until its
    timeout), and how many were held then."""

    since: int
    held: int


def holding(job: JobFacts) -> list[tuple[int, int | None]]:
    """The trace index ranges ``[start, end)`` over which ``job`` held a slot (end None: still held): each
    attempt from its start to its end (for ever, if its canceller raised), and on to the next attempt's start
    (a retry's backoff keeps the slot; an attempt still running when the next began, a hedge, keeps its own end);
    a last attempt that failed, on to the caller's answer (a backoff cut short by a cancel, a pool that answers a
    failure late: audit 11)."""
    spans: list[tuple[int, int | None]] = []
    attempts = job.attempts
    for n, a in enumerate(attempts):
        end = None if a.canceller_raised else a.end
        if end is not None and n + 1 < len(attempts):
            end = max(end, attempts[n + 1].start)
        elif end is not None and a.end_kind == EventKind.JOB_FAIL and job.fired is not None:
            end = max(end, job.fired)
        spans.append((a.start, end))
    return spans


def free_slot_before(
    target: Target, facts: Facts, waiter: JobFacts, fired: int, timers: Sequence[TimerRecord] = ()
) -> FreeSlot | None:
    """When the slots ``waiter`` waited for were last freed before its timeout error (trace index
    ``fired``), if they then stayed free beyond the clock's lateness; None if they were full (or its key
    at its bound) when the timeout fired, were freed within the lateness of it, were never full during
    the wait (``time.timeout``'s other rule judges that), or the rule does not apply (see the module).
    ``timers``: the subject's timers (``RunView.timers``), for the periodic timer that excuses the slot."""
    submit = waiter.submit
    if submit is None or target.rate is not None:
        return None
    per_key = target.keyed_limit if target.keys else None
    held = mine = 0
    since: int | None = None
    for index, step, same in _slot_changes(facts, waiter, submit, fired):
        held += step
        mine += step if same else 0
        blocked = held >= target.fill or (per_key is not None and mine >= per_key)
        if blocked:
            since = None
        elif since is None and step < 0:
            since = index
    if since is None:
        return None
    if facts.time(fired) - facts.time(since) <= facts.late_us:
        return None
    if any(since < call < fired for call in facts.of_kind(EventKind.CALL)):
        return None
    if _tick_pending(facts, timers, since, fired, (target.timeout_ms or 0) * 1000):
        return None
    return FreeSlot(since, held)


def _slot_changes(facts: Facts, waiter: JobFacts, first: int, last: int) -> list[tuple[int, int, bool]]:
    """How the slots held by the jobs other than ``waiter`` changed between trace indexes ``first`` and
    ``last``: (index, +1 or -1, of the waiter's key), in trace order, a take before a release at one index
    (a span held at ``first`` counts as taken there)."""
    changes: list[tuple[int, int, bool]] = []
    for job in facts.jobs.values():
        if job.id == waiter.id or job.periodic:
            continue
        same = job.key == waiter.key
        for start, end in holding(job):
            if start >= last or (end is not None and end <= first):
                continue
            changes.append((max(start, first), 1, same))
            if end is not None and end < last:
                changes.append((end, -1, same))
    return sorted(changes, key=lambda c: (c[0], -c[1]))


class SlotLeftFree(NamedTuple):
    """A span of a retry's wait for a slot in which a slot was free: from ``since_us`` (the trace index
    ``freed`` freed it, or the backoff's end found it free) to ``until_us``, with at most ``held`` slots held."""

    freed: int
    since_us: int
    until_us: int
    held: int


def retry_left_free(target: Target, facts: Facts, job: JobFacts, ended: int, due_us: int, start: int) -> SlotLeftFree | None:
    """A retry of ``job`` that started (trace index ``start``) after its backoff's high end (``due_us``, the
    previous attempt having ended at trace index ``ended``) may have waited for a slot like a new job (a retry
    queue that puts a retry, once due, back in its queue): legitimate only while the declared ``capacity``
    (default ``limit``) was full, or its key at its bound, from the backoff's end until the retry started.
    Returns the first span, within that wait, of a slot left free for longer than the clock's lateness (a
    same-instant hand-over to another waiter is no free slot), None if there is none. A call of an operation
    within the span excuses it (it may have paused the subject), as for a wait timeout."""
    per_key = target.keyed_limit if target.keys else None
    held = mine = most = 0  # most: the most slots held within the free span so far
    since: tuple[int, int] | None = (ended, facts.time(ended))  # (index, time) a slot has been free since

    def left(until: int) -> SlotLeftFree | None:
        if since is None:
            return None
        begin, end_us = max(since[1], due_us), facts.time(until)
        if end_us - begin <= facts.late_us or any(since[0] < call < until for call in facts.of_kind(EventKind.CALL)):
            return None
        return SlotLeftFree(since[0], begin, end_us, most)

    for index, step, same in _slot_changes(facts, job, ended, start):
        held += step
        mine += step if same else 0
        blocked = held >= target.fill or (per_key is not None and mine >= per_key)
        if blocked and since is not None:
            found = left(index)
            if found is not None:
                return found
            since = None
        elif not blocked and since is None:
            since, most = (index, facts.time(index)), held
        most = max(most, held) if since is not None else most
    return left(start)


def _tick_pending(facts: Facts, timers: Sequence[TimerRecord], since: int, fired: int, window_us: int) -> bool:
    """Whether a timer of a periodic function (one whose firing set a timer of the same function again, at
    some point of the run) was pending at trace index ``since`` and still at ``fired``, due within
    ``window_us`` (the wait timeout) of ``since``: a dispatcher's tick not yet come (it may fire in the instant
    of the timeout, after it). A loop whose next tick was further off (a heartbeat every 10 s beside a 200 ms
    wait) could not have been handing slots to waiters in time, and excuses nothing."""
    start = facts.time(since)
    waiting = [t for t in timers if t.pending_at(since) and t.pending_at(fired) and t.due_us - start <= window_us]
    if not waiting:
        return False
    names = {t.id: t.function for t in timers}
    periodic: set[str] = set()
    for timer in timers:
        opener = opener_of(facts, timer.set_index)
        if opener is not None and facts.events[opener][1] == EventKind.TIMER_FIRE:
            number = timer_number(facts.events[opener][4])
            if number is not None and names.get(number) == timer.function:
                periodic.add(timer.function)
    return any(t.function in periodic for t in waiting)
