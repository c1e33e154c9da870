"""Reproductions of the round-10 findings (docs/reviews/outside-user-10.md) that need a harness
change; tests/test_review_round10.py holds them as strict xfails."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Target

from . import saga
from .targets import COMP_BACKOFF_MS, STEP_TIMEOUT_MS, SagaGate

TIMEOUT_MS = 300
LATE_S = 2.0


class LateAnswerPool:
    """A plain pool with a per-job timeout whose answer reaches the caller 2 s late: the work is
    cancelled at 300 ms (``addTimeout``), the caller's Deferred fires only at 2,300 ms."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def submit(self, job: Any) -> "defer.Deferred[object]":
        work = defer.maybeDeferred(job)
        work.addTimeout(TIMEOUT_MS / 1000, self.clock)
        answer: defer.Deferred[object] = defer.Deferred()

        def later(outcome: object) -> None:
            if isinstance(outcome, Failure):
                self.clock.callLater(LATE_S, answer.errback, outcome)
            else:
                self.clock.callLater(LATE_S, answer.callback, outcome)

        work.addBoth(later)
        return answer


class RetryThenLatePool:
    """Three attempts, each cancelled at its 300 ms timeout; the caller's ``TimeoutError`` comes 2 s
    after the third, when no retry is left.

    The variations of the review-10 finding 1 probes (fix: lastretry14): ``late_s`` is how long after the
    last attempt's timeout the caller is answered (None: never), ``backoff_s`` the wait before each retry
    (0: in the call that ended the attempt before, through a timer otherwise), ``error`` what the caller
    gets instead of the last attempt's ``TimeoutError``.
    """

    def __init__(self, clock: Any, late_s: float | None = LATE_S, backoff_s: float = 0.0,
                 error: Exception | None = None) -> None:
        self.clock = clock
        self.late_s, self.backoff_s, self.error = late_s, backoff_s, error

    def submit(self, job: Any) -> "defer.Deferred[object]":
        answer: defer.Deferred[object] = defer.Deferred()

        def attempt(n: int) -> None:
            work = defer.maybeDeferred(job)
            work.addTimeout(TIMEOUT_MS / 1000, self.clock)

            def done(outcome: object) -> None:
                if not isinstance(outcome, Failure):
                    answer.callback(outcome)
                elif n < 2:
                    if self.backoff_s:
                        self.clock.callLater(self.backoff_s, attempt, n + 1)
                    else:
                        attempt(n + 1)
                elif self.late_s is not None:
                    given = outcome if self.error is None else Failure(self.error)
                    if self.late_s:
                        self.clock.callLater(self.late_s, answer.errback, given)
                    else:
                        answer.errback(given)

            work.addBoth(done)

        attempt(0)
        return answer


# Finding 1: the same late answer, caught without `retries`, passes with `retries=0` (a plain
# pool, as the docs advise to declare).
late_answer = Target(build=LateAnswerPool, timeout_ms=TIMEOUT_MS, cancellable=False,
                     description="a timeout answered 2 s late (no retries declared)")
late_answer_retries0 = Target(build=LateAnswerPool, timeout_ms=TIMEOUT_MS, cancellable=False, retries=0,
                              description="a timeout answered 2 s late, retries=0 declared")
# ... and after the last of `retries + 1` attempts, with no retry left.
retry_then_late = Target(build=RetryThenLatePool, timeout_ms=TIMEOUT_MS, cancellable=False, retries=2,
                         backoff_ms=(0, 0), description="the third attempt timed out, the caller answered 2 s late")
# Its variations (fixed by lastretry14): with the same declaration, answered in the instant of the last
# timeout (correct), 1 ms after it, never, or at once with an error no attempt raised; retried after 50 ms
# (a timer, no backoff declared) and answered as long after the last timeout (correct) or 2 s after it.
_RETRIES = dict(timeout_ms=TIMEOUT_MS, cancellable=False, retries=2)
retry_then_prompt = Target(build=lambda clock: RetryThenLatePool(clock, late_s=0), backoff_ms=(0, 0), **_RETRIES,
                           description="the third attempt timed out, the caller failed then (correct)")
retry_then_1ms_late = Target(build=lambda clock: RetryThenLatePool(clock, late_s=0.001), backoff_ms=(0, 0), **_RETRIES,
                             description="the third attempt timed out, the caller answered 1 ms late")
retry_then_never = Target(build=lambda clock: RetryThenLatePool(clock, late_s=None), backoff_ms=(0, 0), **_RETRIES,
                          description="the third attempt timed out, the caller never answered")
retry_then_other_error = Target(build=lambda clock: RetryThenLatePool(clock, late_s=0, error=ValueError("gave up")),
                                backoff_ms=(0, 0), **_RETRIES,
                                description="the third attempt timed out, the caller got an error no attempt raised")
waited_retry_then_prompt = Target(build=lambda clock: RetryThenLatePool(clock, late_s=0.05, backoff_s=0.05), **_RETRIES,
                                  description="retries after 50 ms, gives up 50 ms after the third timeout (correct)")
waited_retry_then_late = Target(build=lambda clock: RetryThenLatePool(clock, late_s=LATE_S, backoff_s=0.05), **_RETRIES,
                                description="retries after 50 ms, the caller answered 2 s after the third timeout")

# Finding 2: the correct saga declared without `retries=0`: its timeout's answer comes after the
# compensation of the steps before (50 ms of backoff), and `time.timeout` wants it at T unless the
# cleanup is declared (`timeout_cleanup_ms`, fix10a).
saga_timeout_after_compensation = Target(
    build=lambda clock: SagaGate(clock),
    timeout_ms=STEP_TIMEOUT_MS,
    timeout_error=saga.StepTimedOut,
    wraps={saga.SagaFailed: lambda e: e.cause},
    timeout_cleanup_ms=COMP_BACKOFF_MS,
    description="the correct saga, its timeout answered after compensating",
)
