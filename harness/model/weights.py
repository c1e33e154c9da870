"""A job's weight against a target's ``capacity``: jobs that take different shares of the subject.

A readers-writer lock lets any number of readers share it and a writer hold it alone; a weighted semaphore lets
a big job take several units of its budget. ``Target(capacity=C, weight=w)`` says so: ``w(key, priority)`` is the
share a job submitted under ``key`` at ``priority`` takes while it holds a slot (1 to C; a lock's writer C, a
reader 1), and a waiter has room to run while the weight held by the other jobs plus its own fits in C. The
wait rules of ``timeout_from="wait"`` (``harness.invariants.wait_slots``) count weights instead of jobs. The
function is asked once per key and priority (it must depend on them alone), for every one the menu draws when
the target is made, so a bad answer is a ``TargetError`` then, not in the middle of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.errors import TargetError

#: A per-job weight: a function of a job's ``(key, priority)`` giving its share of ``capacity``.
Weight = Callable[[int, int], int]


def check_declaration(weight: object, capacity: int | None, kind: str, slot_timers: tuple[object, ...], read: bool) -> None:
    """Refuse a ``weight`` that is not a function of ``(key, priority)``, that nothing could be weighed against
    (no ``capacity``, a periodic target, ``slot_timers``, which hold one slot each, not a share), or that no rule
    would read (``read``: the target declares a wait timeout, or a backoff whose retries may wait for a slot)."""
    if weight is None:
        return
    if not callable(weight):
        raise TargetError(
            f"Target weight must be a function of a job's (key, priority) returning its share of capacity, got "
            f"{weight!r}: write weight=lambda key, priority: ..."
        )
    if capacity is None:
        raise TargetError(
            "Target weight is a job's share of capacity: declare capacity=N as well (the total weight that may "
            "hold the subject at once: a readers-writer lock's writer weighs N, each reader 1)"
        )
    if kind != "submit":
        raise TargetError("Target weight is a promise about submitted jobs; a periodic Target cannot declare it")
    if slot_timers:
        raise TargetError(
            "Target slot_timers hold one slot each, which a weighted capacity cannot count: drop weight, or slot_timers"
        )
    if not read:
        raise TargetError(
            "Target weight is read only by the rules of a wait for a slot: declare timeout_ms=T with "
            'timeout_from="wait" (or backoff_ms, whose retries may wait for a slot), or drop weight'
        )


def call_per_job(name: str, function: Callable[[int, int], Any], key: int, priority: int, returns: str) -> Any:
    """What a per-job promise ``function`` (the target's ``name``: ``weight``, ``cancellable``) says of the job at
    ``key`` and ``priority``; one that raises is a one-line ``TargetError`` naming them and what it must return."""
    try:
        return function(key, priority)
    except Exception as exc:
        raise TargetError(
            f"the target's {name}(key, priority) raised {type(exc).__name__}: {exc} for key {key}, priority {priority}; "
            f"it must return {returns} for every key and priority the menu draws"
        ) from None


def ask(weight: Callable[[int, int], Any], capacity: int, key: int, priority: int) -> int:
    """What ``weight`` says of the job at ``key`` and ``priority``, checked to be an integer from 1 to
    ``capacity`` (a job weighing more could never run, and a waiter behind it never be judged)."""
    where = f"for key {key}, priority {priority}"
    value = call_per_job("weight", weight, key, priority, "a job's share of capacity")
    if not isinstance(value, int) or isinstance(value, bool):
        raise TargetError(
            f"the target's weight(key, priority) returned {value!r} {where}; it must return an integer from 1 to "
            f"capacity ({capacity})"
        )
    if not 1 <= value <= capacity:
        raise TargetError(
            f"the target's weight(key, priority) returned {value} {where}, "
            + (f"above capacity ({capacity}): such a job could never run; raise capacity, or lower its weight"
               if value > capacity else f"below 1; it must return an integer from 1 to capacity ({capacity})")
        )
    return value
