"""Leak invariants: after ``stop()`` and draining, nothing of the subject is left scheduled."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from harness.invariants.base import Invariant, Violation
from harness.model.trace import EventKind
from harness.run.facts import facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run


class _Leftover(Invariant):
    """Shared check: the first event of ``kind`` (recorded after stop and drain) is the leak."""

    kind: ClassVar[EventKind]
    what: ClassVar[str] = ""

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        leaks = facts.of_kind(self.kind)
        if not leaks:
            return None
        event = facts.events[leaks[0]]
        return self.violation(run, f"after stop() and draining, {self.what}: {event.detail}", leaks[:1])


class Calls(_Leftover):
    name = "leaks.calls"
    summary = "after stop() and draining, no DelayedCall of the subject is pending"
    kind = EventKind.LEAK_CALL
    what = "a DelayedCall is still pending"


class Loops(_Leftover):
    name = "leaks.loops"
    summary = "after stop() and draining, no LoopingCall is still running"
    kind = EventKind.LEAK_LOOP
    what = "a LoopingCall is still running"
