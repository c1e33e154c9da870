"""A stale-while-revalidate cache.

``get(key)``:

* age < ``ttl``: answer from the cache;
* ``ttl`` <= age < ``stale``: answer the stale value at once and start one background refresh for
  the key (single flight: at most one fetch per key in flight at a time);
* no entry, or age >= ``stale``: wait for a fetch (joining the one in flight if any), bounded by
  ``timeout`` seconds (``Deferred.addTimeout``); the timeout fails every caller waiting on it with
  ``TimeoutError``.

Cancelling one caller's Deferred only takes that caller off the fetch: the shared fetch others wait
on is never cancelled by a caller. A failed background refresh keeps the stale entry.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure


class SWRCache:
    """A stale-while-revalidate cache in front of ``fetch(key) -> Deferred[value]``."""

    def __init__(
        self,
        clock: IReactorTime,
        fetch: Callable[[Hashable], Deferred[Any]],
        ttl: float,
        stale: float,
        timeout: float,
    ) -> None:
        if not 0 < ttl <= stale:
            raise ValueError("need 0 < ttl <= stale")
        self.clock = clock
        self._fetch = fetch
        self.ttl = ttl
        self.stale = stale
        self.timeout = timeout
        self._entries: dict[Hashable, tuple[Any, float]] = {}
        # key -> callers waiting on the fetch in flight for that key
        self._inflight: dict[Hashable, list[Deferred[Any]]] = {}
        self.fetches = 0  # how many fetches were started (for tests)

    def get(self, key: Hashable) -> Deferred[Any]:
        entry = self._entries.get(key)
        now = self.clock.seconds()
        if entry is not None:
            value, fetched_at = entry
            age = now - fetched_at
            if age < self.ttl:
                return succeed(value)
            if age < self.stale:
                if key not in self._inflight:
                    self._start_fetch(key)
                return succeed(value)
        return self._wait_for(key)

    # -- internals --------------------------------------------------------------------------
    def _wait_for(self, key: Hashable) -> Deferred[Any]:
        if key not in self._inflight:
            self._start_fetch(key)
        waiters = self._inflight[key]

        def cancel(d: Deferred[Any]) -> None:
            current = self._inflight.get(key)
            if current is not None and d in current:
                current.remove(d)

        d: Deferred[Any] = Deferred(cancel)
        waiters.append(d)
        return d

    def _start_fetch(self, key: Hashable) -> None:
        self._inflight[key] = []
        self.fetches += 1
        started = self.clock.seconds()
        d = self._fetch(key)
        d.addTimeout(self.timeout, self.clock)
        d.addCallbacks(self._fetched, self._fetch_failed, callbackArgs=(key, started),
                       errbackArgs=(key,))

    def _fetched(self, value: Any, key: Hashable, started: float) -> None:
        self._entries[key] = (value, started)
        for w in self._inflight.pop(key, []):
            w.callback(value)

    def _fetch_failed(self, failure: Failure, key: Hashable) -> None:
        for w in self._inflight.pop(key, []):
            w.errback(failure)
        return None


# -- buggy twins -----------------------------------------------------------------------------
class SWRNotSingleFlight(SWRCache):
    """BUG: every stale hit starts a new background refresh, even if one is already in flight,
    so the fetch backend sees several fetches of the same key at once."""

    def get(self, key: Hashable) -> Deferred[Any]:
        entry = self._entries.get(key)
        now = self.clock.seconds()
        if entry is not None:
            value, fetched_at = entry
            age = now - fetched_at
            if age < self.ttl:
                return succeed(value)
            if age < self.stale:
                self._start_fetch(key)
                return succeed(value)
        return self._wait_for(key)


class SWRCancelKillsFetch(SWRCache):
    """BUG: the first caller gets the fetch's own Deferred chain, so cancelling that caller
    cancels the shared fetch and the other callers fail with CancelledError."""

    def _wait_for(self, key: Hashable) -> Deferred[Any]:
        if key in self._inflight:
            return super()._wait_for(key)
        self._inflight[key] = []
        self.fetches += 1
        started = self.clock.seconds()
        fetch = self._fetch(key)
        fetch.addTimeout(self.timeout, self.clock)
        fetch.addCallbacks(self._fetched_passing, self._failed_passing,
                           callbackArgs=(key, started), errbackArgs=(key,))
        return fetch

    def _fetched_passing(self, value: Any, key: Hashable, started: float) -> Any:
        self._fetched(value, key, started)
        return value

    def _failed_passing(self, failure: Failure, key: Hashable) -> Failure:
        self._fetch_failed(failure, key)
        return failure


class SWRFailureStrands(SWRCache):
    """BUG: a failed fetch fails the current waiters but leaves the key marked in flight, so every
    later miss for that key joins a fetch that already ended and waits forever."""

    def _fetch_failed(self, failure: Failure, key: Hashable) -> None:
        waiters = self._inflight.get(key, [])
        self._inflight[key] = []
        for w in waiters:
            w.errback(failure)
        return None
