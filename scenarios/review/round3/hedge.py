"""A hedged request: send, and if no answer came within ``hedge_after`` seconds, send a second
copy; the first outcome (result or error) wins and the other copy is cancelled.

Written as plain Twisted, with the clock passed in.
"""
from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

_log = Logger()


def _cancel_each(copies: list[defer.Deferred]) -> None:
    """Cancel every copy still out; one whose canceller raises must not spare the others."""
    for copy in list(copies):
        try:
            copy.cancel()
        except Exception:
            _log.failure("cancelling a hedge copy failed")


class HedgedCaller:
    """``call(send)`` runs ``send()`` (which returns a Deferred or a value) once at once and once
    more after ``hedge_after`` seconds if the first has not answered; the caller gets the first
    outcome, the other copy is cancelled.  Cancelling the caller's Deferred cancels both copies."""

    def __init__(self, clock: Any, hedge_after: float = 0.1) -> None:
        self.clock = clock
        self.hedge_after = hedge_after

    def call(self, send: Callable[[], Any]) -> defer.Deferred:
        copies: list[defer.Deferred] = []
        timer = None

        def cancel_all(_: defer.Deferred) -> None:
            if timer is not None and timer.active():
                timer.cancel()
            _cancel_each(copies)

        result = defer.Deferred(cancel_all)

        def settle(outcome: Any, copy: defer.Deferred) -> None:
            if copy in copies:
                copies.remove(copy)
            if result.called:
                return None          # the loser, cancelled or late: dropped
            # Fire first: cancelling the loser re-enters settle with its CancelledError.
            result.callback(outcome)  # a Failure goes on as a failure
            self._won(timer, copies)
            return None

        def launch() -> None:
            copy = defer.maybeDeferred(send)
            copies.append(copy)
            copy.addBoth(settle, copy)

        timer = self.clock.callLater(self.hedge_after, launch)
        launch()
        return result

    def _won(self, timer: Any, copies: list[defer.Deferred]) -> None:
        """The first outcome came: no more copies, cancel the one still out."""
        if timer.active():
            timer.cancel()
        _cancel_each(copies)


class HedgedCallerTimerLeak(HedgedCaller):
    """BUG: when the first copy wins, the hedge timer is left armed, so a second copy is sent
    after the caller already has its answer (wasted load on the backend; its result is dropped)."""

    def _won(self, timer: Any, copies: list[defer.Deferred]) -> None:
        _cancel_each(copies)


class HedgedCallerCancelsPrimaryOnly(HedgedCaller):
    """BUG: the caller's cancel was written before hedging existed and cancels only the first
    copy; and since a cancelled copy is "a loser we cancelled", its CancelledError is ignored
    rather than taken as the outcome.  So the hedge copy runs on after the caller gave up."""

    def call(self, send: Callable[[], Any]) -> defer.Deferred:
        copies: list[defer.Deferred] = []
        state: dict[str, Any] = {}

        def cancel(_: defer.Deferred) -> None:
            if state["timer"].active():
                state["timer"].cancel()
            _cancel_each([state["primary"]])

        result = defer.Deferred(cancel)

        def settle(outcome: Any, copy: defer.Deferred) -> None:
            if copy in copies:
                copies.remove(copy)
            if result.called or (isinstance(outcome, Failure) and outcome.check(defer.CancelledError)):
                return None
            result.callback(outcome)
            self._won(state["timer"], copies)
            return None

        def launch() -> defer.Deferred:
            copy = defer.maybeDeferred(send)
            copies.append(copy)
            copy.addBoth(settle, copy)
            return copy

        state["timer"] = self.clock.callLater(self.hedge_after, launch)
        state["primary"] = launch()
        return result
