"""A heartbeat / keepalive monitor, written blind.

Every ``interval`` seconds (``LoopingCall`` on the injected clock) the monitor pings the peer,
one ping at a time: a beat that finds the previous ping still out sends nothing (that ping's
own outcome decides). Each ping is bounded by ``ping_timeout`` (``addTimeout``); a failed or timed-out ping
is a miss, a successful one resets the count. After ``misses`` consecutive misses the peer is
declared dead: the loop stops and ``dead`` fires (once). ``stop()`` stops the loop and cancels
the outstanding ping.

Promises:
  P1 at most one ping outstanding at any time;
  P2 each ping is answered within ``ping_timeout``;
  P3 the peer is declared dead only after ``misses`` *consecutive* misses;
  P4 after ``stop()`` or death nothing of the monitor is left on the clock.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure


class HeartbeatMonitor:
    """Correct version."""

    def __init__(
        self,
        clock: IReactorTime,
        ping: Callable[[], Any],
        interval: float = 5.0,
        ping_timeout: float = 7.0,
        misses: int = 3,
    ) -> None:
        self._clock = clock
        self._ping = ping
        self._interval = interval
        self._ping_timeout = ping_timeout
        self._allowed = misses
        self._loop = LoopingCall(self._beat)
        self._loop.clock = clock
        self._outstanding: Optional[Deferred] = None
        self.missed = 0
        self.pings = 0
        self.dead: Deferred = Deferred()
        self.declared_dead = False

    def start(self) -> None:
        d = self._loop.start(self._interval, now=True)
        d.addErrback(lambda f: None)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self._outstanding is not None:
            self._outstanding.cancel()

    # -- internals -------------------------------------------------------------
    def _beat(self) -> None:
        if self._outstanding is not None:
            return
        self.pings += 1
        d = maybeDeferred(self._ping)
        d.addTimeout(self._ping_timeout, self._clock)
        self._outstanding = d
        d.addBoth(self._answered, d)

    def _answered(self, result: Any, d: Deferred) -> None:
        if self._outstanding is d:
            self._outstanding = None
        if isinstance(result, Failure):
            if not self.declared_dead and self._loop.running:
                self._miss()
        else:
            self.missed = 0
        return None

    def _miss(self) -> None:
        self.missed += 1
        if self.missed >= self._allowed and not self.declared_dead:
            self.declared_dead = True
            self.stop()
            self.dead.callback(self.missed)


class HeartbeatNoReset(HeartbeatMonitor):
    """Twin A: a successful ping does not reset the miss count.

    Real code: the reset was in a branch for "peer recovered" that only ran when the
    previous state was "suspect". Scattered misses add up and a live peer is declared dead.
    Breaks P3.
    """

    def _answered(self, result: Any, d: Deferred) -> None:
        if self._outstanding is d:
            self._outstanding = None
        if isinstance(result, Failure):
            if not self.declared_dead and self._loop.running:
                self._miss()
        return None


class HeartbeatStopKeepsPing(HeartbeatMonitor):
    """Twin B: ``stop()`` stops the loop but leaves the outstanding ping (and its timeout
    timer) on the clock. Breaks P4.
    """

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()


class HeartbeatOverlappingPings(HeartbeatMonitor):
    """Twin C: each beat pings regardless of the outstanding one (and only the newest is
    tracked). With ``ping_timeout`` above ``interval`` and a slow peer, two or more pings
    are out at once. Breaks P1.
    """

    def _beat(self) -> None:
        self.pings += 1
        d = maybeDeferred(self._ping)
        d.addTimeout(self._ping_timeout, self._clock)
        self._outstanding = d
        d.addBoth(self._answered, d)
