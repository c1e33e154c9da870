"""A saga (multi-step transaction) coordinator (written blind, review round 10).

``Saga(clock, steps).run()`` runs the steps in order, each an ``(action,
compensate)`` pair of callables returning Deferreds (or plain values).  Each
action gets ``step_timeout`` seconds; past it the action is cancelled and the
saga fails.  On a failure, timeout, ``abort()`` or cancellation of the run's
Deferred, the steps already completed are compensated in reverse order; each
compensation is retried with exponential backoff (``backoff * 2**n``) up to
``attempts`` times, and a compensation that never succeeds is recorded in
``stuck`` (the saga still goes on compensating the earlier steps).

The run's Deferred fires with the list of action results, or fails with
``SagaFailed`` (carrying the cause) once compensation is over.

Twins (BUGS.md): ``ForwardCompensationSaga`` compensates in forward order,
``LingeringTimeoutSaga`` leaves the step timeout armed after the step
finished, ``DoubleFireSaga`` errbacks the run twice on an abort during
compensation.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

Step = tuple[Callable[[], Any], Callable[[], Any]]


class SagaFailed(Exception):
    """The saga did not complete; completed steps were compensated."""

    def __init__(self, cause: object, stuck: list[int]) -> None:
        super().__init__(f"saga failed: {cause!r}; uncompensated steps {stuck}")
        self.cause = cause
        self.stuck = stuck


class StepTimedOut(Exception):
    """A step's action did not finish within ``step_timeout``."""


class SagaAborted(CancelledError):
    """``abort()`` was called (or the run's Deferred was cancelled).

    A ``CancelledError``: a run cancelled while its compensation goes on is failed by Twisted
    with a plain ``CancelledError`` (the harness's find: the two must be one kind of error)."""


class Saga:
    def __init__(
        self,
        clock: IReactorTime,
        steps: Sequence[Step],
        step_timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self._clock = clock
        self._steps = list(steps)
        self._step_timeout = step_timeout
        self._attempts = attempts
        self._backoff = backoff
        self._result: Deferred[list[object]] | None = None
        self._results: list[object] = []
        self._current: Deferred[object] | None = None
        self._timer: IDelayedCall | None = None
        self._retry: IDelayedCall | None = None
        self._retry_index = -1
        self._pending: list[int] = []
        self._compensating = False
        self._finished = False
        self._cause: object = None
        self.completed: list[int] = []  # indices of completed actions, in order
        self.compensated: list[int] = []  # indices compensated, in order
        self.stuck: list[int] = []
        self.log: list[str] = []

    # -- public -----------------------------------------------------------
    def run(self) -> "Deferred[list[object]]":
        if self._result is not None:
            raise RuntimeError("a saga runs once")
        self._result = Deferred(lambda _d: self.abort())
        self._next(0)
        return self._result

    def abort(self) -> None:
        """Stop the saga: cancel the running action and compensate."""
        if self._finished:
            return
        if self._compensating:
            self._abort_during_compensation()
            return
        self._fail(SagaAborted("aborted"))

    # -- forward path -------------------------------------------------------
    def _next(self, i: int) -> None:
        if self._finished or self._compensating:
            return
        if i == len(self._steps):
            self._finished = True
            assert self._result is not None
            self._result.callback(list(self._results))
            return
        action, _ = self._steps[i]
        self.log.append(f"action {i}")
        d = maybeDeferred(action)
        self._current = d
        self._timer = self._clock.callLater(self._step_timeout, self._timed_out, i, d)

        def ok(value: object) -> None:
            if self._current is not d:
                return
            self._current = None
            self._step_done()
            self._results.append(value)
            self.completed.append(i)
            self._next(i + 1)

        def bad(f: Failure) -> None:
            if self._current is not d:
                return
            self._current = None
            self._step_done()
            self._fail(f.value if not f.check(CancelledError) else self._cause or f.value)

        d.addCallbacks(ok, bad)

    def _step_done(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _timed_out(self, i: int, d: "Deferred[object]") -> None:
        self._timer = None
        if self._current is d:
            self._cause = StepTimedOut(f"step {i} took over {self._step_timeout}s")
            d.cancel()

    def _fail(self, cause: object) -> None:
        if self._compensating or self._finished:
            return
        self._cause = cause
        self._compensating = True
        cur, self._current = self._current, None
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if cur is not None:
            cur.cancel()
        self._compensate_order()

    # -- compensation ---------------------------------------------------------
    def _compensate_order(self) -> None:
        self._pending = list(reversed(self.completed))
        self._compensate_next()

    def _compensate_next(self) -> None:
        if self._finished:
            return
        if not self._pending:
            self._finish_failed()
            return
        i = self._pending.pop(0)
        self._compensate(i, 0)

    def _compensate(self, i: int, attempt: int) -> None:
        self._retry = None
        if self._finished:
            return
        _, comp = self._steps[i]
        self.log.append(f"compensate {i} attempt {attempt}")
        d = maybeDeferred(comp)

        def ok(_: object) -> None:
            self.compensated.append(i)
            self._compensate_next()

        def bad(_f: Failure) -> None:
            if self._finished:
                return
            if attempt + 1 < self._attempts:
                delay = self._backoff * (2**attempt)
                self._retry_index = i
                self._retry = self._clock.callLater(delay, self._compensate, i, attempt + 1)
            else:
                self.stuck.append(i)
                self._compensate_next()

        d.addCallbacks(ok, bad)

    def _abort_during_compensation(self) -> None:
        # Already compensating: an abort only stops the backoff wait (the
        # step waiting for a retry is given up, the rest run now), and the run
        # fails as aborted (the harness's find: a cancelled run must fail with
        # the cancel's error, not the step's).
        self._cause = SagaAborted("aborted during compensation")
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
            self._retry = None
            self.stuck.append(self._retry_index)
            self._compensate_next()

    def _finish_failed(self) -> None:
        if self._finished:
            return
        self._finished = True
        assert self._result is not None
        if not self._result.called:  # a cancelled run already failed
            self._result.errback(SagaFailed(self._cause, list(self.stuck)))


class ForwardCompensationSaga(Saga):
    """Bug: compensates completed steps in the order they ran (not reverse)."""

    def _compensate_order(self) -> None:
        self._pending = list(self.completed)
        self._compensate_next()


class LingeringTimeoutSaga(Saga):
    """Bug: the step timeout is not cancelled when the step finishes (a deadline
    not cleared): a later step can be cancelled by an earlier step's timer."""

    def _step_done(self) -> None:
        pass

    def _timed_out(self, i: int, d: "Deferred[object]") -> None:
        self._timer = None
        if self._current is not None:
            self._cause = StepTimedOut(f"step {i} took over {self._step_timeout}s")
            self._current.cancel()


class DoubleFireSaga(Saga):
    """Bug: an abort during compensation fails the run at once, and the
    compensation's end fails it again (errbacks twice)."""

    def _abort_during_compensation(self) -> None:
        assert self._result is not None
        self._result.errback(SagaFailed(SagaAborted("aborted"), list(self.stuck)))

    def _finish_failed(self) -> None:
        if self._finished:
            return
        self._finished = True
        assert self._result is not None
        self._result.errback(SagaFailed(self._cause, list(self.stuck)))
