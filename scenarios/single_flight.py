"""A single-flight cache: concurrent requests for one key share one execution.

The shape of Synapse's ``ResponseCache`` and of every request de-duplicator:
the first caller of a key starts the work; callers of the same key that come
while it runs join it and get the same outcome; when it ends, the entry is
forgotten, so the next caller starts afresh. Cancelling a caller only stops
that caller from waiting (``cancellable="detach"``): the others still want
the result. The buggy ones share too much: the first caller holding the
work itself (its cancel cancels everybody's work), and an entry forgotten
only on success (a failure is served again to every later caller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario


class _Flight:
    def __init__(self) -> None:
        self.callers: list[defer.Deferred[Any]] = []
        self.work: defer.Deferred[Any] | None = None
        self.failure: Failure | None = None
        self.done = False
        self.outcome: Any = None


class SingleFlight:
    """One execution per key at a time; every caller that joins it gets its outcome."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._flights: dict[Any, _Flight] = {}

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        flight = self._flights.get(key)
        if flight is not None:
            return self._join(flight)
        flight = self._flights[key] = _Flight()
        caller = self._join(flight)
        flight.work = self._execute(job)
        flight.work.addBoth(self._land, key, flight)
        return caller

    def _execute(self, job: Callable[[], Any]) -> defer.Deferred[Any]:
        """The shared execution of a key: the first caller's job, called."""
        return defer.maybeDeferred(job)

    def _join(self, flight: _Flight) -> defer.Deferred[Any]:
        caller: defer.Deferred[Any] = defer.Deferred(flight.callers.remove)
        flight.callers.append(caller)
        return caller

    def _land(self, outcome: Any, key: Any, flight: _Flight) -> None:
        self._forget(outcome, key, flight)
        for caller in list(flight.callers):
            if isinstance(outcome, Failure):
                caller.errback(outcome)
            else:
                caller.callback(outcome)
        flight.callers.clear()

    def _forget(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]


#: How long ``CachingFlight`` keeps serving a finished execution's outcome.
CACHE_MS = 50


