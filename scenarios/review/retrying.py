"""A retrying client for Twisted code.

``RetryingClient(clock, send, rng, ...).call(*args)`` returns a Deferred for the first
successful ``send(*args)`` (value or Deferred).  After a failure it waits an exponential backoff
with full jitter -- ``rng.uniform(0, min(max_delay, base_delay * 2 ** (n - 1)))`` after the n-th
failure, ``rng`` a seeded ``random.Random`` -- and tries again, at most ``max_attempts`` sends in
all (then it fails with GaveUp carrying the last error).  An overall ``deadline`` (seconds from
the call) bounds everything: at the deadline the attempt in flight is cancelled, no retry
starts, and the call fails with DeadlineExceeded; a retry whose backoff would end past the
deadline is not scheduled at all.  Cancelling the returned Deferred aborts the pending retry (or
the send in flight): no send starts after cancellation.

Promises:
  * at most ``max_attempts`` sends per call; none after the call's Deferred has fired;
  * the call's Deferred fires exactly once, no later than ``deadline`` after the call;
  * no timer is left pending after the Deferred fired; no error is left unhandled.

Written blind (as an outside user) for the review in docs/reviews/outside-user.md.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Optional

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class GaveUp(Exception):
    """Every allowed attempt failed; ``last`` is the last attempt's Failure."""

    def __init__(self, attempts: int, last: Failure) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last.getErrorMessage()}")
        self.attempts = attempts
        self.last = last


class DeadlineExceeded(Exception):
    """The overall deadline passed (or the next retry would pass it) before an attempt
    succeeded; ``last`` is the last attempt's Failure when an attempt had failed."""

    def __init__(self, message: str, last: Optional[Failure] = None) -> None:
        super().__init__(message)
        self.last = last


class _Call:
    """One call's retry loop."""

    def __init__(self, client: "RetryingClient", args: tuple) -> None:
        self.client = client
        self.clock = client.clock
        self.args = args
        self.attempts = 0
        self.done = False
        self.started = self.clock.seconds()
        self.inflight: Optional[Deferred[Any]] = None
        self.retry_timer: Optional[IDelayedCall] = None
        self.result: Deferred[Any] = Deferred(self._cancel)
        self.deadline_timer = self.clock.callLater(client.deadline, self._on_deadline)

    # -- the loop -----------------------------------------------------------------------------

    def attempt(self) -> None:
        self.retry_timer = None
        self.attempts += 1
        self.client.sends += 1
        d = maybeDeferred(self.client.send, *self.args)
        self.inflight = d
        d.addCallbacks(self._succeeded, self._failed, errbackArgs=(d,), callbackArgs=(d,))

    def _succeeded(self, value: Any, d: "Deferred[Any]") -> None:
        if self.inflight is d:
            self.inflight = None
        if self.done:
            return
        self._finish(value)

    def _failed(self, f: Failure, d: "Deferred[Any]") -> None:
        if self.inflight is d:
            self.inflight = None
        if self.done:
            return  # we cancelled it ourselves (deadline or caller): already reported
        if self._out_of_attempts():
            self._finish(Failure(GaveUp(self.attempts, f)))
            return
        delay = self.backoff()
        if self.clock.seconds() + delay > self.started + self.client.deadline:
            self._finish(Failure(DeadlineExceeded("the next retry would pass the deadline", last=f)))
            return
        self.retry_timer = self.clock.callLater(delay, self.attempt)

    def _out_of_attempts(self) -> bool:
        return self.attempts >= self.client.max_attempts

    def backoff(self) -> float:
        c = self.client
        cap = min(c.max_delay, c.base_delay * 2 ** (self.attempts - 1))
        return c.rng.uniform(0, cap)

    # -- endings ------------------------------------------------------------------------------

    def _on_deadline(self) -> None:
        self.deadline_timer = None
        if self.done:
            return
        self._finish(Failure(DeadlineExceeded(f"deadline of {self.client.deadline}s passed")))

    def _cancel(self, _: "Deferred[Any]") -> None:
        # The caller cancelled: stop everything.  Deferred.cancel errbacks with CancelledError
        # after this returns, since we do not fire it ourselves.
        self.done = True
        self._stop_timers()

    def _stop_timers(self) -> None:
        if self.retry_timer is not None and self.retry_timer.active():
            self.retry_timer.cancel()
        self.retry_timer = None
        self._stop_deadline_and_send()

    def _stop_deadline_and_send(self) -> None:
        if self.deadline_timer is not None and self.deadline_timer.active():
            self.deadline_timer.cancel()
        self.deadline_timer = None
        inflight, self.inflight = self.inflight, None
        if inflight is not None and not inflight.called:
            inflight.cancel()

    def _finish(self, outcome: Any) -> None:
        self.done = True
        self._stop_timers()
        if isinstance(outcome, Failure):
            self.result.errback(outcome)
        else:
            self.result.callback(outcome)


class RetryingClient:
    """Correct retrying client."""

    call_class = _Call

    def __init__(
        self,
        clock: IReactorTime,
        send: Callable[..., Any],
        rng: random.Random,
        max_attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 4.0,
        deadline: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.clock = clock
        self.send = send
        self.rng = rng
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.deadline = deadline
        self.sends = 0

    def call(self, *args: Any) -> "Deferred[Any]":
        c = self.call_class(self, args)
        c.attempt()
        return c.result


class _OffByOneCall(_Call):
    def _out_of_attempts(self) -> bool:
        return self.attempts > self.client.max_attempts  # BUG: one attempt too many


class OffByOneClient(RetryingClient):
    """PLANTED BUG: the give-up test uses ``>`` instead of ``>=``: a call makes
    ``max_attempts + 1`` sends before giving up."""

    call_class = _OffByOneCall


class _ForgetfulCancelCall(_Call):
    def _cancel(self, _: "Deferred[Any]") -> None:
        # BUG: cancels the send in flight and the deadline, but forgets the retry timer, and
        # does not mark the call done.  Cancelling during a backoff wait lets the timer fire and
        # send again after cancellation; when that send finishes, the loop fires the already
        # cancelled Deferred a second time (AlreadyCalledError).
        self._stop_deadline_and_send()


class ForgetfulCancelClient(RetryingClient):
    """PLANTED BUG: cancelling during a backoff wait does not stop the pending retry."""

    call_class = _ForgetfulCancelCall


class _StaleErrorCall(_Call):
    def _failed(self, f: Failure, d: "Deferred[Any]") -> None:
        # BUG: the client keeps "the error to report" in one field shared by every call, set by
        # the first failure it ever sees and never reset: a later call gives up with GaveUp
        # carrying another call's error.
        if not self.done and self.client.report_failure is None:
            self.client.report_failure = f
        super()._failed(f, d)

    def _finish(self, outcome: Any) -> None:
        if isinstance(outcome, Failure) and outcome.check(GaveUp) and self.client.report_failure is not None:
            outcome = Failure(GaveUp(self.attempts, self.client.report_failure))
        super()._finish(outcome)


class StaleErrorClient(RetryingClient):
    """PLANTED BUG: ``GaveUp`` carries the first failure the client ever saw, of whichever call
    failed first, not the last failure of the call that gives up."""

    call_class = _StaleErrorCall
    report_failure: Optional[Failure] = None
