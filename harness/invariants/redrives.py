"""``Operation(redrives=True)``: a job started afresh once its caller had its answer (a DLQ's ``redrive()``).

A dead-letter queue fails a job's caller once its attempts are spent, keeps the job, and runs it again,
with a fresh attempt count and a new Deferred, when ``redrive()`` is called. ``time.retries`` would take
the redriven attempts for retries past the count, after the caller's answer (review 11, finding 6). So a
job's attempts are split into runs: a new run begins at the first attempt after a call of a ``redrives``
operation when, at that call, the job's caller had a failure for its answer (not after a cancel of its
own: a cancelled job is withdrawn, not dead-lettered) and its last attempt had failed, none running. The
answer to a redriven run (its new Deferred, the operation's return) is not watched, so a later run begins
at such a call only once the run before it made all its ``retries + 1`` attempts, each failed (a second
call while a redriven job is still being retried starts nothing: a retry after it is the run's). Each run
has a count of its own; its first attempt is no retry. A job that succeeded, or one still being
retried when the call came, is never started afresh: running it again stays ``time.retries``'s to judge.
The redriven run's new Deferreds are the operation's return, the glue's to handle: the harness judges
the run's attempts, not their answer.
"""

from __future__ import annotations

from harness.model.target import Target
from harness.model.trace import EventKind
from harness.run.calls import called_name
from harness.run.facts import Attempt, Facts, JobFacts


def runs(target: Target, facts: Facts, job: JobFacts) -> list[tuple[Attempt, ...]]:
    """``job``'s attempts, split into the runs ``redrives`` calls started afresh (one run without them)."""
    attempts, fired = job.attempts, job.fired
    names = target.redriving_operations
    if not names or len(attempts) < 2 or fired is None or facts.events[fired][1] != EventKind.FAILURE:
        return [attempts]
    if any(c < fired for c in job.cancels):
        return [attempts]
    calls = [i for i in facts.of_kind(EventKind.CALL) if i > fired and called_name(facts, i) in names]
    retries = target.retries
    out: list[tuple[Attempt, ...]] = []
    begin = 0
    for n in range(1, len(attempts)):
        previous, attempt = attempts[n - 1], attempts[n]
        # A run after the first ended in an answer the harness does not see (the redriven job's new
        # Deferred): it is over only once it made all its attempts, each failed.
        over = not out or (isinstance(retries, int) and n - begin == retries + 1
                           and all(a.end_kind == EventKind.JOB_FAIL for a in attempts[begin:n]))
        if (
            over
            and previous.end is not None
            and previous.end_kind == EventKind.JOB_FAIL
            and all(a.end is not None and a.end < attempt.start for a in attempts[begin:n])
            and any(max(previous.end, fired) < c < attempt.start for c in calls)
        ):
            out.append(attempts[begin:n])
            begin = n
    out.append(attempts[begin:])
    return out
