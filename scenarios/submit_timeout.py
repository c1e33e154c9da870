"""Timeouts measured from submission (``timeout_from="submit"``) and an answer deadline (``deadline_ms``).

The promise: every caller has an answer within ``TIMEOUT_MS`` of submitting
its job, whether the job waited for a slot or ran: at ``TIMEOUT_MS`` a
waiting job is withdrawn and a running one cancelled, and the caller fails
with ``twisted.internet.defer.TimeoutError``. The correct pool keeps it with
one ``addTimeout`` on the Deferred the caller gets; the buggy ones time from
the wrong moment, or with the wrong unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from harness import Target

from . import Scenario
from .timeout import TimeoutPool

LIMIT = 2
TIMEOUT_MS = 300


class SubmitTimeoutPool:
    """``DeferredSemaphore.run(job).addTimeout(T)``: the timeout covers the wait and the run.

    When it fires it cancels the semaphore's Deferred: a waiting job leaves
    the queue, a running one is cancelled, and the caller gets ``TimeoutError``.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT, timeout_ms: float = TIMEOUT_MS) -> None:
        self.clock = clock
        self.timeout = timeout_ms / 1000
        self._sem = defer.DeferredSemaphore(limit)

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return self._sem.run(job).addTimeout(self.timeout, self.clock)


class SlippedSubmitTimeout(SubmitTimeoutPool):
    """The same pool with the timeout converted from milliseconds once too often.

    BUG: ``TIMEOUT_MS / 10_000`` where ``/ 1000`` was meant: callers get
    ``TimeoutError`` 30 ms after they submitted, a tenth of the promised
    300 ms, whether their job waited or ran. Caught by: ``time.timeout``.
    """

    def __init__(self, clock: IReactorTime, limit: int = LIMIT) -> None:
        super().__init__(clock, limit, timeout_ms=TIMEOUT_MS / 10)  # BUG: / 10_000 instead of / 1000


class StartTimedDeadline(TimeoutPool):
    """``scenarios.timeout:timeout_pool`` (``addTimeout`` once the job starts) promising an answer within 300 ms of submission.

    BUG: the timeout is armed when the job starts, so a job that waited for
    a slot answers up to its wait later than the 300 ms its caller was
    promised. Caught by: ``completion.deadline``.
    """


submit_timeout_pool = Target(
    build=SubmitTimeoutPool,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    timeout_from="submit",
    deadline_ms=TIMEOUT_MS,
    description="DeferredSemaphore(2).run(job).addTimeout(300ms): an answer within 300ms of submission",
)

slipped_submit_timeout = Target(
    build=SlippedSubmitTimeout,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    timeout_from="submit",
    deadline_ms=TIMEOUT_MS,
    description="submission timeout converted with / 10_000: callers time out after 30ms",
)

start_timed_deadline = Target(
    build=StartTimedDeadline,
    limit=LIMIT,
    timeout_ms=TIMEOUT_MS,
    deadline_ms=TIMEOUT_MS,
    description="addTimeout armed when the job starts, yet an answer promised within 300ms of submission",
)

SCENARIOS = (
    Scenario(
        "scenarios.submit_timeout:submit_timeout_pool",
        "pass",
        "every caller answered within 300ms of submitting: the timeout covers the wait for a slot and the run",
        "Deferred.addTimeout",
    ),
    Scenario(
        "scenarios.submit_timeout:slipped_submit_timeout",
        "time.timeout",
        "timeout converted from ms with / 10_000: callers fail with TimeoutError after 30ms, not 300ms",
        "Deferred.addTimeout",
    ),
    Scenario(
        "scenarios.submit_timeout:start_timed_deadline",
        "completion.deadline",
        "timeout armed at the job's start: a job that waited for a slot answers after its 300ms deadline",
        "Deferred.addTimeout",
    ),
)
