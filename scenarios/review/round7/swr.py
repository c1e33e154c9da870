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
        # key -> (value, generation); an entry's age is kept by two timers set when its fetch
        # started (never by subtracting clock.seconds() readings: the wall clock jumps)
        self._entries: dict[Hashable, tuple[Any, int]] = {}
        self._phase: dict[int, str] = {}  # generation -> "fresh" | "stale" (gone: expired)
        self._generation = 0
        # key -> callers waiting on the fetch in flight for that key
        self._inflight: dict[Hashable, list[Deferred[Any]]] = {}
        self.fetches = 0  # how many fetches were started (for tests)

    def get(self, key: Hashable) -> Deferred[Any]:
        entry = self._entries.get(key)
        if entry is not None:
            value, generation = entry
            phase = self._phase.get(generation)
            if phase == "fresh":
                return succeed(value)
            if phase == "stale":
                if key not in self._inflight:
                    self._start_fetch(key)
                return succeed(value)
        return self._wait_for(key)

    # -- internals --------------------------------------------------------------------------
    def _wait_for(self, key: Hashable) -> Deferred[Any]:
        def cancel(d: Deferred[Any]) -> None:
            current = self._inflight.get(key)
            if current is not None and d in current:
                current.remove(d)

        d: Deferred[Any] = Deferred(cancel)
        if key in self._inflight:
            self._inflight[key].append(d)
        else:
            # registered before the fetch starts: a fetch may answer at once, inside _start_fetch
            self._start_fetch(key, [d])
        return d

    def _start_fetch(self, key: Hashable, waiters: list[Deferred[Any]] | None = None) -> None:
        self._inflight[key] = waiters if waiters is not None else []
        self.fetches += 1
        started = self._age_from_now()
        d = self._fetch(key)
        d.addTimeout(self.timeout, self.clock)
        d.addCallbacks(self._fetched, self._fetch_failed, callbackArgs=(key, started),
                       errbackArgs=(key,))

    def _age_from_now(self) -> int:
        """A new generation whose phase moves to stale after ttl and expires after stale."""
        self._generation += 1
        generation = self._generation
        self._phase[generation] = "fresh"
        self.clock.callLater(self.ttl, self._age, generation, "stale")
        self.clock.callLater(self.stale, self._age, generation, None)
        return generation

    def _age(self, generation: int, phase: str | None) -> None:
        if phase is None:
            self._phase.pop(generation, None)
            for key, (_value, gen) in list(self._entries.items()):
                if gen == generation:
                    del self._entries[key]
        elif generation in self._phase:
            self._phase[generation] = phase

    def _fetched(self, value: Any, key: Hashable, started: int) -> None:
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
        if entry is not None:
            value, generation = entry
            phase = self._phase.get(generation)
            if phase == "fresh":
                return succeed(value)
            if phase == "stale":
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
        started = self._age_from_now()
        fetch = self._fetch(key)
        fetch.addTimeout(self.timeout, self.clock)
        fetch.addCallbacks(self._fetched_passing, self._failed_passing,
                           callbackArgs=(key, started), errbackArgs=(key,))
        return fetch

    def _fetched_passing(self, value: Any, key: Hashable, started: int) -> Any:
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
