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

With ``Target(capacity=C, weight=...)`` (review 11, finding 5: a readers-writer lock) the same rules weigh
instead of counting (``rooms``): a waiter has room while the weight held by the jobs holding slots plus its own
fits in C, within ``limit`` and its key's bound, and, under ``order``, while no waiter ahead of it lacks room
(head of line: a reader queued behind a waiting writer has none). The functions without ``weighted_`` in their
name hand such a target to those that have it; every other target is judged as before.
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
    if target.weight is not None:
        return weighted_free_before(target, facts, waiter, fired, timers)
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
    if since is None or _free_excused(target, facts, timers, since, fired):
        return None
    return FreeSlot(since, held)


def _free_excused(target: Target, facts: Facts, timers: Sequence[TimerRecord], since: int, fired: int) -> bool:
    """Whether a slot (or room) free from trace index ``since`` to a waiter's timeout error at ``fired`` is
    excused: freed within the clock's lateness of the timeout, an operation called in between (it may have
    paused the subject), or a pending tick of a periodic timer of the subject due within the wait timeout."""
    return (
        facts.time(fired) - facts.time(since) <= facts.late_us
        or any(since < call < fired for call in facts.of_kind(EventKind.CALL))
        or tick_pending(facts, timers, since, fired, (target.timeout_ms or 0) * 1000)
    )


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
    if target.weight is not None:
        return weighted_retry_left_free(target, facts, job, ended, due_us, start)
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


def tick_pending(facts: Facts, timers: Sequence[TimerRecord], since: int, fired: int, window_us: int) -> bool:
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


# -- a weighted capacity (Target(capacity=C, weight=...)): room for a waiter's weight ------------------------


class Room(NamedTuple):
    """A waiter's room from trace index ``at`` on (until the next ``Room``): whether it was ``blocked`` (the
    capacity could not take its weight beside the ``held`` weight of the jobs holding slots, a bound on the count
    was reached, or a waiter ahead of it was blocked), and that held weight."""

    at: int
    blocked: bool
    held: int


def rooms(target: Target, facts: Facts, waiter: JobFacts, first: int, last: int, retry: bool = False) -> list[Room]:
    """``waiter``'s room between trace indexes ``first`` and ``last`` under a weighted capacity: a ``Room`` at
    ``first``, then at each index where a span held, or a waiter ahead of it, began or ended. The jobs holding
    slots weigh what ``target.weight_of`` says; ``limit`` and a per-key bound still count them. Under ``order`` the waiters
    ahead of it (submitted before it, or of a higher priority, of its key with keys; any waiter, for a ``retry``
    put back in the queue) are served first: each that fits takes its share, and one that does not blocks the
    rest (head of line: a lock's writer waiting behind a reader keeps the readers after it out, writer
    preference). Without ``order``, only the capacity and the bounds count."""
    per_key = target.keyed_limit if target.keys else None
    spans: list[tuple[int, int | None, int, bool]] = []  # (from, to, weight, of the waiter's key)
    queue: list[tuple[int, int | None, int, tuple[int, int]]] = []  # (from, to, weight, place in the order)
    for job in facts.jobs.values():
        if job.id == waiter.id or job.periodic:
            continue
        weight, same = target.weight_of(job.key, job.priority), job.key == waiter.key
        for start, end in holding(job):
            if start < last and (end is None or end > first):
                spans.append((max(start, first), end, weight, same))
        place = _place(target, job, waiter, retry)
        if place is not None and job.submit is not None and job.submit_raised is None:
            # it leaves the queue as it starts or its caller is answered (a timeout, a cancel), unless a cancel
            # left its work queued (detach_queued): then only as it starts
            queued = job.cancels and target.cancel_mode(job.key, job.priority) == "detach_queued"
            left = job.first_start if queued else min((i for i in (job.first_start, job.fired) if i is not None), default=None)
            if job.submit < last and (left is None or left > first):
                queue.append((max(job.submit, first), left, weight, place))
    queue.sort(key=lambda q: q[3])
    own = target.weight_of(waiter.key, waiter.priority)
    capacity, limit = target.capacity or 0, target.limit
    moments = sorted({first} | {i for s in (*spans, *queue) for i in s[:2] if i is not None and first < i < last})
    out: list[Room] = []
    for index in moments:
        held = count = mine = 0
        for start, end, weight, same in spans:
            if start <= index and (end is None or end > index):
                held, count, mine = held + weight, count + 1, mine + same
        free, blocked = capacity - held, False
        for start, end, weight, _ in queue:  # the waiters ahead, in their order: each that fits takes its share
            if start <= index and (end is None or end > index):
                if weight > free or (limit is not None and count >= limit):
                    blocked = True
                    break
                free, count, mine = free - weight, count + 1, mine + 1  # with keys, those ahead are of its key
        blocked = blocked or own > free or (limit is not None and count >= limit) or (per_key is not None and mine >= per_key)
        out.append(Room(index, blocked, held))
    return out


