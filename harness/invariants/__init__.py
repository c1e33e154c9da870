"""The registry of invariants and the one function that checks a run against them."""

from __future__ import annotations

from ..target import Target
from .base import Invariant, Violation
from .concurrency import Limit

#: Every built-in invariant, in report order.
INVARIANTS: tuple[Invariant, ...] = (Limit(),)


def invariants_for(target: Target) -> tuple[Invariant, ...]:
    """The built-in invariants whose promise the target declared."""
    return tuple(inv for inv in INVARIANTS if inv.applies(target))


def check(run) -> list[Violation]:
    """All violations in ``run``, in invariant order."""
    found: list[Violation] = []
    for invariant in invariants_for(run.target):
        found.extend(invariant.check(run))
    return found


__all__ = ["INVARIANTS", "Invariant", "Violation", "check", "invariants_for"]
