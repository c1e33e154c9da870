"""Failure files: the JSON record of a minimal failing schedule, saved so it replays exactly.

JSON only, never pickle: loading a file parses plain data and validates it;
nothing named in the file is imported except, later and only on request, the
target string the user replays.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import FailureFileError
from .files import write_atomic
from .schedule import Schedule, ScheduleError
from .trace import Event, digest_lines

FORMAT = "harness-failure"
FORMAT_VERSION = 1


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
            raise FailureFileError(f"{source} is not a harness failure file (format is {data.get('format')!r})")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
            raise FailureFileError(
                f"{source} has format version {version!r}; this harness reads versions 1 to {FORMAT_VERSION} "
                "(upgrade the harness to read newer files)"
            )
        fields: dict[str, Any] = {}
        for key in ("target", "invariant", "message", "trace_hash"):
            value = data.get(key)
            if not isinstance(value, str):
                raise FailureFileError(f"{source}: field {key!r} must be a string, got {value!r}")
            fields[key] = value
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise FailureFileError(f"{source}: field 'seed' must be an integer or null, got {seed!r}")
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


def _parse_trace(value: Any, source: str) -> tuple[Event, ...]:
    if not isinstance(value, list):
        raise FailureFileError(f"{source}: field 'trace' must be a list of events")
    events = []
    shape = (int, str, int, int, str)
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != len(shape)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(item, shape))
        ):
            raise FailureFileError(f"{source}: trace event {item!r} is not [t_us, kind, job, attempt, detail]")
        events.append(Event(*item))
    return tuple(events)


def save(record: FailureRecord, directory: str | os.PathLike[str]) -> Path:
    """Write ``record`` as ``directory/<id>.json`` atomically (write, then rename)."""
    text = json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n"
    return write_atomic(Path(directory) / f"{record.id}.json", text)


def load(path: str | os.PathLike[str]) -> FailureRecord:
    """Read and validate a failure file; any problem is one ``FailureFileError`` line."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FailureFileError(f"failure file {source!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FailureFileError(f"cannot read failure file {source!r}: {exc}") from None
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise FailureFileError(f"failure file {source!r} is not valid JSON ({exc}); it may be truncated") from None
    return FailureRecord.from_json(data, source=f"failure file {source!r}")
