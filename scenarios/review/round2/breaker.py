"""A circuit breaker: closed -> open after N consecutive failures, half-open after a reset
timeout, one trial call in half-open decides closed (success) or open again (failure).

Written blind (before reading the harness docs) for the outside-user review, round 2.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class CircuitOpenError(Exception):
    """The breaker refused the call without trying it."""


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    """Guards calls to a flaky dependency.

    ``call(f, *a)`` runs ``f`` (which may return a Deferred) when the breaker lets it through,
    else fails at once with :class:`CircuitOpenError`. After ``threshold`` consecutive failures
    the breaker opens for ``reset_timeout`` seconds; then exactly one trial call is let through
    (half-open) and its outcome closes or re-opens the breaker. ``stop()`` cancels the timer.
    """

    def __init__(self, clock: IReactorTime, threshold: int = 3, reset_timeout: float = 5.0) -> None:
        self.clock = clock
        self.threshold = threshold
        self.reset_timeout = reset_timeout
        self.state = CLOSED
        self.failures = 0
        self.trial_in_flight = False
        self._reset_call: Optional[IDelayedCall] = None
        self.transitions: list[tuple[float, str]] = []

    # -- state changes ---------------------------------------------------------------------------
    def _set(self, state: str) -> None:
        self.state = state
        self.transitions.append((self.clock.seconds(), state))

    def _open(self) -> None:
        self._set(OPEN)
        self.trial_in_flight = False
        self._cancel_reset()
        self._reset_call = self.clock.callLater(self.reset_timeout, self._half_open)

    def _half_open(self) -> None:
        self._reset_call = None
        self._set(HALF_OPEN)

    def _cancel_reset(self) -> None:
        if self._reset_call is not None and self._reset_call.active():
            self._reset_call.cancel()
        self._reset_call = None

    # -- the call path ---------------------------------------------------------------------------
    def _admit(self) -> bool:
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def call(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred:
        if not self._admit():
            return fail(CircuitOpenError(self.state))
        trial = self.state == HALF_OPEN
        d = maybeDeferred(f, *args, **kwargs)
        d.addCallbacks(self._on_success, self._on_failure, callbackArgs=(trial,), errbackArgs=(trial,))
        return d

    def _on_success(self, result: Any, trial: bool) -> Any:
        if trial:
            self.trial_in_flight = False
            self._set(CLOSED)
        if self.state == CLOSED:
            self.failures = 0
        return result

    def _on_failure(self, failure: Any, trial: bool) -> Any:
        if trial:
            self._open()
        elif self.state == CLOSED:
            self.failures += 1
            if self.failures >= self.threshold:
                self._open()
        return failure

    def stop(self) -> None:
        self._cancel_reset()


class BuggyCircuitBreaker(CircuitBreaker):
    """Planted bug: when the half-open trial fails, the breaker re-opens WITHOUT arming the reset
    timer again (the author "optimised" _open into a plain state change for the trial path), so
    it stays open for ever: every later call is refused."""

    def _on_failure(self, failure: Any, trial: bool) -> Any:
        if trial:
            self.trial_in_flight = False
            self._set(OPEN)  # BUG: no callLater(reset_timeout, _half_open)
            return failure
        return super()._on_failure(failure, trial)
