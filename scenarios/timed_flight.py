"""A single-flight cache whose shared execution is bounded by a timeout: callers that joined it time out with it.

The promise (``keys=2, shared=True, timeout_ms=300``): callers of one key
that come while its execution runs join it and get its outcome; the
execution is cancelled 300 ms after it started (``Deferred.addTimeout``)
and then every caller still waiting on it, the one that started it and
those that joined it, fails with ``TimeoutError`` in that instant.
Cancelling one caller only detaches it (``cancellable="detach"``). The
buggy twins handle the joined callers of a timed-out execution wrongly:
they are left waiting for ever, answered with None, failed with an
error of another type, or with ``CancelledError`` as if cancelled
themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario
from .single_flight import SingleFlight, _Flight

TIMEOUT_MS = 300


class TimedFlight(SingleFlight):
    """One execution per key at a time, bounded by ``addTimeout``; a timed-out execution fails every caller
    still waiting on it with ``TimeoutError``, the ones that joined it included."""

    def _execute(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        return super()._execute(job).addTimeout(TIMEOUT_MS / 1000, self.clock)


class StrandingFlight(TimedFlight):
    """BUG: a timed-out execution fails only the caller that started it; the callers that joined it wait
    for ever (the timeout handler was written for one caller).

    Caught by: ``time.timeout`` (a caller that joined an execution times out with it; also
    ``completion.deadline``: it never fires).
    """

    def _land(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if isinstance(outcome, Failure) and outcome.check(defer.TimeoutError):
            self._forget(outcome, key, flight)
            first = flight.callers[:1]
            flight.callers.clear()
            for caller in first:
                caller.errback(outcome)
            return
        super()._land(outcome, key, flight)


class _JoinersAnsweredOtherwise(TimedFlight):
    """A timed-out execution fails the caller that started it with ``TimeoutError`` and answers the callers
    that joined it with ``_joiner_answer``."""

    def _land(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if isinstance(outcome, Failure) and outcome.check(defer.TimeoutError):
            self._forget(outcome, key, flight)
            callers, flight.callers = flight.callers, []
            for n, caller in enumerate(callers):
                if n == 0:
                    caller.errback(outcome)
                else:
                    self._joiner_answer(caller)
            return
        super()._land(outcome, key, flight)

    def _joiner_answer(self, caller: defer.Deferred[Any]) -> None:
        raise NotImplementedError


class FallbackFlight(_JoinersAnsweredOtherwise):
    """BUG: the callers that joined a timed-out execution are answered with None (a "fallback"), only the
    one that started it fails with ``TimeoutError``.

    Caught by: ``sharing.joined`` (a cancelled execution produced no value).
    """

    def _joiner_answer(self, caller: defer.Deferred[Any]) -> None:
        caller.callback(None)


class CancellingFlight(_JoinersAnsweredOtherwise):
    """BUG: the callers that joined a timed-out execution are cancelled (``CancelledError``), as if each had
    cancelled itself; only the one that started it fails with ``TimeoutError``.

    Caught by: ``sharing.isolated``.
    """

    def _joiner_answer(self, caller: defer.Deferred[Any]) -> None:
        caller.errback(defer.CancelledError("the shared fetch timed out"))


class RewrappingFlight(TimedFlight):
    """BUG: a timed-out execution fails every caller still waiting on it with ``RuntimeError("fetch timed
    out")``, a type of its own, not the ``TimeoutError`` the target declares.

    Caught by: ``time.timeout`` (the caller that started it, or, once that one detached, the callers that
    joined it).
    """

    def _land(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if isinstance(outcome, Failure) and outcome.check(defer.TimeoutError):
            outcome = Failure(RuntimeError("fetch timed out"))
        super()._land(outcome, key, flight)


def _timed(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, keys=2, shared=True, cancellable="detach", timeout_ms=TIMEOUT_MS, description=description)


timed_flight = _timed(TimedFlight, "single flight whose execution times out after 300ms, failing every caller of it")
stranding_flight = _timed(StrandingFlight, "single flight whose timed-out execution leaves its joined callers waiting")
fallback_flight = _timed(FallbackFlight, "single flight whose timed-out execution answers its joined callers with None")
rewrapping_flight = _timed(RewrappingFlight, "single flight whose timed-out execution fails its callers with RuntimeError")
cancelling_flight = _timed(CancellingFlight, "single flight whose timed-out execution cancels its joined callers")

SCENARIOS = (
    Scenario("scenarios.timed_flight:timed_flight", "pass",
             "a single flight bounded by addTimeout: every caller of a timed-out execution fails with TimeoutError",
             "Deferred.addTimeout"),
    Scenario("scenarios.timed_flight:stranding_flight", "time.timeout",
             "a timed-out execution fails only its first caller: the callers that joined it wait for ever",
             "Deferred.addTimeout", also=("completion.deadline", "cancellation.releases")),
    Scenario("scenarios.timed_flight:fallback_flight", "sharing.joined",
             "a timed-out execution answers the callers that joined it with None", "Deferred.addTimeout"),
    Scenario("scenarios.timed_flight:rewrapping_flight", "time.timeout",
             "a timed-out execution fails its callers with RuntimeError, not the declared TimeoutError",
             "Deferred.addTimeout"),
    Scenario("scenarios.timed_flight:cancelling_flight", "sharing.isolated",
             "a timed-out execution fails the callers that joined it with CancelledError", "Deferred.addTimeout"),
)
