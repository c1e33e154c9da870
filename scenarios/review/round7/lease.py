"""A lease keeper: acquire a lease, renew it every ``renew_every`` seconds, give it up on ``stop()``.

The lease is good for ``ttl`` seconds from the moment a (successful) acquire or renew request was
*sent* (the conservative reading: the server may have started the ttl as soon as it received it).
If a renewal fails, or no renewal succeeds before the lease expires, the lease is lost and every
caller waiting on ``held()`` fails with :class:`LeaseLost`. ``stop()`` stops renewing, releases the
lease and makes ``held()`` waiters succeed with ``None``.

Time is kept by timers only (``callLater``), never by subtracting ``clock.seconds()`` readings: each
request sent arms a *candidate* expiry timer ``ttl`` after the send, which becomes the lease's
expiry if the request succeeds. A renewal is sent from a ``callLater(0)`` after the loop's tick, so
that an expiry overdue in the same (late) reactor wake-up runs first and a lapsed lease is not
renewed. (Phase 2: the harness caught the first version, which compared ``seconds()`` readings.)

The three callables (``acquire``, ``renew``, ``release``) each return a Deferred; they stand for
calls to a lock server.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall


class LeaseLost(Exception):
    """The lease was lost: a renewal failed or came too late."""


class LeaseKeeper:
    """Keeps one lease alive by renewing it every ``renew_every`` seconds."""

    def __init__(
        self,
        clock: IReactorTime,
        acquire: Callable[[], Deferred[Any]],
        renew: Callable[[], Deferred[Any]],
        release: Callable[[], Deferred[Any]],
        renew_every: float,
        ttl: float,
    ) -> None:
        if renew_every >= ttl:
            raise ValueError("renew_every must be shorter than ttl")
        self.clock = clock
        self._acquire = acquire
        self._renew = renew
        self._release = release
        self.renew_every = renew_every
        self.ttl = ttl
        self.state = "idle"  # idle -> acquiring -> held -> (lost | stopped)
        self._waiters: list[Deferred[None]] = []
        self._expiry: IDelayedCall | None = None
        self._candidates: list[IDelayedCall] = []  # expiries of requests still out
        self._send: tuple[IDelayedCall, Deferred[None]] | None = None  # a renewal about to go
        self._loop: LoopingCall | None = None
        self._loop_done: Deferred[Any] | None = None

    # -- public API -------------------------------------------------------------------------
    def start(self) -> Deferred[None]:
        """Acquire the lease; fires when held (or fails if the acquire fails)."""
        if self.state != "idle":
            raise RuntimeError("start() called twice")
        self.state = "acquiring"
        candidate = self._candidate()
        d = self._acquire()
        d.addCallbacks(self._acquired, self._acquire_failed, callbackArgs=(candidate,),
                       errbackArgs=(candidate,))
        return d

    def held(self) -> Deferred[None]:
        """A Deferred that fires None when the lease is given up, or fails with LeaseLost."""
        if self.state == "lost":
            return _failed(LeaseLost("lease already lost"))
        if self.state in ("stopped", "idle"):
            return succeed(None)
        d: Deferred[None] = Deferred(self._cancel_waiter)
        self._waiters.append(d)
        return d

    def stop(self) -> Deferred[None]:
        """Stop renewing and release the lease (if held). Fires when released."""
        if self.state != "held":
            was = self.state
            self.state = "stopped" if was != "lost" else was
            self._cancel_timers()
            self._fire_waiters(None)
            return succeed(None)
        self.state = "stopped"
        self._stop_loop()
        self._cancel_timers()
        d = self._release()
        d.addErrback(lambda _f: None)  # a failed release: the lease will simply expire
        d.addCallback(lambda _r: self._fire_waiters(None))
        return d

    # -- internals --------------------------------------------------------------------------
    def _candidate(self) -> IDelayedCall:
        """The expiry of a request sent now, armed now: it becomes the lease's if it succeeds."""
        call = self.clock.callLater(self.ttl, self._expired)
        self._candidates.append(call)
        return call

    def _adopt(self, candidate: IDelayedCall) -> None:
        """A request succeeded: its expiry replaces the lease's."""
        if candidate in self._candidates:
            self._candidates.remove(candidate)
        self._cancel_expiry()
        self._expiry = candidate

    def _drop(self, candidate: IDelayedCall) -> None:
        if candidate in self._candidates:
            self._candidates.remove(candidate)
        if candidate.active():
            candidate.cancel()

    def _acquired(self, _result: object, candidate: IDelayedCall) -> None:
        if self.state != "acquiring":
            # stopped while acquiring: give the lease straight back
            self._drop(candidate)
            self._release().addErrback(lambda _f: None)
            return None
        self.state = "held"
        self._adopt(candidate)
        self._loop = LoopingCall(self._renew_once)
        self._loop.clock = self.clock
        self._loop_done = self._loop.start(self.renew_every, now=False)
        self._loop_done.addErrback(lambda _f: None)
        return None

    def _acquire_failed(self, failure: Any, candidate: IDelayedCall) -> Any:
        self._drop(candidate)
        if self.state == "acquiring":
            self.state = "idle"
        return failure

    def _renew_once(self) -> Deferred[None] | None:
        """The loop's tick: send the renewal in a later round of this instant, after any expiry
        overdue in the same wake-up has run."""
        if self.state != "held":
            return None
        done: Deferred[None] = Deferred()
        self._send = (self.clock.callLater(0, self._send_renewal, done), done)
        return done

    def _send_renewal(self, done: Deferred[None]) -> None:
        self._send = None
        if self.state != "held":
            done.callback(None)
            return None
        candidate = self._candidate()
        d = self._renew()
        d.addCallbacks(self._renewed, self._renew_failed, callbackArgs=(candidate,),
                       errbackArgs=(candidate,))
        d.addBoth(lambda _r: done.callback(None))
        return None

    def _renewed(self, _result: object, candidate: IDelayedCall) -> None:
        if self.state != "held":
            self._drop(candidate)
            return None
        self._adopt(candidate)
        return None

    def _renew_failed(self, failure: Any, candidate: IDelayedCall) -> None:
        self._drop(candidate)
        if self.state == "held":
            self._lose(f"renewal failed: {failure.getErrorMessage()}")
        return None

    def _lose(self, why: str) -> None:
        self.state = "lost"
        self._stop_loop()
        self._cancel_timers()
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.errback(LeaseLost(why))

    def _expired(self) -> None:
        if self.state == "held":
            self._lose("lease expired before a renewal succeeded")

    def _cancel_expiry(self) -> None:
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None

    def _cancel_timers(self) -> None:
        self._cancel_expiry()
        for call in self._candidates:
            if call.active():
                call.cancel()
        self._candidates = []
        if self._send is not None:
            call, done = self._send
            if call.active():
                call.cancel()
                done.callback(None)  # the loop's tick ends with nothing sent
        self._send = None

    def _stop_loop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _fire_waiters(self, result: None) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.callback(result)

    def _cancel_waiter(self, d: Deferred[None]) -> None:
        if d in self._waiters:
            self._waiters.remove(d)


