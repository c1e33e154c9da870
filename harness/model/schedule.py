"""Schedules: the plain, versioned data that says what happens to a subject and when.

A schedule is a list of timed operations (submit a job, cancel one, stop the
subject, jump the wall clock) plus the clock policy (tie-break order for calls
due at the same instant, and how the reactor advances). Times are integer
milliseconds of virtual time, so traces are exact and shrinking is clean.

Every operation may also say where it lands among the *rounds* of its instant
(``after_rounds``). When the reactor wakes at an instant it runs the calls due
then in rounds: calls added during a round (``callLater(0)``) wait for the next
one, and on a real reactor I/O (a new request: a schedule operation) is handled
between two rounds. ``None`` (the default, and what shrinking returns to) runs
the operation after every round of its instant; ``k`` runs it after ``k`` rounds
of the wake at its instant (``0``: before any call due then), the rest after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Union

FORMAT = "harness-schedule"
#: The newest version this harness writes. Version 2 added job keys (``Submit.key``) and
#: operation calls (``Call``); version 3 added where an operation lands among the rounds of its
#: instant (``after_rounds``). A schedule is written as the oldest version that holds it, so older
#: harnesses read whatever uses none of the newer fields.
FORMAT_VERSION = 3
#: The largest ``after_rounds`` an operation may name (the clock's livelock bound on rounds per instant).
MAX_ROUNDS = 10_000

#: What a job does when the subject calls it (see ``harness.run.jobs``).
JOB_KINDS = ("succeed", "immediate", "value", "fail", "raise", "hang")
#: Order in which calls due at the same instant run.
TIE_BREAKS = ("fifo", "lifo", "shuffle")
#: Every tie-break a clock policy may name: ``pct`` too, which the ``pct`` search strategy draws
#: (``harness.run.clock``: random priorities with ``depth - 1`` priority change points).
ORDERS = TIE_BREAKS + ("pct",)
#: The largest ``pct`` bug depth.
MAX_DEPTH = 16


#: The largest time or delay in a schedule (about 31 years of virtual time): bounds what a file can ask for.
MAX_MS = 10**12
#: The largest job id, priority magnitude, key and clock seed a schedule may hold.
MAX_ID = 10**9
MAX_SEED = 2**64


class ScheduleError(ValueError):
    """A schedule document that does not have the documented shape."""


def _bounded(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ScheduleError(f"{name} must be an integer from {low} to {high}, got {_short(value)}")


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"{type(value).__name__} of {len(str(abs(value)))} digits"
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class JobSpec:
    """How one job behaves: its kind, its duration, and the error it injects.

    ``succeed``/``fail`` finish ``after_ms`` after the call through the clock;
    ``immediate`` returns an already-fired Deferred; ``value`` returns a plain
    value; ``raise`` raises at call; ``hang`` never finishes unless cancelled.
    ``canceller_raises`` makes the job's own canceller raise (a hostile job).
    """

    kind: str = "succeed"
    after_ms: int = 0
    error: str = "InjectedError"
    canceller_raises: bool = False

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ScheduleError(f"job kind {_short(self.kind)} is unknown; use one of {', '.join(JOB_KINDS)}")
        _bounded("job after_ms", self.after_ms, 0, MAX_MS)
        # A name, never a path: it is looked up in the target's error table, not imported.
        if not isinstance(self.error, str) or not self.error.isidentifier():
            raise ScheduleError(f"job error must be an exception name such as 'ValueError', got {_short(self.error)}")

    @property
    def fails(self) -> bool:
        return self.kind in ("fail", "raise")


@dataclass(frozen=True, slots=True)
class Submit:
    """Submit job ``job`` (an id unique in the schedule) with an optional priority and key.

    The first attempt behaves as ``spec``; later attempts (retries) as the
    entries of ``then`` in turn, the last one repeating. ``key`` (0 unless the
    target declares ``keys``) is the key the job is submitted under.
    """

    at_ms: int
    job: int
    spec: JobSpec = field(default_factory=JobSpec)
    priority: int = 0
    then: tuple[JobSpec, ...] = ()
    key: int = 0
    after_rounds: int | None = None
    name: ClassVar[str] = "submit"

    @property
    def specs(self) -> tuple[JobSpec, ...]:
        return (self.spec,) + self.then


@dataclass(frozen=True, slots=True)
class Start:
    """Start a periodic subject with job ``job`` as its periodic function.

    Call k of the function behaves as ``specs[k]`` (``spec``, then ``then``),
    the last one repeating.
    """

    at_ms: int
    job: int
    spec: JobSpec = field(default_factory=JobSpec)
    then: tuple[JobSpec, ...] = ()
    after_rounds: int | None = None
    name: ClassVar[str] = "start"

    @property
    def specs(self) -> tuple[JobSpec, ...]:
        return (self.spec,) + self.then


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the Deferred that ``submit`` returned for job ``job``."""

    at_ms: int
    job: int
    after_rounds: int | None = None
    name: ClassVar[str] = "cancel"


