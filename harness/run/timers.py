"""The subject's own timers as typed records, read from the trace's ``timer.*`` events.

A user invariant that needs to know when the subject's ``callLater`` was set,
when it fired or was cancelled reads ``run.view.timers`` (``TimerRecord``s)
instead of matching the detail strings of ``timer.set``, ``timer.fire`` and
``timer.cancel`` events. The records are made from the trace alone, on
first use (``RunView.timers`` is computed when read: a run whose invariants
never read it pays nothing), so they are the same for a live run and for a
replayed one.

Every timer here is the subject's: the harness's own calls (a job settling
after its duration, ``FaultClock.call_quietly``) are never recorded, so they
are never in the view. Past ``harness.run.steps.MAX_TIMER_EVENTS`` timers
set (a livelock), or ``MAX_TIMER_MOVES`` moves of them, recording stops:
``timer_limit_index`` says where, and a timer still pending then has
``end`` ``TimerEnd.UNRECORDED``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from harness.model.trace import EventKind
from harness.run.clock import func_name

if TYPE_CHECKING:
    from harness.model.trace import Event

__all__ = ["TimerEnd", "TimerRecord", "read_timers", "set_due_us", "timer_name"]


class TimerEnd(StrEnum):
    """How a timer ended: it fired, it was cancelled, it was still pending when the run ended, or
    the harness had stopped recording timers (past ``MAX_TIMER_EVENTS``) before it ended."""

    FIRED = "fired"
    CANCELLED = "cancelled"
    PENDING = "pending"
    UNRECORDED = "unrecorded"


@dataclass(frozen=True)
class TimerRecord:
    """One delayed call the subject set on its clock (``callLater``, and what ``deferLater``,
    ``LoopingCall``, ``Deferred.addTimeout`` and the like set for it).

    ``id`` is the clock's number for the call (``#3`` in the trace: numbers
    count every call, the harness's own too, so they are not consecutive);
    ``function`` what it calls, named as the trace names it
    (``Poller._poll``, ``LoopingCall``: ``RunView.timers_calling`` matches a
    function for you). ``due_us`` is when it was due when it was set;
    ``moved_to_us`` when it was due after the latest ``reset`` or ``delay``
    (a ``timer.reset`` event; None: never moved). ``end`` says how it ended; ``end_us`` and
    ``end_index`` are the firing or the cancel (None: it did not end, or
    recording stopped first). Times are monotonic virtual microseconds;
    ``set_wall_us`` and ``end_wall_us`` what ``clock.seconds()`` read then.
    The ``*_index`` fields are trace indices: they order events of one
    instant (a cancel, then a new timer set in the same call).
    """

    id: int
    function: str
    set_us: int
    due_us: int
    set_index: int
    end: TimerEnd
    end_us: int | None = None
    end_index: int | None = None
    set_wall_us: int | None = None
    end_wall_us: int | None = None
    moved_to_us: int | None = None

    @property
    def fired_us(self) -> int | None:
        """When it fired, or None (cancelled, still pending, or unrecorded)."""
        return self.end_us if self.end is TimerEnd.FIRED else None

    @property
    def cancelled_us(self) -> int | None:
        """When it was cancelled, or None."""
        return self.end_us if self.end is TimerEnd.CANCELLED else None

    def pending_at(self, index: int) -> bool:
        """Whether it was set and had neither fired nor been cancelled at trace index ``index`` (its own set
        event counts as pending, its firing or cancel as ended; unrecorded ends count as pending)."""
        return self.set_index <= index and (self.end_index is None or self.end_index > index)


def timer_name(function: Any) -> str:
    """The name the trace gives a timer calling ``function`` (a function, a bound or unbound method, a class
    such as ``LoopingCall``): compare it with ``TimerRecord.function``."""
    return func_name(function)


#: ``#<id> <function> due <time>``, as ``harness.run.steps.timer_recorder`` writes it (``format_ms``).
_SET = re.compile(r"#(\d+) (.*) due (-?)(\d+)(?:\.(\d{3}))?ms")
_LABEL = re.compile(r"#(\d+) ")


def set_due_us(detail: str) -> int | None:
    """The due time (virtual us) a ``timer.set`` (or ``timer.reset``) event's detail names (``#3 Poller._poll
    due 200ms``), or None for a detail this harness's recorder did not write."""
    match = _SET.fullmatch(detail)
    return None if match is None else _micros(match[3], match[4], match[5])


def _micros(sign: str, whole: str, fraction: str | None) -> int:
    value = int(whole) * 1000 + (int(fraction) if fraction else 0)
    return -value if sign else value


#: The kinds read, bound once (on Python 3.11 each ``EventKind.X`` is a slow enum attribute lookup).
_SET_KIND, _FIRE_KIND, _CANCEL_KIND, _LIMIT_KIND = EventKind.TIMER_SET, EventKind.TIMER_FIRE, EventKind.TIMER_CANCEL, EventKind.TIMER_LIMIT
_RESET_KIND = EventKind.TIMER_RESET
_TIMER_KINDS = frozenset((_SET_KIND, _FIRE_KIND, _CANCEL_KIND, _LIMIT_KIND, _RESET_KIND))


def read_timers(events: Sequence[Event], wall_us: Callable[[int], int]) -> tuple[tuple[TimerRecord, ...], int | None]:
    """The timers recorded in ``events``, in the order they were set, and the index of the
    ``timer.limit`` event (None: every timer was recorded)."""
    open_: dict[int, dict[str, Any]] = {}
    done: list[dict[str, Any]] = []
    limit: int | None = None
    for index, event in enumerate(events):
        kind = event.kind
        if kind not in _TIMER_KINDS:
            continue
        if kind == _SET_KIND:
            match = _SET.fullmatch(event.detail)
            if match is None:  # not written by this harness's recorder: nothing to read
                continue
            number, name, sign, whole, fraction = match.groups()
            fields = {"id": int(number), "function": name, "set_us": event.t_us, "due_us": _micros(sign, whole, fraction),
                      "set_index": index, "set_wall_us": wall_us(index), "end": TimerEnd.PENDING}
            open_[int(number)] = fields
            done.append(fields)
        elif kind == _RESET_KIND:
            match = _SET.fullmatch(event.detail)
            moved = open_.get(int(match[1])) if match is not None else None
            if match is not None and moved is not None:
                moved["moved_to_us"] = _micros(match[3], match[4], match[5])
        elif kind != _LIMIT_KIND:  # a firing or a cancel
            label = _LABEL.match(event.detail)
            fields_or_none = open_.pop(int(label.group(1)), None) if label is not None else None
            if fields_or_none is not None:
                fields_or_none.update(
                    end=TimerEnd.FIRED if kind == _FIRE_KIND else TimerEnd.CANCELLED,
                    end_us=event.t_us, end_index=index, end_wall_us=wall_us(index),
                )
        else:
            limit = index
    if limit is not None:
        for fields in open_.values():
            fields["end"] = TimerEnd.UNRECORDED
    return tuple(TimerRecord(**fields) for fields in done), limit
