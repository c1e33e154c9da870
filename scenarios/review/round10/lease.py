"""A leader lease with fencing tokens (written blind, review round 10).

``LeaseStore(clock, ttl, latency)`` is the authority (a remote store simulated
on the same clock: each call is applied when sent and answered ``latency``
seconds later).  It grants the lease to one owner at a time with a fencing
token (1, 2, 3, ...), extends it on ``renew`` while it has not expired, and its
``write(token, value)`` refuses any token older than the newest one issued.

``LeaseHolder(clock, store, name, renew_every, ttl)`` is a client:
``acquire()`` polls the store until it gets the lease (a Deferred firing with
the token), then renews every ``renew_every`` seconds.  The holder believes it
leads until ``ttl`` seconds after the *sending* of its last successful renewal
(the store's expiry can only be later than that); past that, or on a refused
renewal, the lease is lost: the token is dropped and in-flight work (``run``)
is cancelled (fenced off).  ``release()`` gives the lease back.
``is_leader()`` reads the clock, so a clock jump is seen at once.

Twins (BUGS.md): ``ReplyTimeHolder`` counts its lease from the renewal's reply
(not its sending), ``LeakyReleaseHolder`` does not stop renewing on release,
``HighestWrittenStore`` fences by the highest token written, not issued.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()


class NotLeader(Exception):
    """The holder does not hold the lease (or lost it)."""


class LeaseStore:
    def __init__(self, clock: IReactorTime, ttl: float = 10.0, latency: float = 0.5) -> None:
        self._clock = clock
        self.ttl = ttl
        self.latency = latency
        self.owner: str | None = None
        self.token = 0  # newest token issued
        self.expires = 0.0
        self.highest_written = 0
        self.writes: list[tuple[float, str, int, object]] = []  # accepted writes
        self.cut: set[str] = set()  # owners partitioned away: their calls fail

    def _reply(self, value: object, owner: str) -> "Deferred[Any]":
        d: Deferred[Any] = Deferred()
        if owner in self.cut:
            self._clock.callLater(self.latency, d.errback, ConnectionError("store down"))
        else:
            self._clock.callLater(self.latency, d.callback, value)
        return d

    def _expired(self) -> bool:
        return self._clock.seconds() >= self.expires

    def holder(self) -> str | None:
        """The owner now, as the store sees it (None when free or expired)."""
        return None if self.owner is None or self._expired() else self.owner

    def try_acquire(self, owner: str) -> "Deferred[int | None]":
        if owner in self.cut:
            return self._reply(None, owner)
        if self.owner is None or self._expired() or self.owner == owner:
            # a fresh token for every grant, the same owner's too (the harness's find: an acquire
            # cancelled and made again got the same token, and the cancelled one's release of it
            # freed the lease the holder then believed it held)
            self.token += 1
            self.owner = owner
            self.expires = self._clock.seconds() + self.ttl
            return self._reply(self.token, owner)
        return self._reply(None, owner)

    def renew(self, owner: str, token: int) -> "Deferred[bool]":
        if owner in self.cut:
            return self._reply(False, owner)
        ok = self.owner == owner and self.token == token and not self._expired()
        if ok:
            # never shorten the lease (the harness's find: a renewal after the wall clock went back
            # moved the expiry earlier than the holder's deadline, and a jump forward then passed it)
            self.expires = max(self.expires, self._clock.seconds() + self.ttl)
        return self._reply(ok, owner)

    def release(self, owner: str, token: int) -> "Deferred[None]":
        if owner not in self.cut and self.owner == owner and self.token == token:
            self.owner = None
            self.expires = 0.0
        return self._reply(None, owner)

    def _fenced(self, token: int) -> bool:
        return token < self.token

    def write(self, owner: str, token: int, value: object) -> "Deferred[bool]":
        if owner in self.cut:
            return self._reply(False, owner)
        if self._fenced(token):
            return self._reply(False, owner)
        self.highest_written = max(self.highest_written, token)
        self.writes.append((self._clock.seconds(), owner, token, value))
        return self._reply(True, owner)


class LeaseHolder:
    def __init__(
        self,
        clock: IReactorTime,
        store: LeaseStore,
        name: str,
        renew_every: float = 3.0,
        ttl: float = 10.0,
        retry_every: float = 1.0,
    ) -> None:
        self._clock = clock
        self._store = store
        self.name = name
        self._renew_every = renew_every
        self._ttl = ttl
        self._retry_every = retry_every
        self.token: int | None = None
        self.deadline = 0.0
        self._loop: LoopingCall | None = None
        self._expiry: IDelayedCall | None = None
        self._poll: IDelayedCall | None = None
        self._acquiring: Deferred[int] | None = None
        # in-flight work, in the order it started (a dict, not a set: the harness's find, a set of
        # Deferreds iterates in address order and cancelled them in a different order every run)
        self._work: dict[Deferred[object], None] = {}
        self.lost = 0
        self._renewing = False

    # -- public -----------------------------------------------------------
    def is_leader(self) -> bool:
        return self.token is not None and self._clock.seconds() < self.deadline

    def acquire(self) -> "Deferred[int]":
        if self._acquiring is not None:
            raise RuntimeError("already acquiring")
        if self.token is not None:
            raise RuntimeError("already holding the lease")
        d: Deferred[int] = Deferred(lambda _d: self._stop_acquiring())
        self._acquiring = d
        self._try()
        return d

    def run(self, work: Callable[[int], Any]) -> "Deferred[object]":
        """Run ``work(token)`` as the leader; cancelled if the lease is lost."""
        if not self.is_leader():
            return _failed(NotLeader(self.name))
        assert self.token is not None
        d = maybeDeferred(work, self.token)
        self._work[d] = None

        def forget(r: object) -> object:
            self._work.pop(d, None)
            return r

        d.addBoth(forget)
        return d

    def release(self) -> "Deferred[None]":
        token = self.token
        self._stop_renewing()
        self._drop()
        if token is None:
            return _succeeded()
        return self._store.release(self.name, token)

    # -- acquiring ------------------------------------------------------------
    def _stop_acquiring(self) -> None:
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None
        self._acquiring = None

    def _try(self) -> None:
        self._poll = None
        sent = self._clock.seconds()
        attempt = self._acquiring

        def got(token: int | None) -> None:
            if self._acquiring is not attempt or attempt is None:
                # cancelled meanwhile: give the lease back if we got it
                if token is not None:
                    self._store.release(self.name, token).addErrback(lambda _f: None)
                return
            if token is None:
                self._poll = self._clock.callLater(self._retry_every, self._try)
                return
            self._acquiring = None
            self.token = token
            self._extend(sent)
            self._start_renewing()
            attempt.callback(token)

        def failed(_f: Failure) -> None:
            if self._acquiring is attempt and attempt is not None:
                self._poll = self._clock.callLater(self._retry_every, self._try)

        self._store.try_acquire(self.name).addCallbacks(got, failed)

    # -- renewing -------------------------------------------------------------
    def _start_renewing(self) -> None:
        self._loop = LoopingCall(self._renew)
        self._loop.clock = self._clock
        self._loop.start(self._renew_every, now=False)

    def _stop_renewing(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def _renew(self) -> None:
        token = self.token
        if token is None or self._renewing:
            return
        if not self.is_leader():
            self._lose()
            return
        self._renewing = True
        sent = self._clock.seconds()

        def answered(ok: bool) -> None:
            self._renewing = False
            if self.token != token:
                return
            if ok:
                self._extend(self._renewal_base(sent))
            else:
                self._lose()

        def failed(_f: Failure) -> None:
            self._renewing = False  # the expiry timer decides

        self._store.renew(self.name, token).addCallbacks(answered, failed)

    def _renewal_base(self, sent: float) -> float:
        return sent

    def _extend(self, base: float) -> None:
        self.deadline = base + self._ttl
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        delay = max(0.0, self.deadline - self._clock.seconds())
        self._expiry = self._clock.callLater(delay, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        if self.token is not None and not self.is_leader():
            self._lose()

    def _lose(self) -> None:
        self.lost += 1
        self._stop_renewing()
        self._drop()

    def _drop(self) -> None:
        self.token = None
        self.deadline = 0.0
        if self._expiry is not None and self._expiry.active():
            self._expiry.cancel()
        self._expiry = None
        work, self._work = self._work, {}
        for d in work:
            try:
                d.cancel()
            except Exception:  # a canceller that raises must not stop the fencing of the rest
                log.failure("cancelling fenced work")


class ReplyTimeHolder(LeaseHolder):
    """Bug: counts the lease from the renewal's reply, not from its sending:
    it believes it leads ``latency`` seconds past the store's expiry."""

    def _renewal_base(self, sent: float) -> float:
        return self._clock.seconds()


class LeakyReleaseHolder(LeaseHolder):
    """Bug: release() drops the token but forgets to stop the renewal loop."""

    def release(self) -> "Deferred[None]":
        token = self.token
        self._drop()
        if token is None:
            return _succeeded()
        return self._store.release(self.name, token)


class HighestWrittenStore(LeaseStore):
    """Bug: fences by the highest token *written*, not issued: an old leader
    writes after a new leader got the lease but before it wrote."""

    def _fenced(self, token: int) -> bool:
        return token < self.highest_written


def _failed(exc: Exception) -> "Deferred[Any]":
    d: Deferred[Any] = Deferred()
    d.errback(exc)
    return d


def _succeeded() -> "Deferred[None]":
    d: Deferred[None] = Deferred()
    d.callback(None)
    return d
