"""The schedule behind a nondeterminism error, saved so that it can be run again and watched.

A campaign that finds its target nondeterministic (the same schedule gave
two different traces, or the same trace and two verdicts) stops with
``NondeterministicTarget``. The schedule that showed it is the user's only
way to watch the two runs part, so it is not lost with the error:
``keep_schedule`` writes it under the report directory, as
``nondeterministic/<id>.json``, in the failure-file format (JSON, versioned,
``harness.store.failure_file``) with the pseudo-invariant
``harness.nondeterministic``, the error's message, the first run's trace and
the event where the second run parted marked; and the error's one line then
ends with the replay command.

``harness replay`` of such a file runs the schedule twice (``run_twice``)
and prints both traces around the event where they part; ``harness show``
prints the saved one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, TargetError
from harness.invariants import Violation
from harness.model.target import Target
from harness.model.trace import first_divergence
from harness.run.runner import Run
from harness.search.verdict import NONDETERMINISTIC, UNFINISHED, NondeterministicTarget, divergence, judge, replay
from harness.store import failure_file
from harness.store.failure_file import FailureRecord

#: The folder of the report directory that nondeterministic schedules are saved in.
FOLDER = "nondeterministic"


def keep_schedule(error: NondeterministicTarget, target_spec: str, seed: int | None, report_dir: str | Path) -> None:
    """Save the schedule ``error`` carries under ``report_dir`` and end its message with the replay command.

    The run it carries is dropped afterwards (a run may hold whatever the
    target built; the error crosses processes in a parallel campaign). A file
    that cannot be written is said in the message instead; an error that
    carries no schedule, or was saved already, is left as it is.
    """
    schedule, run = error.schedule, error.run
    if schedule is None or run is None or error.path is not None:
        return
    error.run = None
    message = str(error)
    marked = (error.event,) if error.event is not None and error.event < len(run.trace) else ()
    record = FailureRecord(
        target=target_spec,
        schedule=schedule,
        invariant=NONDETERMINISTIC,
        message=message,
        trace_hash=run.trace.digest(),
        seed=seed,
        trace=tuple(run.trace),
        marked=marked,
    )
    try:
        path = failure_file.save(record, Path(report_dir) / FOLDER)
    except HarnessError as exc:
        error.args = (f"{message}; the schedule that showed it could not be saved: {exc}",)
        return
    error.path = str(path)
    error.args = (f"{message}; the schedule is saved: watch the two runs part with harness replay {shlex.quote(str(path))}",)


@dataclass(frozen=True)
class Twice:
    """A schedule judged twice: both runs, their violations, and where they part (if they do)."""

    first: Run
    second: Run
    first_violations: list[Violation]
    second_violations: list[Violation]

    @property
    def event(self) -> int | None:
        """The index of the first event where the two traces differ; None if they are identical."""
        return first_divergence(self.first.trace.lines(), self.second.trace.lines())

    def difference(self) -> str | None:
        """How the two runs differ, in one clause; None if they agree in trace and verdict."""
        where = divergence(self.first.trace.lines(), self.second.trace.lines())
        if where is not None:
            return f"the same schedule gave two different traces, first differing at {where}"
        broken = [_names(self.first_violations), _names(self.second_violations)]
        if broken[0] != broken[1]:
            return (
                f"the same schedule gave the same trace twice but the invariants judged it differently: "
                f"{broken[0] or 'nothing'} broke in the first run, {broken[1] or 'nothing'} in the second"
            )
        return None


def run_twice(target: Target, record: FailureRecord, source: str, timeout_s: float | None) -> Twice:
    """Judge the schedule of ``record`` twice in this process, as the campaign's determinism check did.

    The file is checked as for any replay (``harness.search.verdict.replay``): an error name the
    target does not declare is refused, a target error names the file.
    """
    first, first_violations = replay(target, record, source, timeout_s, also=(*UNFINISHED, NONDETERMINISTIC))
    try:
        second, second_violations = judge(target, record.schedule, timeout_s)
    except TargetError as exc:
        raise TargetError(f"replaying {source} again: {exc}") from None
    return Twice(first, second, first_violations, second_violations)


def _names(violations: list[Violation]) -> str:
    return ", ".join(sorted({violation.invariant for violation in violations}))
