"""Verdicts: play a schedule and say what broke, hangs included.

A run that hangs or livelocks has no complete trace for the invariants to
judge; it is itself the failure. ``judge`` reports it as a violation of one
of two harness-level pseudo-invariants, so that campaigns, the regression
corpus and ``harness replay`` save, list and replay it like any other:

- ``harness.hang``: a step took longer than the wall-clock limit of a run;
- ``harness.livelock``: scheduled calls kept scheduling calls for the same
  instant.
"""

from __future__ import annotations

from harness.errors import FailureFileError, HarnessError, TargetError
from harness.store.failure_file import FailureRecord
from harness.store.judged import check_judged
from harness.invariants import Violation, check
from harness.run.checks import unknown_error
from harness.run.runner import Run, TargetHung, run_schedule
from harness.model.schedule import Schedule
from harness.model.target import Target
from harness.model.trace import first_divergence
from harness.guard.watchdog import DEFAULT_TIMEOUT_S

HANG = "harness.hang"
LIVELOCK = "harness.livelock"
#: The pseudo-invariants a run that did not finish breaks.
UNFINISHED = (HANG, LIVELOCK)
#: The pseudo-invariant of a schedule saved because it showed the target nondeterministic
#: (``harness.search.nondeterminism``): ``harness replay`` runs it twice.
NONDETERMINISTIC = "harness.nondeterministic"

#: What a nondeterministic target does wrong and how to fix it, for messages.
NONDETERMINISTIC_FIX = (
    "it reads time, randomness or global state the harness does not control, "
    "or iterates a set or dict of objects hashed by identity (memory addresses) "
    "(keep state in the subject, read time from the clock, seed any random.Random per subject, "
    "iterate in insertion order: a list, or a dict keyed by values)"
)


class NondeterministicTarget(HarnessError):
    """The same schedule gave two different traces: the target reads state the harness does not control.

    ``schedule`` is the schedule that showed it, ``run`` its first run and
    ``event`` the index of the first event where the second run parted from it
    (None when the traces agreed but the verdicts did not); a campaign saves
    them (``harness.search.nondeterminism``), then drops the run. ``path`` is
    where the schedule was saved, if it was.
    """

    def __init__(self, message: str, schedule: Schedule | None = None, run: Run | None = None, event: int | None = None) -> None:
        super().__init__(message)
        self.schedule, self.run, self.event = schedule, run, event
        self.path: str | None = None


def judge(
    target: Target, schedule: Schedule, timeout_s: float | None = DEFAULT_TIMEOUT_S, notes: bool = True
) -> tuple[Run, list[Violation]]:
    """Run ``schedule`` and return the run and its violations, in report order.

    ``notes=False``: the violations' messages without the causes ``check`` may add by replaying a
    failing run (``harness.invariants.shared_note``), for a caller that reads only which invariants broke.

    A run that hung or livelocked gives exactly one violation, of
    ``harness.hang`` or ``harness.livelock``, pointing at the last event of
    its (partial) trace. Target errors are raised, as by ``run_schedule``.
    """
    try:
        run = run_schedule(target, schedule, timeout_s)
    except TargetHung as hung:
        name = HANG if hung.kind == "hang" else LIVELOCK
        return hung.run, [Violation(name, hung.message, (hung.event,), (), hung.t_us)]
    return run, check(run, notes)


def replay(
    target: Target,
    record: FailureRecord,
    source: str,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    also: tuple[str, ...] = UNFINISHED,
) -> tuple[Run, list[Violation]]:
    """Judge a failure file's schedule; an error name or invariant the target does not know is the file's fault.

    A file whose invariant the target is not checked for would otherwise replay as
    fixed (the invariant "holds"), and a regression corpus would let the bug back in.
    ``also`` names the pseudo-invariants the caller judges itself (a hang, a livelock; the
    nondeterminism a double replay shows, ``harness.search.nondeterminism``).
    """
    check_judged(record, target, source, also=also)
    unknown = unknown_error(target, record.schedule)
    if unknown is not None:
        job, name = unknown
        raise FailureFileError(
            f"{source}: job {job} injects {name!r}, which is neither a built-in error nor one "
            f"that {record.target} declares; the harness never imports an exception by name"
        )
    try:
        return judge(target, record.schedule, timeout_s)
    except TargetError as exc:
        raise TargetError(f"replaying {source}: {exc}") from None


def check_deterministic(
    target: Target,
    schedule: Schedule,
    first: Run,
    timeout_s: float | None,
    target_spec: str,
    what: str = "the same schedule",
) -> None:
    """Run ``schedule`` again; raise ``NondeterministicTarget`` if its trace differs from ``first``'s.

    The one determinism check: campaigns (on a sample of examples and on
    every failure) and ``harness replay`` (when a file's trace changed) use
    it. ``what`` says what was run twice, for the message.
    """
    try:  # only the trace is compared: the invariants are not run again
        again = run_schedule(target, schedule, timeout_s)
    except TargetHung as hung:
        again = hung.run
    if again.trace.events == first.trace.events:  # equal events print as equal lines
        return
    lines, again_lines = first.trace.lines(), again.trace.lines()
    where = divergence(lines, again_lines)
    if where is not None:
        raise NondeterministicTarget(
            f"target {target_spec!r} is nondeterministic: {what} gave two different traces, "
            f"first differing at {where}; {NONDETERMINISTIC_FIX}",
            schedule,
            first,
            first_divergence(lines, again_lines),
        )


def divergence(first: list[str], second: list[str]) -> str | None:
    """Where two traces first differ, both lines quoted, for a one-line message; None if identical."""
    index = first_divergence(first, second)
    if index is None:
        return None
    left = repr(first[index]) if index < len(first) else "the end of the trace"
    right = repr(second[index]) if index < len(second) else "the end of the trace"
    return f"event {index}: {left} then {right}"
