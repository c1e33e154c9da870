"""The registry of invariants and the one function that checks a run against them.

Registry order is report order: when one run breaks several invariants, the
more specific one comes first (a double fire before the errors it causes, a
leaked slot before the deadlock it causes).

This layer owns the invariants (one module per family, ``families`` for
their names) and judges a run from its record.

May import: ``harness.errors``, ``harness.model``, ``harness.guard``,
``harness.run``.
"""

from __future__ import annotations

from harness.model.target import Target
from harness.invariants import cancellation, completion, concurrency, delivery, errors, leaks, operations, time, user
from harness.invariants.base import Invariant, Violation

#: Every built-in invariant, in report order.
INVARIANTS: tuple[Invariant, ...] = (
    completion.Once(),
    concurrency.Limit(),
    concurrency.KeyLimit(),
    concurrency.Fifo(),
    concurrency.Priority(),
    cancellation.Fires(),
    cancellation.NoStart(),
    cancellation.Propagates(),
    cancellation.Detaches(),
    cancellation.Harmless(),
    delivery.Isolated(),
    delivery.Joined(),
    delivery.OwnResult(),
    cancellation.Releases(),
    time.Timeout(),
    time.Retries(),
    time.Backoff(),
    time.Early(),
    time.Overlap(),
    time.AfterStop(),
    time.LoopDied(),
    errors.Propagate(),
    errors.Escaped(),
    operations.Raised(),
    errors.Poison(),
    errors.Unhandled(),
    completion.Deadline(),
    leaks.Calls(),
    leaks.Loops(),
    user.UserInvariants(),
)


def invariants_for(target: Target) -> tuple[Invariant, ...]:
    """The invariants whose promise the target declared."""
    return tuple(inv for inv in INVARIANTS if inv.applies(target))


def check(run) -> list[Violation]:
    """All violations in ``run``, in registry order (at most one per invariant)."""
    found: list[Violation] = []
    for invariant in invariants_for(run.target):
        found.extend(invariant.check(run))
    return found


__all__ = ["INVARIANTS", "Invariant", "Violation", "check", "invariants_for"]
