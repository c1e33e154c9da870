"""The trace: the ordered, deterministic event log of one run.

Every event has the virtual (monotonic) time in microseconds, a kind, the job
id it concerns (-1 for none) and a short detail string. Nothing in an event
depends on memory addresses or wall-clock time, so the same schedule and
target give a byte-identical trace, summarised by ``Trace.digest()``.
"""

from __future__ import annotations

import hashlib
import itertools
import reprlib
from collections.abc import Callable, Iterable, Iterator, MutableSequence
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, overload

from harness.errors import TargetError

NO_JOB = -1


class EventKind(StrEnum):
    """Every kind of trace event: the closed vocabulary of ``Event.kind``.

    A member is its string (``EventKind.RESULT == "result"``, hashes alike, formats as ``result``), so
    traces, digests and failure files hold the same text as when kinds were bare strings, and a
    misspelt member is an ``AttributeError`` rather than a check that silently never matches.
    """

    SUBMIT = "submit"  #: a job is handed to the subject (detail: ``p<priority>[ key <key>]``)
    SUBMIT_RAISED = "submit.raised"  #: submit raised instead of returning a Deferred
    START = "start"  #: a periodic subject is started with its work
    #: the periodic work's ``report_end(reason)``: the loop ended on purpose (detail: the reason, described)
    LOOP_END = "loop.end"
    #: a job's ``restart_timeout()`` or ``stop_timeout()`` (``timeout_from="glue"``): where its deadline runs from
    #: (detail: ``""``, restarted now; ``job <n>``, from where job n's deadline runs; ``stopped``, none until restarted)
    TIMEOUT_RESTART = "timeout.restart"
    JOB_START = "job.start"  #: the subject called a job: an attempt begins
    JOB_FINISH = "job.finish"  #: an attempt succeeded
    JOB_FAIL = "job.fail"  #: an attempt failed (detail: the exception type)
    JOB_CANCEL = "job.cancel"  #: an attempt's own Deferred was cancelled
    RESULT = "result"  #: the caller's Deferred delivered a value
    FAILURE = "failure"  #: the caller's Deferred failed
    ERROR_IS = "error.is"  #: after an error event: the declared types its error is an instance of (subclasses)
    CANCEL = "cancel"  #: the harness cancelled the caller's Deferred
    CANCEL_RAISED = "cancel.raised"  #: cancel() raised
    CANCEL_SKIP = "cancel.skip"  #: nothing to cancel (the job was never submitted)
    STOP = "stop"  #: the harness called stop() (detail: scheduled or teardown)
    #: stop() raised a hostile job's ``CancellerError`` (the job's fault: for the timeline only, no invariant
    #: judges it) or an ``AlreadyCalledError`` (the subject fired a Deferred twice: ``completion.once``).
    #: Any other exception from stop() is a target error.
    STOP_RAISED = "stop.raised"
    STOP_SKIP = "stop.skip"  #: a scheduled stop() was skipped (already stopped, or the subject has no stop())
    #: the Deferred stop() returned failed (detail ``Type: message``). ``completion.once`` reads it (a
    #: Deferred fired twice); any other failure is not judged: after a stop jobs may fail with any error.
    STOP_FAILURE = "stop.failure"
    #: the Deferred stop() returned had not fired when the run ended with no work in flight and nothing
    #: scheduled: nothing can ever fire it (a shutdown that hangs); ``completion.stop`` judges it
    STOP_PENDING = "stop.pending"
    CALL = "call"  #: a target operation was called (detail: ``name(args)``)
    CALL_RAISED = "call.raised"  #: it raised an exception type it does not declare
    CALL_FAILURE = "call.failure"  #: its Deferred failed with a type it does not declare
    CALL_REFUSED = "call.refused"  #: it raised (or failed with) a declared type, never an AlreadyCalledError
    CALL_RESULT = "call.result"  #: the Deferred it returned delivered a value, or it returned one (not None)
    #: the Deferred it returned had not fired when the run ended, stopped, with no work in flight and
    #: nothing scheduled (detail: ``name(args) at event <index of its call>``); ``completion.operation``
    CALL_PENDING = "call.pending"
    CLOCK_JUMP = "clock.jump"  #: the wall clock (seconds()) jumped
    DRAINED = "drained"  #: the run drained after its last operation
    REACTOR_ERROR = "reactor.error"  #: an exception escaped a scheduled call
    REACTOR_LIVELOCK = "reactor.livelock"  #: scheduled calls kept scheduling calls for one instant
    #: the next operation lands between the rounds of its instant (its ``after_rounds``), as I/O does
    #: between two passes of a real reactor; detail: where, and how many due calls run after it
    REACTOR_PAUSE = "reactor.pause"
    TARGET_HANG = "target.hang"  #: a step did not return within the wall-clock limit
    UNHANDLED = "unhandled"  #: "Unhandled error in Deferred" was logged
    LOG_ERROR = "log.error"  #: another error was logged
    LEAK_CALL = "leak.call"  #: a DelayedCall left pending after stop
    LEAK_LOOP = "leak.loop"  #: a LoopingCall left running after stop
    USER_FAIL = "user.fail"  #: a target invariant failed
    TIMER_SET = "timer.set"  #: the subject called callLater (detail: ``#<n> <function> due <time>``)
    TIMER_FIRE = "timer.fire"  #: one of the subject's delayed calls ran (detail: ``#<n> <function>``)
    TIMER_CANCEL = "timer.cancel"  #: one of the subject's delayed calls was cancelled
    TIMER_RESET = "timer.reset"  #: one of the subject's delayed calls was moved (``reset``/``delay``; detail as ``timer.set``'s)
    TIMER_LIMIT = "timer.limit"  #: the run's timer budget is spent: no more timer events
    END = "end"  #: the run is over
    #: a call of an ``Operation(restarts=True)`` started the stopped subject again (detail: the operation's
    #: name): it runs until the next ``stop``. Last of the kinds, so the feature codes of the others stay.
    RESTART = "restart"


