"""A domain-aware final shrinking pass, after Hypothesis's own.

Hypothesis shrinks the choices that generated a schedule and can stop in a
local minimum (an operation it cannot delete without disturbing the draws
behind it). This pass works on the schedule itself: it deletes operations
one at a time (a cancel of a deleted job goes with it) and simplifies job
specs, keeping each change only while the same invariant still breaks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from .schedule import Cancel, JobSpec, Schedule, Submit

#: Replays the pass may spend on one schedule.
MAX_ATTEMPTS = 500


def shrink_schedule(schedule: Schedule, still_fails: Callable[[Schedule], bool]) -> Schedule:
    """Greedily remove and simplify operations while ``still_fails`` holds; return the result."""
    attempts = 0
    improved = True
    while improved and attempts < MAX_ATTEMPTS:
        improved = False
        for candidate in _candidates(schedule):
            attempts += 1
            if still_fails(candidate):
                schedule = candidate
                improved = True
                break
            if attempts >= MAX_ATTEMPTS:
                break
    return schedule


def _candidates(schedule: Schedule) -> Iterator[Schedule]:
    ops = schedule.ops
    for index, op in enumerate(ops):
        kept = ops[:index] + ops[index + 1 :]
        if isinstance(op, Submit):
            kept = tuple(o for o in kept if not (isinstance(o, Cancel) and o.job == op.job))
        yield replace(schedule, ops=kept)
    for index, op in enumerate(ops):
        if isinstance(op, Submit):
            for spec in _simpler_specs(op.spec):
                yield replace(schedule, ops=ops[:index] + (replace(op, spec=spec),) + ops[index + 1 :])
    if schedule.clock.step_ms or schedule.clock.tie_break != "fifo":
        yield replace(schedule, clock=replace(schedule.clock, step_ms=0, tie_break="fifo", seed=0))


def _simpler_specs(spec: JobSpec) -> Iterator[JobSpec]:
    if spec.canceller_raises:
        yield replace(spec, canceller_raises=False)
    if spec.after_ms:
        yield replace(spec, after_ms=0)
