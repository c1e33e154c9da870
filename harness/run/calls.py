"""Which reactor call an event of the trace happened in, and when the reactor owed that call.

A stalled reactor (``step_ms``, jitter) runs every overdue call in one late
wake-up, in due order: what a punctual reactor does at 200 ms and at 300 ms
then happens at the same instant. An invariant that asks "was this caller
answered before T?" must not read the wake-up's time alone: the call that
answered it may have been due long before T. The trace says which call ran:
each operation of the schedule, each firing of one of the subject's timers
(``timer.fire``, whose ``timer.set`` names its due time) and each job's own
call settling it opens a call; every event after an opener, up to the next,
is in that call's chain. A pure function of the trace.
"""

from __future__ import annotations

from harness.model.trace import EventKind
from harness.run.facts import Facts
from harness.run.timers import set_due_us

#: Events that open another call on the reactor (an operation of the schedule, a subject's timer firing,
#: a job's own call settling it): an event after one of them is not in the call chain of what came before.
CALL_OPENERS = frozenset({
    EventKind.SUBMIT, EventKind.START, EventKind.CANCEL, EventKind.STOP, EventKind.CALL, EventKind.CLOCK_JUMP,
    EventKind.REACTOR_PAUSE, EventKind.TIMER_FIRE, EventKind.JOB_FINISH, EventKind.JOB_FAIL,
})

#: The events that open a step of the schedule (an operation): what follows one was made by that operation
#: (or by what it set off in its instant), not by the one before.
SCHEDULE_OPERATIONS = frozenset((EventKind.SUBMIT, EventKind.CANCEL, EventKind.CALL, EventKind.STOP, EventKind.START,
                                 EventKind.CLOCK_JUMP))


def called_name(facts: Facts, index: int) -> str:
    """The name of the operation a ``call`` event at trace index ``index`` called (its detail reads
    ``name(arguments)``)."""
    return str(facts.events[index][4]).split("(", 1)[0]


def operation_called_before(facts: Facts, index: int) -> str | None:
    """The name of the operation whose call made the event at trace index ``index``: the schedule's last
    operation before it, when that is a ``call`` in the event's instant (what it set off then, a
    ``callLater(0)`` included, runs before the schedule's next operation); None otherwise."""
    events, at = facts.events, facts.time(index)
    for i in range(index - 1, -1, -1):
        if events[i][1] in SCHEDULE_OPERATIONS:
            if events[i][1] == EventKind.CALL and events[i][0] == at:
                return called_name(facts, i)
            return None
    return None


def opener_of(facts: Facts, index: int, after: int = -1) -> int | None:
    """The trace index of the opener of the call whose chain holds event ``index`` (the opener itself when
    ``index`` is one), looking back no further than ``after`` (exclusive); None if none is found."""
    events = facts.events
    for i in range(index, after, -1):
        if events[i][1] in CALL_OPENERS:
            return i
    return None


def timer_due_us(facts: Facts, fire: int) -> int | None:
    """When the subject's timer whose ``timer.fire`` is at trace index ``fire`` was due (virtual us), read
    from its ``timer.set`` (``#<n> <function> due <time>``); None if the event is no timer firing or its
    setting is not in the trace (a run whose timer events stopped at ``timer.limit``)."""
    set_at = timer_set_at(facts, fire)
    return None if set_at is None else set_due_us(facts.events[set_at][4])


def punctual_due_us(facts: Facts, fire: int) -> int | None:
    """When the timer firing at ``fire`` would have been due on a punctual reactor: its due time, less how
    late the call that set it ran, when that call was one of the subject's timers firing late (a connect
    started by a timer due at 200 ms that ran at 210 ms, with a 200 ms timeout, is due at 410 ms, and
    would have been at 400 ms), at most the clock's lateness (``Facts.late_us``). One step back only: a
    ``LoopingCall`` keeps its own schedule, so lateness is not summed along chains. None as for
    ``timer_due_us``."""
    set_at = timer_set_at(facts, fire)
    if set_at is None:
        return None
    due = set_due_us(facts.events[set_at][4])
    if due is None:
        return None
    setter = opener_of(facts, set_at)
    setter_due = None if setter is None else timer_due_us(facts, setter)
    if setter is None or setter_due is None:
        return due
    late = min(max(facts.time(setter) - setter_due, 0), facts.late_us)
    return due - late


def owed_before(facts: Facts, index: int, deadline_us: int) -> bool:
    """Whether event ``index`` happened in the chain of one of the subject's timers that a punctual reactor
    would have run before ``deadline_us`` (``punctual_due_us``), and so reached the event before the deadline,
    however late this run's clock woke up; or one due at the deadline itself that won a tie against a timer
    due then too: the same call cancelled a timer due at the deadline, already overdue (the deadline's
    own timer, which lost the race; a real reactor runs calls due at one instant in any order). False when
    the trace cannot tell (another kind of call, or no timer events): the event is then taken at its own
    time."""
    opener = opener_of(facts, index)
    if opener is None:
        return False
    due = punctual_due_us(facts, opener)
    if due is None or due > deadline_us:
        return False
    return due < deadline_us or _cancels_overdue(facts, opener, deadline_us)


def _cancels_overdue(facts: Facts, opener: int, deadline_us: int) -> bool:
    """Whether the call opened at ``opener`` cancelled one of the subject's timers due at ``deadline_us``
    and already overdue then (due by the call's time)."""
    events, now = facts.events, facts.time(opener)
    for i in range(opener + 1, len(events)):
        kind = events[i][1]
        if kind in CALL_OPENERS:
            return False
        if kind != EventKind.TIMER_CANCEL:
            continue
        set_at = timer_set_at(facts, i)
        if set_at is not None:
            due = set_due_us(events[set_at][4])
            if due is not None and abs(due - deadline_us) <= 1 and due <= now:  # 1us: float rounding
                return True
    return False


_FIRED_OR_CANCELLED = frozenset({EventKind.TIMER_FIRE, EventKind.TIMER_CANCEL})
_SET_OR_RESET = frozenset({EventKind.TIMER_SET, EventKind.TIMER_RESET})


def timer_set_at(facts: Facts, index: int) -> int | None:
    """The trace index of the ``timer.set`` of the timer firing (or cancelled) at ``index``, or of its latest
    ``timer.reset`` (a ``reset``/``delay`` moved it: its due time and the call that set it are the
    reset's); None: no timer firing or cancel, or its setting is not in the trace."""
    events = facts.events
    if events[index][1] not in _FIRED_OR_CANCELLED:
        return None
    set_as = f"{events[index][4]} due "
    for i in range(index - 1, -1, -1):
        event = events[i]
        if event[1] in _SET_OR_RESET and event[4].startswith(set_as):
            return i
    return None
