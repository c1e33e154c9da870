"""A deadline-budget RPC client: one overall deadline per call, retries with backoff only while the
budget remains, the in-flight attempt cancelled when the deadline expires.

Written blind (review round 6, phase 1) from general Twisted knowledge, before reading the harness.

Promises of :class:`BudgetClient` for one ``call(request)`` started at time ``t0``:

* the call's Deferred fires exactly once, at or before ``t0 + deadline``;
* it succeeds with the first attempt's result that succeeds;
* a retryable failure (:class:`Retryable`) is retried after ``backoff(n) = min(base * 2**n, cap)``
  only if ``now + backoff(n) < t0 + deadline``; otherwise the call fails at once with that error
  (it does not sit until the deadline);
* a non-retryable failure fails the call at once with that error;
* at ``t0 + deadline`` the in-flight attempt (or the backoff sleep) is cancelled and the call fails
  with :class:`DeadlineExceeded`; no attempt starts at or after the deadline;
* cancelling the call's Deferred cancels the in-flight attempt and stops retries: no attempt starts
  after the cancel;
* once the call's Deferred has fired the client leaves no timer behind for it.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import task
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class Retryable(Exception):
    """A transient failure worth retrying."""


class DeadlineExceeded(Exception):
    """The call's overall deadline passed."""


class _Call:
    """One call's state machine."""

    def __init__(self, client: "BudgetClient", request: Any) -> None:
        self.client = client
        self.request = request
        self.clock = client.clock
        self.started = self.clock.seconds()
        self.deadline_at = self.started + client.deadline
        self.tries = 0
        self.done = False
        self.inflight: Deferred[Any] | None = None  # the attempt or the backoff sleep
        self.result: Deferred[Any] = Deferred(self._cancelled_by_caller)
        self.timer: IDelayedCall | None = self.clock.callLater(client.deadline, self._deadline)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Deferred[Any]":
        self._attempt()
        return self.result

    def _finish(self) -> None:
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _attempt(self) -> None:
        self.tries += 1
        d = self.client.transport(self.request)
        self.inflight = d
        d.addCallbacks(self._succeeded, self._failed)

    def _succeeded(self, value: Any) -> None:
        if self.done:
            return
        self.inflight = None
        self._finish()
        self.result.callback(value)

    def _failed(self, f: Failure) -> None:
        if self.done:
            return  # our own cancel (deadline or caller): already reported
        self.inflight = None
        if not f.check(Retryable):
            self._finish()
            self.result.errback(f)
            return
        delay = self.client.backoff(self.tries - 1)
        if self.clock.seconds() + delay >= self.deadline_at:
            self._finish()
            self.result.errback(f)
            return
        sleep = task.deferLater(self.clock, delay, lambda: None)
        self.inflight = sleep
        sleep.addCallbacks(self._woke, self._sleep_cancelled)

    def _woke(self, _: Any) -> None:
        if self.done:
            return
        self.inflight = None
        self._attempt()

    def _sleep_cancelled(self, f: Failure) -> None:
        f.trap(CancelledError)

    def _deadline(self) -> None:
        self.timer = None
        self.done = True
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            inflight.cancel()
        self.result.errback(DeadlineExceeded(f"deadline {self.client.deadline} passed"))

    def _cancelled_by_caller(self, _: "Deferred[Any]") -> None:
        self._finish()
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            inflight.cancel()


class BudgetClient:
    """The correct client. ``transport(request)`` returns a Deferred for one attempt."""

    call_class: type[_Call] = _Call

    def __init__(
        self,
        clock: IReactorTime,
        transport: Callable[[Any], "Deferred[Any]"],
        deadline: float,
        base: float = 1.0,
        cap: float = 8.0,
    ) -> None:
        self.clock = clock
        self.transport = transport
        self.deadline = deadline
        self.base = base
        self.cap = cap

    def backoff(self, n: int) -> float:
        return float(min(self.base * 2**n, self.cap))

    def call(self, request: Any) -> "Deferred[Any]":
        return self.call_class(self, request).start()


# -- twins -------------------------------------------------------------------------------------
class _LateDoneCall(_Call):
    def _deadline(self) -> None:
        self.timer = None
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            inflight.cancel()  # BUG: its errback runs now, before `done` is set below
        self.done = True
        self.result.errback(DeadlineExceeded(f"deadline {self.client.deadline} passed"))


class LateDoneClient(BudgetClient):
    """Twin A: at the deadline the attempt is cancelled before the call is marked done, so the
    attempt's CancelledError runs the ordinary failure path first (the caller gets a
    CancelledError, or a retry is considered), then the deadline errbacks an already-fired
    Deferred (AlreadyCalledError inside the timer)."""

    call_class = _LateDoneCall


class _LeakyCall(_Call):
    def _succeeded(self, value: Any) -> None:
        if self.done:
            return
        self.inflight = None
        self.done = True  # BUG: the deadline timer is left armed
        self.result.callback(value)

    def _deadline(self) -> None:
        self.timer = None
        if self.result.called:
            return
        super()._deadline()


class LeakyTimerClient(BudgetClient):
    """Twin B: a successful call does not cancel its deadline timer; the timer later fires and does
    nothing, but until then every successful call leaves a pending delayed call behind."""

    call_class = _LeakyCall


class _DeafCall(_Call):
    def _cancelled_by_caller(self, _: "Deferred[Any]") -> None:
        # BUG: only the deadline timer is stopped; the attempt or sleep carries on, and `done`
        # is not set, so the retry loop continues after the caller cancelled.
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def _succeeded(self, value: Any) -> None:
        if self.result.called:
            return
        super()._succeeded(value)

    def _failed(self, f: Failure) -> None:
        if self.result.called and not f.check(Retryable):
            return
        if self.result.called:
            # carries on retrying for nobody
            self.inflight = None
            delay = self.client.backoff(self.tries - 1)
            if self.clock.seconds() + delay >= self.deadline_at:
                return
            sleep = task.deferLater(self.clock, delay, lambda: None)
            self.inflight = sleep
            sleep.addCallbacks(self._woke, self._sleep_cancelled)
            return
        super()._failed(f)


class DeafToCancelClient(BudgetClient):
    """Twin C: cancelling the call stops only the deadline timer; the in-flight attempt is not
    cancelled and retries go on after the caller gave up."""

    call_class = _DeafCall


class _WrongErrorCall(_Call):
    def _deadline(self) -> None:
        self.timer = None
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            inflight.cancel()  # BUG: as LateDone, but guarded: the caller keeps the CancelledError
        self.done = True
        if not self.result.called:
            self.result.errback(DeadlineExceeded(f"deadline {self.client.deadline} passed"))


class WrongErrorClient(BudgetClient):
    """Twin A' (added in phase 2): LateDone with the double fire guarded, so the only symptom is
    the caller failing at the deadline with CancelledError instead of DeadlineExceeded."""

    call_class = _WrongErrorCall


class _PerAttemptCall(_Call):
    def _attempt(self) -> None:
        # BUG: "give each attempt the full deadline": the timer restarts at every attempt, so
        # the call's overall deadline moves later with each retry
        if self.timer is not None and self.timer.active():
            self.timer.reset(self.client.deadline)
        super()._attempt()


class PerAttemptDeadlineClient(BudgetClient):
    """Twin D (added in phase 2): the deadline timer is reset at every attempt, so a call that
    keeps retrying answers after its overall deadline (the budget check still reads the
    original deadline, so it gives up, with the last error, late)."""

    call_class = _PerAttemptCall