class Event(NamedTuple):
    """One thing that happened: when (virtual microseconds), what, to which job and attempt.

    ``kind`` is an ``EventKind`` in a trace the harness recorded; a trace loaded from a failure file
    holds the same text as plain strings (they compare equal).
    """

    t_us: int
    kind: str
    job: int = NO_JOB
    attempt: int = 0
    detail: str = ""

    def line(self) -> str:
        return f"{self.t_us} {self.kind} {self.job}.{self.attempt} {self.detail}"


#: An event as the trace records it: the plain tuple ``(t_us, kind, job, attempt, detail)`` of an
#: ``Event``'s fields. A run records about 100; a plain tuple costs half what a tuple subclass does to
#: make, free and scan for garbage, and unpacks and indexes on the interpreter's fast paths. An
#: ``Event`` is one too (a trace loaded from a file, or events a test appends, may hold them).
RawEvent = tuple[int, str, int, int, str]

#: Builds an ``Event`` from a full tuple of its fields, skipping the Python-level ``__new__`` a
#: NamedTuple call goes through (same object, same fields).
_make_event = tuple.__new__


def as_event(raw: RawEvent) -> Event:
    """The ``Event`` of a recorded tuple (itself when it is one already)."""
    return raw if type(raw) is Event else _make_event(Event, raw)


