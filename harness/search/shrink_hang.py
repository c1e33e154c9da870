"""Shrinking a schedule that hung the target, under a short per-run limit and a bounded total time.

A hang is only seen by the wall-clock limit of a run (``--example-timeout``,
10 s by default), so shrinking it as other failures are shrunk would cost
that limit for every candidate that still hangs. Instead each candidate runs
under a *short* limit: ``HANG_FACTOR`` times a typical run of this target
(at least ``HANG_SHORT_MIN_S``, at most the campaign's limit), and the whole
shrink gets ``hang_budget(limit)`` seconds. A candidate counts as the same
hang only if it hangs in the same place (``hang_kind``: a step of the same
operation kind, or the same phase of the run after the steps).

A run slower than the short limit but not hung (a loaded machine) could pass
for a hang, so the schedule shrinking ends with is confirmed under the full
limit; if it does not hang there, the campaign keeps the schedule as found
(cut after the step that hung) and says it is not shrunk. So a saved hang
always hangs under the limit the user set, shrunk or not.
"""

from __future__ import annotations

from harness.model.schedule import Schedule
from harness.run.runner import Run

#: A candidate's limit is this many times a typical run of the target.
HANG_FACTOR = 20
#: ... but never less than this (seconds): a loaded machine stretches runs of a few milliseconds.
HANG_SHORT_MIN_S = 0.1
#: The longest a hang is shrunk (seconds), beside five times the campaign's per-run limit (whichever is less).
HANG_BUDGET_S = 20.0


def short_limit(typical_s: float, limit_s: float) -> float:
    """The per-run limit of a shrink candidate: ``HANG_FACTOR`` typical runs, within [``HANG_SHORT_MIN_S``, limit]."""
    return min(limit_s, max(HANG_SHORT_MIN_S, HANG_FACTOR * typical_s))


def hang_budget(limit_s: float) -> float:
    """The seconds a hang may be shrunk for, the final run under the full limit aside."""
    return min(HANG_BUDGET_S, 5 * limit_s)


def hang_kind(schedule: Schedule, run: Run) -> tuple[str, str]:
    """Where a run hung, as a shrunk candidate must match it: the kind of operation of the step it hung in
    (``Submit``, ``Cancel``, ...), or the phase of the run when it hung after the steps (``drain``, ...)."""
    step = run.unfinished_step
    if step is not None and 0 <= step < len(schedule.ops):
        return (run.phase, type(schedule.ops[step]).__name__)  # in the step, or on the way to it ("advance")
    return (run.phase, "")


def cut_at_hang(schedule: Schedule, run: Run) -> Schedule:
    """``schedule`` without the steps after the one the run hung in (they never ran)."""
    step = run.unfinished_step
    if step is None:
        return schedule
    return Schedule(schedule.ops[: step + 1], schedule.clock)
