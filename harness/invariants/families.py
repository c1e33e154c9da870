"""Invariant families: the part of an invariant's name before the dot.

Reports group by family (``concurrency.limit`` is in ``concurrency``): a CI
system shows one test case per family, so its name stays stable as
invariants are added to a family.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The order reports list families in; any other family (a user's own) follows, by name.
ORDER: tuple[str, ...] = ("concurrency", "cancellation", "errors", "time", "completion", "leaks", "user")


def family_of(invariant: str) -> str:
    """The family of an invariant name: ``"concurrency.limit"`` -> ``"concurrency"``."""
    return invariant.split(".", 1)[0]


def ordered(families: Iterable[str]) -> list[str]:
    """Distinct families in report order."""
    rank = {name: index for index, name in enumerate(ORDER)}
    return sorted(set(families), key=lambda name: (rank.get(name, len(ORDER)), name))