class Events(MutableSequence[Event]):
    """``Trace.events``: the trace's events as ``Event`` named tuples, made as they are read.

    A view of the tuples the trace records (``Trace.raw``), which behaves as the list of events it
    always was: indexing, slicing, iterating, ``len``, comparing (with another trace's events or a
    list of events), and changing it (``append``, ``extend``, slice assignment, ``del``) changes the
    trace. Each read makes the ``Event`` of one recorded tuple: the harness's own checks read the
    tuples, so a run pays for named tuples only where something asks for them.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: list[RawEvent]) -> None:
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Event | list[Event]:
        if isinstance(index, slice):
            return list(map(as_event, self._raw[index]))
        return as_event(self._raw[index])

    @overload
    def __setitem__(self, index: int, value: Event) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[Event]) -> None: ...

    def __setitem__(self, index: int | slice, value: Any) -> None:
        if isinstance(index, slice):
            self._raw[index] = list(value)
        else:
            self._raw[index] = value

    def __delitem__(self, index: int | slice) -> None:
        del self._raw[index]

    def insert(self, index: int, value: Event) -> None:
        self._raw.insert(index, value)

    def append(self, value: Event) -> None:
        self._raw.append(value)

    def extend(self, values: Iterable[Event]) -> None:
        self._raw.extend(values)

    def __iter__(self) -> Iterator[Event]:
        return map(as_event, self._raw)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Events):
            return self._raw == other._raw
        if isinstance(other, (list, tuple)):
            return len(self._raw) == len(other) and all(a == b for a, b in zip(self._raw, other))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # (mutable, as the list it stands for)

    def __repr__(self) -> str:
        return repr(list(self))


class _Stamps(Protocol):
    """What stamps a trace's events: anything with the current virtual time as an ``int`` attribute ``now_us``."""

    @property
    def now_us(self) -> int: ...


class _Calling:
    """``now_us`` read by calling a function: the stamp of a trace made from a callable."""

    __slots__ = ("_now_us",)

    def __init__(self, now_us: Callable[[], int]) -> None:
        self._now_us = now_us

    @property
    def now_us(self) -> int:
        return self._now_us()


class _Fixed:
    """A ``now_us`` that no longer moves: the stamp of a frozen trace."""

    __slots__ = ("now_us",)

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us


class Trace:
    """An append-only event log stamped by a virtual clock.

    ``Trace(now_us)`` calls ``now_us()`` for each event's time; ``Trace.of_clock(clock)`` reads
    ``clock.now_us`` directly (the runner's way: a trace records about 100 events a run, and a
    function call per event was a tenth of what recording costs).

    ``events`` is the list of ``Event`` named tuples; ``raw`` the same events as the trace records
    them, plain tuples of the same fields (``RawEvent``), which the harness's own checks read.
    """

    __slots__ = ("raw", "stamps", "closed")

    def __init__(self, now_us: Callable[[], int]) -> None:
        self.raw: list[RawEvent] = []
        #: What stamps each event: its ``now_us`` is read as the event is recorded.
        self.stamps: _Stamps = _Calling(now_us)
        #: True once the run is over: nothing more is recorded.
        self.closed = False

    @classmethod
    def of_clock(cls, clock: _Stamps) -> Trace:
        """A trace stamped by ``clock.now_us`` (virtual microseconds), read as each event is recorded."""
        trace = cls.__new__(cls)
        trace.raw = []
        trace.stamps = clock
        trace.closed = False
        return trace

    @property
    def events(self) -> Events:
        """The events, as ``Event`` named tuples (made as they are read), in order; changing it changes the trace."""
        return Events(self.raw)

    def record(self, kind: EventKind, job: int = NO_JOB, detail: str = "", attempt: int = 0) -> int:
        """Append an event at the current virtual time; return its index (-1 once closed).

        The run's most frequent events (a submit, what its caller received, an attempt's start and
        end, a cancel: about 95 of a run's 100) are appended where they happen, as this does it
        (``if not trace.closed: trace.raw.append((trace.stamps.now_us, kind, job, attempt, detail))``):
        a method call cost more than the append (through this method they cost 1.8% more instructions a
        campaign example). ``tests/test_run_direct_paths.py`` holds those sites to it, and finds any other.
        """
        if self.closed:
            return -1
        raw = self.raw
        raw.append((self.stamps.now_us, kind, job, attempt, detail))
        return len(raw) - 1

    def freeze(self, at_us: int | None = None) -> None:
        """Stamp every later event with the current time (or ``at_us``): the run is over and its clock is gone."""
        self.stamps = _Fixed(self.stamps.now_us if at_us is None else at_us)

    def close(self, at_us: int | None = None) -> None:
        """Record nothing more: the run is over, and what its teardown does is no part of it."""
        self.freeze(at_us)
        self.closed = True

    def __iter__(self) -> Iterator[Event]:
        return map(as_event, self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: int) -> Event:
        return as_event(self.raw[index])

    def lines(self) -> list[str]:
        """Each event's ``Event.line()``."""
        return [f"{t_us} {kind} {job}.{attempt} {detail}" for t_us, kind, job, attempt, detail in self.raw]

    def digest(self) -> str:
        """SHA-256 of the canonical text of the trace: equal digests mean identical traces.

        Raises ``TargetError`` when an event holds text that is not valid Unicode (a lone
        surrogate in a name or message of the target): such a trace can be neither hashed nor saved.
        """
        lines = self.lines()
        try:
            return digest_lines(lines)
        except UnicodeEncodeError:
            bad = next(line for line in lines if not encodable(line))
            raise TargetError(
                f"the run's trace holds text that is not valid Unicode (a lone surrogate) in {one_line(bad)[:120]!r}; "
                "give the target's functions, exceptions and messages names that are valid Unicode"
            ) from None


