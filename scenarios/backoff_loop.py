"""Backoff loops: a reconnecting client that backs off exponentially, and two that get it wrong.

The promise every subject here declares (a *backoff loop*, ``Target(kind="periodic",
backoff_ms=...)``): the work (a connection attempt, supplied by the harness)
is called at once on ``start``; after its k-th failure in a row the next
attempt comes ``delay(k) = min(BASE_MS * 2**(k-1), CAP_MS)`` after that
failure; after a success (a session that ended) the count is reset and the
next attempt comes ``BASE_MS`` after it. Never two attempts at once, never an
attempt after ``stop()``, nothing left scheduled after it, and a stop during
a backoff wait is no dead loop.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from harness import Target

from . import Scenario

BASE_MS = 100
CAP_MS = 800


def delay_ms(retry: int) -> int:
    """The wait before retry ``retry`` (1 for the first): 100, 200, 400, 800, 800... ms."""
    return min(BASE_MS * 2 ** (retry - 1), CAP_MS)


class ReconnectingClient:
    """Reconnects with exponential backoff; a success resets the backoff.

    One attempt at a time: the next is scheduled only when the current one's
    Deferred fires. ``stop()`` cancels the pending reconnect, whichever wait
    it is in, and an attempt that ends after the stop schedules nothing.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.failures = 0
        self.running = False
        self._connect: Callable[[], Any] | None = None
        self._next: IDelayedCall | None = None

    def start(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self.running = True
        self._attempt()

    def _attempt(self) -> None:
        self._next = None
        defer.maybeDeferred(self._connect).addCallbacks(self._ended, self._failed)

    def _ended(self, _: Any) -> None:
        self.failures = 0  # the session ended normally: back off from the start again
        self._later(delay_ms(1))

    def _failed(self, _: Failure) -> None:
        self.failures += 1
        self._later(delay_ms(self.failures))

    def _later(self, ms: int) -> None:
        if self.running:
            self._next = self.clock.callLater(ms / 1000, self._attempt)

    def stop(self) -> None:
        self.running = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None


class RetryOutlivesStopClient(ReconnectingClient):
    """Keeps the reconnect after a session and the retry after a failure in two fields.

    BUG: ``stop()`` cancels only the reconnect that follows a session that
    ended (``_reconnect``); the retry pending after a failure (``_retry``) is
    forgotten, so a stop during a backoff wait still connects once more.
    Caught by: ``time.after_stop``.
    """

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__(clock)
        self._reconnect: IDelayedCall | None = None
        self._retry: IDelayedCall | None = None

    def _ended(self, _: Any) -> None:
        self.failures = 0
        if self.running:
            self._reconnect = self.clock.callLater(delay_ms(1) / 1000, self._attempt)

    def _failed(self, _: Failure) -> None:
        self.failures += 1
        if self.running:
            self._retry = self.clock.callLater(delay_ms(self.failures) / 1000, self._attempt)

    def stop(self) -> None:
        self.running = False
        if self._reconnect is not None and self._reconnect.active():
            self._reconnect.cancel()


class FlatBackoffClient(ReconnectingClient):
    """Resets the failure count at every attempt instead of after a success.

    BUG: ``_attempt`` starts with ``self.failures = 0`` ("a fresh attempt"),
    so every failure is the first: the client retries every 100ms however
    often it fails, and the second retry in a row comes too soon.
    Caught by: ``time.early``.
    """

    def _attempt(self) -> None:
        self.failures = 0
        super()._attempt()


def backoff_range(retry: int) -> tuple[int, int]:
    return delay_ms(retry), delay_ms(retry)


def _client(build: Callable[[IReactorTime], Any], description: str) -> Target:
    return Target(build=build, kind="periodic", backoff_ms=backoff_range, description=description)


reconnecting_client = _client(ReconnectingClient, "reconnecting client with exponential backoff, reset by a success")
retry_outlives_stop = _client(RetryOutlivesStopClient, "reconnecting client whose stop() forgets the pending retry")
flat_backoff = _client(FlatBackoffClient, "reconnecting client whose backoff never grows")

SCENARIOS = (
    Scenario(
        "scenarios.backoff_loop:reconnecting_client",
        "pass",
        "reconnects 100, 200, 400, 800ms after failures in a row, 100ms after a session; stop() cancels the wait",
        "callLater",
    ),
    Scenario(
        "scenarios.backoff_loop:retry_outlives_stop",
        "time.after_stop",
        "stop() cancels the reconnect after a session but not the retry after a failure: it connects after stop",
        "callLater",
    ),
    Scenario(
        "scenarios.backoff_loop:flat_backoff",
        "time.early",
        "the failure count is reset at every attempt: the backoff never grows",
        "callLater",
    ),
)
