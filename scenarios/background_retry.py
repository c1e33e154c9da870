"""A fail-fast client that answers at once and goes on retrying in the background: ``retries_after_answer``.

The subject answers each caller with its job's first outcome, result or
error, without waiting for retries (callers have their own fallbacks); when
that first attempt failed, it retries the job in the background, up to
``RETRIES`` times with exponential backoff, so that the value is warm in
its cache (``subject.warm``) for whoever looks next. Those retries start
after the caller had its answer, which ``time.retries`` flags by default (a
job run again after its caller's answer runs for nobody); the target
declares ``retries_after_answer=True`` to say they are on purpose. Every
other promise holds: at most ``RETRIES`` retries, each only after the
previous attempt failed, within the declared backoff, never after one
succeeded; a cancel before the answer cancels the attempt and no retry
follows; ``stop()`` cancels the background retries.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from harness import Target

from . import Scenario
from .retry import RETRIES, exponential

log = Logger()


class BackgroundRetry:
    """Answers with the first attempt; retries a failed job in the background to warm ``warm``."""

    def __init__(self, clock: IReactorTime, retries: int = RETRIES) -> None:
        self.clock = clock
        self.retries = retries
        self.warm: dict[int, Any] = {}
        self._background: dict[defer.Deferred[Any], None] = {}
        self._stopped = False

    def submit(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        first = defer.maybeDeferred(job)

        def cancel(_: defer.Deferred[Any]) -> None:
            try:
                first.cancel()
            except Exception:  # the job's own canceller raised: the caller still fails with CancelledError
                log.failure("cancelling the first attempt failed")

        answer: defer.Deferred[Any] = defer.Deferred(cancel)

        def answered(result: Any) -> None:
            self._keep(job, result)
            answer.callback(result)

        def failed(failure: Any) -> None:
            cancelled = failure.check(defer.CancelledError) is not None
            answer.errback(failure)
            if not cancelled and not self._stopped:
                self._refresh(job)

        first.addCallbacks(answered, failed)
        return answer

    def _keep(self, job: Callable[[], Any], value: Any) -> None:
        self.warm[getattr(job, "id", id(job))] = value

    def _refresh(self, job: Callable[[], Any]) -> None:
        """The background retries: nobody waits for them, ``stop()`` cancels them."""
        loop = self._retry(job)
        self._background[loop] = None
        loop.addErrback(lambda _: None).addBoth(lambda _: self._background.pop(loop, None))

    @defer.inlineCallbacks
    def _retry(self, job: Callable[[], Any]) -> Any:
        for retry in range(1, self.retries + 1):
            yield task.deferLater(self.clock, exponential(retry)[0] / 1000, lambda: None)
            try:
                value = yield self._again(job)
            except defer.CancelledError:
                return
            except Exception:
                continue
            self._keep(job, value)
            if self._warm(job):
                return

    def _warm(self, job: Callable[[], Any]) -> bool:
        """Whether the value just kept ends the background retries: a success is final."""
        return True

    def _again(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(job)

    def stop(self) -> None:
        self._stopped = True
        for loop in list(self._background):
            loop.cancel()


class BackgroundRefresh(BackgroundRetry):
    """A warmer that also refreshes a value it just got.

    BUG: after a background retry succeeds, the job is run once more "to be
    sure the value is fresh": a success is final, and that run does the
    work twice. ``retries_after_answer`` excuses running after the caller's
    answer, not after a success. Caught by: ``time.retries``.
    """

    def __init__(self, clock: IReactorTime, retries: int = RETRIES) -> None:
        super().__init__(clock, retries)
        self._refreshed: set[Any] = set()

    def _warm(self, job: Callable[[], Any]) -> bool:
        key = getattr(job, "id", id(job))
        if key in self._refreshed:
            return True
        self._refreshed.add(key)
        return False  # should be True: the first success ends the retries


def _warmer(cls: type, **promises: Any) -> Target:
    return Target(
        build=cls,
        retries=RETRIES,
        backoff_ms=exponential,
        description=f"fail-fast client retrying in the background ({cls.__name__})",
        **promises,
    )


background_retry = _warmer(BackgroundRetry, retries_after_answer=True)
background_refresh = _warmer(BackgroundRefresh, retries_after_answer=True)
#: The correct warmer without the opt-out: its background retries break "the caller's answer is final".
background_retry_undeclared = _warmer(BackgroundRetry)

SCENARIOS = (
    Scenario(
        "scenarios.background_retry:background_retry",
        "pass",
        "answers with the first attempt, retries a failure in the background (retries_after_answer=True)",
        "task.deferLater",
    ),
    Scenario(
        "scenarios.background_retry:background_refresh",
        "time.retries",
        "background retries that run the job once more after it succeeded (retries_after_answer excuses only the answer)",
        "task.deferLater",
    ),
)