def _place(target: Target, job: JobFacts, waiter: JobFacts, retry: bool) -> tuple[int, int] | None:
    """Where ``job`` stands in the order ``waiter`` waits in, if ahead of it (a sort key), else None: under
    ``order="fifo"`` a job submitted before it, under ``"priority"`` one of a higher priority or of its priority
    submitted before it (with keys, of its key only); a ``retry`` stands behind every waiter of its order."""
    if target.order is None or job.submit is None or (target.keys and job.key != waiter.key):
        return None
    rank = -job.priority if target.order == "priority" else 0
    if retry:
        return (rank, job.submit) if target.order == "fifo" or job.priority >= waiter.priority else None
    if waiter.submit is None:
        return None
    if target.order == "fifo" and job.submit < waiter.submit:
        return (rank, job.submit)
    if target.order == "priority" and (job.priority, -job.submit) > (waiter.priority, -waiter.submit):
        return (rank, job.submit)
    return None


def weighted_free_before(
    target: Target, facts: Facts, waiter: JobFacts, fired: int, timers: Sequence[TimerRecord] = ()
) -> FreeSlot | None:
    """``free_slot_before`` under a weighted capacity: when ``waiter`` last got room for its weight (``rooms``)
    before its timeout error at trace index ``fired``, if it kept that room beyond the clock's lateness; None if it
    had none when the timeout fired, got it within the lateness of it, never lacked it (the other rule judges
    that), or an operation's call or a pending tick of the subject excuses it, as for ``free_slot_before``.
    ``held``: the weight held when it got the room."""
    submit = waiter.submit
    if submit is None or target.rate is not None:
        return None
    since: Room | None = None
    was_blocked = False
    for room in rooms(target, facts, waiter, submit, fired):
        if room.blocked:
            since, was_blocked = None, True
        elif was_blocked:  # room again, once it had none: from this moment on
            since, was_blocked = room, False
    if since is None or _free_excused(target, facts, timers, since.at, fired):
        return None
    return FreeSlot(since.at, since.held)


def weighted_retry_left_free(target: Target, facts: Facts, job: JobFacts, ended: int, due_us: int, start: int) -> SlotLeftFree | None:
    """``retry_left_free`` under a weighted capacity: the first span of a retry's wait for a slot (from the
    backoff's high end ``due_us`` to its start) in which it had room for its weight (``rooms``, the retry
    standing behind every waiter of its order) for longer than the clock's lateness, with an operation's call
    excusing the span; ``held``: the most weight held within it."""
    found: list[Room] = []
    for room in [*rooms(target, facts, job, ended, start, retry=True), Room(start, True, 0)]:
        if found and room.blocked:
            begin, until = max(facts.time(found[0].at), due_us), facts.time(room.at)
            if until - begin > facts.late_us and not any(found[0].at < call < room.at for call in facts.of_kind(EventKind.CALL)):
                return SlotLeftFree(found[0].at, begin, until, max(r.held for r in found))
            found = []
        elif not room.blocked:
            found.append(room)
    return None


def held_of(target: Target, held: int) -> str:
    """How a message says what was held of the declared bound: ``2 running of the declared limit of 3``, or
    with a weight, ``a weight of 2 held of the declared capacity of 4``."""
    if target.weight is not None:
        return f"a weight of {held} held of the declared capacity of {target.capacity}"
    return f"{held} running of the declared {'limit' if target.capacity is None else 'capacity'} of {target.fill}"
