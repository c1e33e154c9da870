"""A keyed single-flight cache with TTL and stale-while-revalidate, written blind.

``get(key)``:
  * fresh entry (age < ``ttl``): answered at once from the cache;
  * stale entry (``ttl`` <= age < ``ttl + stale``): answered at once with the stale value, and
    one background refresh is started if none is running for that key;
  * no usable entry: the caller waits for the key's single in-flight fetch (started if none).
Every fetch is bounded by ``timeout`` (``addTimeout``). A failed fetch is not cached: the next
``get`` fetches again. Each caller gets its own Deferred: cancelling one waiting caller does
not fail the others; the shared fetch is cancelled only when every waiter has gone.

Promises:
  P1 at most one fetch per key at any time (single flight);
  P2 every ``get`` is answered; a waiting one within ``timeout`` seconds;
  P3 a failed or timed-out fetch is not served to later callers;
  P4 cancelling one waiter leaves the other waiters' answers intact;
  P5 never serves a value older than ``ttl + stale``.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class _Flight:
    """One in-flight fetch and the callers waiting on it."""

    def __init__(self, fetch: Deferred) -> None:
        self.fetch = fetch
        self.waiters: List[Deferred] = []


class SWRCache:
    """Correct version."""

    def __init__(
        self,
        clock: IReactorTime,
        fetch: Callable[[str], Any],
        ttl: float = 5.0,
        stale: float = 10.0,
        timeout: float = 3.0,
    ) -> None:
        self._clock = clock
        self._fetch = fetch
        self._ttl = ttl
        self._stale = stale
        self._timeout = timeout
        self._entries: Dict[str, Tuple[Any, float]] = {}
        self._flights: Dict[str, _Flight] = {}
        self.fetches = 0

    def get(self, key: str) -> Deferred:
        now = self._clock.seconds()
        entry = self._entries.get(key)
        if entry is not None:
            value, stored = entry
            age = now - stored
            if age < self._ttl:
                return succeed(value)
            if age < self._ttl + self._stale:
                if key not in self._flights:
                    self._start(key)  # background refresh, nobody waits on it
                return succeed(value)
        flight = self._flights.get(key) or self._start(key)
        return self._wait(key, flight)

    # -- internals -------------------------------------------------------------
    def _start(self, key: str) -> _Flight:
        self.fetches += 1
        d = maybeDeferred(self._fetch, key)
        d.addTimeout(self._timeout, self._clock)
        flight = _Flight(d)
        self._flights[key] = flight
        d.addBoth(self._landed, key, flight)
        return flight

    def _landed(self, result: Any, key: str, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not isinstance(result, Failure):
            self._entries[key] = (result, self._clock.seconds())
        for waiter in list(flight.waiters):
            if not waiter.called:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)
        flight.waiters.clear()
        return None

    def _wait(self, key: str, flight: _Flight) -> Deferred:
        def cancel(w: Deferred) -> None:
            if w in flight.waiters:
                flight.waiters.remove(w)
            if not flight.waiters and not flight.fetch.called:
                flight.fetch.cancel()

        waiter = Deferred(cancel)
        flight.waiters.append(waiter)
        return waiter


class SWRSharedDeferred(SWRCache):
    """Twin A: every waiter gets the *same* in-flight Deferred.

    Real code: ``return self._flights[key]`` (the "obvious" single flight). One caller's
    ``cancel()`` cancels the fetch for every caller, and one caller's callbacks change the
    result the next caller sees. Breaks P4.
    """

    def _wait(self, key: str, flight: _Flight) -> Deferred:
        waiter = flight.fetch
        return waiter

    def _start(self, key: str) -> _Flight:
        self.fetches += 1
        d = maybeDeferred(self._fetch, key)
        d.addTimeout(self._timeout, self._clock)
        flight = _Flight(d)
        self._flights[key] = flight

        def landed(result: Any) -> Any:
            if self._flights.get(key) is flight:
                del self._flights[key]
            if not isinstance(result, Failure):
                self._entries[key] = (result, self._clock.seconds())
            return result

        d.addBoth(landed)
        return flight


class SWRKeepsFailedFlight(SWRCache):
    """Twin B: the flight is removed from the map only when the fetch succeeds.

    Real code: the cleanup lives in the success callback. After one failure the key's dead
    flight stays registered; later callers join it and, since its waiters were already
    answered, wait forever. Breaks P2 (and P3).
    """

    def _landed(self, result: Any, key: str, flight: _Flight) -> None:
        if not isinstance(result, Failure):
            if self._flights.get(key) is flight:
                del self._flights[key]
            self._entries[key] = (result, self._clock.seconds())
        for waiter in list(flight.waiters):
            if not waiter.called:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(result)
        flight.waiters.clear()
        return None


class SWRDoubleRefresh(SWRCache):
    """Twin C: the stale path starts a refresh without checking for one in flight.

    Every ``get`` during the stale window starts another fetch of the same key; the map
    keeps only the newest. Breaks P1 (single flight).
    """

    def get(self, key: str) -> Deferred:
        now = self._clock.seconds()
        entry = self._entries.get(key)
        if entry is not None:
            value, stored = entry
            age = now - stored
            if age < self._ttl:
                return succeed(value)
            if age < self._ttl + self._stale:
                self._start(key)
                return succeed(value)
        flight = self._flights.get(key) or self._start(key)
        return self._wait(key, flight)