@dataclass(frozen=True, slots=True)
class Stop:
    """Call the subject's ``stop()``."""

    at_ms: int
    after_rounds: int | None = None
    name: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Jump:
    """Move the wall clock (what ``seconds()`` reads) by ``delta_ms``, forward or back."""

    at_ms: int
    delta_ms: int
    after_rounds: int | None = None
    name: ClassVar[str] = "jump"


@dataclass(frozen=True, slots=True)
class Call:
    """Call the target's operation ``operation`` on the subject with ``args`` (JSON-plain values)."""

    at_ms: int
    operation: str
    args: tuple[Any, ...] = ()
    after_rounds: int | None = None
    name: ClassVar[str] = "call"

    def __post_init__(self) -> None:
        if not isinstance(self.operation, str) or not self.operation.isidentifier():
            raise ScheduleError(f"an operation must be named by an identifier such as 'flush', got {_short(self.operation)}")
        if not isinstance(self.args, tuple):
            raise ScheduleError(f"operation {self.operation} args must be a tuple, got {_short(self.args)}")
        for arg in self.args:
            _plain(arg, f"an argument of operation {self.operation}", 0)


#: How deep a JSON-plain operation argument may nest.
MAX_DEPTH = 8


def _plain(value: object, what: str, depth: int) -> None:
    """Refuse anything JSON cannot hold exactly: operation arguments go into failure files."""
    if depth > MAX_DEPTH:
        raise ScheduleError(f"{what} nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        _bounded(what, value, -(2**63), 2**63)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ScheduleError(f"{what} must be a finite number, got {value!r}")
    elif isinstance(value, list):
        for item in value:
            _plain(item, what, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ScheduleError(f"{what} must have string keys, got {_short(key)}")
            _plain(item, what, depth + 1)
    else:
        raise ScheduleError(
            f"{what} must be a JSON-plain value (None, bool, int, float, str, list, dict), got {type(value).__name__}"
        )


Op = Union[Submit, Start, Cancel, Stop, Jump, Call]
OP_TYPES: dict[str, type] = {t.name: t for t in (Submit, Start, Cancel, Stop, Jump, Call)}


@dataclass(frozen=True, slots=True)
class ClockPolicy:
    """How the fault clock orders ties and advances.

    ``step_ms == 0`` advances punctually to each next due call; a positive step
    advances in fixed strides, so calls fire late (ticks, or a stalled reactor).
    ``jitter_ms`` makes the reactor wake late for each call by a seeded amount up
    to that much; calls still run in due order (see ``harness.run.clock``).
    ``seed`` drives the ``shuffle`` and ``pct`` tie-breaks and the jitter;
    ``depth`` is the bug depth ``pct`` aims at (ignored by the others).
    """

    tie_break: str = "fifo"
    seed: int = 0
    step_ms: int = 0
    jitter_ms: int = 0
    depth: int = 3

    def __post_init__(self) -> None:
        if self.tie_break not in ORDERS:
            raise ScheduleError(f"tie_break {_short(self.tie_break)} is unknown; use one of {', '.join(ORDERS)}")
        _bounded("depth", self.depth, 1, MAX_DEPTH)
        _bounded("seed", self.seed, 0, MAX_SEED)
        _bounded("step_ms", self.step_ms, 0, MAX_MS)
        _bounded("jitter_ms", self.jitter_ms, 0, MAX_MS)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Timed operations (sorted by time) and the clock policy they run under."""

    ops: tuple[Op, ...] = ()
    clock: ClockPolicy = field(default_factory=ClockPolicy)

    def __post_init__(self) -> None:
        last = 0
        seen: set[int] = set()
        for op in self.ops:
            # The common operations, valid, in one test each (a decoded schedule has about 50); an
            # operation of another type, or one that fails any test, takes the full checks below.
            kind, at = type(op), op.at_ms
            # (mypy narrows on isinstance, not on this exact-type test: hence the ignores below)
            if kind is Submit:
                job, priority, key = op.job, op.priority, op.key  # type: ignore[union-attr]
                if (
                    type(at) is int and last <= at <= MAX_MS and type(job) is int and 0 <= job <= MAX_ID
                    and type(priority) is int and -MAX_ID <= priority <= MAX_ID
                    and type(key) is int and 0 <= key <= MAX_ID and job not in seen and op.after_rounds is None
                ):
                    last = at
                    seen.add(job)
                    continue
            elif kind is Cancel:
                job = op.job  # type: ignore[union-attr]
                if type(at) is int and last <= at <= MAX_MS and type(job) is int and 0 <= job <= MAX_ID and op.after_rounds is None:
                    last = at
                    continue
            if type(op.at_ms) is not int or not 0 <= op.at_ms <= MAX_MS:  # the common case without a call
                _bounded("operation time", op.at_ms, 0, MAX_MS)
            if op.at_ms < last:
                raise ScheduleError(f"operation times must be non-decreasing integers, got {op.at_ms!r} after {last}")
            last = op.at_ms
            if isinstance(op, (Submit, Start, Cancel)) and (type(op.job) is not int or not 0 <= op.job <= MAX_ID):
                _bounded("job id", op.job, 0, MAX_ID)
            if isinstance(op, Submit):
                if type(op.priority) is not int or not -MAX_ID <= op.priority <= MAX_ID:
                    _bounded("priority", op.priority, -MAX_ID, MAX_ID)
                if type(op.key) is not int or not 0 <= op.key <= MAX_ID:
                    _bounded("key", op.key, 0, MAX_ID)
            if isinstance(op, Jump):
                _bounded("jump delta_ms", op.delta_ms, -MAX_MS, MAX_MS)
            if op.after_rounds is not None:
                _bounded("after_rounds", op.after_rounds, 0, MAX_ROUNDS)
            if isinstance(op, (Submit, Start)):
                if op.job in seen:
                    raise ScheduleError(f"job id {op.job} is submitted twice; job ids must be unique")
                seen.add(op.job)

    @classmethod
    def trusted(cls, ops: tuple[Op, ...], clock: ClockPolicy) -> Schedule:
        """A schedule of operations known to be valid, built without checking them again.

        For the byte codec (``harness.search.strategies``), whose schedules are
        valid by construction (it checks its menu's bounds once) and are built
        about fifty times faster per operation than validated; a test checks that
        every decoded schedule passes the full checks. Schedules from users and
        files always take ``Schedule(...)`` (``__post_init__``).
        """
        schedule = _new(cls)
        _set_ops(schedule, ops)
        _set_clock(schedule, clock)
        return schedule

    @property
    def submits(self) -> tuple[Submit | Start, ...]:
        """The operations that hand a job to the subject (submits, and starts of periodic work)."""
        return tuple(op for op in self.ops if isinstance(op, (Submit, Start)))

    @property
    def end_ms(self) -> int:
        return self.ops[-1].at_ms if self.ops else 0

    @property
    def version(self) -> int:
        """The oldest format version that can hold this schedule (1 unless it uses keys, calls or ``after_rounds``)."""
        if any(op.after_rounds is not None for op in self.ops):
            return 3
        return 2 if any((isinstance(op, Submit) and op.key) or isinstance(op, Call) for op in self.ops) else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "clock": {
                "tie_break": self.clock.tie_break,
                "seed": self.clock.seed,
                "step_ms": self.clock.step_ms,
                "jitter_ms": self.clock.jitter_ms,
                # Only under pct, so that every other schedule's JSON (and hash) is as before.
                **({"depth": self.clock.depth} if self.clock.tie_break == "pct" else {}),
            },
            "ops": [_op_to_json(op) for op in self.ops],
        }

    @classmethod
    def from_json(cls, data: Any) -> Schedule:
        """Parse and validate a schedule document; raise ``ScheduleError`` saying what is wrong."""
        obj = _expect_dict(data, "schedule")
        if obj.get("format") != FORMAT:
            raise ScheduleError(f"not a harness schedule (format is {_short(obj.get('format'))}, expected {FORMAT!r})")
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION or version < 1:
            raise ScheduleError(
                f"schedule version {_short(version)} is not supported (this harness reads versions 1 to {FORMAT_VERSION})"
            )
        clock = _expect_dict(obj.get("clock"), "schedule clock")
        policy = ClockPolicy(
            tie_break=_take(clock, "tie_break", str),
            seed=_take(clock, "seed", int),
            step_ms=_take(clock, "step_ms", int),
            jitter_ms=_take(clock, "jitter_ms", int) if "jitter_ms" in clock else 0,
            depth=_take(clock, "depth", int) if "depth" in clock else 3,
        )
        ops = obj.get("ops")
        if not isinstance(ops, list):
            raise ScheduleError("schedule ops must be a list")
        return cls(ops=tuple(_op_from_json(item) for item in ops), clock=policy)


#: ``Schedule.trusted``'s constructor pieces: the slots' own setters (a frozen dataclass refuses ``setattr``).
_new = object.__new__
_set_ops = getattr(Schedule, "ops").__set__  # a slot's member descriptor (by getattr: mypy sees the field)
_set_clock = getattr(Schedule, "clock").__set__


def _spec_to_json(spec: JobSpec) -> dict[str, Any]:
    return {"kind": spec.kind, "after_ms": spec.after_ms, "error": spec.error, "canceller_raises": spec.canceller_raises}


def _spec_from_json(value: Any, what: str) -> JobSpec:
    spec = _expect_dict(value, what)
    return JobSpec(
        kind=_take(spec, "kind", str),
        after_ms=_take(spec, "after_ms", int),
        error=_take(spec, "error", str),
        canceller_raises=_take(spec, "canceller_raises", bool),
    )


def _then_from_json(obj: dict[str, Any]) -> tuple[JobSpec, ...]:
    then = obj.get("then", [])
    if not isinstance(then, list):
        raise ScheduleError("field 'then' must be a list of job specs")
    return tuple(_spec_from_json(item, "then spec") for item in then)


def _op_to_json(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op.name, "at": op.at_ms}
    if isinstance(op, (Submit, Start)):
        out["job"] = op.job
        out["spec"] = _spec_to_json(op.spec)
        if op.then:
            out["then"] = [_spec_to_json(spec) for spec in op.then]
        if isinstance(op, Submit):
            out["priority"] = op.priority
            if op.key:
                out["key"] = op.key
    elif isinstance(op, Cancel):
        out["job"] = op.job
    elif isinstance(op, Jump):
        out["delta_ms"] = op.delta_ms
    elif isinstance(op, Call):
        out["operation"] = op.operation
        out["args"] = list(op.args)
    if op.after_rounds is not None:  # only then: every other operation's JSON (and hash) is as before
        out["after_rounds"] = op.after_rounds
    return out


def _op_from_json(item: Any) -> Op:
    op = _plain_op_from_json(item)
    obj = item
    if "after_rounds" in obj:
        after = obj["after_rounds"]
        if after is not None:
            _bounded("after_rounds", after, 0, MAX_ROUNDS)
            op = replace(op, after_rounds=after)
    return op


def _plain_op_from_json(item: Any) -> Op:
    obj = _expect_dict(item, "schedule op")
    name = obj.get("op")
    if not isinstance(name, str) or name not in OP_TYPES:
        raise ScheduleError(f"schedule op {_short(name)} is unknown; use one of {', '.join(OP_TYPES)}")
    at = _take(obj, "at", int)
    if name == "submit":
        return Submit(
            at_ms=at,
            job=_take(obj, "job", int),
            spec=_spec_from_json(obj.get("spec"), "submit spec"),
            priority=_take(obj, "priority", int),
            then=_then_from_json(obj),
            key=_take(obj, "key", int) if "key" in obj else 0,
        )
    if name == "start":
        return Start(
            at_ms=at,
            job=_take(obj, "job", int),
            spec=_spec_from_json(obj.get("spec"), "start spec"),
            then=_then_from_json(obj),
        )
    if name == "cancel":
        return Cancel(at_ms=at, job=_take(obj, "job", int))
    if name == "jump":
        return Jump(at_ms=at, delta_ms=_take(obj, "delta_ms", int))
    if name == "call":
        return Call(at_ms=at, operation=_take(obj, "operation", str), args=tuple(_take(obj, "args", list)))
    return Stop(at_ms=at)


def _expect_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScheduleError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _take(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    # bool is an int subclass; an int field must not accept true/false.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ScheduleError(f"field {key!r} must be {kind.__name__}, got {_short(value)}")
    return value
