"""The two "correct" components as first written, before the harness found their bugs.

Kept verbatim (classes renamed) so the review's findings replay: the harness caught each in its
first campaign (docs/reviews/outside-user-4.md, "What the harness found in my correct code").

* ``SWRCacheBlind``: a fetch that completes synchronously (the fetch function raises or returns
  a plain value) lands before the caller's waiter is registered, so the caller is never answered
  (``errors.poison``); and entries age by subtracting ``clock.seconds()`` readings, so a wall
  clock set back serves a value past ``ttl + stale`` (``sharing.joined``).
* ``CronRunnerBlind``: every tick later than ``grace`` is skipped, so a reactor that is always
  later than the grace (a stalled reactor waking on 100 ms strides) never runs the job
  (``user.cron_keeps_ticking``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure


class _BlindFlight:
    """One in-flight fetch and the callers waiting on it."""

    def __init__(self, fetch: Deferred) -> None:
        self.fetch = fetch
        self.waiters: List[Deferred] = []


class SWRCacheBlind:
    """The cache as first written (blind): ages by ``seconds()`` readings, waiter registered after the fetch."""

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
        self._flights: Dict[str, _BlindFlight] = {}
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
    def _start(self, key: str) -> _BlindFlight:
        self.fetches += 1
        d = maybeDeferred(self._fetch, key)
        d.addTimeout(self._timeout, self._clock)
        flight = _BlindFlight(d)
        self._flights[key] = flight
        d.addBoth(self._landed, key, flight)
        return flight

    def _landed(self, result: Any, key: str, flight: _BlindFlight) -> None:
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

    def _wait(self, key: str, flight: _BlindFlight) -> Deferred:
        def cancel(w: Deferred) -> None:
            if w in flight.waiters:
                flight.waiters.remove(w)
            if not flight.waiters and not flight.fetch.called:
                flight.fetch.cancel()

        waiter = Deferred(cancel)
        flight.waiters.append(waiter)
        return waiter


class CronRunnerBlind:
    """The runner as first written (blind): every tick later than the grace is skipped."""

    def __init__(
        self,
        clock: IReactorTime,
        job: Callable[[], Any],
        interval: float = 10.0,
        grace: float = 2.0,
        timeout: float = 8.0,
    ) -> None:
        self._clock = clock
        self._job = job
        self._interval = interval
        self._grace = grace
        self._timeout = timeout
        self._pending: Optional[IDelayedCall] = None
        self._running: Optional[Deferred] = None
        self._stopped = False
        self.runs = 0
        self.skipped = 0
        self.misfired = 0
        self.failures: List[Failure] = []

    def start(self) -> None:
        self._schedule_next()

    def stop(self) -> Deferred:
        self._stopped = True
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
        if self._running is not None:
            running = self._running
            running.cancel()
            # _run_done has already cleared _running (cancel fires the chain synchronously).
        return succeed(None)

    # -- internals -------------------------------------------------------------
    def _next_tick_time(self) -> float:
        now = self._clock.seconds()
        return (math.floor(now / self._interval) + 1) * self._interval

    def _schedule_next(self) -> None:
        if self._stopped:
            return
        at = self._next_tick_time()
        self._pending = self._clock.callLater(at - self._clock.seconds(), self._tick, at)

    def _tick(self, scheduled: float) -> None:
        self._pending = None
        late = self._clock.seconds() - scheduled
        if self._running is not None:
            self.skipped += 1
        elif late > self._grace:
            self.misfired += 1
        else:
            self._launch()
        self._schedule_next()

    def _launch(self) -> None:
        self.runs += 1
        d = maybeDeferred(self._job)
        d.addTimeout(self._timeout, self._clock)
        self._running = d
        d.addBoth(self._run_done, d)

    def _run_done(self, result: Any, d: Deferred) -> None:
        if self._running is d:
            self._running = None
        if isinstance(result, Failure):
            self.failures.append(result)
        return None
