"""Concurrency invariants: how many jobs run at once, and in which order they start."""

from __future__ import annotations

from collections.abc import Iterator

from ..target import Target
from ..trace import format_ms
from .base import Invariant, Violation
from .facts import ATTEMPT_ENDS, Facts, JobFacts, facts_of


class Limit(Invariant):
    """At no point are more job attempts running than the declared limit."""

    name = "concurrency.limit"
    summary = "never more jobs running at once than the declared limit"

    def applies(self, target: Target) -> bool:
        return target.limit is not None

    def check(self, run) -> Iterator[Violation]:
        limit = run.target.limit
        running: dict[tuple[int, int], int] = {}
        for index, event in enumerate(run.trace):
            kind = event.kind
            if kind == "job.start":
                running[(event.job, event.attempt)] = index
                if len(running) > limit:
                    others = ", ".join(f"job {job}" for job, _ in running if job != event.job)
                    yield self.violation(
                        run,
                        f"{len(running)} jobs running at {format_ms(event.t_us)} but the limit is {limit}: "
                        f"job {event.job} started while {others} still ran",
                        list(running.values()),
                    )
                    return
            elif kind in ATTEMPT_ENDS:
                running.pop((event.job, event.attempt), None)


def _waiting(facts: Facts, job: JobFacts, index: int) -> bool:
    """Submitted before ``index``, not yet started, and not withdrawn (cancelled, rejected or fired)."""
    if job.submit is None or job.submit > index or job.submit_raised is not None:
        return False
    if job.first_start is not None and job.first_start < index:
        return False
    if any(c < index for c in job.cancels) or facts.fired_before(job, index):
        return False
    return True


class _StartOrder(Invariant):
    """Shared walk: at each job's first start, look for a waiting job that should have gone first."""

    order = ""

    def applies(self, target: Target) -> bool:
        return target.order == self.order and target.kind == "submit"

    def skipped(self, waiting: JobFacts, started: JobFacts) -> bool:
        raise NotImplementedError

    def describe(self, waiting: JobFacts, started: JobFacts, facts: Facts) -> str:
        raise NotImplementedError

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        starters = sorted((j for j in facts.jobs.values() if j.first_start is not None), key=lambda j: j.first_start)
        for started in starters:
            index = started.first_start
            for other in facts.jobs.values():
                if other.id != started.id and _waiting(facts, other, index) and self.skipped(other, started):
                    yield self.violation(run, self.describe(other, started, facts), [other.submit, index])
                    return


class Fifo(_StartOrder):
    """Declared FIFO: jobs start in the order they were submitted."""

    name = "concurrency.fifo"
    summary = "jobs start in submission order (declared order='fifo')"
    order = "fifo"

    def skipped(self, waiting: JobFacts, started: JobFacts) -> bool:
        return waiting.submit < started.submit

    def describe(self, waiting: JobFacts, started: JobFacts, facts: Facts) -> str:
        return (
            f"job {started.id} started at {format_ms(facts.time(started.first_start))} ahead of job {waiting.id}, "
            f"which was submitted earlier (at {format_ms(facts.time(waiting.submit))}) and was still waiting; "
            "FIFO order was declared"
        )


class Priority(_StartOrder):
    """Declared priority: whenever a job starts, no job already waiting has a higher priority,
    and jobs of equal priority start in submission order."""

    name = "concurrency.priority"
    summary = "no job starts while a higher-priority job waits; equal priorities start in submission order"
    order = "priority"

    def skipped(self, waiting: JobFacts, started: JobFacts) -> bool:
        if waiting.priority != started.priority:
            return waiting.priority > started.priority
        return waiting.submit < started.submit

    def describe(self, waiting: JobFacts, started: JobFacts, facts: Facts) -> str:
        at = format_ms(facts.time(started.first_start))
        since = format_ms(facts.time(waiting.submit))
        if waiting.priority == started.priority:
            return (
                f"job {started.id} (priority {started.priority}) started at {at} ahead of job {waiting.id}, "
                f"which has the same priority, was submitted earlier (at {since}) and was still waiting; "
                "equal priorities start in submission order"
            )
        return (
            f"job {started.id} (priority {started.priority}) started at {at} while job {waiting.id} "
            f"(priority {waiting.priority}, waiting since {since}) was still waiting; the higher priority goes first"
        )
