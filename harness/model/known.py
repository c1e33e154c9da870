"""``known``: a value the code knows is set, where its type says it may be None."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def known(value: T | None) -> T:
    """``value``, which the caller knows is not None.

    Optional in general, set where it is read: an ended attempt's end index,
    a fired job's event, a promise that the invariant's ``applies`` required
    the target to declare. Says so to the type checker; a None here is a bug
    in the harness, and fails at once rather than as a ``TypeError`` further on.
    """
    if value is None:
        raise AssertionError("the harness read a value it relies on being set, and it is None")
    return value
