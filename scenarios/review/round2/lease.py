"""A lease renewer: holds a lease with a time-to-live, renews it on a LoopingCall well before it
expires, reports loss if a renewal does not land in time, and stops cleanly.

Written blind (before reading the harness docs) for the outside-user review, round 2.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure


class LeaseRenewer:
    """Keeps a lease alive.

    ``renew()`` is the caller's function returning a Deferred that fires when the lease server
    accepted the renewal (the lease then lasts ``ttl`` seconds from that moment). The renewer
    calls it every ``ttl / 3`` seconds, never two at once. A watchdog fires ``on_lost`` if no
    renewal lands within ``ttl``. ``stop()`` stops the loop, cancels a renewal in flight and the
    watchdog, and returns a Deferred that fires once nothing more will happen.
    """

    def __init__(self, clock: IReactorTime, renew: Callable[[], Deferred], ttl: float,
                 on_lost: Callable[[], None]) -> None:
        self.clock = clock
        self._renew = renew
        self.ttl = ttl
        self._on_lost = on_lost
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._in_flight: Optional[Deferred] = None
        self._watchdog: Optional[IDelayedCall] = None
        self.stopped = False
        self.lost = False
        self.renewals = 0

    def start(self) -> Deferred:
        """Start renewing; returns the LoopingCall's Deferred (fires on stop)."""
        self._arm_watchdog()
        return self._loop.start(self.ttl / 3.0, now=True)

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()
        self._watchdog = self.clock.callLater(self.ttl, self._expired)

    def _expired(self) -> None:
        self._watchdog = None
        self.lost = True
        self._halt()
        self._on_lost()

    def _tick(self) -> None:
        if self._in_flight is not None:
            return  # the previous renewal is still out: never two at once
        d = maybeDeferred(self._renew)
        self._in_flight = d
        d.addCallbacks(self._renewed, self._renew_failed)
        d.addBoth(self._clear, d)

    def _clear(self, result: Any, d: Deferred) -> Any:
        if self._in_flight is d:
            self._in_flight = None
        return result

    def _renewed(self, _: Any) -> None:
        if self.stopped or self.lost:
            return
        self.renewals += 1
        self._arm_watchdog()

    def _renew_failed(self, failure: Failure) -> None:
        # A failed renewal is retried on the next tick; the watchdog decides when it is lost.
        return None

    def _halt(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self._in_flight is not None:
            d, self._in_flight = self._in_flight, None
            d.cancel()

    def stop(self) -> None:
        """Stop renewing. Nothing of the renewer's runs afterwards."""
        if self.stopped:
            return
        self.stopped = True
        self._halt()
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()
        self._watchdog = None


class BuggyLeaseRenewer(LeaseRenewer):
    """Planted bug: a renewal that lands after ``stop()`` re-arms the watchdog. ``stop()`` only
    drops its reference to the in-flight renewal instead of cancelling it (the author feared the
    CancelledError), and ``_renewed`` does not check ``stopped``; so a renewal in flight at stop
    time re-arms the watchdog, which ``ttl`` later calls ``on_lost`` on a stopped renewer (and a
    timer is left pending after stop)."""

    def _renewed(self, _: Any) -> None:
        if self.lost:
            return
        self.renewals += 1
        self._arm_watchdog()  # BUG: no 'if self.stopped: return'

    def _halt(self) -> None:
        if self._loop.running:
            self._loop.stop()
        self._in_flight = None  # BUG: not cancelled