def one_line(text: str) -> str:
    """``text`` with newlines and other unprintable characters escaped as ``repr`` would: safe to print on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def encodable(text: str) -> bool:
    """A string that can be written out: UTF-8 has no lone surrogates (JSON's ``"\\ud800"``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _BoundedRepr(reprlib.Repr):
    """``repr`` that stops early on long strings, numbers and containers (see ``safe_repr``)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 6
        self.maxstring = self.maxlong = self.maxother = 4 * limit
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = self.maxdeque = limit
        self.maxarray = limit

    # reprlib sorts the keys of dicts and the items of sets; ``repr`` keeps their own order.
    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [
            f"{self.repr1(key, level - 1)}: {self.repr1(x[key], level - 1)}"
            for key in itertools.islice(x, self.maxdict)
        ]
        return "{" + ", ".join(pieces) + (", ..." if len(x) > self.maxdict else "") + "}"

    def _repr_unordered(self, x: Any, level: int, left: str, right: str) -> str:
        if level <= 0:
            return left + "..." + right
        pieces = [self.repr1(item, level - 1) for item in itertools.islice(x, self.maxset)]
        return left + ", ".join(pieces) + (", ..." if len(x) > self.maxset else "") + right

    def repr_set(self, x: set[Any], level: int) -> str:
        return self._repr_unordered(x, level, "{", "}") if x else "set()"

    def repr_frozenset(self, x: frozenset[Any], level: int) -> str:
        return self._repr_unordered(x, level, "frozenset({", "})") if x else "frozenset()"


_BOUNDED: dict[int, _BoundedRepr] = {}


def safe_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)``, its first ``limit`` characters exact, at bounded cost, never raising.

    Every repr the harness makes of a target's values goes through this:
    a 50 MB string, a million-item list or an integer too long to print
    costs what its first characters cost, and a ``__repr__`` that raises
    gives a placeholder. (An object's own ``__repr__`` still runs in full.)
    The result may be longer than ``limit``: callers cut it to fit.
    """
    bounded = _BOUNDED.get(limit)
    if bounded is None:
        bounded = _BOUNDED.setdefault(limit, _BoundedRepr(limit))
    try:
        return bounded.repr(value)
    except Exception:
        return f"<{type(value).__name__} whose repr() raised>"


def format_ms(t_us: int) -> str:
    """Virtual microseconds as milliseconds, without a fraction when there is none."""
    sign, size = ("-" if t_us < 0 else ""), abs(t_us)  # integer arithmetic: any size, exact
    if size % 1000 == 0:
        return f"{sign}{size // 1000}ms"
    return f"{sign}{size // 1000}.{size % 1000:03d}ms"


def counted(n: int, noun: str) -> str:
    """``1 example``, ``2 examples``: a count and its noun, for the lines people read."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def digest_lines(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def first_divergence(a: list[str], b: list[str]) -> int | None:
    """Index of the first line where two traces differ, or None if they are identical."""
    for index, (left, right) in enumerate(zip(a, b)):
        if left != right:
            return index
    if len(a) != len(b):
        return min(len(a), len(b))
    return None
