"""A keyed single-flight cache with TTL and stale-while-revalidate, written blind.

``get(key)``:
  * fresh entry (age < ``ttl``): answered at once from the cache;
  * stale entry (``ttl`` <= age < ``ttl + stale``): answered at once with the stale value, and
    one background refresh is started if none is running for that key;
  * no usable entry: the caller waits for the key's single in-flight fetch (started if none).
Entries age on ``callLater`` timers (monotonic), never by subtracting ``clock.seconds()``
readings: the blind version did, and a wall clock set back kept a value past ``ttl + stale``
(found by the harness, ``sharing.joined``). ``stop()`` cancels the expiry timers.
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

    def __init__(self, fetch: Optional[Deferred]) -> None:
        self.fetch = fetch
        self.waiters: List[Deferred] = []


class _Entry:
    """A cached value, fresh until its stale timer fires, gone when its expiry timer fires."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.fresh = True
        self.timers: List[Any] = []


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
        self._entries: Dict[str, _Entry] = {}
        self._flights: Dict[str, _Flight] = {}
        self._stopped = False
        self.fetches = 0

    def stop(self) -> None:
        """Drop every entry and cancel their timers; later fetches are not cached."""
        self._stopped = True
        for key in list(self._entries):
            self._drop(key)

    def get(self, key: str) -> Deferred:
        entry = self._entries.get(key)
        if entry is not None:
            if entry.fresh:
                return succeed(entry.value)
            if key not in self._flights:
                self._start(key)  # background refresh, nobody waits on it
            return succeed(entry.value)
        flight = self._flights.get(key)
        if flight is not None:
            return self._wait(key, flight)
        return self._start(key, waiting=True)

    # -- internals -------------------------------------------------------------
    def _store(self, key: str, value: Any) -> None:
        self._drop(key)
        if self._stopped:
            return
        entry = _Entry(value)
        entry.timers = [
            self._clock.callLater(self._ttl, self._go_stale, entry),
            self._clock.callLater(self._ttl + self._stale, self._expire, key, entry),
        ]
        self._entries[key] = entry

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            for timer in entry.timers:
                if timer.active():
                    timer.cancel()

    def _go_stale(self, entry: _Entry) -> None:
        entry.fresh = False

    def _expire(self, key: str, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def _start(self, key: str, waiting: bool = False) -> Optional[Deferred]:
        """Start the key's fetch; with ``waiting``, register the caller's waiter *first*.

        The blind version registered the waiter after starting the fetch: a fetch that completes
        synchronously (a fetch function that raises, or returns a plain value) landed with
        nobody waiting, and the caller's Deferred never fired. The harness's first campaign
        found it (errors.poison, one operation: a job that raises).
        """
        flight = _Flight(None)
        self._flights[key] = flight
        waiter = self._wait(key, flight) if waiting else None
        self.fetches += 1
        d = maybeDeferred(self._fetch, key)
        d.addTimeout(self._timeout, self._clock)
        flight.fetch = d
        d.addBoth(self._landed, key, flight)
        return waiter

    def _landed(self, result: Any, key: str, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not isinstance(result, Failure):
            self._store(key, result)
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
            if not flight.waiters and flight.fetch is not None and not flight.fetch.called:
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

    def get(self, key: str) -> Deferred:
        entry = self._entries.get(key)
        if entry is not None:
            if not entry.fresh and key not in self._shared:
                self._refresh_shared(key)
            return succeed(entry.value)
        if key in self._shared:
            return self._shared[key]
        return self._fetch_shared(key)

    @property
    def _shared(self) -> Dict[str, Deferred]:
        return self.__dict__.setdefault("_shared_flights", {})

    def _fetch_shared(self, key: str) -> Deferred:
        self.fetches += 1
        d = maybeDeferred(self._fetch, key)
        d.addTimeout(self._timeout, self._clock)

        def landed(result: Any) -> Any:
            self._shared.pop(key, None)
            if not isinstance(result, Failure):
                self._store(key, result)
            return result

        d.addBoth(landed)
        if not d.called:
            self._shared[key] = d
        return d

    def _refresh_shared(self, key: str) -> None:
        # The background refresh nobody waits on: its failure is logged (handled), as a
        # careful author would; only the waiters share the one Deferred.
        self._fetch_shared(key).addErrback(lambda failure: None)


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
            self._store(key, result)
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
        entry = self._entries.get(key)
        if entry is not None:
            if not entry.fresh:
                self._start(key)
            return succeed(entry.value)
        flight = self._flights.get(key)
        if flight is not None:
            return self._wait(key, flight)
        return self._start(key, waiting=True)
