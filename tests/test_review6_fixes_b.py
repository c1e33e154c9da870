"""Fixes of the sixth outside-user review's findings 3 to 6 (docs/reviews/outside-user-6.md).

3. ``concurrency.key_limit`` / ``concurrency.limit``: a job that overlaps its own earlier attempt is
   named by attempt ("job 0 attempt 1 started at 50ms while its attempt 0 (started at 0ms) still
   ran"), never "job 0 started while  still ran", and the count says executions, not jobs.
4. The docs do not promise that ``callLater`` delays run on monotonic time on a real reactor.
5. JUnit, HTML and the CLI's closing lines do not say an invariant held over more examples than it
   judged.
6. pytest says ``saved:`` only for a failure file it wrote, never for a regression file it read.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import JobSpec, Schedule, Stop, Submit, Target, check, load_target, run_schedule


# -- finding 3 ---------------------------------------------------------------------------------


class HastyRetry:
    """Calls a job again 50 ms after its first call whether or not that call still runs: a retry
    (or an undeclared hedge) beside itself. One job at a time is the promise (limit=1)."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        first = defer.maybeDeferred(job)
        self.clock.callLater(0.05, lambda: defer.maybeDeferred(job).addErrback(lambda _: None))
        return first


def _messages(target: Target, *ops) -> dict[str, str]:
    return {v.invariant: v.message for v in check(run_schedule(target, Schedule(ops=tuple(ops))))}


def test_limit_names_the_attempt_a_job_overlaps() -> None:
    """The limit's list of the others was empty when the only other running attempt was the job's own."""
    target = Target(build=HastyRetry, limit=1, retries=1, description="calls a job again beside itself")
    message = _messages(target, Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=200)))["concurrency.limit"]
    assert message == (
        "2 executions running at 50ms but the limit is 1: job 0 attempt 1 started at 50ms while its attempt 0 "
        "(started at 0ms) still ran"
    )


def test_key_limit_names_the_attempt_a_job_overlaps() -> None:
    """The review's specimen: the flusher's retry calls a write of key 0 again while its first call runs."""
    ops = (Submit(at_ms=0, job=0, spec=JobSpec(kind="succeed", after_ms=210)),
           Submit(at_ms=0, job=1, spec=JobSpec(kind="fail", after_ms=0), key=1),
           Stop(at_ms=0))
    messages = _messages(load_target("scenarios.review.round6.targets:flush_gather_sink"), *ops)
    assert messages["concurrency.key_limit"] == (
        "2 executions of key 0 running at 50ms but the key limit is 1: job 0 attempt 1 started at 50ms while its "
        "attempt 0 (started at 0ms) still ran"
    )
    # Another job's two attempts are named once, with their numbers (it said "job 0, job 0").
    assert messages["concurrency.limit"] == (
        "3 executions running at 50ms but the limit is 2: job 1 started while job 0's attempts 0 and 1 still ran"
    )


def test_distinct_jobs_keep_the_old_message() -> None:
    """Jobs that each run once over the limit read as before (README and docs quote this form)."""
    from scenarios.pools import double_release_pool

    schedule = Schedule((Submit(0, 0, JobSpec("succeed", 20)), Submit(0, 1, JobSpec("fail", 10)),
                         Submit(0, 2, JobSpec("succeed", 10)), Submit(0, 3, JobSpec("succeed", 10))))
    [violation] = check(run_schedule(double_release_pool, schedule))
    assert violation.message == "3 jobs running at 10ms but the limit is 2: job 3 started while job 0, job 2 still ran"
