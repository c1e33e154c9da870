"""The trace: the ordered, deterministic event log of one run.

Every event has the virtual (monotonic) time in microseconds, a kind, the job
id it concerns (-1 for none) and a short detail string. Nothing in an event
depends on memory addresses or wall-clock time, so the same schedule and
target give a byte-identical trace, summarised by ``Trace.digest()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

NO_JOB = -1


class Event(NamedTuple):
    """One thing that happened: when (virtual microseconds), what, to which job and attempt."""

    t_us: int
    kind: str
    job: int = NO_JOB
    attempt: int = 0
    detail: str = ""

    def line(self) -> str:
        return f"{self.t_us} {self.kind} {self.job}.{self.attempt} {self.detail}"


class Trace:
    """An append-only event log stamped by a virtual clock."""

    __slots__ = ("events", "_now_us", "_closed")

    def __init__(self, now_us: Callable[[], int]) -> None:
        self.events: list[Event] = []
        self._now_us = now_us
        self._closed = False

    def record(self, kind: str, job: int = NO_JOB, detail: str = "", attempt: int = 0) -> int:
        """Append an event at the current virtual time; return its index (-1 once closed)."""
        if self._closed:
            return -1
        self.events.append(Event(self._now_us(), kind, job, attempt, detail))
        return len(self.events) - 1

    def freeze(self) -> None:
        """Stamp every later event with the current time: the run is over and its clock is gone."""
        now = self._now_us()
        self._now_us = lambda: now

    def close(self) -> None:
        """Record nothing more: the run is over, and what its teardown does is no part of it."""
        self.freeze()
        self._closed = True

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> Event:
        return self.events[index]

    def lines(self) -> list[str]:
        return [event.line() for event in self.events]

    def digest(self) -> str:
        """SHA-256 of the canonical text of the trace: equal digests mean identical traces."""
        return digest_lines(self.lines())


def one_line(text: str) -> str:
    """``text`` with newlines and other unprintable characters escaped as ``repr`` would: safe to print on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def format_ms(t_us: int) -> str:
    """Virtual microseconds as milliseconds, without a fraction when there is none."""
    if t_us % 1000 == 0:
        return f"{t_us // 1000}ms"
    return f"{t_us / 1000:.3f}ms"


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
