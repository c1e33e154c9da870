"""Leak invariants: after ``stop()`` and draining, nothing of the subject is left scheduled."""

from __future__ import annotations

from collections.abc import Iterator

from harness.invariants.base import Invariant, Violation


class _Leftover(Invariant):
    kind = ""
    what = ""

    def check(self, run) -> Iterator[Violation]:
        for index, event in enumerate(run.trace):
            if event.kind == self.kind:
                yield self.violation(run, f"after stop() and draining, {self.what}: {event.detail}", [index])
                return


class Calls(_Leftover):
    name = "leaks.calls"
    summary = "after stop() and draining, no DelayedCall of the subject is pending"
    kind = "leak.call"
    what = "a DelayedCall is still pending"


class Loops(_Leftover):
    name = "leaks.loops"
    summary = "after stop() and draining, no LoopingCall is still running"
    kind = "leak.loop"
    what = "a LoopingCall is still running"
