"""Specimen (docs/reviews/outside-user-7.md: what the harness found in my code, and finding 4): my second lease keeper, which
checked expiry by comparing ``clock.seconds()`` readings; the harness caught it under a wall-clock
jump back and a stalled reactor. The fixed keeper is ``lease.LeaseKeeper``.

A lease keeper: acquire a lease, renew it every ``renew_every`` seconds, give it up on ``stop()``.

The lease is good for ``ttl`` seconds from the moment a (successful) acquire or renew request was
*sent* (the conservative reading: the server may have started the ttl as soon as it received it).
If a renewal fails, or no renewal succeeds before the lease expires, the lease is lost and every
caller waiting on ``held()`` fails with :class:`LeaseLost`. ``stop()`` stops renewing, releases the
lease and makes ``held()`` waiters succeed with ``None``.

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
        self._loop: LoopingCall | None = None
        self._loop_done: Deferred[Any] | None = None

    # -- public API -------------------------------------------------------------------------
    def start(self) -> Deferred[None]:
        """Acquire the lease; fires when held (or fails if the acquire fails)."""
        if self.state != "idle":
            raise RuntimeError("start() called twice")
        self.state = "acquiring"
        sent_at = self.clock.seconds()
        d = self._acquire()
        d.addCallback(self._acquired, sent_at)
        d.addErrback(self._acquire_failed)
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
            self._fire_waiters(None)
            return succeed(None)
        self.state = "stopped"
        self._stop_loop()
        self._cancel_expiry()
        d = self._release()
        d.addErrback(lambda _f: None)  # a failed release: the lease will simply expire
        d.addCallback(lambda _r: self._fire_waiters(None))
        return d

    # -- internals --------------------------------------------------------------------------
    def _acquired(self, _result: object, sent_at: float) -> None:
        if self.state != "acquiring":
            # stopped while acquiring: give the lease straight back
            self._release().addErrback(lambda _f: None)
            return None
        self.state = "held"
        self._schedule_expiry(sent_at + self.ttl)
        self._loop = LoopingCall(self._renew_once)
        self._loop.clock = self.clock
        self._loop_done = self._loop.start(self.renew_every, now=False)
        self._loop_done.addErrback(lambda _f: None)
        return None

    def _acquire_failed(self, failure: Any) -> Any:
        if self.state == "acquiring":
            self.state = "idle"
        return failure

    def _renew_once(self) -> Deferred[None] | None:
        if self.state != "held":
            return None
        sent_at = self.clock.seconds()
        d = self._renew()
        d.addCallbacks(self._renewed, self._renew_failed, callbackArgs=(sent_at,))
        return d

    def _renewed(self, _result: object, sent_at: float) -> None:
        if self.state != "held":
            return None
        if self.clock.seconds() >= sent_at + self.ttl:
            # the answer came after the lease would have run out anyway
            self._lose("renewal answered after expiry")
            return None
        self._schedule_expiry(sent_at + self.ttl)
        return None

    def _renew_failed(self, failure: Any) -> None:
        if self.state == "held":
            self._lose(f"renewal failed: {failure.getErrorMessage()}")
        return None

    def _lose(self, why: str) -> None:
        self.state = "lost"
        self._stop_loop()
        self._cancel_expiry()
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.errback(LeaseLost(why))

    def _expired(self) -> None:
        self._expiry = None
        if self.state == "held":
            self._lose("lease expired before a renewal succeeded")

    def _schedule_expiry(self, at: float) -> None:
        self._cancel_expiry()
        self._expiry = self.clock.callLater(max(0.0, at - self.clock.seconds()), self._expired)

    def _cancel_expiry(self) -> None:
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None

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
