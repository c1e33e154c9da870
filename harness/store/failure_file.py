"""Failure files: the JSON record of a minimal failing schedule, saved so it replays exactly.

JSON only, never pickle: loading a file parses plain data and validates it;
nothing named in the file is imported except, later and only on request, the
target string the user replays (``load_target`` then refuses anything that
is not a ``harness.Target``). No class named in a file is ever instantiated:
exception names in the schedule must be plain identifiers, resolved at
replay through the fixed set and the target's own declaration only.

Files come from other people and other versions. Whatever is wrong with
one (missing, not a regular file, too large, not UTF-8, truncated or
invalid JSON, another format, a newer version, a field of the wrong type,
an absurd number, an altered trace) is a one-line ``FailureFileError``;
unknown keys are ignored. Files are written atomically (``harness.store.files``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.errors import FailureFileError
from harness.store.files import collection_paused, json_problem, read_bounded, write_atomic
from harness.model.schedule import Schedule, ScheduleError
from harness.model.trace import Event, digest_lines, encodable, safe_repr

#: Builds an ``Event`` from a list of its five fields checked already (no per-field Python call).
_make_event = tuple.__new__

FORMAT = "harness-failure"
FORMAT_VERSION = 1

#: The largest failure file read: far above any the harness writes, far below what would exhaust memory.
MAX_BYTES = 64 * 1024 * 1024

#: Trace times, jobs and attempts are 64-bit integers (a run records nothing larger).
LIMIT_64 = 2**63


def short(value: Any) -> str:
    """A bounded one-line repr of untrusted data, for error messages."""
    text = safe_repr(value, 60)
    return text if len(text) <= 60 else text[:57] + "..."


def valid_target_string(spec: str) -> bool:
    """Whether ``spec`` has the shape ``package.module:attribute`` (identifiers only)."""
    module, sep, attr = spec.partition(":")
    return bool(sep) and all(part.isidentifier() for part in module.split(".") + attr.split("."))


def versions() -> dict[str, str]:
    """The harness and Twisted versions, recorded in every failure file."""
    out = {}
    for dist, key in (("twisted-fault-harness", "harness"), ("twisted", "twisted")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = "unknown"
    return out


@dataclass(frozen=True)
class FailureRecord:
    """A minimal failing schedule and what it broke."""

    target: str
    schedule: Schedule
    invariant: str
    message: str
    trace_hash: str
    seed: int | None = None
    trace: tuple[Event, ...] = ()
    marked: tuple[int, ...] = ()

    @classmethod
    def of_run(
        cls, target: str, run: Any, violation: Any, seed: int | None = None, schedule: Schedule | None = None
    ) -> FailureRecord:
        """The record of ``violation`` in ``run`` (a ``harness.Run``); ``schedule`` overrides the run's own."""
        return cls(
            target=target,
            schedule=schedule if schedule is not None else run.schedule,
            invariant=violation.invariant,
            message=violation.message,
            trace_hash=run.trace.digest(),
            seed=seed,
            trace=tuple(run.trace),
            marked=violation.events,
        )

    @property
    def id(self) -> str:
        """Stable id: the same target and schedule always get the same file name."""
        canonical = json.dumps([self.target, self.schedule.to_json()], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **versions(),
            "id": self.id,
            "target": self.target,
            "seed": self.seed,
            "invariant": self.invariant,
            "message": self.message,
            "trace_hash": self.trace_hash,
            "schedule": self.schedule.to_json(),
            "marked": list(self.marked),
            "trace": [list(event) for event in self.trace],
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "failure file") -> FailureRecord:
        if not isinstance(data, dict):
            raise FailureFileError(f"{source} is not a harness failure file (expected a JSON object)")
        if data.get("format") != FORMAT:
            raise FailureFileError(f"{source} is not a harness failure file (format is {short(data.get('format'))})")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
            newer = isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION
            raise FailureFileError(
                f"{source} has format version {short(version)}; this harness reads versions 1 to {FORMAT_VERSION}"
                + (" (it was written by a newer harness: upgrade to read it)" if newer else "")
            )
        fields: dict[str, Any] = {}
        for key in ("target", "invariant", "message", "trace_hash"):
            fields[key] = _text(data.get(key), key, source)
        if not valid_target_string(fields["target"]):
            raise FailureFileError(
                f"{source}: field 'target' must name a target as 'package.module:attribute', got {short(fields['target'])}"
            )
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise FailureFileError(f"{source}: field 'seed' must be an integer or null, got {short(seed)}")
        try:
            schedule = Schedule.from_json(data.get("schedule"))
        except ScheduleError as exc:
            raise FailureFileError(f"{source}: bad schedule: {exc}") from None
        trace = _parse_trace(data.get("trace"), source)
        if digest_lines([event.line() for event in trace]) != fields["trace_hash"]:
            raise FailureFileError(f"{source}: the stored trace does not match its trace_hash; the file was altered")
        marked = data.get("marked")
        if not isinstance(marked, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(trace) for i in marked
        ):
            raise FailureFileError(f"{source}: field 'marked' must list indices into the trace")
        return cls(schedule=schedule, seed=seed, trace=trace, marked=tuple(marked), **fields)


