"""Operation invariants: a target's named calls (``Target(operations=...)``) raise only what they declare."""

from __future__ import annotations

from collections.abc import Iterator

from harness.model.target import Target
from harness.model.trace import format_ms
from harness.invariants.base import Invariant, Violation

#: Trace kinds of an operation that raised, or whose Deferred failed, with an undeclared error.
UNDECLARED = frozenset({"call.raised", "call.failure"})


class Raised(Invariant):
    """An operation never raises (nor fails its Deferred) with an exception type it does not declare."""

    name = "errors.operation"
    summary = "a target operation (flush, trip, resize...) raises only the exception types it declares"

    def applies(self, target: Target) -> bool:
        return bool(target.operations)

    def check(self, run) -> Iterator[Violation]:
        for index, event in enumerate(run.trace):
            if event.kind in UNDECLARED:
                operation, _, error = event.detail.partition(": ")
                how = "raised" if event.kind == "call.raised" else "returned a Deferred that failed with"
                yield self.violation(
                    run,
                    f"operation {operation} {how} {error} at {format_ms(event.t_us)}; declare the type in "
                    f"Operation(raises=...) if the subject may refuse the call",
                    [index],
                )
                return
