"""Operation invariants: a target's named calls (``Target(operations=...)``) raise only what they declare."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.model.target import Target
from harness.model.trace import EventKind, format_ms
from harness.invariants.base import Invariant, Violation
from harness.invariants.errors import own_error
from harness.run.answers import read_answer
from harness.run.facts import facts_of

if TYPE_CHECKING:
    from harness.run.runner import Run

#: Trace kinds of an operation that raised, or whose Deferred failed, with an undeclared error.
UNDECLARED = (EventKind.CALL_RAISED, EventKind.CALL_FAILURE)


class Raised(Invariant):
    """An operation never raises (nor fails its Deferred) with an exception type it does not declare."""

    name = "errors.operation"
    summary = "a target operation (flush, trip, resize...) raises only the exception types it declares"

    def applies(self, target: Target) -> bool:
        return bool(target.operations)

    def check(self, run: Run) -> Violation | None:
        facts = facts_of(run)
        # An AlreadyCalledError is completion.once's (a Deferred fired twice): never a type to declare.
        undeclared = [i for i in facts.of_kind(*UNDECLARED) if own_error(facts.event(i).detail)]
        if not undeclared:
            return None
        index = undeclared[0]
        event = facts.event(index)
        operation, _, error = read_answer(event.detail)[0].partition(": ")
        how = "raised" if event.kind == EventKind.CALL_RAISED else "returned a Deferred that failed with"
        return self.violation(
            run,
            f"operation {operation} {how} {error} at {format_ms(event.t_us)}; declare the type in "
            f"Operation(raises=...) if the subject may refuse the call",
            [index],
        )