def _text(value: Any, key: str, source: str) -> str:
    """A string field that can be printed and hashed (no lone surrogates from ``\\ud800`` escapes)."""
    if not isinstance(value, str):
        raise FailureFileError(f"{source}: field {key!r} must be a string, got {short(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise FailureFileError(f"{source}: field {key!r} holds an invalid Unicode escape") from None
    return value


def _parse_trace(value: Any, source: str) -> tuple[Event, ...]:
    if not isinstance(value, list):
        raise FailureFileError(f"{source}: field 'trace' must be a list of events")
    events = _plain_events(value)
    return tuple(events if events is not None else _checked_events(value, source))


def _plain_events(value: list[Any]) -> list[Event] | None:
    """The events, if every one is the plain JSON ``[t_us, kind, job, attempt, detail]`` of 64-bit numbers and
    encodable text; else None.

    A file may hold a million events: this checks them in one pass of plain
    type and range tests and encodes all their text at once, several times
    faster than ``_checked_events``, which names the first bad event.
    """
    low, high = -LIMIT_64, LIMIT_64
    events: list[Event] = []
    append = events.append
    make = _make_event
    for item in value:
        if not (
            type(item) is list
            and len(item) == 5
            and type(item[0]) is int
            and type(item[1]) is str
            and type(item[2]) is int
            and type(item[3]) is int
            and type(item[4]) is str
            and low <= item[0] < high
            and low <= item[2] < high
            and low <= item[3] < high
        ):
            return None
        append(make(Event, item))
    if not encodable("".join([f"{event[1]}{event[4]}" for event in events])):
        return None
    return events


def _checked_events(value: list[Any], source: str) -> list[Event]:
    """The events, each checked in turn; the first that is not an event is a ``FailureFileError`` naming it."""
    events = []
    shape = (int, str, int, int, str)
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != len(shape)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(item, shape))
        ):
            raise FailureFileError(f"{source}: trace event {short(item)} is not [t_us, kind, job, attempt, detail]")
        if not all(-LIMIT_64 <= number < LIMIT_64 for number in (item[0], item[2], item[3])):
            raise FailureFileError(f"{source}: trace event {short(item)} holds a number beyond 64 bits")
        _text(item[1], "trace kind", source)
        _text(item[4], "trace detail", source)
        events.append(Event(*item))
    return events


def save(record: FailureRecord, directory: str | os.PathLike[str]) -> Path:
    """Write ``record`` as ``directory/<id>.json`` atomically (write, then rename).

    Campaigns writing into the same directory at once lose nothing: each
    file appears whole, and the same failure always gets the same name.
    """
    text = json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n"
    return write_atomic(Path(directory) / f"{record.id}.json", text)


def load(path: str | os.PathLike[str]) -> FailureRecord:
    """Read and validate a failure file; any problem is one ``FailureFileError`` line."""
    source = str(path)
    text = read_bounded(path, MAX_BYTES, "failure file", FailureFileError)
    with collection_paused():  # a file may hold a million events: see ``collection_paused``
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # ValueError: bad JSON, or an integer too long to parse
            raise FailureFileError(f"failure file {source!r} is not valid JSON {json_problem(exc)}") from None
        del text
        try:
            record = FailureRecord.from_json(data, source=f"failure file {source!r}")
        except RecursionError:
            raise FailureFileError(f"failure file {source!r} nests its data too deeply to be a failure file") from None
        del data  # freed before collection resumes, whose first (young) collection then scans only the record
    return record
