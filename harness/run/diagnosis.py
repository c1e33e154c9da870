"""Diagnosis: why a run's stranded jobs never finished, found by running the target again.

A job is *stranded* when it could have finished but its Deferred had not
fired when the run drained (``harness.run.facts.stranded_jobs``, a pure
function of the trace). The trace alone cannot say why: a slot a cancelled
job never released, a failure that poisoned the subject, or a deadlock look
alike. So this step replays counterfactual schedules against a fresh
subject: without the cancelled jobs (a job that then finishes was stranded
by a cancel; only a cancel that came before the job's Deferred fired counts:
a later one is a no-op and is never blamed), then with every failing behaviour turned into a success (one
that then finishes was stranded by a failure); what is left is a deadlock or
starvation. First of all, when a suspension declared by an operation
(``Operation(suspends=...)``) is still in force at the drain, it replays
without those suspending calls: a job that then finishes was held back on
purpose, and is excused (``harness.run.suspensions``); the other replays
are then made with them taken out. Taking a cancelled job out also takes out what it did before its
cancel: a job that also finishes once only the cancelled jobs' failing
behaviours succeed (their cancels kept) was stranded by that failure (a raise
that escaped before the cancel), not by the cancel. And a cancel that only detached its caller (a target
whose cancels leave the work running, and no ``job.cancel`` in the cancel's instant) is not blamed for a job
that stays stranded when only the cancels are taken out, the jobs kept: the work it detached from ended
otherwise (a timeout of the subject's own), and ``completion.deadline`` or ``errors.poison`` names the job.

This is the only place that runs the target to judge a run (the search
runs it to explore). It is an explicit step: ``diagnose(run)`` returns a ``Diagnosis``, and whoever checks
invariants (``harness.check``, hence the verdicts of campaigns, replays and
the pytest plugin) stores it on the run first (``run.diagnosis``), so that
every invariant is a pure function of the recorded run and the diagnosis.
Runs without stranded jobs, most of them, replay nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from harness.model.schedule import Cancel, Op, Schedule, Start, Submit
from harness.model.trace import EventKind
from harness.run.facts import CANCELLABLE_KINDS, facts_of, stranded_jobs
from harness.run.suspensions import lifted

if TYPE_CHECKING:
    from harness.run.runner import Run


class Cause(StrEnum):
    """Why a stranded job never finished, as the counterfactual replays tell."""

    #: It finishes once the cancelled jobs are taken out of the schedule: a cancelled job's slot was not released.
    CANCEL = "cancel"
    #: It finishes once failing jobs succeed instead: a failure poisoned the subject.
    FAILURE = "failure"
    #: It finishes once the suspending calls still in force at the drain are taken out: the subject was
    #: paused on purpose (``Operation(suspends=...)``, ``harness.run.suspensions``); excused.
    SUSPENDED = "suspended"
    #: Neither replay lets it finish: a deadlock or starvation.
    NONE = "none"


@dataclass(frozen=True)
class Stranded:
    """A job that could have finished but had not when the run drained, and why."""

    job: int
    cause: Cause
    #: With ``Cause.CANCEL``: the job stays stranded when the cancelled jobs' running work fails instead, at the
    #: instant of its cancel (``_failing_instead``): the cancel stranded it by ending that work in an error, the
    #: same path a failure takes (``errors.poison``'s bug, reached through a cancel). False otherwise.
    failure_too: bool = False


@dataclass(frozen=True)
class Diagnosis:
    """What the diagnosis step established about one run: its stranded jobs, in job order of the schedule."""

    stranded: tuple[Stranded, ...] = ()

    def first(self, cause: Cause) -> int | None:
        """The first stranded job with ``cause``, or None."""
        if not self.stranded:
            return None
        return next((s.job for s in self.stranded if s.cause == cause), None)


#: The diagnosis of a run without stranded jobs (most runs): one frozen instance, shared.
_NOTHING_STRANDED = Diagnosis()


def diagnose(run: Run) -> Diagnosis:
    """Find the stranded jobs of ``run`` and why each is stranded (replaying only if there are any).

    Raises what ``run_schedule`` raises (``TargetHung``, ``TargetError``) if
    a counterfactual replay does.
    """
    ids = stranded_jobs(facts_of(run), run.target)
    if not ids:
        return _NOTHING_STRANDED
    causes, failure_too = _causes(run, ids)
    return Diagnosis(tuple(Stranded(job, causes[job], job in failure_too) for job in ids))


def _causes(run: Run, ids: list[int]) -> tuple[dict[int, Cause], set[int]]:
    """For each stranded job, which counterfactual replay lets it finish; and the jobs a cancel stranded
    that a failure in its place strands too (``Stranded.failure_too``)."""
    schedule = run.schedule
    cancelled = _effectively_cancelled(run)
    remaining = set(ids)
    causes: dict[int, Cause] = {}
    failure_too: set[int] = set()
    unsuspended = lifted(run.target, schedule)  # the suspensions in force at the drain taken out
    counterfactuals = [(Cause.SUSPENDED, unsuspended)]
    schedule = unsuspended or schedule  # the other causes are judged with the subject not held back
    counterfactuals += [(Cause.CANCEL, _without_cancelled(schedule, cancelled)), (Cause.FAILURE, _healed(schedule))]
    for cause, counterfactual in counterfactuals:
        if counterfactual is None or not remaining:
            continue
        freed = remaining - _stranded_in(run, counterfactual)
        if cause is Cause.CANCEL and freed:
            freed -= _freed_by_healing_cancelled(run, schedule, freed, cancelled)
            freed -= _stranded_without_detaching_cancels(run, schedule, freed, cancelled)
            failure_too = _stranded_by_failing_instead(run, schedule, freed, cancelled)
        for job in sorted(freed):
            causes[job] = cause
        remaining -= freed
    for job in remaining:
        causes[job] = Cause.NONE
    return causes, failure_too


def _stranded_in(run: Run, schedule: Schedule) -> set[int]:
    """The jobs stranded when the run's target replays ``schedule`` (one counterfactual replay)."""
    from harness.run.runner import run_schedule  # the runner's Run holds a Diagnosis: imported when needed

    return set(stranded_jobs(facts_of(run_schedule(run.target, schedule)), run.target))


