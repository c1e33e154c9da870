"""Concurrency invariants: how many jobs run at once, and in which order they start."""

from __future__ import annotations

from collections.abc import Iterator

from ..target import Target
from .base import Invariant, Violation

#: Trace kinds that end a job attempt (ground truth recorded by the job).
ATTEMPT_ENDS = frozenset({"job.finish", "job.fail", "job.cancel"})


class Limit(Invariant):
    """At no point are more job attempts running than the declared limit."""

    name = "concurrency.limit"
    summary = "no more jobs running at once than the declared limit"

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
                    ms = event.t_us / 1000
                    others = ", ".join(f"job {job}" for job, _ in running if job != event.job)
                    yield self.violation(
                        run,
                        f"{len(running)} jobs running at {ms:g}ms but the limit is {limit}: "
                        f"job {event.job} started while {others} still ran",
                        list(running.values()),
                    )
                    return
            elif kind in ATTEMPT_ENDS:
                running.pop((event.job, event.attempt), None)
