"""Call chains: which call of the reactor each event of a trace was made in, and the timers of a loop.

A reactor runs one call at a time: an operation of the schedule (a submit,
a ``start()``, a ``stop()``...), one of the subject's delayed calls firing
(``timer.fire``), or the harness's own call settling a job (its
``job.finish``/``job.fail`` comes first in it). Every event up to the next
such opener happened in that call, or in what it called: its *call chain*.
The trace is read alone, so the answer is the same for a live run and a
replayed one.

``loop_timers`` uses the chains to tell the timers of a periodic loop from
the subject's other timers (a cache's expiry, a stats ``LoopingCall``, a
reconnect loop), which ``time.loop_died`` needs to see whether the loop went
quiet after a failed call; ``chain_lateness`` how late the timers on the
way from a call's end to the loop's next call fired, one after another (a
``callLater(0)`` hop, then the backoff: each as late as the clock may be);
``last_rearm`` the latest call of an operation that re-armed the loop (a
``stop(); start()`` restart cancelling the loop's pending timer and setting it
anew), from which the loop's wait runs again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from harness.model.trace import EventKind, RawEvent
from harness.run.calls import CALL_OPENERS
from harness.run.timers import set_due_us

__all__ = ["chain_lateness", "last_rearm", "loop_timers", "timer_number"]

#: An owner of a call chain that is the loop itself: the end of a call of its work (the harness settling
#: it, or the subject cancelling it), where a ``LoopingCall`` sets its next timer.
_LOOP = -1

_FIRE, _SET, _START = EventKind.TIMER_FIRE, EventKind.TIMER_SET, EventKind.JOB_START
_CANCEL, _CALL, _LOOP_START, _RESET = EventKind.TIMER_CANCEL, EventKind.CALL, EventKind.START, EventKind.TIMER_RESET
_ENDS = frozenset({EventKind.JOB_FINISH, EventKind.JOB_FAIL})
#: The job kinds (``job.start`` detail) whose attempt the harness settles in a call of its own, later.
_SETTLED_LATER = frozenset({"succeed", "fail"})


def timer_number(detail: str) -> int | None:
    """The clock's number of the timer a ``timer.set``/``timer.fire``/``timer.cancel`` detail names
    (``#3 Poller._poll due 100ms`` is 3); None for a detail this harness's recorder did not write."""
    if not detail.startswith("#"):
        return None
    number = detail[1:].split(" ", 1)[0]
    return int(number) if number.isdigit() else None


def loop_timers(events: Sequence[RawEvent], job: int, end: int | None = None) -> dict[int, int | None]:
    """The timers (``timer.set``) of the loop that calls the work of job ``job``, among ``events[:end]``:
    each timer's number, and the number of the loop's timer whose firing set it (None: it was set when
    the harness settled a call of the work, or elsewhere and its own firing calls the work).

    A timer is the loop's when its firing called the work (a ``job.start``
    of ``job`` in its call chain), or it was set in the call chain of one of
    the loop's timers firing, or of the harness settling a call of the work
    (where a ``LoopingCall`` sets its next call), and so on down the line. A
    timer set in an operation's call (``start()`` setting a stats
    ``LoopingCall`` beside the loop) or in the firing of another timer (a
    cache's expiry re-arming itself) is not, unless its own firing calls the
    work (a watchdog that revives the loop is then the loop's too). What the
    trace cannot tell: a timer set in ``start()`` (or in another operation)
    whose firing never calls the work looks like any other timer set there,
    the loop's or not, and is left out. Timers past ``timer.limit`` are not
    recorded, so not seen.
    """
    owner: int | None = None  # the call chain's opener: a timer's number, _LOOP, or None (any other call)
    parents: list[tuple[int, int | None]] = []  # (timer, the owner of the chain that set it), in set order
    drivers: set[int] = set()
    settled: set[tuple[int, int]] = set()  # (job, attempt) of the attempts settled by a call of the harness's
    for _, kind, job_id, attempt, detail in events[:end]:
        if kind == _FIRE:
            owner = timer_number(detail)
        elif kind == _SET:
            number = timer_number(detail)
            if number is not None:
                parents.append((number, owner))
        elif kind == _START:
            if detail in _SETTLED_LATER:
                settled.add((job_id, attempt))
            if job_id == job and owner is not None and owner != _LOOP:
                drivers.add(owner)
        elif kind in _ENDS:
            # The harness's call settling an attempt opens a chain (the loop's, for its work); an attempt
            # that returned or raised at once ended inside its caller's chain, which goes on.
            if (job_id, attempt) in settled:
                owner = _LOOP if job_id == job else None
        elif kind in CALL_OPENERS:
            owner = None
    loop: dict[int, int | None] = {}
    for number, parent in parents:
        if parent is not None and parent in loop:
            loop[number] = parent
        elif number in drivers or parent == _LOOP:
            loop[number] = None
    return loop


def chain_lateness(
    events: Sequence[RawEvent], origin: int, end: int, late_us: int, budget_us: int, roots: Collection[int] = (),
) -> int:
    """How late the timers on the way from event ``origin`` (a call's end) fired, along the latest chain of
    them up to ``events[end]`` (us). A timer is on the way when it was set in the call chain of ``origin``
    (the callbacks of the call's end), or is one of ``roots`` (the loop's own timers, ``loop_timers``), or
    was set by the firing of one on the way, and so on down the line, while the delays the chain asked
    for (each timer's due time less the time it was set, from ``origin`` for one set before it) add up to
    no more than ``budget_us`` (the loop's own wait: a timer due past it is no way to a call in time).
    Each adds how far past its due time it fired (at most ``late_us``, the clock's lateness: a ``reset``
    or ``delay`` moved it on purpose) to the lateness of the one whose firing set it.

    A loop whose way from a call's end to its next call is several timers in a row (a ``callLater(0)``
    hop that then sets the backoff) may be late by the clock's lateness at each: its next call comes that
    much later than its own wait. Only lateness that happened counts (a punctual clock: 0), and only
    within the wait's delays: a loop (or a stats timer beside it) ticking on without calling the work
    leaves the chain once its ticks asked for more than the wait.
    """
    at_origin = events[origin][0] if origin < len(events) else 0
    due: dict[int, int] = {}  # every timer set so far: its due time
    asked: dict[int, int] = {}  # the timers on the way: the delays their chain asked for, from origin
    parent: dict[int, int | None] = {}  # the timers on the way: the one whose firing set it (None: a root)
    chained: dict[int, int] = {}  # the timers on the way fired after origin: the lateness of their chain
    owner: int | None = None  # the timer whose firing opened the current call chain (None: another call)
    from_origin = False  # the current call chain is origin's
    most = 0
    for index, (t_us, kind, _, _, detail) in enumerate(events[:end + 1]):
        if kind == _SET:
            number = timer_number(detail)
            at = set_due_us(detail)
            if number is None or at is None:
                continue
            due[number] = at
            up = owner if owner is not None and owner in parent and index > origin else None
            if up is not None:
                total = asked[up] + max(at - t_us, 0)
            elif number in roots or (from_origin and index > origin):
                total = max(at - max(t_us, at_origin), 0)
            else:
                continue
            if total <= budget_us:
                parent[number], asked[number] = up, total
        elif kind == _RESET:
            # A reset or delay moved a timer: its lateness counts from where it was moved to.
            number, at = timer_number(detail), set_due_us(detail)
            if number is not None and at is not None and number in due:
                due[number] = at
        elif kind in CALL_OPENERS:
            from_origin = index == origin
            owner = timer_number(detail) if kind == _FIRE else None
            if owner is not None and index > origin and owner in parent and owner in due:
                up = parent[owner]
                chain = min(max(t_us - due[owner], 0), late_us) + (chained.get(up, 0) if up is not None else 0)
                chained[owner] = chain
                most = max(most, chain)
    return most


def _timer_function(detail: str) -> str:
    """The function a ``timer.set``/``timer.cancel`` detail names (``#3 Poller._poll due 100ms``: ``Poller._poll``)."""
    return detail.split(" ", 1)[-1].rsplit(" due ", 1)[0]


def last_rearm(events: Sequence[RawEvent], job: int, after: int, end: int, skips: float = 1,
               reach_us: int | None = None) -> int | None:
    """The trace index of the latest call of an operation (``call``) in ``events[after + 1:end + 1]`` that
    re-armed the loop calling the work of job ``job``: in its call chain the subject cancelled a pending
    timer of the loop's and set a timer of the same function (a restart, ``stop(); start()``, of buildbot's
    ``RepeatedActionHandler`` or of a ``LoopingCall`` started ``now=False``), or moved a pending timer of the
    loop's (``DelayedCall.reset``/``delay``: ``TimeoutMixin``'s way); None if none did.

    A timer is the loop's here when it was set in the call chain of the loop's ``start()``, is one of
    ``loop_timers``, or was set by an earlier re-arm (a restart's timer has called nothing yet, so
    ``loop_timers`` cannot know it). A re-armed loop owes its next call from the re-arm, as from its
    ``start()``: the schedule, not the subject, put it off. An operation that cancels the loop's timer and
    sets none (a restart that forgets to start again), or sets another function's, re-arms nothing.

    Once more than ``skips`` ticks of the loop (its timers set for later, not a ``callLater(0)`` hop) fired
    after ``after`` without a call of the work (the span has none), no later re-arm counts: the loop had
    its ticks and let them pass, so a restart cannot put off a call it already failed to make (a
    loop whose ticks stopped calling the work, re-armed by ``reset`` more often than its wait: audit 13).
    With ``reach_us`` (the loop's wait), a call that re-armed the loop only for later than that (a restart
    arming it ten intervals out) puts nothing off: no call could come within the wait from it, so a
    loop re-armed too far more often than its wait is judged from before (audit 13).
    """
    ours = set(loop_timers(events, job, end + 1))
    delay: dict[int, int] = {}  # each timer set or moved so far: the delay asked for (us)
    ticks = 0  # the loop's ticks fired after ``after``
    in_start = in_call = False
    cancelled: set[str] = set()  # the functions of the loop's timers the current operation call cancelled
    set_here: list[tuple[int, str]] = []  # the timers the current operation call set: number, function
    moved: list[int] = []  # the delays the current operation call moved pending timers of the loop's to
    opener = latest = None
    for index, (t_us, kind, job_id, _, detail) in enumerate(events[:end + 1]):
        if kind in CALL_OPENERS:
            if in_call and opener is not None:
                latest = _rearmed(ours, cancelled, set_here, moved, opener, after, latest, delay, reach_us)
            if kind == _FIRE and index > after:
                number = timer_number(detail)
                if number in ours and delay.get(number, 1) > 0:
                    ticks += 1
                    if ticks > skips:
                        return latest  # ticks let pass: no later re-arm puts the owed call off
            in_start = kind == _LOOP_START and job_id == job
            in_call, opener = kind == _CALL, index
            cancelled, set_here, moved = set(), [], []
        elif kind == _SET:
            number = timer_number(detail)
            if number is None:
                continue
            delay[number] = (set_due_us(detail) or t_us) - t_us
            if in_start:
                ours.add(number)
            elif in_call:
                set_here.append((number, _timer_function(detail)))
        elif kind == _CANCEL and in_call and timer_number(detail) in ours:
            cancelled.add(_timer_function(detail))
        elif kind == _RESET:
            number = timer_number(detail)
            if number is not None:
                delay[number] = (set_due_us(detail) or t_us) - t_us
            if in_call and number is not None and number in ours:
                moved.append(delay[number])
    if in_call and opener is not None:
        latest = _rearmed(ours, cancelled, set_here, moved, opener, after, latest, delay, reach_us)
    return latest


def _rearmed(ours: set[int], cancelled: set[str], set_here: list[tuple[int, str]], moved: list[int], opener: int,
             after: int, latest: int | None, delay: dict[int, int], reach_us: int | None) -> int | None:
    """``last_rearm``'s step at the end of an operation call's chain: the timers it set anew join the loop's,
    and the call is the latest re-arm if it re-armed any, or moved one (past ``after``), due within
    ``reach_us`` of it (None: any)."""
    again = [number for number, function in set_here if function in cancelled]
    if not again and not moved:
        return latest
    ours.update(again)
    soonest = min([delay.get(number, 0) for number in again] + moved)
    if reach_us is not None and soonest > reach_us:
        return latest  # re-armed only past the wait: no call can come within it from here
    return opener if opener > after else latest