def _effectively_cancelled(run: Run) -> set[int]:
    """The jobs whose caller's Deferred was cancelled before it fired (the run's trace says so).

    A cancel of a Deferred that had already fired is a no-op, and one of a job
    not yet submitted (``cancel.skip``) cancels nothing: neither can strand
    another job, so neither job is taken out of the counterfactual schedule
    (taking it out would change an order-dependent subject for another reason).
    """
    return {
        job.id for job in facts_of(run).jobs.values()
        if job.cancels and (job.fired is None or job.cancels[0] < job.fired)
    }


def _freed_by_healing_cancelled(run: Run, schedule: Schedule, jobs: set[int], cancelled: set[int]) -> set[int]:
    """Which of ``jobs`` also finish when only the cancelled jobs' failing behaviours succeed in ``schedule``
    (the run's, its suspensions in force lifted; cancels kept)."""
    healed = _healed(schedule, cancelled)
    if healed is None:
        return set()
    return jobs - _stranded_in(run, healed)


def _only_detached(run: Run, cancelled: set[int]) -> bool:
    """Whether every cancel of ``cancelled`` only detached its caller: the target promises that a cancel
    leaves the work running (``cancellable="detach"``, ``"abandon"`` or ``"detach_queued"``: ``Target.detaches``)
    and no job's own Deferred was cancelled in the instant of one of those cancels (the trace has no
    ``job.cancel`` then). What ended the work later, if anything, was not the cancel."""
    if not run.target.detaches:
        return False
    facts = facts_of(run)
    cancels = [facts.jobs[job_id].cancels[0] for job_id in cancelled]
    for index in facts.of_kind(EventKind.JOB_CANCEL):
        if any(cancel < index and facts.time(cancel) == facts.time(index) for cancel in cancels):
            return False
    return True


