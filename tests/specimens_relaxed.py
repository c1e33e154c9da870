"""Buggy subjects that the rules relaxed for review 4's findings 1, 5 and 6 must still catch.

Each fix lets a correct component through where the rule judged too much;
each subject here keeps the bug that rule exists for, in the declared shape
the fix relaxed, so ``tests/test_review4_fixes.py`` can show the rule still
names it:

* finding 1 (``capacity``, the smallest window of an adaptive limiter):
  ``aimd_leak_declared_capacity``, the AIMD limiter whose timed-out calls
  never give their slot back, declaring ``limit=4, capacity=1``; and
  ``aimd_off_by_one_declared``, one call over the window (and over 4), now
  that ``limit`` can be declared;
* finding 5 (``time.timeout`` with ``shared``: a caller shares the timeout of
  the execution it joined): ``swr_short_join_timeout``, a cache that bounds a
  joining caller's wait by a tenth of the timeout, and
  ``swr_timeout_serves_none``, a cache that answers the waiters of a timed-out
  fetch with None instead of the timeout error, and ``swr_half_timeout``,
  fetches bounded by half the timeout (a joined caller then times out too soon);
* finding 6 (``cancellation.detaches`` leaves out the subject's own timer set
  before the cancel): ``owner_cancels_later``, a single flight whose first
  caller's cancel cancels the shared work one reactor call later
  (``callLater(0, ...)``), in the same instant.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from harness import Target
from scenarios.review.round4.aimd import AIMDLeakOnTimeout, AIMDOffByOne
from scenarios.review.round4.swr_cache import SWRCache, _Flight
from scenarios.review.round4.targets import AIMD_MAX, AIMD_MIN, SWR_TIMEOUT_MS, _aimd, _swr
from scenarios.single_flight import LastCallerFlight, _Flight as _SingleFlight, _shared


def _aimd_declared(cls: type, description: str) -> Target:
    """The review's AIMD target for ``cls``, declaring its maximum as ``limit`` and its floor as ``capacity``
    (as ``mistakes.aimd_declared_limit`` does for the correct limiter)."""
    return dataclasses.replace(_aimd(cls, description), limit=AIMD_MAX, capacity=int(AIMD_MIN))


aimd_leak_declared_capacity = _aimd_declared(
    AIMDLeakOnTimeout, "AIMD limiter declaring limit=4, capacity=1: a timed-out call never gives its slot back")
aimd_off_by_one_declared = _aimd_declared(
    AIMDOffByOne, "AIMD limiter declaring limit=4, capacity=1: the pump lets one call more than the window run")


class SWRShortJoinTimeout(SWRCache):
    """Bug: a caller joining a fetch in flight has its wait bounded by ``timeout / 10`` (a units slip),
    so it fails with TimeoutError long before the fetch it joined ran the timeout."""

    def _wait(self, key: str, flight: _Flight) -> defer.Deferred:
        waiter = super()._wait(key, flight)
        if flight.fetch is not None:  # joining a fetch already started (the starter waits before it starts)
            waiter.addTimeout(self._timeout / 10, self._clock)
        return waiter


class SWRTimeoutServesNone(SWRCache):
    """Bug: a fetch that timed out answers its waiters with None (a "fallback"), not the timeout error."""

    def _landed(self, result: Any, key: str, flight: _Flight) -> None:
        if isinstance(result, Failure) and result.check(defer.TimeoutError):
            result = None
        return super()._landed(result, key, flight)


class SWRHalfTimeout(SWRCache):
    """Bug: each fetch is bounded by half the declared timeout (a units slip), so its callers, joined
    ones too, fail with TimeoutError before the fetch ran the timeout."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeout /= 2


swr_half_timeout = _swr(SWRHalfTimeout, "SWR cache: fetches time out after half the declared timeout",
                        timeout_ms=SWR_TIMEOUT_MS)
swr_short_join_timeout = _swr(SWRShortJoinTimeout, "SWR cache: a joining caller's wait times out after a tenth of "
                              "the timeout", timeout_ms=SWR_TIMEOUT_MS)
swr_timeout_serves_none = _swr(SWRTimeoutServesNone, "SWR cache: a timed-out fetch answers its waiters with None",
                               timeout_ms=SWR_TIMEOUT_MS)


class OwnerCancelsLater(LastCallerFlight):
    """Bug: the caller that started a flight owns its work, and its cancel cancels the shared work one
    reactor call later (``callLater(0, work.cancel)``, "not inside the canceller"): every other caller
    of the key is left without its answer all the same."""

    def submit(self, job: Any, key: Any) -> defer.Deferred[Any]:
        if key in self._flights:
            return self._join(self._flights[key])
        flight = self._flights[key] = _SingleFlight()

        def cancel(d: defer.Deferred[Any]) -> None:
            if d in flight.callers:
                flight.callers.remove(d)  # its own CancelledError is the cancel's
            if flight.work is not None:
                self.clock.callLater(0, flight.work.cancel)

        owner: defer.Deferred[Any] = defer.Deferred(cancel)
        flight.callers.append(owner)
        flight.work = defer.maybeDeferred(job)
        flight.work.addBoth(self._land, key, flight)
        return owner


owner_cancels_later = _shared(OwnerCancelsLater, "the first caller owns the shared work: its cancel cancels it one "
                              "reactor call later", "abandon")
