"""User invariants: the target's own checks, reported like the built-in ones.

The runner calls each function in ``Target.invariants`` with the finished run
(while the subject is still alive) and records an ``AssertionError`` as a
``user.fail`` event; this turns those events into violations named
``user.<function name>``, marking the events an ``InvariantFailed`` named
(else the ``user.fail`` event itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.target import Target
from harness.model.trace import EventKind
from harness.model.user_fail import parse_fail
from harness.invariants.base import Invariant, Violation
from harness.run.facts import facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run


class UserInvariants(Invariant):
    """Every target invariant that failed: one violation each (each is an invariant of its own, ``user.<name>``)."""

    name = "user"
    summary = "the target's own invariants (functions of the run that raise AssertionError)"

    def applies(self, target: Target) -> bool:
        return bool(target.invariants)

    def check(self, run: Run) -> Violation | None:
        """The first target invariant that failed, or None."""
        found = self.violations(run)
        return found[0] if found else None

    def violations(self, run: Run) -> list[Violation]:
        """One violation per target invariant that failed, in the order they ran."""
        facts = facts_of(run)
        explained: dict[int, str] = getattr(run, "explained", None) or {}
        found = []
        for index in facts.of_kind(EventKind.USER_FAIL):
            event = facts.event(index)
            function, message, events = parse_fail(event.detail, index)  # the events an InvariantFailed named
            # A rewritten assert's message with pytest's explanation, which the trace leaves out (Run.explained).
            message = explained.get(index, message)
            found.append(Violation(f"user.{function}", message, events, (), event.t_us))
        return found