def _failed(exc: Exception) -> Deferred[None]:
    d: Deferred[None] = Deferred()
    d.errback(exc)
    return d


# -- buggy twins -----------------------------------------------------------------------------
class LeaseStopLeaksExpiry(LeaseKeeper):
    """BUG: stop() forgets to cancel the expiry timer; it stays pending after the keeper stopped."""

    def stop(self) -> Deferred[None]:
        if self.state != "held":
            return super().stop()
        self.state = "stopped"
        self._stop_loop()
        d = self._release()
        d.addErrback(lambda _f: None)
        d.addCallback(lambda _r: self._fire_waiters(None))
        return d


class LeaseNoDeadlineWhileRenewing(LeaseKeeper):
    """BUG: the expiry timer is cancelled when a renewal is sent and only re-armed (ttl from the
    answer) when it succeeds, so a renewal whose answer never comes leaves the lease 'held' for
    ever, and a slow one stretches it."""

    def _send_renewal(self, done: Deferred[None]) -> None:
        self._send = None
        if self.state != "held":
            done.callback(None)
            return None
        self._cancel_expiry()
        d = self._renew()
        d.addCallbacks(self._renewed_rearm, self._renew_failed_plain)
        d.addBoth(lambda _r: done.callback(None))
        return None

    def _renewed_rearm(self, _result: object) -> None:
        if self.state == "held":
            self._expiry = self.clock.callLater(self.ttl, self._expired)
        return None

    def _renew_failed_plain(self, failure: Any) -> None:
        if self.state == "held":
            self._lose(f"renewal failed: {failure.getErrorMessage()}")
        return None


class LeaseDoubleErrback(LeaseKeeper):
    """BUG: losing the lease fires the waiters but neither clears the list nor cancels the expiry
    timer, so a failed renewal followed by the expiry errbacks the same waiters twice."""

    def _lose(self, why: str) -> None:
        self.state = "lost"
        self._stop_loop()
        for w in self._waiters:
            w.errback(LeaseLost(why))

    def _expired(self) -> None:
        if self.state in ("held", "lost"):
            self._lose("lease expired before a renewal succeeded")