class CachingFlight(SingleFlight):
    """Like ``SingleFlight``, and a finished execution's outcome is served to new callers for ``CACHE_MS``."""

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self._expiry: dict[Any, IDelayedCall] = {}
        self._stopped = False

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        flight = self._flights.get(key)
        if flight is not None and flight.done:
            return defer.fail(flight.outcome) if isinstance(flight.outcome, Failure) else defer.succeed(flight.outcome)
        return super().submit(job, key)

    def _forget(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if self._stopped:
            super()._forget(outcome, key, flight)  # stopped: cache nothing, leave no timer behind
            return
        flight.done, flight.outcome = True, outcome
        self._expiry[key] = self.clock.callLater(CACHE_MS / 1000, self._expire, key, flight)

    def _expire(self, key: Any, flight: _Flight) -> None:
        del self._expiry[key]
        if self._flights.get(key) is flight:
            del self._flights[key]

    def stop(self) -> None:
        """Drop the cached outcomes and their timers; executions still running are shared as before."""
        self._stopped = True
        for key, call in self._expiry.items():
            call.cancel()
            del self._flights[key]
        self._expiry.clear()


class LeaderHoldsWorkFlight(SingleFlight):
    """Bug: the first caller is handed the work's own Deferred, the later ones observers of it.

    Cancelling that first caller cancels the work that every other caller of
    the key is waiting for.
    """

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        flight = self._flights.get(key)
        if flight is not None:
            return self._join(flight)
        flight = self._flights[key] = _Flight()
        flight.work = defer.maybeDeferred(job)
        leader: defer.Deferred[Any] = defer.Deferred(lambda d: flight.work.cancel())
        flight.callers.append(leader)
        flight.work.addBoth(self._land, key, flight)
        return leader


class CachesFailuresFlight(SingleFlight):
    """Bug: the entry is forgotten only when the work succeeds.

    A failed execution stays in the table, and every later caller of its key
    is served that old failure instead of a fresh try.
    """

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        flight = self._flights.get(key)
        if flight is not None and flight.failure is not None:
            return defer.fail(flight.failure)
        return super().submit(job, key)

    def _forget(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if isinstance(outcome, Failure):
            flight.failure = outcome
            return
        super()._forget(outcome, key, flight)


class AbandoningFlight(SingleFlight):
    """Bug: a caller's cancel abandons the whole flight ("the request was cancelled").

    The work is left to run on, but every other caller that joined it is
    cancelled along with the one that asked.
    """

    def _join(self, flight: _Flight) -> defer.Deferred[Any]:
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: self._abandon(flight, d))
        flight.callers.append(caller)
        return caller

    def _abandon(self, flight: _Flight, cancelled: defer.Deferred[Any]) -> None:
        others, flight.callers[:] = [c for c in flight.callers if c is not cancelled], []
        for caller in others:
            caller.cancel()


class LastCallerFlight(SingleFlight):
    """One execution per key; a caller's cancel detaches it, and the last caller's cancel abandons the work.

    The promise of the blind-written ``SingleFlight`` of the new-user review
    (``cancellable="abandon"``): when every caller of a flight has cancelled,
    the flight leaves the table, its shared Deferred is cancelled and whatever
    it produces later is dropped; the next caller starts a fresh execution.
    """

    def _join(self, flight: _Flight) -> defer.Deferred[Any]:
        caller: defer.Deferred[Any] = defer.Deferred(lambda d: self._cancel_caller(flight, d))
        flight.callers.append(caller)
        return caller

    def _cancel_caller(self, flight: _Flight, caller: defer.Deferred[Any]) -> None:
        if caller not in flight.callers:
            return  # cancelled again after the work's own canceller raised on the first cancel
        flight.callers.remove(caller)
        if flight.callers or flight.done:
            return
        flight.done = True  # abandoned: nobody waits any more, drop the work
        for key in [k for k, f in self._flights.items() if f is flight]:
            del self._flights[key]
        if flight.work is not None:
            flight.work.cancel()

    def _land(self, outcome: Any, key: Any, flight: _Flight) -> None:
        if not flight.done:  # whatever abandoned work produces is dropped
            super()._land(outcome, key, flight)


class OwnerCancelsFlight(LastCallerFlight):
    """Bug (the review's buggy twin): the caller that started a flight owns its work.

    Cancelling that first caller cancels the shared work, so every other caller
    still waiting on the key fails with ``CancelledError`` too.
    """

    def submit(self, job: Callable[[], Any], key: Any) -> defer.Deferred[Any]:
        if key in self._flights:
            return self._join(self._flights[key])
        flight = self._flights[key] = _Flight()
        owner: defer.Deferred[Any] = defer.Deferred(lambda d: flight.work.cancel() if flight.work else None)
        flight.callers.append(owner)
        flight.work = defer.maybeDeferred(job)
        flight.work.addBoth(self._land, key, flight)
        return owner


def _shared(build: Callable[[IReactorTime], Any], description: str, cancellable: str = "detach") -> Target:
    return Target(build=build, keys=2, shared=True, cancellable=cancellable, description=description)


last_caller_flight = _shared(LastCallerFlight, "one execution per key; the last caller's cancel abandons it", "abandon")
owner_cancels_flight = _shared(
    OwnerCancelsFlight, "the first caller owns the shared work: its cancel fails every other caller", "abandon"
)
single_flight = _shared(SingleFlight, "one execution per key; callers that come while it runs join it")
caching_flight = Target(
    build=CachingFlight,
    keys=2,
    shared=True,
    cache_ms=CACHE_MS,
    cancellable="detach",
    description=f"a single-flight cache that serves a finished outcome for {CACHE_MS}ms",
)
leader_holds_work_flight = _shared(LeaderHoldsWorkFlight, "the first caller holds the work itself: its cancel cancels everybody's")
abandoning_flight = _shared(AbandoningFlight, "one caller's cancel cancels every caller that joined its flight")
caches_failures_flight = _shared(CachesFailuresFlight, "a failed execution is never forgotten: later callers get its old failure")

SCENARIOS = (
    Scenario("scenarios.single_flight:single_flight", "pass", "a single-flight cache: callers of one key share one execution", "Deferred"),
    Scenario(
        "scenarios.single_flight:caching_flight",
        "pass",
        f"a single-flight cache that serves a finished execution's outcome for {CACHE_MS}ms",
        "callLater",
    ),
    Scenario(
        "scenarios.single_flight:last_caller_flight",
        "pass",
        "a single-flight cache that abandons (cancels) an execution once every caller of it has cancelled",
        "Deferred",
    ),
    Scenario(
        "scenarios.single_flight:owner_cancels_flight",
        "cancellation.detaches",
        "the first caller owns the shared work: its cancel cancels it, failing every other caller of the key",
        "Deferred",
    ),
    Scenario(
        "scenarios.single_flight:leader_holds_work_flight",
        "cancellation.detaches",
        "the first caller gets the shared work's own Deferred: cancelling it cancels the work for every caller",
        "Deferred",
    ),
    Scenario(
        "scenarios.single_flight:abandoning_flight",
        "sharing.isolated",
        "one caller's cancel abandons the flight: every other caller of the key fails with CancelledError",
        "Deferred",
    ),
    Scenario(
        "scenarios.single_flight:caches_failures_flight",
        "sharing.joined",
        "a failed execution stays cached: every later caller of its key gets the old failure",
        "Deferred",
    ),
)
