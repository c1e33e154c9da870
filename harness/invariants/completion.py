"""Completion invariants: every submitted Deferred fires exactly once, in time."""

from __future__ import annotations

from collections.abc import Iterator

from harness.model.target import Target
from harness.model.trace import format_ms
from harness.invariants.base import Invariant, Violation
from harness.run.facts import facts_of, stranded

_DOUBLE_FIRE_KINDS = frozenset({"reactor.error", "unhandled", "log.error", "submit.raised", "cancel.raised", "failure"})


class Once(Invariant):
    """No Deferred is fired twice (``AlreadyCalledError`` anywhere in the run)."""

    name = "completion.once"
    summary = "every Deferred fires exactly once (no AlreadyCalledError)"

    def check(self, run) -> Iterator[Violation]:
        for index, event in enumerate(run.trace):
            if event.kind in _DOUBLE_FIRE_KINDS and "AlreadyCalledError" in event.detail:
                where = f"job {event.job}" if event.job >= 0 else "the subject"
                yield self.violation(
                    run,
                    f"a Deferred was fired twice ({event.kind} at {format_ms(event.t_us)} in {where}: "
                    f"{event.detail}); typically a result arriving after a cancel already fired it",
                    [index],
                )
                return


class Deadline(Invariant):
    """Every job that can finish does: by the end of the run, or within the declared ``deadline_ms``."""

    name = "completion.deadline"
    summary = "every job that can finish does, within the declared deadline or by the end of the run"

    def applies(self, target: Target) -> bool:
        return target.kind == "submit"

    def check(self, run) -> Iterator[Violation]:
        facts = facts_of(run)
        for job, cause in stranded(run):
            if cause == "none":
                end = facts.time(facts.drained) if facts.drained is not None else 0
                yield self.violation(
                    run,
                    f"job {job.id}, submitted at {format_ms(facts.time(job.submit))}, could finish but its "
                    f"Deferred had not fired when the run drained at {format_ms(end)} (deadlock or starvation)",
                    [job.submit],
                )
                return
        deadline = run.target.deadline_ms
        if deadline is None:
            return
        for job in facts.jobs.values():
            if job.periodic or job.submit is None or job.fired is None or job.cancels:
                continue
            took = facts.time(job.fired) - facts.time(job.submit)
            if took > deadline * 1000 + facts.late_us:
                yield self.violation(
                    run,
                    f"job {job.id} took {format_ms(took)} from submit to result; the declared deadline is "
                    f"{deadline}ms",
                    [job.submit, job.fired],
                )
                return