def _stranded_without_detaching_cancels(run: Run, schedule: Schedule, jobs: set[int], cancelled: set[int]) -> set[int]:
    """Which of ``jobs`` (freed when the cancelled jobs are taken out) stay stranded when only their cancels
    are taken out, the jobs themselves kept, if every one of those cancels only detached (``_only_detached``):
    the cancel did not strand them (the work it detached from strands them, ended by the subject itself, a
    timeout of its own say), so another invariant names them (``completion.deadline``, ``sharing.joined``).
    Empty when a cancel reached running work (no replay then)."""
    if not jobs or not _only_detached(run, cancelled):
        return set()
    kept = replace(schedule, ops=tuple(op for op in schedule.ops if not (type(op) is Cancel and op.job in cancelled)))
    return jobs & _stranded_in(run, kept)


def _stranded_by_failing_instead(run: Run, schedule: Schedule, jobs: set[int], cancelled: set[int]) -> set[int]:
    """Which of ``jobs`` (stranded by a cancel) stay stranded when the cancels are replaced by failures
    (``_failing_instead``); none when no cancel hit running work (no replay then)."""
    failing = _failing_instead(run, schedule, cancelled) if jobs else None
    if failing is None:
        return set()
    return jobs & _stranded_in(run, failing)


def _failing_instead(run: Run, schedule: Schedule, cancelled: set[int]) -> Schedule | None:
    """``schedule`` (the run's, suspensions in force lifted) with each cancel that hit a job's first attempt
    running replaced by that attempt failing at the cancel's instant (the job's first spec made ``fail``
    after as long as it had run), and the other cancelled jobs taken out (``_without_cancelled``); None when
    no cancel hit running work of a job with one spec (nothing to compare)."""
    facts = facts_of(run)
    failing: dict[int, int] = {}  # job -> how long its first attempt ran before the cancel, in ms
    for job_id in cancelled:
        job = facts.jobs[job_id]
        first = job.attempts[0] if job.attempts else None
        cancel = job.cancels[0]
        if first is not None and first.running_at(cancel) and first.kind in CANCELLABLE_KINDS:
            failing[job_id] = (facts.time(cancel) - facts.time(first.start)) // 1000
    ops: list[Op] = []
    converted = 0
    for op in schedule.ops:
        owner = getattr(op, "job", None)
        if type(op) is Submit and op.job in failing and not op.then:
            ops.append(replace(op, spec=replace(op.spec, kind="fail", after_ms=failing[op.job])))
            converted += 1
        elif owner not in cancelled:
            ops.append(op)
    return replace(schedule, ops=tuple(ops)) if converted else None


def _without_cancelled(schedule: Schedule, cancelled: set[int]) -> Schedule | None:
    """The schedule without the ``cancelled`` jobs (and their cancels), or None if there are none."""
    if not cancelled:
        return None
    return replace(schedule, ops=tuple(op for op in schedule.ops if getattr(op, "job", None) not in cancelled))


def _healed(schedule: Schedule, jobs: set[int] | None = None) -> Schedule | None:
    """The schedule with every failing behaviour (of ``jobs``; None: all) turned into a success, or None if none fails."""
    healed = replace(
        schedule,
        ops=tuple(_succeeding(op) if jobs is None or getattr(op, "job", None) in jobs else op for op in schedule.ops),
    )
    return healed if healed != schedule else None


def _succeeding(op: Op) -> Op:
    """The operation with every failing behaviour of its job turned into a success."""
    if not isinstance(op, (Submit, Start)):
        return op
    specs = tuple(replace(spec, kind="succeed") if spec.fails else spec for spec in op.specs)
    return replace(op, spec=specs[0], then=specs[1:])
