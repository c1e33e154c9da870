"""An adaptive poller on an injected clock.

``AdaptivePoller(clock, source, sink, base, max_interval, poll_timeout)`` calls ``source()`` (a
Deferred of a list of items) once per interval and hands every non-empty batch to ``sink``.  While
polls come back empty (or fail, or time out) the interval doubles, up to ``max_interval``; a
non-empty batch snaps it back to ``base``.  A poll that takes longer than ``poll_timeout`` is
cancelled and counts as idle.  At most one poll is in flight.  ``poll_now()`` polls at once
(resetting the interval to base), or right after the poll in flight.  ``stop()`` cancels the
scheduled poll and the poll in flight; after it ``sink`` is never called again.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime


class PollTimeout(Exception):
    """A poll ran longer than the poll timeout."""


class AdaptivePoller:
    def __init__(
        self,
        clock: IReactorTime,
        source: Callable[[], Deferred[list[Any]]],
        sink: Callable[[list[Any]], None],
        base: float,
        max_interval: float,
        poll_timeout: float,
    ) -> None:
        if not 0 < base <= max_interval:
            raise ValueError("need 0 < base <= max_interval")
        self._clock = clock
        self._source = source
        self._sink = sink
        self.base = base
        self.max_interval = max_interval
        self.poll_timeout = poll_timeout
        self.interval = base
        self.polls = 0
        self.errors: list[BaseException] = []
        self._next: IDelayedCall | None = None
        self._inflight: Deferred[list[Any]] | None = None
        self._deadline: IDelayedCall | None = None
        self._expired: Deferred[list[Any]] | None = None
        self._running = False
        self._again = False

    def start(self) -> None:
        """Start polling: the first poll happens at once."""
        if self._running:
            return
        self._running = True
        self._poll()

    def poll_now(self) -> None:
        if not self._running:
            return
        if self._inflight is not None:
            # The poll in flight started before the request and may miss what prompted it:
            # poll again as soon as it ends (found by the harness: time.on_demand).
            self._again = True
            return
        self._cancel_next()
        self.interval = self.base
        self._poll()

    def stop(self) -> None:
        self._running = False
        self._again = False
        self._cancel_next()
        self._cancel_inflight()

    def _cancel_inflight(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()

    # -- one poll --------------------------------------------------------------------------------
    def _poll(self) -> None:
        self._next = None
        self.polls += 1
        d: Deferred[list[Any]] = maybeDeferred(self._source)
        self._inflight = d
        self._deadline = self._clock.callLater(self.poll_timeout, self._timed_out, d)
        d.addCallbacks(self._got, self._failed, callbackArgs=(d,), errbackArgs=(d,))

    def _timed_out(self, d: Deferred[list[Any]]) -> None:
        self._deadline = None
        if d is self._inflight:
            self.errors.append(PollTimeout(f"poll {self.polls} timed out"))
            self._expired = d
            d.cancel()

    def _got(self, items: list[Any], d: Deferred[list[Any]]) -> None:
        if not self._settle(d):
            return
        if items:
            self.interval = self.base
            self._sink(items)
        else:
            self._back_off()
        self._schedule()

    def _failed(self, failure: Any, d: Deferred[list[Any]]) -> None:
        if not self._settle(d):
            return
        if d is not self._expired:  # a timed-out poll's CancelledError is already counted
            self.errors.append(failure.value)
        self._back_off()
        self._schedule()

    def _settle(self, d: Deferred[list[Any]]) -> bool:
        """The poll ``d`` ended: forget it; say whether its outcome still counts (not stopped)."""
        if d is self._inflight:
            self._inflight = None
            self._clear_deadline()
        return self._running

    def _clear_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def _back_off(self) -> None:
        self.interval = min(self.interval * 2, self.max_interval)

    def _schedule(self) -> None:
        if self._running and self._next is None and self._inflight is None:
            if self._again:
                self._again = False
                self.interval = self.base
                self._poll()
            else:
                self._next = self._clock.callLater(self.interval, self._poll)

    def _cancel_next(self) -> None:
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None


class PollerStopLeavesPoll(AdaptivePoller):
    """BUG: stop() cancels the scheduled poll but not the one in flight, and the outcome check
    forgets the stopped state: a batch arriving after stop() is still handed to the sink."""

    def _cancel_inflight(self) -> None:
        pass

    def _settle(self, d: Deferred[list[Any]]) -> bool:
        super()._settle(d)
        return True


class PollerDeadlineLeak(AdaptivePoller):
    """BUG: a poll that finishes in time leaves its timeout timer armed, and the timeout checks
    'is a poll in flight' rather than 'is *this* poll in flight': the stale timer cancels a later
    poll that was well within its own timeout."""

    def _clear_deadline(self) -> None:
        self._deadline = None

    def _timed_out(self, d: Deferred[list[Any]]) -> None:
        if self._inflight is not None:
            self.errors.append(PollTimeout(f"poll {self.polls} timed out"))
            self._expired = self._inflight
            self._inflight.cancel()


class PollerBackoffOvershoot(AdaptivePoller):
    """BUG: the back-off clamps before doubling instead of after, so the interval can overshoot
    max_interval (base 1, max 5: 1, 2, 4, 8, 8...)."""

    def _back_off(self) -> None:
        if self.interval < self.max_interval:
            self.interval *= 2
