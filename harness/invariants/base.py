"""The invariant interface: a named check over a finished run that yields violations."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from harness.run.runner import Run
    from harness.model.target import Target


@dataclass(frozen=True)
class Violation:
    """A broken promise: which invariant, a one-line explanation, and the trace events involved."""

    invariant: str
    message: str
    events: tuple[int, ...] = ()
    jobs: tuple[int, ...] = field(default=())
    t_us: int = 0


class Invariant:
    """A check over a run's trace (and, at the end, its clock and subject).

    Subclasses set ``name`` (``family.name``) and ``summary``, say in
    ``applies`` whether the target promised what they check, and yield
    ``Violation`` objects from ``check``.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def applies(self, target: Target) -> bool:
        return True

    def check(self, run: Run) -> Iterable[Violation]:
        raise NotImplementedError

    def violation(self, run: Run, message: str, events: Iterable[int]) -> Violation:
        """A violation of this invariant pointing at ``events`` (trace indices)."""
        indices = tuple(sorted(set(events)))
        trace = run.trace
        jobs = tuple(sorted({trace[i].job for i in indices if trace[i].job >= 0}))
        t_us = trace[indices[-1]].t_us if indices else 0
        return Violation(self.name, message, indices, jobs, t_us)
