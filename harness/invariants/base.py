"""The invariant interface: a named check, a pure function of a finished run's record.

An invariant's ``check(run)`` returns the first ``Violation`` it finds in
``run``, or None. It reads the run's record only: the trace, the schedule,
the target's declarations, and what the diagnosis step established
(``run.diagnosis``, for the invariants that set ``needs_diagnosis``). It
never runs the target, so checking the same run twice gives the same answer.

Invariants written before this shape, whose ``check`` yields violations (a
generator), keep working: ``Invariant.violations`` accepts both shapes, and
it is what ``harness.check`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from harness.model.target import Target
    from harness.run.diagnosis import Diagnosis
    from harness.run.runner import Run


@dataclass(frozen=True)
class Violation:
    """A broken promise: which invariant, a one-line explanation, and the trace events involved."""

    invariant: str
    message: str
    events: tuple[int, ...] = ()
    jobs: tuple[int, ...] = field(default=())
    t_us: int = 0


class Invariant:
    """A check over a finished run's record.

    Subclasses set ``name`` (``family.name``) and ``summary``, say in
    ``applies`` whether the target promised what they check, and return
    the first ``Violation`` (made with ``violation``) from ``check``, or None.
    One that reads ``run.diagnosis`` (why jobs were stranded) sets
    ``needs_diagnosis``, so that ``harness.check`` runs the diagnosis first.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: Whether ``check`` reads ``run.diagnosis`` (``harness.run.diagnosis``).
    needs_diagnosis: ClassVar[bool] = False

    def applies(self, target: Target) -> bool:
        return True

    def check(self, run: Run) -> Violation | None | Iterable[Violation]:
        """The first violation of this invariant in ``run``, or None.

        (The older shape, a generator yielding violations, is accepted by
        ``violations``; new invariants return.)
        """
        raise NotImplementedError

    def violation(self, run: Run, message: str, events: Iterable[int]) -> Violation:
        """A violation of this invariant pointing at ``events`` (trace indices)."""
        indices = tuple(sorted(set(events)))
        trace = run.trace
        jobs = tuple(sorted({trace[i].job for i in indices if trace[i].job >= 0}))
        t_us = trace[indices[-1]].t_us if indices else 0
        return Violation(self.name, message, indices, jobs, t_us)

    def violations(self, run: Run) -> list[Violation]:
        """What this invariant finds in ``run``, as a list: what ``harness.check`` collects.

        ``check``'s violation, or none; for an invariant written in the
        older shape, whose ``check`` returns an iterable (a generator that
        yields), every violation it yields, as before.
        """
        found = self.check(run)
        if found is None:
            return []
        if isinstance(found, Violation):
            return [found]
        return list(found)

    def diagnosis(self, run: Run) -> Diagnosis:
        """``run.diagnosis``, which an invariant with ``needs_diagnosis`` reads; a clear error if it is missing."""
        if run.diagnosis is None:
            raise RuntimeError(
                f"invariant {self.name} reads the run's diagnosis, but run.diagnosis is None: "
                "check runs with harness.check(run), or set run.diagnosis = harness.run.diagnosis.diagnose(run) first"
            )
        return run.diagnosis

