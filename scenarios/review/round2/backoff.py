"""A retrying client: exponential backoff with full jitter between attempts, sleeping with
``task.deferLater``, cancellable at any point (during an attempt or during a sleep).

Written blind (before reading the harness docs) for the outside-user review, round 2.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Optional

from twisted.internet import task
from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class GaveUp(Exception):
    """Every attempt failed; the last failure is the ``__cause__``-like ``last`` attribute."""

    def __init__(self, attempts: int, last: Failure) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last.getErrorMessage()}")
        self.attempts = attempts
        self.last = last


class BackoffRetrier:
    """``call(f)`` tries ``f()`` up to ``max_attempts`` times. After failure n (1-based) it sleeps
    a uniform random delay in ``[0, min(cap, base * 2**(n-1))]`` (full jitter, from the given
    seeded ``rng``). The returned Deferred fires with the first success or fails with
    :class:`GaveUp`. Cancelling it cancels the attempt or the sleep in progress and no attempt
    starts afterwards; it then fails with CancelledError.
    """

    def __init__(self, clock: IReactorTime, rng: random.Random, max_attempts: int = 4,
                 base: float = 0.5, cap: float = 4.0) -> None:
        self.clock = clock
        self.rng = rng
        self.max_attempts = max_attempts
        self.base = base
        self.cap = cap
        self.attempts_started = 0

    def delay(self, failures: int) -> float:
        return self.rng.uniform(0.0, min(self.cap, self.base * 2 ** (failures - 1)))

    def call(self, f: Callable[[], Any]) -> Deferred:
        state: dict[str, Any] = {"current": None, "cancelled": False, "n": 0}

        def cancel(_: Deferred) -> None:
            state["cancelled"] = True
            current = state["current"]
            if current is not None:
                current.cancel()

        outer: Deferred = Deferred(cancel)

        def attempt(_: Any = None) -> None:
            if state["cancelled"]:
                return
            state["n"] += 1
            self.attempts_started += 1
            d = maybeDeferred(f)
            state["current"] = d
            d.addCallbacks(succeeded, failed)

        def succeeded(result: Any) -> None:
            state["current"] = None
            if not outer.called:
                outer.callback(result)

        def failed(failure: Failure) -> None:
            state["current"] = None
            if state["cancelled"] or outer.called:
                return None  # the canceller already failed 'outer' with CancelledError
            if state["n"] >= self.max_attempts:
                outer.errback(GaveUp(state["n"], failure))
                return None
            sleep = task.deferLater(self.clock, self.delay(state["n"]), lambda: None)
            state["current"] = sleep
            sleep.addCallbacks(attempt, slept_failed)
            return None

        def slept_failed(failure: Failure) -> None:
            failure.trap(CancelledError)  # the sleep was cancelled with 'outer': stop here
            state["current"] = None

        attempt()
        return outer


class BuggyBackoffRetrier(BackoffRetrier):
    """Planted bug: the canceller only cancels an attempt in flight, not a sleep. The author kept
    ``state["current"]`` for attempts only, so a cancel during a backoff sleep leaves the
    deferLater pending; when it fires a new attempt starts after the caller cancelled (and if
    that attempt succeeds, ``outer`` is already called: the result is dropped silently)."""

    def call(self, f: Callable[[], Any]) -> Deferred:
        state: dict[str, Any] = {"current": None, "cancelled": False, "n": 0}

        def cancel(_: Deferred) -> None:
            current = state["current"]
            if current is not None:
                current.cancel()

        outer: Deferred = Deferred(cancel)

        def attempt(_: Any = None) -> None:
            state["n"] += 1  # BUG: no 'if cancelled: return' (and no cancelled flag at all)
            self.attempts_started += 1
            d = maybeDeferred(f)
            state["current"] = d
            d.addCallbacks(succeeded, failed)

        def succeeded(result: Any) -> None:
            state["current"] = None
            if not outer.called:
                outer.callback(result)

        def failed(failure: Failure) -> None:
            state["current"] = None
            if outer.called:
                return None
            if state["n"] >= self.max_attempts:
                outer.errback(GaveUp(state["n"], failure))
                return None
            sleep = task.deferLater(self.clock, self.delay(state["n"]), lambda: None)
            sleep.addCallback(attempt)  # BUG: the sleep is not kept in state["current"]
            return None

        attempt()
        return outer
